// Delta to visible: from the moment a Dify delta leaves the Dify stand-in until a poll on
// ANOTHER node shows it; target p99 under 300 ms. Two service processes share one Redis prefix: node A
// gets the user messages and owns the answers, node B only answers polls. The stand-in
// (support/stampedDify.ts) stamps each delta with its send time; a poller per stream asks node B every
// ~20 ms and records when each stamp first appears. Both run in this process, on one clock.
// Runs inside `npm run bench`, or alone: node --import tsx bench/deltaVisible.bench.ts
import { pathToFileURL } from 'node:url';
import type { Pool } from 'undici';
import { type BenchChild, busyBetween, stopAll } from './support/children.js';
import { benchPrefix, dropPrefix, startServiceNode } from './support/nodes.js';
import { type StampedDify, stampsIn, startStampedDify } from './support/stampedDify.js';
import { formatMs, now, sleep, summarize, verdict } from './support/stats.js';
import {
  benchClient,
  openPool,
  openReply,
  pollMessage,
  post,
  prepare,
  textMessage,
} from './support/wecomLoad.js';

const STREAMS = 10;
const DELTAS = 150;
const DELTA_INTERVAL_MS = 40;
const POLL_EVERY_MS = 20;
const TARGET_P99_MS = 300;

interface Watched {
  /** ms from send to first seen on node B, one per delta. */
  latencies: number[];
  /** ms per poll of node B. */
  polls: number[];
  seen: number;
  finished: boolean;
}

/** Polls `streamId` on `pool` every POLL_EVERY_MS until its reply finishes or `deadline` passes. */
async function watch(pool: Pool, streamId: string, deadline: number): Promise<Watched> {
  const client = benchClient();
  const seen = new Set<number>();
  const w: Watched = { latencies: [], polls: [], seen: 0, finished: false };
  for (let next = now(); now() < deadline; ) {
    const p = prepare(client, pollMessage(streamId));
    const t0 = now();
    const { status, body } = await post(pool, p);
    const at = now();
    w.polls.push(at - t0);
    if (status !== 200) throw new Error(`node B answered a poll with ${status}: ${body.slice(0, 200)}`);
    const stream = openReply(body, p.nonce).stream;
    if (!stream) throw new Error(`node B answered a poll with no stream: ${body.slice(0, 200)}`);
    for (const [seq, sentAt] of stampsIn(stream.content)) {
      if (seen.has(seq)) continue;
      seen.add(seq);
      w.latencies.push(at - sentAt);
    }
    if (stream.finish) {
      w.finished = true;
      w.seen = seen.size;
      return w;
    }
    next += POLL_EVERY_MS;
    await sleep(Math.max(0, next - now()));
  }
  w.seen = seen.size;
  return w;
}

/** Opens `streams` answers on node A, watches them on node B; returns each stream's watch. */
async function run(
  a: BenchChild,
  b: BenchChild,
  dify: StampedDify,
  o: { streams: number; deltas: number; user: string },
): Promise<Watched[]> {
  dify.configure({ deltas: o.deltas, intervalMs: DELTA_INTERVAL_MS });
  const client = benchClient();
  const poolA = openPool(a.url, o.streams);
  const poolB = openPool(b.url, o.streams);
  try {
    const deadline = now() + o.deltas * DELTA_INTERVAL_MS + 15_000;
    return await Promise.all(
      Array.from({ length: o.streams }, async (_, i) => {
        const p = prepare(client, textMessage('请逐字回答', `${o.user}-${i}`));
        const { status, body } = await post(poolA, p);
        if (status !== 200)
          throw new Error(`node A answered a message with ${status}: ${body.slice(0, 200)}`);
        const streamId = openReply(body, p.nonce).stream?.id;
        if (!streamId) throw new Error(`node A answered a message with no stream: ${body.slice(0, 200)}`);
        return watch(poolB, streamId, deadline);
      }),
    );
  } finally {
    await Promise.allSettled([poolA.close(), poolB.close()]);
  }
}

export async function benchDeltaVisible(): Promise<string> {
  const prefix = benchPrefix('delta');
  let dify: StampedDify | undefined;
  let a: BenchChild | undefined;
  let b: BenchChild | undefined;
  try {
    dify = await startStampedDify({ deltas: 0, intervalMs: DELTA_INTERVAL_MS });
    [a, b] = await Promise.all([
      startServiceNode({ prefix, name: 'node-a', difyUrl: dify.url }),
      startServiceNode({ prefix, name: 'node-b', difyUrl: dify.url }),
    ]);
    await run(a, b, dify, { streams: 2, deltas: 25, user: 'warm' });
    const [aBefore, bBefore] = await Promise.all([a.stats(), b.stats()]);
    const t0 = now();
    const watched = await run(a, b, dify, { streams: STREAMS, deltas: DELTAS, user: 'delta' });
    const seconds = (now() - t0) / 1000;
    const [aAfter, bAfter] = await Promise.all([a.stats(), b.stats()]);
    const latencies = watched.flatMap((w) => w.latencies);
    const polls = summarize(watched.flatMap((w) => w.polls));
    const unfinished = watched.filter((w) => !w.finished).length;
    const missing = watched.reduce((n, w) => n + (DELTAS - w.seen), 0);
    const s = summarize(latencies);
    const ok = s.p99 < TARGET_P99_MS && missing === 0 && unfinished === 0;
    return [
      `delta to visible: ${STREAMS} answers of ${DELTAS} deltas every ${DELTA_INTERVAL_MS} ms owned by ` +
        `node A, each polled on node B every ${POLL_EVERY_MS} ms`,
      `  Dify send → visible on node B: ${formatMs(s, 1)}; target p99 < ${TARGET_P99_MS} ms: ${verdict(ok)}`,
      `  deltas never seen ${missing}, streams not finished ${unfinished}; ` +
        `polls on node B ${formatMs(polls)}`,
      `  node A ${busyBetween(aBefore, aAfter, seconds)}; node B ${busyBetween(bBefore, bAfter, seconds)}`,
    ].join('\n');
  } finally {
    await stopAll([a, b]);
    await dify?.stop();
    await dropPrefix(prefix);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${await benchDeltaVisible()}\n`);
}
