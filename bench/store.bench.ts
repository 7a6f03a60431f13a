// What a poll costs against the real Redis (127.0.0.1:6379): `load` (snapshot + tail, one round trip)
// must stay flat as a stream grows, where `read` + a full fold grows with it (docs/design-notes.md,
// "Polls are cheap"); and how many appends per second the owner side gets. Runs alone:
//   node --import tsx bench/store.bench.ts
import { pathToFileURL } from 'node:url';
import type { Redis } from 'ioredis';
import { evolve, fold, persist, type StreamEvent } from '../src/machines/index.js';
import { connectRedis, createRedisStore, type StreamStore } from '../src/store/index.js';
import { type Summary, summarize, verdict } from './support/stats.js';

const url = 'redis://127.0.0.1:6379';

/** µs per call of `fn`, after a warm-up, over `calls` sequential calls. */
async function time(calls: number, fn: () => Promise<unknown>): Promise<Summary> {
  return (await timeInterleaved(calls, [fn]))[0]!;
}

/**
 * µs per call of each of `fns`, called in turn (one of each, `calls` times) after a warm-up, so that
 * a busy machine's noise falls on every one of them alike and their costs can be compared.
 */
async function timeInterleaved(calls: number, fns: Array<() => Promise<unknown>>): Promise<Summary[]> {
  for (let i = 0; i < Math.min(50, calls); i++) for (const fn of fns) await fn();
  const samples = fns.map((): number[] => []);
  for (let i = 0; i < calls; i++) {
    for (const [k, fn] of fns.entries()) {
      const start = process.hrtime.bigint();
      await fn();
      samples[k]!.push(Number(process.hrtime.bigint() - start) / 1_000);
    }
  }
  return samples.map(summarize);
}

let clock = Date.now();
const head = (streamId: string): StreamEvent[] => [
  {
    type: 'stream.opened',
    at: ++clock,
    streamId,
    msgid: `msg-${streamId}`,
    bot: 'bench',
    userid: 'bench-user',
    chattype: 'single',
    query: '介绍一下你自己',
  },
  { type: 'auth.granted', at: ++clock, user: { id: 'bench-user' } },
  { type: 'dify.started', at: ++clock, conversationId: 'c', messageId: 'm', taskId: 't' },
];
/** A token-sized delta, as Dify sends them. */
const delta = (i: number): StreamEvent => ({ type: 'answer.delta', at: ++clock, text: `词${i % 10} ` });

/** Writes the head and `deltas` deltas in batches of 50, the snapshot with the last batch only. */
async function writeStream(store: StreamStore, streamId: string, deltas: number): Promise<StreamEvent[]> {
  const events = [...head(streamId), ...Array.from({ length: deltas }, (_, i) => delta(i))];
  for (let from = 0; from < events.length; from += 50) {
    const to = Math.min(events.length, from + 50);
    const last = to === events.length;
    await store.append(streamId, events.slice(from, to), {
      expectedVersion: from,
      ...(last ? { snapshot: persist(fold(events)) } : {}),
    });
  }
  return events;
}

/** Appends one delta at a time with its snapshot, as the owner does; returns appends per second. */
async function appendLoop(store: StreamStore, streamId: string, count: number): Promise<number> {
  const opening = head(streamId);
  let snapshot = fold(opening);
  await store.append(streamId, opening, { expectedVersion: 0, snapshot: persist(snapshot) });
  let version = opening.length;
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const event = delta(i);
    snapshot = evolve(snapshot, event);
    ({ version } = await store.append(streamId, [event], {
      expectedVersion: version,
      snapshot: persist(snapshot),
    }));
  }
  return count / (Number(process.hrtime.bigint() - start) / 1e9);
}

async function deleteByPrefix(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await client.del(...keys);
  } while (cursor !== '0');
}

const fmt = (t: Summary): string =>
  `p50 ${t.p50.toFixed(0).padStart(5)} µs, p99 ${t.p99.toFixed(0).padStart(5)} µs, max ${t.max.toFixed(0).padStart(6)} µs (n=${t.count})`;

/** `load` at the longest stream may cost at most this many times its cost at the shortest. */
const FLAT_FACTOR = 2;

export async function benchStore(): Promise<string> {
  const prefix = `wdbench:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}:`;
  const client = connectRedis({ url }) as Redis;
  const store = createRedisStore(client, { prefix, ttlSeconds: 600 });
  const lines: string[] = [`store: Redis ${url}, prefix ${prefix}`];
  const started = Date.now();
  try {
    await store.ping();
    lines.push('', 'poll cost by stream length (snapshot written with the last append; loads interleaved):');
    const lengths = [10, 100, 1_000];
    for (const deltas of lengths) {
      const id = `len-${deltas}`;
      const events = await writeStream(store, id, deltas);
      const loaded = await store.load(id);
      if (loaded?.version !== events.length || loaded.tail !== 0) throw new Error(`bad load of ${id}`);
    }
    const loadTimes = await timeInterleaved(
      500,
      lengths.map((deltas) => () => store.load(`len-${deltas}`)),
    );
    const loads = new Map<number, Summary>();
    const folds = new Map<number, Summary>();
    for (const [k, deltas] of lengths.entries()) {
      const load = loadTimes[k]!;
      const full = await time(deltas >= 1_000 ? 60 : 300, async () =>
        fold((await store.read(`len-${deltas}`)).map((e) => e.event)),
      );
      loads.set(deltas, load);
      folds.set(deltas, full);
      lines.push(`  ${String(deltas).padStart(5)} deltas  load      ${fmt(load)}`);
      lines.push(`                read+fold ${fmt(full)}`);
    }
    const shortest = loads.get(10)!;
    const longest = loads.get(1_000)!;
    const growth = longest.p50 / shortest.p50;
    lines.push(
      `  load stays flat: p50 at 1000 deltas is ${growth.toFixed(2)}× p50 at 10 ` +
        `(target ≤ ${FLAT_FACTOR}×): ${verdict(growth <= FLAT_FACTOR)}; ` +
        `a full read+fold of 1000 deltas costs ${(folds.get(1_000)!.p50 / longest.p50).toFixed(0)}× a load`,
    );

    lines.push('', 'load with events after the snapshot (100 deltas, then a tail):');
    for (const tail of [0, 1, 10]) {
      const id = `tail-${tail}`;
      const events = await writeStream(store, id, 100);
      const more = Array.from({ length: tail }, (_, i) => delta(i));
      if (tail > 0) await store.append(id, more, { expectedVersion: events.length });
      const loaded = await store.load(id);
      if (loaded?.tail !== tail) throw new Error(`bad tail for ${id}: ${loaded?.tail}`);
      lines.push(
        `  tail ${String(tail).padStart(3)}  load      ${fmt(await time(300, () => store.load(id)))}`,
      );
    }

    lines.push('', 'appends (one delta + its snapshot each, then the index update; no target set):');
    const sequential = await appendLoop(store, 'seq', 1_000);
    lines.push(`  sequential, one stream       ${sequential.toFixed(0).padStart(7)} appends/s`);
    const perStream = 200;
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: 16 }, (_, i) => appendLoop(store, `par-${i}`, perStream)));
    const parallel = (16 * perStream) / (Number(process.hrtime.bigint() - t0) / 1e9);
    lines.push(`  16 streams concurrently      ${parallel.toFixed(0).padStart(7)} appends/s`);
    lines.push('', `took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await deleteByPrefix(client, prefix).catch(() => undefined);
    await store.close();
  }
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${await benchStore()}\n`);
}
