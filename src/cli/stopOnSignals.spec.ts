// The first signal drains, a second exits at once, and a shutdown that hangs cannot keep the process.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../log.js';
import { stopOnSignals } from './stopOnSignals.js';

function harness(shutdown: () => Promise<void>, deadlineMs = 60_000) {
  const signals = new EventEmitter();
  const exits: number[] = [];
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('info', {
    write: (line: string) => lines.push(JSON.parse(line)),
  } as unknown as NodeJS.WritableStream);
  stopOnSignals({ shutdown, logger, deadlineMs, signals, exit: (code) => exits.push(code) });
  return { signals, exits, lines };
}

async function until(check: () => boolean, ms = 2000): Promise<void> {
  for (const deadline = Date.now() + ms; !check(); ) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const never = () => new Promise<void>(() => {});

describe('stopOnSignals', () => {
  it('SIGTERM shuts down and exits 0 once the shutdown is done', async () => {
    let finish = () => {};
    const { signals, exits } = harness(() => new Promise<void>((resolve) => (finish = resolve)));
    signals.emit('SIGTERM', 'SIGTERM');
    await new Promise((resolve) => setImmediate(resolve));
    expect(exits).toEqual([]);
    finish();
    await until(() => exits.length > 0);
    expect(exits).toEqual([0]);
  });

  it('a second signal exits 1 at once, while the shutdown still runs', () => {
    const { signals, exits, lines } = harness(never);
    signals.emit('SIGINT', 'SIGINT');
    signals.emit('SIGINT', 'SIGINT');
    expect(exits).toEqual([1]);
    expect(lines.at(-1)).toMatchObject({ level: 40, msg: 'second signal: exiting now' });
  });

  it('a shutdown that never ends: exit 1 at the deadline, said at error', async () => {
    const { signals, exits, lines } = harness(never, 50);
    signals.emit('SIGTERM', 'SIGTERM');
    await until(() => exits.length > 0);
    expect(exits).toEqual([1]);
    expect(lines.at(-1)).toMatchObject({ level: 50, msg: 'shutdown did not finish in time: exiting now' });
  });

  it('a shutdown that fails exits 1 and says why', async () => {
    const { signals, exits, lines } = harness(() => Promise.reject(new Error('store would not close')));
    signals.emit('SIGTERM', 'SIGTERM');
    await until(() => exits.length > 0);
    expect(exits).toEqual([1]);
    expect(lines.at(-1)).toMatchObject({
      level: 50,
      msg: 'shutdown failed',
      err: { message: 'store would not close' },
    });
  });
});
