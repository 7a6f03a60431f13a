#!/usr/bin/env node
// The `wecom-dify` command.
import { parseConfig, readEnv } from '../config.js';
import { createLogger } from '../log.js';

const usage = `wecom-dify <command>

  serve                 run the service (settings from the environment and .env)
  migrate               create or update the directory tables in MYSQL_URL
  users add|list|disable|enable ...   manage the directory's users
  streams [--unfinished] [--stuck 2m] [--user ID] [--json]   list recent streams
  replay <streamId> [--json] | replay --file <file>           replay a stream event by event
  export <streamId> [--out file]                              write a stream's events to a file
  chat --url URL        a WeCom simulator in the terminal (needs WECOM_TOKEN, WECOM_ENCODING_AES_KEY)
  demo                  everything locally: service, a Dify stand-in, the simulator
`;

export function loadConfigOrExit() {
  const result = parseConfig(readEnv(process.env));
  if (!result.ok) {
    for (const problem of result.problems) process.stderr.write(`wecom-dify: ${problem}\n`);
    process.stderr.write('wecom-dify: not started; see README.md "Settings".\n');
    process.exit(2);
  }
  return result.config;
}

async function serve(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config.logLevel);
  const { startService } = await import('../service.js');
  const service = await startService({ config, logger });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down');
    service.shutdown().then(
      () => process.exit(0),
      (error) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('unhandledRejection', (error) => logger.error({ err: error }, 'unhandled rejection'));
}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  switch (command) {
    case 'serve':
      return serve();
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage);
      return;
    default:
      void args;
      process.stderr.write(`wecom-dify: unknown command "${command}"\n\n${usage}`);
      process.exit(2);
  }
}

main(process.argv.slice(2)).catch((error) => {
  process.stderr.write(`wecom-dify: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
