#!/usr/bin/env node
// The `wecom-dify` command: one word picks the command, each command parses its own options and
// settings and returns an exit code (0 done, 1 failed, 2 usage or settings); `serve` runs until told.
import { type BotConfig, loadBots, parseConfig, readEnv } from '../config.js';
import { createLogger, type Logger } from '../log.js';
import { type Io, UsageError } from './io.js';
import { stopOnSignals } from './stopOnSignals.js';
import { type CommandName, commandUsage, usage } from './usage.js';

function loadConfigOrExit(env: Record<string, string | undefined>) {
  const result = parseConfig(env);
  if (!result.ok) {
    for (const problem of result.problems) process.stderr.write(`wecom-dify: ${problem}\n`);
    process.stderr.write('wecom-dify: not started; see README.md "Settings".\n');
    process.exit(2);
  }
  return result.config;
}

/** How long after the drain's deadline a stopping node exits, finished or not (a few seconds). */
const SHUTDOWN_MARGIN_MS = 5000;

async function serve(): Promise<void> {
  const env = readEnv(process.env);
  const config = loadConfigOrExit(env);
  const logger = createLogger(config.logLevel);
  const { startService } = await import('../service.js');
  let service: Awaited<ReturnType<typeof startService>>;
  try {
    service = await startService({ config, logger });
  } catch (error) {
    // What stops a start is a setting or a dependency (the port is taken, the directory cannot be
    // reached or migrated): one clear line, not a stack; the log keeps the details.
    const message = error instanceof Error ? error.message : String(error);
    logger.fatal({ err: error }, 'could not start');
    process.stderr.write(`wecom-dify: cannot start: ${message}\n`);
    process.exit(1);
  }
  stopOnSignals({
    shutdown: () => service.shutdown(),
    logger,
    deadlineMs: config.stream.drainMs + SHUTDOWN_MARGIN_MS,
  });
  // The bots file is read again on SIGHUP; the rest of the settings stay as they were at the start.
  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    reloading = reloading.then(() => reloadBots(env, service, logger));
  });
  process.on('unhandledRejection', (error) => logger.error({ err: error }, 'unhandled rejection'));
}

/**
 * SIGHUP: the bots of WECOM_BOTS_FILE as it is now. A valid file takes effect for new callbacks
 * (answers running finish with the bot they started with); an invalid one is refused with its
 * problems, one log line each, and the bots stay as they were.
 */
async function reloadBots(
  env: Record<string, string | undefined>,
  service: { reloadBots(bots: BotConfig[]): Promise<Record<string, string[]>> },
  logger: Logger,
): Promise<void> {
  if (!env.WECOM_BOTS_FILE) {
    logger.info('SIGHUP: no WECOM_BOTS_FILE to read again; nothing changed');
    return;
  }
  const loaded = loadBots(env);
  if (!loaded.ok) {
    for (const problem of loaded.problems) logger.error({ problem }, `bots file refused: ${problem}`);
    logger.error(
      { file: env.WECOM_BOTS_FILE, problems: loaded.problems.length },
      'bots file not reloaded: the bots stay as they were',
    );
    return;
  }
  try {
    const changes = await service.reloadBots(loaded.bots);
    logger.info(
      { file: env.WECOM_BOTS_FILE, bots: loaded.bots.map((b) => b.id), ...changes },
      'bots reloaded',
    );
  } catch (error) {
    logger.error({ err: error }, 'bots not reloaded: the bots stay as they were');
  }
}

function processIo(): Io {
  const write = (text: string) => {
    process.stdout.write(text);
  };
  return {
    env: readEnv(process.env),
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    interactive: Boolean(process.stdin.isTTY && process.stdout.isTTY),
    write,
    out: (line) => write(`${line}\n`),
    err: (line) => {
      process.stderr.write(`wecom-dify: ${line}\n`);
    },
    now: Date.now,
  };
}

/** SIGINT and SIGTERM end the demo cleanly; a second one ends it at once. */
function onSignal(handler: () => void): () => void {
  let count = 0;
  const listener = () => {
    count++;
    if (count > 1) process.exit(1);
    handler();
  };
  process.on('SIGINT', listener);
  process.on('SIGTERM', listener);
  return () => {
    process.off('SIGINT', listener);
    process.off('SIGTERM', listener);
  };
}

const isCommand = (name: string): name is CommandName => Object.hasOwn(commandUsage, name);

async function run(command: string, args: string[]): Promise<number | undefined> {
  if (isCommand(command) && (args.includes('--help') || args.includes('-h'))) {
    process.stdout.write(`usage: ${commandUsage[command]}\n`);
    return 0;
  }
  switch (command) {
    case 'serve':
      if (args.length > 0)
        throw new UsageError(`serve takes no arguments (settings come from the environment)`, usage);
      await serve();
      return undefined;
    // Each command is loaded when it runs: a serving node does not carry the others (the demo, the
    // directory's MySQL driver) in its memory.
    case 'migrate':
      return (await import('./adminCommands.js')).runMigrateCommand(args, processIo());
    case 'users':
      return (await import('./adminCommands.js')).runUsersCommand(args, processIo());
    case 'doctor':
      return (await import('./doctorCommand.js')).runDoctor(args, processIo());
    case 'streams':
      return (await import('./streamsCommand.js')).runStreams(args, processIo());
    case 'replay':
      return (await import('./replayCommand.js')).runReplay(args, processIo());
    case 'export':
      return (await import('./exportCommand.js')).runExport(args, processIo());
    case 'bots':
      return (await import('./botsCommand.js')).runBots(args, processIo());
    case 'chat':
      return (await import('./chatCommand.js')).runChat(args, processIo());
    case 'demo':
      return (await import('./demoCommand.js')).runDemo(args, processIo(), { onSignal });
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage);
      return 0;
    default:
      throw new UsageError(`unknown command "${command}"`, usage);
  }
}

/** Exits once what was written has been handed to the OS, so a piped reader gets all of it. */
function exit(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (command === undefined) {
    process.stderr.write(usage);
    return exit(2);
  }
  // `wecom-dify streams | head` closes the pipe early: that is not an error. A node's log reader
  // going away does not end the node (src/log.ts stops writing).
  if (command !== 'serve')
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(0);
      throw error;
    });
  try {
    const code = await run(command, args);
    if (code !== undefined) exit(code);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    const text = error.usage.startsWith('usage:') ? error.usage : `usage: ${error.usage}`;
    process.stderr.write(`wecom-dify: ${error.message}\n\n${text.trimEnd()}\n`);
    exit(2);
  }
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`wecom-dify: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
