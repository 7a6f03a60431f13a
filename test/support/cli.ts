// Running the `wecom-dify` command from its TypeScript source in a child process, from any working
// directory: tsx is named by its file URL, since a bare `--import tsx` resolves from the cwd.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';

export const root = resolve(import.meta.dirname, '../..');
const mainTs = join(root, 'src/cli/main.ts');
export const tsxLoader = import.meta.resolve('tsx');

/** `node --import tsx <script> ...args`, with only the given environment (and PATH). */
function spawnTs(
  script: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', tsxLoader, script, ...args], {
    cwd: options.cwd ?? root,
    env: { PATH: process.env.PATH ?? '', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** `wecom-dify <args>` from source. */
export const spawnCli = (args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) =>
  spawnTs(mainTs, args, options);
