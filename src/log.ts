// Structured JSON logs (pino). One root logger per process; children carry streamId, msgid, userid.
import { type Logger, pino } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Belt and braces: these never belong in a log line, whatever a caller passes. Named paths,
      // not wildcards: a wildcard costs about 5 µs on every line, and every poll logs one.
      redact: {
        paths: [
          'token',
          'secret',
          'apiKey',
          'authorization',
          'password',
          'headers.authorization',
          'err.token',
        ],
        censor: '[redacted]',
      },
    },
    (destination as pino.DestinationStream | undefined) ?? new StdoutLines(process.stdout),
  );
}

/** How many bytes may wait for a reader that does not read before lines are dropped. */
const UNREAD_LIMIT_BYTES = 8 * 1024 * 1024;

/**
 * Standard output, buffered, that never holds the process up. A busy node logs hundreds of lines a
 * second (thousands at `debug`, a line per poll), and a system call per line would cost a callback a
 * tenth of its time: lines go out in 4 KiB writes, or after at most half a second on a quiet node,
 * and what is left when the process exits is written then.
 *
 * Through Node's own stdout stream, never by writing to file descriptor 1 directly: on a pipe or a
 * socket it writes without blocking (sonic-boom, pino's own destination, loops for ever on exit when
 * the pipe is full or broken, and that kept a stopping node alive). When nobody reads, at most
 * `UNREAD_LIMIT_BYTES` wait; later lines are dropped and counted, and the count is logged once the
 * reader is back. A reader that went away (EPIPE) ends the logging, not the node.
 */
class StdoutLines {
  readonly #out: NodeJS.WritableStream & { writableLength: number; destroyed: boolean };
  #pending = '';
  #dropped = 0;
  #gone = false;

  constructor(out: NodeJS.WriteStream) {
    this.#out = out;
    out.on('error', () => {
      this.#gone = true;
    });
    setInterval(() => this.flush(), 500).unref();
    process.on('exit', () => this.flush());
  }

  write(line: string): void {
    this.#pending += line;
    if (this.#pending.length >= 4096) this.flush();
  }

  flush(): void {
    const text = this.#pending;
    this.#pending = '';
    if (this.#gone || this.#out.destroyed) return;
    if (this.#out.writableLength > UNREAD_LIMIT_BYTES) {
      this.#dropped += lineCount(text);
      return;
    }
    try {
      if (this.#dropped > 0) {
        this.#out.write(droppedNote(this.#dropped));
        this.#dropped = 0;
      }
      if (text) this.#out.write(text);
    } catch {
      // A file that cannot take more (a full disk): these lines are lost, the next ones may pass.
      this.#dropped += lineCount(text);
    }
  }
}

const lineCount = (text: string): number => {
  let count = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) count++;
  return count;
};

const droppedNote = (dropped: number): string =>
  `${JSON.stringify({
    level: 40,
    time: new Date().toISOString(),
    pid: process.pid,
    dropped,
    msg: 'log lines dropped: standard output was not being read',
  })}\n`;

/** A logger that writes nothing, for tests and library use. */
export const silentLogger: Logger = pino({ level: 'silent' });
