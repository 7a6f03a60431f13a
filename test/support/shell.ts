// Running a command as a user types it, in a child process: with only PATH and HOME, and npm's cache
// in a folder of the test's own (as on a machine where npx never ran this checkout before).
import { spawn } from 'node:child_process';
import type { CliResult } from './cliRun.js';

export function runCommand(
  command: string,
  args: string[],
  options: { cwd: string; npmCache: string; timeoutMs?: number },
): Promise<CliResult> {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? options.npmCache,
      npm_config_cache: options.npmCache,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A command line as pasted into a terminal: `sh -c '<line>'`. */
export const runLine = (line: string, options: { cwd: string; npmCache: string; timeoutMs?: number }) =>
  runCommand('sh', ['-c', line], options);
