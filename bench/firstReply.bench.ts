// First reply: how long a new user message's callback takes to get its placeholder reply,
// p99 under 50 ms, measured while 200 answers stream. A fake Dify in its own process
// (support/difyNode.ts, test/support/fakeDify.ts) streams 200 slow answers (a frame every 100 ms)
// started just before, which WeCom polls about once a second each (docs/protocol/wecom.md §9.2), as it would; then new messages
// from other users arrive at a steady rate (open loop: each on its schedule, whether or not the
// previous one was answered) and each callback is timed from its send to its whole reply. The new
// messages get short answers, so that about 200 answers stream throughout.
// Runs inside `npm run bench`, or alone: node --import tsx bench/firstReply.bench.ts
import { pathToFileURL } from 'node:url';
import type { Pool } from 'undici';
import { piecesOf } from '../test/support/fakeDify.js';
import { type BenchChild, busyBetween, stopAll } from './support/children.js';
import { benchPrefix, dropPrefix, startDifyNode, startServiceNode } from './support/nodes.js';
import { formatMs, now, sleep, summarize, verdict } from './support/stats.js';
import {
  benchClient,
  openPool,
  openReply,
  type Prepared,
  pollMessage,
  post,
  prepare,
  textMessage,
} from './support/wecomLoad.js';

const BACKGROUND = 200;
const FRAME_EVERY_MS = 100;
const BACKGROUND_FRAMES = 300;
const RATE_PER_S = 50;
const WARMUP = 50;
const MEASURED = 400;
const TARGET_P99_MS = 50;

const longAnswer = piecesOf('流式回答：模型一个词一个词地生成，机器人一段一段地显示。'.repeat(40)).slice(
  0,
  BACKGROUND_FRAMES,
);

interface Timed {
  ms: number;
  status: number;
  body: string;
  prepared: Prepared;
}

async function timed(pool: Pool, p: Prepared): Promise<Timed> {
  const t0 = now();
  const { status, body } = await post(pool, p);
  return { ms: now() - t0, status, body, prepared: p };
}

/** A new stream's first reply: 200, a stream reply that is not finished (the placeholder). */
function checkPlaceholder(t: Timed): string {
  if (t.status !== 200) throw new Error(`a message was answered with ${t.status}: ${t.body.slice(0, 200)}`);
  const stream = openReply(t.body, t.prepared.nonce).stream;
  if (!stream?.id || stream.finish) throw new Error(`not a placeholder: ${t.body.slice(0, 200)}`);
  return stream.id;
}

/** Sends `messages` at `RATE_PER_S`, each on its own schedule; resolves with every timing. */
async function openLoop(pool: Pool, messages: readonly Prepared[]): Promise<Timed[]> {
  const start = now();
  const pending: Promise<Timed>[] = [];
  for (const [i, p] of messages.entries()) {
    await sleep(Math.max(0, start + (i * 1000) / RATE_PER_S - now()));
    pending.push(timed(pool, p));
  }
  return Promise.all(pending);
}

interface BackgroundPolls {
  latencies: number[];
  failed: number;
  stop(): Promise<void>;
}

/** WeCom's refresh polls of the background streams: each about once a second, spread evenly. */
function pollInBackground(pool: Pool, streamIds: readonly string[]): BackgroundPolls {
  const client = benchClient();
  const inFlight = new Set<Promise<void>>();
  let stopped = false;
  const polls: BackgroundPolls = {
    latencies: [],
    failed: 0,
    async stop() {
      stopped = true;
      await loop;
      await Promise.all(inFlight);
    },
  };
  const loop = (async () => {
    const start = now();
    for (let i = 0; !stopped; i++) {
      await sleep(Math.max(0, start + (i * 1000) / streamIds.length - now()));
      const id = streamIds[i % streamIds.length];
      if (!id || stopped) break;
      const p = prepare(client, pollMessage(id));
      const t0 = now();
      const request = post(pool, p)
        .then(({ status }) => {
          if (status === 200) polls.latencies.push(now() - t0);
          else polls.failed++;
        })
        .catch(() => {
          polls.failed++;
        })
        .finally(() => inFlight.delete(request));
      inFlight.add(request);
    }
  })();
  return polls;
}

/** Waits until `check` holds, or `ms` have passed. */
async function waitFor(check: () => Promise<boolean>, ms: number): Promise<void> {
  for (const deadline = now() + ms; !(await check()) && now() < deadline; ) await sleep(50);
}

export async function benchFirstReply(): Promise<string> {
  const prefix = benchPrefix('first');
  let dify: BenchChild | undefined;
  let service: BenchChild | undefined;
  let poller: BackgroundPolls | undefined;
  const pools: Pool[] = [];
  try {
    const fake = await startDifyNode();
    dify = fake;
    service = await startServiceNode({ prefix, name: 'first-reply', difyUrl: fake.url });
    await dify.call('setDefault', { kind: 'answer', pieces: longAnswer, frameDelayMs: FRAME_EVERY_MS });
    const client = benchClient();
    const messages = openPool(service.url, 32);
    const polls = openPool(service.url, 16);
    pools.push(messages, polls);

    // The 200 answers, started just before, 20 at a time.
    const background: string[] = [];
    const opening = Array.from({ length: BACKGROUND }, (_, i) =>
      prepare(client, textMessage('讲个长故事', `bg-${i}`)),
    );
    for (let i = 0; i < opening.length; i += 20)
      background.push(
        ...(await Promise.all(opening.slice(i, i + 20).map((p) => timed(messages, p)))).map(checkPlaceholder),
      );
    await waitFor(async () => (await fake.call<number>('active')) >= BACKGROUND, 10_000);
    poller = pollInBackground(polls, background);

    // Then the measured messages, from other users, answered briefly.
    await dify.call('setDefault', { kind: 'answer', text: '好的，收到。' });
    const fresh = (n: number, tag: string) =>
      Array.from({ length: n }, (_, i) => prepare(client, textMessage('你好', `${tag}-${i}`)));
    (await openLoop(messages, fresh(WARMUP, 'warm'))).forEach(checkPlaceholder);
    const activeBefore = await dify.call<number>('active');
    const [serviceBefore, difyBefore] = await Promise.all([service.stats(), dify.stats()]);
    const t0 = now();
    const measured = await openLoop(messages, fresh(MEASURED, 'new'));
    const seconds = (now() - t0) / 1000;
    const [serviceAfter, difyAfter] = await Promise.all([service.stats(), dify.stats()]);
    const activeAfter = await dify.call<number>('active');
    await poller.stop();
    measured.forEach(checkPlaceholder);
    const s = summarize(measured.map((t) => t.ms));
    return [
      `first reply: callback → placeholder reply, ${MEASURED} new messages at ${RATE_PER_S}/s ` +
        `(after ${WARMUP} warm-up) while ${BACKGROUND} answers stream (a Dify frame every ${FRAME_EVERY_MS} ms each, ` +
        `each stream polled ~1/s)`,
      `  callback → reply: ${formatMs(s)}; target p99 < ${TARGET_P99_MS} ms: ${verdict(s.p99 < TARGET_P99_MS)}`,
      `  answers streaming at the start / end of the window: ${activeBefore} / ${activeAfter}; ` +
        `background polls ${formatMs(summarize(poller.latencies))}, failed ${poller.failed}`,
      `  service ${busyBetween(serviceBefore, serviceAfter, seconds)}; ` +
        `fake Dify ${busyBetween(difyBefore, difyAfter, seconds)}`,
    ].join('\n');
  } finally {
    await poller?.stop();
    await Promise.allSettled(pools.map((p) => p.close()));
    await stopAll([service, dify]);
    await dropPrefix(prefix);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${await benchFirstReply()}\n`);
}
