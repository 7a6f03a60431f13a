// Poll throughput: polls per second of ONE service process answering WeCom stream-refresh polls of an
// answer that is still streaming (200 deltas in, and an owner appending 20 more a second, as Dify
// sends them, all through the run), against a FLOOR server measured in the same run
// (support/floorNode.ts: signature, decryption, the stream's state and answer text in one Redis round
// trip, a reply built from that text, encrypted and signed, on bare node:http, with the service's own
// fastest primitives). Target: service ≥ 0.9 × floor. Each server runs in its own child process; the
// load generator (this process) sends pre-encrypted polls over keep-alive undici connections, a fixed
// number in flight, and the two servers are measured in alternating rounds after a warm-up (floor,
// service, service, floor, …), so that drift on a busy machine and the answer's growth hit both alike.
// Both run with the heap settings the image gives the service (support/nodes.ts, `heapFlags`).
// Runs inside `npm run bench`, or alone: node --import tsx bench/poll.bench.ts

import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { Pool } from 'undici';
import {
  advance,
  fold,
  initialStream,
  persist,
  render,
  replyProjection,
  type StreamEvent,
} from '../src/machines/index.js';
import { StreamWriter, textChange } from '../src/runner/writer.js';
import { connectRedis, createRedisStore } from '../src/store/index.js';
import { piecesOf } from '../test/support/fakeDify.js';
import type { BenchChild, ProcessStats } from './support/children.js';
import { type Placement, placeOnCpus, stopAll } from './support/children.js';
import { benchPrefix, dropPrefix, redisUrl, startFloorNode, startServiceNode } from './support/nodes.js';
import { formatMs, summarize, verdict } from './support/stats.js';
import {
  benchClient,
  drive,
  type LoadResult,
  openPool,
  openReply,
  type Prepared,
  pollMessage,
  post,
  prepare,
} from './support/wecomLoad.js';

const DELTAS = 200;
const CONCURRENCY = 48;
const WARMUP_MS = 3_000;
const ROUND_MS = 3_000;
/** Even: the servers take turns in the order floor, service, service, floor, … (see `benchPoll`). */
const ROUNDS = 4;
const TARGET_RATIO = 0.9;
/** The owner's pace while the servers are polled: a delta every 50 ms. */
const LIVE_DELTA_MS = 50;

const answer =
  '企业微信智能机器人通过回调把用户的消息交给我们，我们把问题转给 Dify 应用，再把它一个字一个字生成的回答' +
  '写进事件流。WeCom polls the stream about once a second and shows whatever the answer holds so far; ' +
  '每一次轮询都只读快照和其后的少量事件，所以无论回答多长，轮询的代价都应当是平的。';

/** A stream as the owner leaves it mid-answer: opened, granted, started, then `DELTAS` token-sized deltas. */
export function streamEvents(streamId: string): StreamEvent[] {
  let at = Date.now() - 60_000;
  const pieces = piecesOf(answer.repeat(4)).slice(0, DELTAS);
  if (pieces.length < DELTAS) throw new Error('the sample answer is too short');
  return [
    {
      type: 'stream.opened',
      at: ++at,
      streamId,
      msgid: `bench-${streamId}`,
      bot: 'BOT_TEST',
      userid: 'bench-user',
      chattype: 'single',
      query: '介绍一下你自己',
    },
    { type: 'auth.granted', at: ++at, user: { id: 'bench-user' } },
    { type: 'dify.started', at: ++at, conversationId: 'c', messageId: 'm', taskId: 't' },
    ...pieces.map((text): StreamEvent => ({ type: 'answer.delta', at: ++at, text })),
  ];
}

/**
 * A stream mid-answer in the store, written as an owner writes it (the snapshot, the answer's text and
 * the reply projection), with a live owner's lease: no poll may start a takeover.
 */
export async function seedStream(
  store: ReturnType<typeof createRedisStore>,
  streamId: string,
): Promise<{ events: StreamEvent[]; snapshot: ReturnType<typeof fold> }> {
  const events = streamEvents(streamId);
  const snapshot = fold(events);
  const text = textChange(initialStream(), snapshot, events);
  await store.append(streamId, events, {
    expectedVersion: 0,
    snapshot: persist(snapshot),
    reply: replyProjection(snapshot, streamId),
    ...(text ? { text } : {}),
  });
  const lease = { node: 'bench-owner', token: 'bench-owner' };
  if (!(await store.acquireLease(streamId, lease, 10 * 60_000))) throw new Error('no lease');
  return { events, snapshot };
}

export interface Measured {
  load: LoadResult;
  /** Server CPU (user + system) over the window, µs. */
  cpuMicros: number;
  /** Event-loop utilization of the server over the window, 0..1. */
  elu: number;
  /** This process's CPU over the window, µs: the load generator's cost. */
  generatorMicros: number;
}

export async function measure(
  server: BenchChild,
  pool: Pool,
  requests: readonly Prepared[],
  ms: number,
): Promise<Measured> {
  const before: ProcessStats = await server.stats();
  const ownBefore = process.cpuUsage();
  const load = await drive(pool, requests, { concurrency: CONCURRENCY, durationMs: ms });
  const own = process.cpuUsage(ownBefore);
  const after: ProcessStats = await server.stats();
  const active = after.elu.active - before.elu.active;
  const idle = after.elu.idle - before.elu.idle;
  return {
    load,
    cpuMicros: after.user + after.system - before.user - before.system,
    elu: active / (active + idle),
    generatorMicros: own.user + own.system,
  };
}

export interface Totals {
  rounds: number[];
  ok: number;
  failed: number;
  firstFailure?: string | undefined;
  seconds: number;
  latencies: number[];
  cpuMicros: number;
  elu: number[];
  generatorMicros: number;
}

export const emptyTotals = (): Totals => ({
  rounds: [],
  ok: 0,
  failed: 0,
  seconds: 0,
  latencies: [],
  cpuMicros: 0,
  elu: [],
  generatorMicros: 0,
});

export function add(t: Totals, m: Measured): void {
  t.rounds.push(m.load.ok / m.load.seconds);
  t.ok += m.load.ok;
  t.failed += m.load.failed;
  t.firstFailure ??= m.load.firstFailure;
  t.seconds += m.load.seconds;
  t.latencies.push(...m.load.latencies);
  t.cpuMicros += m.cpuMicros;
  t.elu.push(m.elu);
  t.generatorMicros += m.generatorMicros;
}

export const rate = (t: Totals): number => t.ok / t.seconds;

export function line(name: string, t: Totals): string {
  const rounds = t.rounds.map((r) => r.toFixed(0)).join(', ');
  const elu = t.elu.map((e) => e.toFixed(2)).join(', ');
  return (
    `  ${name.padEnd(8)} ${rate(t).toFixed(0).padStart(6)} polls/s (rounds: ${rounds}); ` +
    `latency ${formatMs(summarize(t.latencies))}; failed ${t.failed}\n` +
    `           server CPU ${(t.cpuMicros / t.ok).toFixed(0)} µs/poll, event loop busy ${elu}; ` +
    `generator CPU ${(t.generatorMicros / t.ok).toFixed(0)} µs/poll` +
    (t.firstFailure ? `\n           first failure: ${t.firstFailure}` : '')
  );
}

/**
 * The stream's owner while it is polled: a delta every LIVE_DELTA_MS through a writer, with the text
 * and reply projections, as a node answering writes it. `stop` says how many it wrote.
 */
function liveOwner(
  store: ReturnType<typeof createRedisStore>,
  streamId: string,
  snapshot: ReturnType<typeof fold>,
  version: number,
): { stop(): Promise<number> } {
  const writer = new StreamWriter(store, streamId, snapshot, version, {
    projectionOf: (view) => replyProjection(view, streamId),
  });
  const pieces = piecesOf(answer.repeat(40));
  let written = 0;
  const timer = setInterval(() => {
    const event: StreamEvent = {
      type: 'answer.delta',
      at: Date.now(),
      text: pieces[written % pieces.length] ?? '。',
    };
    written++;
    void writer.record([event], advance(writer.snapshot, event)[0]);
  }, LIVE_DELTA_MS);
  let stopped: Promise<number> | undefined;
  return {
    stop: () => {
      clearInterval(timer);
      stopped ??= writer.flush().then(() => written);
      return stopped;
    },
  };
}

export async function benchPoll(): Promise<string> {
  const prefix = benchPrefix('poll');
  const redis = connectRedis({ url: redisUrl });
  const store = createRedisStore(redis, { prefix, ttlSeconds: 600 });
  let service: BenchChild | undefined;
  let floor: BenchChild | undefined;
  let owner: { stop(): Promise<number> } | undefined;
  const pools: Pool[] = [];
  let placement: Placement | undefined;
  try {
    const streamId = randomBytes(16).toString('base64url');
    const { events, snapshot } = await seedStream(store, streamId);
    const persisted = JSON.stringify(persist(snapshot));
    const expected = render(snapshot, streamId);
    const replyBytes = Buffer.byteLength(JSON.stringify(expected));

    [service, floor] = await Promise.all([
      startServiceNode({ prefix, name: 'poll-service' }),
      startFloorNode({ prefix }),
    ]);
    // The two servers take turns on a CPU of their own; the load generator and Redis on the others.
    placement = await placeOnCpus([service, floor], [], redis, {
      pin: process.env.BENCH_PIN !== '0',
      servers: 'the floor and the service (in turn)',
      others: 'the load generator',
    });
    const client = benchClient();
    const requests = Array.from({ length: 4_000 }, () => prepare(client, pollMessage(streamId)));
    const servers: Array<[string, BenchChild]> = [
      ['floor', floor],
      ['service', service],
    ];
    const poolOf = new Map<BenchChild, Pool>();
    for (const [name, server] of servers) {
      const pool = openPool(server.url, CONCURRENCY);
      pools.push(pool);
      poolOf.set(server, pool);
      // Both answer what WeCom expects: a valid envelope around the same stream reply.
      const probe = prepare(client, pollMessage(streamId));
      const { status, body } = await post(pool, probe);
      if (status !== 200) throw new Error(`${name} answered a poll with ${status}: ${body.slice(0, 200)}`);
      const reply = openReply(body, probe.nonce);
      if (reply.stream?.content !== expected.stream.content || reply.stream.finish !== false)
        throw new Error(`${name} answered a poll with ${JSON.stringify(reply).slice(0, 200)}`);
    }
    // From here the answer grows, as an owner writes it: pieces every 50 ms, written together.
    owner = liveOwner(store, streamId, snapshot, events.length);
    for (const [, server] of servers)
      await drive(poolOf.get(server)!, requests, { concurrency: CONCURRENCY, durationMs: WARMUP_MS });
    const totals = new Map<BenchChild, Totals>(servers.map(([, s]) => [s, emptyTotals()]));
    // The answer grows all through the run, and a poll of a longer answer costs more: each server
    // goes first in every other round, so that both are measured at the same answer length on average.
    for (let round = 0; round < ROUNDS; round++) {
      for (const [, server] of round % 2 === 0 ? servers : [...servers].reverse())
        add(totals.get(server)!, await measure(server, poolOf.get(server)!, requests, ROUND_MS));
    }
    const f = totals.get(floor)!;
    const s = totals.get(service)!;
    const ratio = rate(s) / rate(f);
    const grown = await owner.stop();
    return [
      `poll throughput: one service process vs the floor, a stream still streaming: ${DELTAS} deltas, then ` +
        `${grown} more while polled (snapshot ${Buffer.byteLength(persisted)} B, reply plaintext ${replyBytes} B at the start), ` +
        `${CONCURRENCY} polls in flight on keep-alive connections, ${ROUNDS} × ${ROUND_MS / 1000} s per server ` +
        `after ${WARMUP_MS / 1000} s warm-up, LOG_LEVEL=info to /dev/null; ${placement.description}`,
      line('floor', f),
      line('service', s),
      `  service / floor = ${ratio.toFixed(2)}; target ≥ ${TARGET_RATIO}: ${verdict(ratio >= TARGET_RATIO && s.failed === 0)}`,
      // Rates move with whatever else the machine runs; CPU per poll hardly does.
      `  by server CPU per poll (steadier on a shared machine): floor / service = ` +
        `${(f.cpuMicros / f.ok / (s.cpuMicros / s.ok)).toFixed(2)}`,
    ].join('\n');
  } finally {
    await owner?.stop();
    await Promise.allSettled(pools.map((p) => p.close()));
    await stopAll([service, floor]);
    placement?.restore();
    await store.close();
    await dropPrefix(prefix);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${await benchPoll()}\n`);
}
