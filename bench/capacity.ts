// `npm run capacity`: what ONE service node holds (docs/operations.md, "Sizing"). One real service
// process, run as the image runs it (the build, plain node, heap limit 512 MiB, the Redis store,
// LOG_LEVEL=info to /dev/null), on a core of its own where the machine has two or more, answers a steady flow of
// user messages whose answers stream from a Dify stand-in at an LLM's pace (20 deltas a second for
// 10 seconds), each answer polled once a second the way WeCom polls it. Messages arrive at N/10 per
// second, so N answers are in flight once the first ones finish; the rate is raised level by level
// (CAPACITY_LEVELS, default 200,400,600,800,1000,1200 in flight) and, after each level has settled, the
// node is measured for 8 seconds: its CPU (share of one core), event-loop utilisation and lag, memory
// and heap, poll latency, the first reply to new messages, how far the answer a poll shows lags behind
// what Dify has sent, and whether the answers ended complete and on time. A level that overloads the
// node ends the ramp. Then the memory Redis holds per stream (in flight and finished) is read, and the
// figures the operator's guide quotes are derived. `npm run bench` runs the 1,000 level (after 500, to
// warm up), against its targets (benchCapacity).
//
// Loopback only; real Redis at 127.0.0.1:6379 under a random key prefix, removed at the end; every
// child process is stopped, also on failure or Ctrl-C. About two minutes.
// Run: npm run capacity    (or node --import tsx bench/capacity.ts)
import { cpus, loadavg, totalmem } from 'node:os';
import { setTimeout as pause } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import type { Pool } from 'undici';
import { formatTable } from '../src/cli/table.js';
import { conversationKey, streamKeys } from '../src/store/keys.js';
import {
  bucketQuantile,
  type MachineCpu,
  machineBusy,
  machineCpu,
  memoryOf,
  redisGauges,
  type Scrape,
  scrape,
} from './support/capacityGauges.js';
import {
  type BenchChild,
  type Placement,
  type ProcessStats,
  placeOnCpus,
  startChild,
  stopAll,
  supportScript,
} from './support/children.js';
import { benchPrefix, dropPrefix, redisUrl, startServiceNode, testBot } from './support/nodes.js';
import { now, type Summary, sleep, summarize } from './support/stats.js';
import {
  benchClient,
  openPool,
  openReply,
  pollMessage,
  post,
  prepare,
  textMessage,
} from './support/wecomLoad.js';

const LEVELS = (process.env.CAPACITY_LEVELS ?? '200,400,600,800,1000,1200')
  .split(',')
  .map(Number)
  .filter((n) => Number.isInteger(n) && n > 0);
const DELTAS_PER_S = 20;
const ANSWER_S = 10;
const DELTAS = DELTAS_PER_S * ANSWER_S;
const INTERVAL_MS = 1000 / DELTAS_PER_S;
const POLL_EVERY_MS = 1000;
/** After the arrival rate changes, until every answer in flight is one of the new level's. */
const SETTLE_MS = ANSWER_S * 1000 + 1500;
const WINDOW_MS = 8000;
const SCRAPE_EVERY_MS = 2000;
const RUN_LIMIT_MS = 4 * 60_000;

/** A level "holds" when all of these do (the operator's guide states them). */
const OK = { pollP99Ms: 250, firstReplyP99Ms: 500, behindP99Ms: 1000, lateP99Ms: 1500 };
/** Past these the node is overloaded: higher levels are not tried. */
const OVERLOAD = { pollP99Ms: 1000, firstReplyP99Ms: 2000, failedShare: 0.05, behindP99Ms: 2000 };

interface Sample {
  /** When it ended, `now()` of this process. */
  at: number;
  ms: number;
}

interface Finished {
  streamId: string;
  msgid: string;
  userid: string;
  answerBytes: number;
}

/** Everything the load generator saw, each with its time, so a window can pick its own. */
interface Recorder {
  polls: Sample[];
  pollFailures: number[];
  replies: Sample[];
  replyFailures: number[];
  /** At a poll of an unfinished answer: how old the newest delta it shows was (send at Dify → here). */
  behind: Sample[];
  /**
   * From sending the message to the poll that saw `finish: true` (`ms`), and from Dify's end (its last
   * delta's stamp: the end follows it at once) to that poll (`afterEnd`).
   */
  answers: Array<Sample & { complete: boolean; afterEnd: number }>;
  firstFailure?: string;
}

interface Load {
  /** Messages per second now. */
  rate: number;
  stopped: boolean;
  sent: number;
  messages: Pool;
  polls: Pool;
  /** This process's clock minus the Dify child's: a stamp + offset is a time here. */
  offset: number;
  rec: Recorder;
  finished: Finished[];
  followers: Set<Promise<void>>;
  /** The streams being followed now (unfinished), by id. */
  live: Set<string>;
}

const client = benchClient();
const STAMP_AT_END = / (\d+)@(\d+(?:\.\d+)?);\s*$/;

/** The newest stamp the stand-in put in an answer (stampedDify.ts): its sequence number and send time. */
function lastStamp(content: string): { seq: number; sentAt: number } | undefined {
  const m = STAMP_AT_END.exec(content.slice(-64));
  return m ? { seq: Number(m[1]), sentAt: Number(m[2]) } : undefined;
}

/** WeCom's refresh polls of one stream: one a second after the previous one was sent, until finished. */
async function follow(load: Load, streamId: string, userid: string, msgid: string, sentAt: number) {
  const { rec } = load;
  let last = sentAt;
  for (;;) {
    await sleep(Math.max(0, last + POLL_EVERY_MS - now()));
    if (load.stopped) return;
    const p = prepare(client, pollMessage(streamId, userid));
    last = now();
    try {
      const { status, body } = await post(load.polls, p);
      const at = now();
      if (status !== 200) throw new Error(`a poll was answered with ${status}: ${body.slice(0, 160)}`);
      const stream = openReply(body, p.nonce).stream;
      if (!stream) throw new Error(`a poll was answered with no stream: ${body.slice(0, 160)}`);
      rec.polls.push({ at, ms: at - last });
      const stamp = lastStamp(stream.content);
      if (!stream.finish) {
        if (stamp) rec.behind.push({ at, ms: at - (stamp.sentAt + load.offset) });
        continue;
      }
      rec.answers.push({
        at,
        ms: at - sentAt,
        afterEnd: stamp ? at - (stamp.sentAt + load.offset) : Number.NaN,
        complete: stamp?.seq === DELTAS - 1,
      });
      load.finished.push({ streamId, msgid, userid, answerBytes: Buffer.byteLength(stream.content) });
      return;
    } catch (error) {
      if (load.stopped) return;
      rec.pollFailures.push(now());
      rec.firstFailure ??= String(error);
      if (now() - sentAt > ANSWER_S * 1000 + 60_000) return;
    }
  }
}

/** One user's message: its first reply timed, then followed like WeCom until its answer is finished. */
async function ask(load: Load, n: number): Promise<void> {
  const userid = `cap-${n}`;
  const message = textMessage('请用十秒钟回答这个问题', userid);
  const p = prepare(client, message);
  const t0 = now();
  let streamId: string;
  try {
    const { status, body } = await post(load.messages, p);
    const at = now();
    if (status !== 200) throw new Error(`a message was answered with ${status}: ${body.slice(0, 160)}`);
    const stream = openReply(body, p.nonce).stream;
    if (!stream?.id || stream.finish) throw new Error(`not a placeholder: ${body.slice(0, 160)}`);
    load.rec.replies.push({ at, ms: at - t0 });
    streamId = stream.id;
  } catch (error) {
    if (load.stopped) return;
    load.rec.replyFailures.push(now());
    load.rec.firstFailure ??= String(error);
    return;
  }
  load.live.add(streamId);
  try {
    await follow(load, streamId, userid, String(message.msgid), t0);
  } finally {
    load.live.delete(streamId);
  }
}

/** Open loop: messages at `load.rate` per second, each on its schedule, answered or not. */
async function arrivals(load: Load): Promise<void> {
  let next = now();
  while (!load.stopped) {
    if (load.rate <= 0) {
      await sleep(20);
      next = now();
      continue;
    }
    next += 1000 / load.rate;
    // Far behind means this process is starved: do not make up for it with a burst.
    if (next < now() - 1000) next = now();
    await sleep(Math.max(0, next - now()));
    if (load.stopped) return;
    const follower = ask(load, load.sent++);
    load.followers.add(follower);
    void follower.finally(() => load.followers.delete(follower));
  }
}

/** The Dify child's clock against ours, from the round trip that took least time. */
async function clockOffset(dify: BenchChild): Promise<number> {
  let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 };
  for (let i = 0; i < 9; i++) {
    const a = now();
    const theirs = await dify.call<number>('clock');
    const b = now();
    if (b - a < best.rtt) best = { rtt: b - a, offset: (a + b) / 2 - theirs };
  }
  return best.offset;
}

interface Gauges {
  at: number;
  service: ProcessStats;
  dify: ProcessStats;
  own: NodeJS.CpuUsage;
  machine: MachineCpu;
  redis: { cpuSeconds: number; usedMemory: number };
  metrics: Scrape;
}

async function gauges(service: BenchChild, dify: BenchChild, redis: Redis): Promise<Gauges> {
  const [s, d, r, metrics] = await Promise.all([
    service.stats(),
    dify.stats(),
    redisGauges(redis),
    scrape(service.url),
  ]);
  return {
    at: now(),
    service: s,
    dify: d,
    own: process.cpuUsage(),
    machine: machineCpu(),
    redis: r,
    metrics,
  };
}

const cpuShare = (a: ProcessStats, b: ProcessStats, ms: number): number =>
  (b.user + b.system - a.user - a.system) / 1000 / ms;

interface LevelResult {
  target: number;
  rate: number;
  inflight: number;
  difyActive: number;
  /** Shares of one core. */
  cpu: number;
  elu: number;
  lagP99Ms: number;
  lagMaxMs: number;
  rssBytes: number;
  heapBytes: number;
  polls: Summary;
  pollsPerS: number;
  pollFailed: number;
  serverPollP50Ms: number | undefined;
  serverPollP99Ms: number | undefined;
  replies: Summary;
  replyFailed: number;
  behind: Summary;
  answers: Summary;
  /** From Dify's end to the poll that saw the answer finished. */
  afterEnd: Summary;
  incomplete: number;
  redisCpu: number;
  /** What Redis holds for one answer in flight (its keys, mid-answer), mean of a sample. */
  redisPerLive: number;
  difyCpu: number;
  ownCpu: number;
  /** Share of the whole machine busy (all cores), and the part of it none of the processes here used, in cores. */
  machine: number;
  others: number;
  load: string;
  problems: string[];
  overloaded: boolean;
}

const between = <T extends { at: number }>(xs: readonly T[], from: number, to: number): T[] =>
  xs.filter((x) => x.at >= from && x.at < to);
const countBetween = (xs: readonly number[], from: number, to: number): number =>
  xs.filter((at) => at >= from && at < to).length;

async function measureLevel(
  target: number,
  load: Load,
  service: BenchChild,
  dify: BenchChild,
  redis: Redis,
  prefix: string,
  pauseFor: (ms: number) => Promise<void>,
): Promise<LevelResult> {
  // This scrape also resets the event-loop lag histogram (prom-client resets it on every collect).
  const before = await gauges(service, dify, redis);
  const scrapes: Scrape[] = [];
  let after = before;
  while (after.at - before.at < WINDOW_MS - 50) {
    await pauseFor(Math.min(SCRAPE_EVERY_MS, before.at + WINDOW_MS - now()));
    after = await gauges(service, dify, redis);
    scrapes.push(after.metrics);
  }
  const [inflight, difyActive, redisInFlight] = await Promise.all([
    service.call<number>('inflight'),
    dify.call<number>('active'),
    redisPerLiveStream(redis, prefix, [...load.live].slice(-40)),
  ]);
  const from = before.at;
  const to = after.at;
  const ms = to - from;
  const { rec } = load;
  const polls = between(rec.polls, from, to);
  const replies = between(rec.replies, from, to);
  const answers = between(rec.answers, from, to);
  const gauge = (name: string, pick: (xs: number[]) => number) =>
    pick(scrapes.map((s) => s.get(name) ?? Number.NaN).filter((v) => Number.isFinite(v)));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const max = (xs: number[]) => Math.max(...xs);
  const elu = (a: ProcessStats, b: ProcessStats) => {
    const active = b.elu.active - a.elu.active;
    return active / (active + b.elu.idle - a.elu.idle);
  };
  const serverPoll = (q: number) => {
    const le = bucketQuantile(before.metrics, after.metrics, 'wecom_dify_poll_duration_seconds', q);
    return le === undefined ? undefined : le * 1000;
  };
  const result: LevelResult = {
    target,
    rate: load.rate,
    inflight,
    difyActive,
    cpu: cpuShare(before.service, after.service, ms),
    elu: elu(before.service, after.service),
    lagP99Ms: gauge('nodejs_eventloop_lag_p99_seconds', max) * 1000,
    lagMaxMs: gauge('nodejs_eventloop_lag_max_seconds', max) * 1000,
    rssBytes: gauge('process_resident_memory_bytes', mean),
    heapBytes: gauge('nodejs_heap_size_used_bytes', mean),
    polls: summarize(polls.map((s) => s.ms)),
    pollsPerS: (polls.length * 1000) / ms,
    pollFailed: countBetween(rec.pollFailures, from, to),
    serverPollP50Ms: serverPoll(0.5),
    serverPollP99Ms: serverPoll(0.99),
    replies: summarize(replies.map((s) => s.ms)),
    replyFailed: countBetween(rec.replyFailures, from, to),
    behind: summarize(between(rec.behind, from, to).map((s) => s.ms)),
    answers: summarize(answers.map((s) => s.ms)),
    afterEnd: summarize(answers.map((s) => s.afterEnd).filter((ms) => Number.isFinite(ms))),
    incomplete: answers.filter((a) => !a.complete).length,
    redisCpu: ((after.redis.cpuSeconds - before.redis.cpuSeconds) * 1000) / ms,
    redisPerLive: redisInFlight,
    difyCpu: cpuShare(before.dify, after.dify, ms),
    ownCpu: (after.own.user + after.own.system - before.own.user - before.own.system) / 1000 / ms,
    machine: machineBusy(before.machine, after.machine),
    others: 0,
    load: loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
    problems: [],
    overloaded: false,
  };
  result.others = Math.max(
    0,
    result.machine * after.machine.cores - result.cpu - result.difyCpu - result.ownCpu - result.redisCpu,
  );
  const p = result.problems;
  const failed = result.pollFailed + result.replyFailed;
  if (failed > 0) p.push(`${failed} requests failed`);
  if (result.polls.p99 > OK.pollP99Ms) p.push(`poll p99 ${ms0(result.polls.p99)} > ${OK.pollP99Ms} ms`);
  if (result.replies.p99 > OK.firstReplyP99Ms)
    p.push(`first reply p99 ${ms0(result.replies.p99)} > ${OK.firstReplyP99Ms} ms`);
  if (result.behind.p99 > OK.behindP99Ms)
    p.push(`shown answer p99 ${ms0(result.behind.p99)} behind Dify > ${OK.behindP99Ms} ms`);
  const lateP99 = result.afterEnd.p99;
  if (lateP99 > OK.lateP99Ms)
    p.push(`answers seen finished p99 ${ms0(lateP99)} after Dify ended them > ${OK.lateP99Ms} ms`);
  if (result.incomplete > 0) p.push(`${result.incomplete} answers incomplete`);
  if (inflight < 0.9 * target) p.push(`only ${inflight} answers in flight`);
  const requests = polls.length + replies.length + failed;
  result.overloaded =
    result.polls.p99 > OVERLOAD.pollP99Ms ||
    result.replies.p99 > OVERLOAD.firstReplyP99Ms ||
    result.behind.p99 > OVERLOAD.behindP99Ms ||
    (requests > 0 && failed / requests > OVERLOAD.failedShare) ||
    inflight < 0.5 * target;
  return result;
}

const ms0 = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(v < 10 ? 1 : 0)} ms` : 'n/a');
const pct = (v: number): string => `${(v * 100).toFixed(Math.abs(v) < 0.1 ? 1 : 0)}%`;
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;
const bound = (v: number | undefined): string => (v === undefined ? 'n/a' : `≤ ${ms0(v)}`);

function levelReport(r: LevelResult): string {
  const verdict = r.problems.length === 0 ? 'holds' : `DEGRADED: ${r.problems.join('; ')}`;
  return [
    `${r.target} answers in flight (${r.rate.toFixed(0)} new messages/s): ${verdict}${r.overloaded ? ' (overloaded)' : ''}`,
    `  in flight: service ${r.inflight}, Dify stand-in ${r.difyActive}`,
    `  service: CPU ${pct(r.cpu)} of a core, event loop ${pct(r.elu)} busy, lag p99 ${ms0(r.lagP99Ms)} ` +
      `(max ${ms0(r.lagMaxMs)}); RSS ${mib(r.rssBytes)}, heap used ${mib(r.heapBytes)}`,
    `  polls: ${r.pollsPerS.toFixed(0)}/s, p50 ${ms0(r.polls.p50)}, p99 ${ms0(r.polls.p99)}, max ${ms0(r.polls.max)}, ` +
      `failed ${r.pollFailed}; server-side p50 ${bound(r.serverPollP50Ms)}, p99 ${bound(r.serverPollP99Ms)}`,
    `  first replies: ${r.replies.count}, p50 ${ms0(r.replies.p50)}, p99 ${ms0(r.replies.p99)}, failed ${r.replyFailed}`,
    `  answer shown behind Dify: p50 ${ms0(r.behind.p50)}, p99 ${ms0(r.behind.p99)}; ` +
      `answers seen finished after p50 ${(r.answers.p50 / 1000).toFixed(1)} s, p99 ${(r.answers.p99 / 1000).toFixed(1)} s, ` +
      `p99 ${ms0(r.afterEnd.p99)} after Dify ended them (${r.answers.count}, incomplete ${r.incomplete})`,
    `  beside it: Redis ${pct(r.redisCpu)} of a core (${kib(r.redisPerLive)} per answer in flight), Dify stand-in ${pct(r.difyCpu)}, load generator ${pct(r.ownCpu)}; ` +
      `machine ${pct(r.machine)} busy (all cores), of which other processes ${pct(r.others)} of a core; ` +
      `load average ${r.load}`,
  ].join('\n');
}

function summaryTable(results: readonly LevelResult[]): string[] {
  const header = [
    'in flight',
    'CPU',
    'CPU/100',
    'loop busy',
    'lag p99',
    'RSS',
    'heap',
    'poll p50',
    'poll p99',
    '1st reply p99',
    'behind p99',
    'others',
    'verdict',
  ];
  const rows = results.map((r) => [
    String(r.inflight),
    pct(r.cpu),
    pct((100 * r.cpu) / Math.max(1, r.inflight)),
    pct(r.elu),
    ms0(r.lagP99Ms),
    mib(r.rssBytes),
    mib(r.heapBytes),
    ms0(r.polls.p50),
    ms0(r.polls.p99),
    ms0(r.replies.p99),
    ms0(r.behind.p99),
    pct(r.others),
    r.problems.length === 0 ? 'holds' : 'DEGRADED',
  ]);
  return formatTable(header, rows, new Set(header.keys())).map((line) => `  ${line}`);
}

/** Bytes Redis keeps per finished stream (its events, its snapshot with the reply projection, its text). */
/** The mean of what Redis holds for these streams (events, snapshot, text, lease) now. */
async function redisPerLiveStream(
  redis: Redis,
  prefix: string,
  streamIds: readonly string[],
): Promise<number> {
  let total = 0;
  for (const id of streamIds) {
    const keys = streamKeys(prefix, id);
    total += await memoryOf(redis, [keys.events, keys.snap, keys.text, keys.lease]);
  }
  return total / Math.max(1, streamIds.length);
}

async function redisPerStream(redis: Redis, prefix: string, finished: readonly Finished[]) {
  const sample = finished.slice(-40);
  let stream = 0;
  let conversation = 0;
  let events = 0;
  let answer = 0;
  for (const f of sample) {
    const keys = streamKeys(prefix, f.streamId);
    stream += await memoryOf(redis, [keys.events, keys.snap, keys.text]);
    conversation += await memoryOf(redis, [conversationKey(prefix, testBot.botId, f.userid)]);
    events += await redis.xlen(keys.events);
    answer += f.answerBytes;
  }
  const n = Math.max(1, sample.length);
  return {
    count: sample.length,
    stream: stream / n,
    conversation: conversation / n,
    events: events / n,
    answer: answer / n,
  };
}

async function redisVersion(redis: Redis): Promise<string> {
  return /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
}

/** What a run measured, beside what it printed. */
export interface CapacityRun {
  results: LevelResult[];
  /** Redis per finished stream. */
  perStream: Awaited<ReturnType<typeof redisPerStream>>;
}

/**
 * Measure `levels` (answers in flight) one after the other, printing each level's report and the
 * summary through `out`; `signal` ends the run early (the children stopped, the keys removed).
 */
export async function runCapacity(
  levels: readonly number[],
  out: (line: string) => void,
  signal: AbortSignal,
): Promise<CapacityRun> {
  const pauseFor = (ms: number) => pause(Math.max(0, ms), undefined, { signal });
  const prefix = benchPrefix('capacity');
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  let dify: BenchChild | undefined;
  let service: BenchChild | undefined;
  let load: Load | undefined;
  let placement: Placement | undefined;
  const pools: Pool[] = [];
  const started = now();
  try {
    await redis.connect();
    const cores = cpus();
    out(`wecom-dify capacity, ${new Date().toISOString()}`);
    out(
      `machine: ${cores.length} CPUs (${cores[0]?.model.trim() ?? 'unknown'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
        `${process.platform} ${process.arch}; node ${process.version}; redis ${await redisVersion(redis)}; ` +
        `load average ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}`,
    );
    out(
      `one service node as the image runs it (the build, heap limit 512 MiB; Redis store, AUTH_MODE=none, ` +
        `LOG_LEVEL=info to /dev/null); answers of ${DELTAS} deltas ` +
        `at ${DELTAS_PER_S}/s (${ANSWER_S} s) from a Dify stand-in in its own process; each stream polled every ` +
        `${POLL_EVERY_MS / 1000} s until finished; new messages at N/${ANSWER_S} per second for N in flight; ` +
        `each level measured for ${WINDOW_MS / 1000} s after ${SETTLE_MS / 1000} s to settle`,
    );
    out(
      `a level holds when nothing fails, poll p99 ≤ ${OK.pollP99Ms} ms, first reply p99 ≤ ${OK.firstReplyP99Ms} ms, ` +
        `the shown answer is p99 ≤ ${OK.behindP99Ms} ms behind Dify, answers are seen finished p99 ≤ ${OK.lateP99Ms} ms ` +
        `after Dify ended them, complete, and ≥ 90% of N are in flight`,
    );
    out('');

    dify = await startChild('capacity-dify', supportScript('capacityDify.ts'), {
      env: { CAPACITY_DELTAS: String(DELTAS), CAPACITY_INTERVAL_MS: String(INTERVAL_MS) },
    });
    service = await startServiceNode({ prefix, name: 'capacity-node', difyUrl: dify.url });
    // "Per core" means one core: the node gets the last CPU to itself, the load generator, the Dify
    // stand-in and Redis share the others. CAPACITY_PIN=0 leaves every process unpinned.
    placement = await placeOnCpus([service], [dify], redis, {
      pin: process.env.CAPACITY_PIN !== '0',
      servers: 'the node',
      others: 'the load generator, the Dify stand-in',
    });
    out(placement.description);
    out('');
    const offset = await clockOffset(dify);
    const idle = await scrape(service.url);
    const messages = openPool(service.url, 32);
    const polls = openPool(service.url, 128);
    pools.push(messages, polls);
    const current: Load = {
      rate: 0,
      stopped: false,
      sent: 0,
      messages,
      polls,
      offset,
      rec: { polls: [], pollFailures: [], replies: [], replyFailures: [], behind: [], answers: [] },
      finished: [],
      followers: new Set(),
      live: new Set(),
    };
    load = current;
    const flow = arrivals(current);

    const results: LevelResult[] = [];
    const skipped: number[] = [];
    for (const target of levels) {
      if (results.at(-1)?.overloaded) {
        skipped.push(target);
        continue;
      }
      current.rate = target / ANSWER_S;
      await pauseFor(SETTLE_MS);
      const result = await measureLevel(target, current, service, dify, redis, prefix, pauseFor);
      results.push(result);
      out(levelReport(result));
      if (current.rec.firstFailure && result.problems.length > 0)
        out(`  first failure: ${current.rec.firstFailure}`);
      out('');
    }
    current.rate = 0;
    // Let the answers in flight finish, so that Redis holds finished streams to weigh.
    await Promise.race([Promise.allSettled([...current.followers]), pauseFor(ANSWER_S * 1000 + 5000)]);
    current.stopped = true;
    await flow;
    const perStream = await redisPerStream(redis, prefix, current.finished);

    out('summary (one node; CPU and loop busy are shares of one core):');
    for (const line of summaryTable(results)) out(line);
    if (skipped.length > 0) out(`  not tried, the node was overloaded already: ${skipped.join(', ')}`);
    out('');

    const holding = results.filter((r) => r.problems.length === 0);
    const idleRss = idle.get('process_resident_memory_bytes') ?? 0;
    const idleHeap = idle.get('nodejs_heap_size_used_bytes') ?? 0;
    out(
      `sizing, as measured here (${cores.length} vCPUs; other processes may have run: see "others" and the load averages):`,
    );
    const hi = holding.at(-1);
    const firstBad = results.find((r) => r.problems.length > 0);
    if (!hi) {
      out('  no level held; lower CAPACITY_LEVELS (e.g. 50,100,200) to find what this machine holds');
    } else {
      // Per core: the largest level that held, over the share of a core it took. Latency, not CPU alone,
      // decides where a node stops holding; the HorizontalPodAutoscaler aims at 70% of that.
      const perCore = hi.inflight / Math.max(0.01, hi.cpu);
      out(
        `  largest level that held: ${hi.inflight} answers in flight at ${DELTAS_PER_S} deltas/s, polled 1/s ` +
          `(CPU ${pct(hi.cpu)} of a core, event loop ${pct(hi.elu)} busy, poll p99 ${ms0(hi.polls.p99)}); ` +
          `about ${perCore.toFixed(0)} per core, ${(0.7 * perCore).toFixed(0)} at the autoscaler's 70%`,
      );
      if (firstBad) out(`  first degraded: ${firstBad.target} (${firstBad.problems.join('; ')})`);
      const redisPer100 =
        (100 * holding.reduce((sum, r) => sum + r.redisCpu, 0)) /
        Math.max(
          1,
          holding.reduce((sum, r) => sum + r.inflight, 0),
        );
      out(`  Redis CPU: ${pct(redisPer100)} of a core per 100 answers in flight`);
    }
    // Memory does not depend on latency: every level that reached its count counts, by what was in flight.
    const reached = results.filter((r) => r.inflight >= 0.9 * r.target);
    const first = reached[0];
    const last = reached.at(-1);
    if (first && last) {
      const per = (pick: (r: LevelResult) => number, idleValue: number) =>
        last.inflight > first.inflight
          ? (pick(last) - pick(first)) / (last.inflight - first.inflight)
          : (pick(last) - idleValue) / Math.max(1, last.inflight);
      out(
        `  memory: idle RSS ${mib(idleRss)}, heap ${mib(idleHeap)}; per answer in flight RSS ` +
          `+${kib(per((r) => r.rssBytes, idleRss))}, heap +${kib(per((r) => r.heapBytes, idleHeap))} ` +
          `(${last.inflight > first.inflight ? `from ${first.inflight}` : 'from idle'} to ${last.inflight} in flight; ` +
          'heap is a mean of scrapes, garbage included)',
      );
    }
    out(
      `  Redis memory per finished stream: ${kib(perStream.stream)} (events + snapshot with its reply + dedup key; ` +
        `${perStream.events.toFixed(0)} events, answer ${kib(perStream.answer)}; mean of ${perStream.count}), kept ` +
        `STREAM_TTL_SECONDS; plus ${perStream.conversation.toFixed(0)} B per conversation key (30 days)`,
    );
    out(`  (capacity: ${((now() - started) / 1000).toFixed(0)} s)`);
    return { results, perStream };
  } finally {
    placement?.restore();
    if (load) load.stopped = true;
    await Promise.allSettled(pools.map((p) => p.destroy()));
    await stopAll([service, dify]);
    await dropPrefix(prefix).catch((error: unknown) =>
      process.stderr.write(`capacity: could not remove the keys under ${prefix}: ${String(error)}\n`),
    );
    redis.disconnect();
  }
}

async function main(): Promise<number> {
  if (LEVELS.length === 0) throw new Error('CAPACITY_LEVELS must list answers in flight, e.g. 100,300,600');
  const interrupt = new AbortController();
  let signals = 0;
  const onSignal = () => {
    if (++signals > 1) process.exit(130);
    process.stderr.write('capacity: interrupted; stopping the children and removing the keys…\n');
    interrupt.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const limit = setTimeout(() => interrupt.abort(new Error('the run took too long')), RUN_LIMIT_MS);
  limit.unref();
  try {
    await runCapacity(LEVELS, (line) => process.stdout.write(`${line}\n`), interrupt.signal);
    return 0;
  } finally {
    clearTimeout(limit);
  }
}

/** The targets a node is held to at 1,000 answers in flight (docs/operations.md, "Sizing"). */
const TARGET = { inflight: 1000, cpuPer100: 0.1, rssBytes: 256 * 2 ** 20 };

/**
 * For `npm run bench`: the capacity run at 1,000 answers in flight, held to its targets: at most 10% of
 * a core per 100 answers while everything holds, RSS under 256 MiB. The node gets there through 500
 * first, as `npm run capacity` ramps: what is measured is the steady state of a warm node (a node
 * started cold into 100 new answers a second, on a machine whose other core runs the load, Dify's
 * stand-in and Redis, spends its first seconds compiling, and the answers it fell behind on show in
 * the level's figures). About a minute and a half.
 */
export async function benchCapacity(): Promise<string> {
  const lines: string[] = [];
  const { results, perStream } = await runCapacity(
    [TARGET.inflight / 2, TARGET.inflight],
    (line) => lines.push(`  ${line}`),
    new AbortController().signal,
  );
  // The last level measured: 1,000, or the warm-up level where that overloaded already.
  const r = results.at(-1);
  if (!r) throw new Error('the capacity run measured no level');
  const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const per100 = r.cpu / (r.inflight / 100);
  const holds = r.problems.length === 0;
  return [
    `capacity: one node on one core, ${r.inflight} answers in flight (20 deltas/s each, polled 1/s)`,
    // Per 100 answers only counts where they are answered: an overloaded node piles answers up, and
    // its CPU shared among them says nothing.
    `  CPU ${pct(r.cpu)} of a core, ${pct(per100)} per 100 answers; target ≤ ${pct(TARGET.cpuPer100)} while everything holds: ` +
      verdict(holds && per100 <= TARGET.cpuPer100),
    `  ${holds ? 'everything holds' : `degraded: ${r.problems.join('; ')}`} (poll p99 ${ms0(r.polls.p99)}, first reply p99 ` +
      `${ms0(r.replies.p99)}, shown answer p99 ${ms0(r.behind.p99)} behind Dify); target: holds: ${verdict(holds)}`,
    `  RSS ${mib(r.rssBytes)}; target < ${mib(TARGET.rssBytes)}: ${verdict(r.rssBytes < TARGET.rssBytes)}`,
    `  Redis: ${pct(r.redisCpu / (r.inflight / 100))} of a core per 100 answers in flight; ${kib(r.redisPerLive)} per answer ` +
      `in flight, ${kib(perStream.stream)} per finished stream`,
    '  the full run:',
    ...lines,
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      // An interrupt (Ctrl-C, SIGTERM) or the time limit ends a pause with an AbortError whose cause says which.
      const stopped = (error as Error).name === 'AbortError' ? (error as Error).cause : undefined;
      process.stderr.write(
        stopped instanceof Error
          ? `capacity: stopped (${stopped.message}); the children are stopped and the keys removed\n`
          : `capacity: ${(error as Error).stack ?? String(error)}\n`,
      );
      // Exiting ends any child still running (support/children.ts kills them on exit).
      process.exit(1);
    },
  );
