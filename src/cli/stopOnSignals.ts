// How a serving process stops: the first SIGTERM or SIGINT starts the graceful shutdown, a second one
// exits at once, and the process is gone by the deadline whatever the shutdown still waits on.
import type { EventEmitter } from 'node:events';
import type { Logger } from '../log.js';

export interface StopOptions {
  /** The graceful shutdown: exit code 0 when it resolves, 1 when it fails. */
  shutdown: () => Promise<void>;
  logger: Logger;
  /** From the first signal; past it the process exits with code 1 even if the shutdown has not finished. */
  deadlineMs: number;
  /** `process.exit`, and the process itself for its signals; both replaced in tests. */
  exit?: (code: number) => void;
  signals?: EventEmitter;
}

export function stopOnSignals(options: StopOptions): void {
  const { shutdown, logger, deadlineMs } = options;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const signals = options.signals ?? process;
  let count = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    count++;
    if (count > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      exit(1);
      return;
    }
    logger.info({ signal }, 'shutting down');
    // The drain is bounded, but what follows it (closing the store and the clients) waits on others.
    setTimeout(() => {
      logger.error({ deadlineMs }, 'shutdown did not finish in time: exiting now');
      exit(1);
    }, deadlineMs).unref();
    shutdown().then(
      () => exit(0),
      (error) => {
        logger.error({ err: error }, 'shutdown failed');
        exit(1);
      },
    );
  };
  signals.on('SIGTERM', onSignal);
  signals.on('SIGINT', onSignal);
}
