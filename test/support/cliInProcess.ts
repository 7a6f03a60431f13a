// A `wecom-dify` command run in this process, with what it would print collected: for suites that run
// many commands, where a child process each (a Node start and the TypeScript loader) costs seconds.
// The command's own process wiring (main.ts) is tested by the suites that spawn it.
import { PassThrough, Writable } from 'node:stream';
import type { Io } from '../../src/cli/io.js';
import { UsageError } from '../../src/cli/io.js';
import type { CliResult } from './cliRun.js';

const commands: Record<string, () => Promise<(args: string[], io: Io) => Promise<number>>> = {
  streams: async () => (await import('../../src/cli/streamsCommand.js')).runStreams,
  replay: async () => (await import('../../src/cli/replayCommand.js')).runReplay,
  export: async () => (await import('../../src/cli/exportCommand.js')).runExport,
  bots: async () => (await import('../../src/cli/botsCommand.js')).runBots,
};

export async function runInProcess(argv: string[], env: Record<string, string>): Promise<CliResult> {
  const [name, ...args] = argv;
  const load = name ? commands[name] : undefined;
  if (!load) throw new Error(`runInProcess knows no command ${name}`);
  let stdout = '';
  let stderr = '';
  const sink = (to: 'out' | 'err') =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        if (to === 'out') stdout += chunk.toString();
        else stderr += chunk.toString();
        done();
      },
    });
  const stdin = new PassThrough();
  stdin.end();
  const io: Io = {
    env,
    stdin,
    stdout: sink('out'),
    stderr: sink('err'),
    interactive: false,
    write: (text) => {
      stdout += text;
    },
    out: (line) => {
      stdout += `${line}\n`;
    },
    err: (line) => {
      stderr += `wecom-dify: ${line}\n`;
    },
    now: Date.now,
  };
  try {
    const code = await (await load())(args, io);
    return { code, signal: null, stdout, stderr };
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    stderr += `wecom-dify: ${error.message}\n\n${error.usage}\n`;
    return { code: 2, signal: null, stdout, stderr };
  }
}
