// Structured JSON logs (pino). One root logger per process; children carry streamId, msgid, userid.
import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Belt and braces: these never belong in a log line, whatever a caller passes.
      redact: {
        paths: ['token', '*.token', 'secret', '*.secret', 'apiKey', '*.apiKey', 'authorization', '*.authorization'],
        censor: '[redacted]',
      },
    },
    destination as pino.DestinationStream | undefined,
  );
}

/** A logger that writes nothing, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
