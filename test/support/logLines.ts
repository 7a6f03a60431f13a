// A service's JSON log lines, collected as they are written: the destination a test gives the logger
// (startTestService's `logTo`, createLogger's destination), and the lines parsed, in order.
import { Writable } from 'node:stream';

export interface LogLines<T> {
  /** Every line written so far, parsed. */
  lines: T[];
  /** Where the logger writes. */
  sink: Writable;
  /** Everything written so far, as written. */
  raw(): string;
}

export function logLines<T = Record<string, unknown>>(): LogLines<T> {
  const lines: T[] = [];
  let raw = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const text = chunk.toString();
      raw += text;
      for (const line of text.split('\n')) if (line) lines.push(JSON.parse(line) as T);
      done();
    },
  });
  return { lines, sink, raw: () => raw };
}
