// The long connection: frames pushed per second by one node, and the delay from a Dify delta to the
// frame that carries it to WeCom (target p99 < 300 ms). One service process holds a long-connection
// bot's connection to a fake WeCom WebSocket server in this process (test/support/fakeWecomWs.ts) that
// acks every frame; the stamped Dify stand-in (support/stampedDify.ts) stamps each delta with its send
// time; WeCom sends ANSWERS messages at once and the node pushes every answer as frames. The frame
// interval is set to 100 ms with no cap on frames, so that the figure is the pipeline's own (Dify →
// owner → store → pusher → frame); the default interval, 500 ms, adds up to that much on top.
// Runs inside `npm run bench`, or alone: node --import tsx bench/frames.bench.ts
import { pathToFileURL } from 'node:url';
import { startFakeWecomWs } from '../test/support/fakeWecomWs.js';
import { type BenchChild, busyBetween, stopAll } from './support/children.js';
import { benchPrefix, dropPrefix, startServiceNode } from './support/nodes.js';
import { type StampedDify, stampsIn, startStampedDify } from './support/stampedDify.js';
import { formatMs, now, summarize, verdict } from './support/stats.js';

const ANSWERS = 50;
const DELTAS = 120;
const DELTA_INTERVAL_MS = 40;
const FRAME_INTERVAL_MS = 100;
const TARGET_P99_MS = 300;
const BOT_ID = 'aib-bench-frames';
const SECRET = 'bench-secret';

export async function benchFrames(): Promise<string> {
  const prefix = benchPrefix('frames');
  const fake = await startFakeWecomWs({ bots: { [BOT_ID]: SECRET } });
  let dify: StampedDify | undefined;
  let node: BenchChild | undefined;
  try {
    dify = await startStampedDify({ deltas: DELTAS, intervalMs: DELTA_INTERVAL_MS });
    node = await startServiceNode({
      prefix,
      name: 'frames-node',
      difyUrl: dify.url,
      env: {
        WECOM_MODE: 'long-connection',
        WECOM_BOT_ID: BOT_ID,
        WECOM_BOT_SECRET: SECRET,
        WECOM_WS_URL: fake.url,
        WECOM_WS_FRAME_INTERVAL_MS: String(FRAME_INTERVAL_MS),
        WECOM_WS_MAX_FRAMES: '1000',
      },
    });
    await fake.waitFor('the node subscribed', () => fake.subscribed(BOT_ID) !== undefined, 15_000);
    const finished = (reqId: string) =>
      fake.repliesTo(reqId).some((f) => f.cmd === 'aibot_respond_msg' && f.body?.stream?.finish === true);
    // Warm-up: a few answers first.
    const warm = Array.from({ length: 3 }, (_, i) =>
      fake.message(BOT_ID, { msgtype: 'text', text: { content: '热身' }, from: { userid: `warm-${i}` } }),
    );
    await fake.waitFor('the warm-up answered', () => warm.every(finished), 30_000);

    const before = await node.stats();
    const t0 = now();
    const firstFrame = fake.received.length;
    const reqIds = Array.from({ length: ANSWERS }, (_, i) =>
      fake.message(BOT_ID, { msgtype: 'text', text: { content: '请逐字回答' }, from: { userid: `u-${i}` } }),
    );
    await fake.waitFor(
      'every answer finished',
      () => reqIds.every(finished),
      DELTAS * DELTA_INTERVAL_MS + 60_000,
    );
    const seconds = (now() - t0) / 1000;
    const after = await node.stats();

    const wanted = new Set(reqIds);
    const frames = fake.received
      .slice(firstFrame)
      .filter((r) => r.frame.cmd === 'aibot_respond_msg' && wanted.has(r.frame.headers?.req_id ?? ''));
    const latencies: number[] = [];
    const seen = new Map<string, Set<number>>();
    let refused = 0;
    for (const r of frames) {
      if (r.ack && r.ack.errcode !== 0) refused++;
      const reqId = r.frame.headers?.req_id ?? '';
      const done = seen.get(reqId) ?? new Set<number>();
      seen.set(reqId, done);
      // The fake's clock is Date.now(); the stamps are this process's performance.now().
      const at = r.at - performance.timeOrigin;
      for (const [seq, sentAt] of stampsIn(String(r.frame.body?.stream?.content ?? ''))) {
        if (done.has(seq)) continue;
        done.add(seq);
        latencies.push(at - sentAt);
      }
    }
    const missing = reqIds.reduce((n, id) => n + (DELTAS - (seen.get(id)?.size ?? 0)), 0);
    const s = summarize(latencies);
    const ok = s.p99 < TARGET_P99_MS && missing === 0 && refused === 0;
    return [
      `long connection: one node pushing ${ANSWERS} answers at once (${DELTAS} deltas every ${DELTA_INTERVAL_MS} ms each) ` +
        `to a fake WeCom over one WebSocket, frame interval ${FRAME_INTERVAL_MS} ms, every frame acked`,
      `  ${frames.length} frames in ${seconds.toFixed(1)} s: ${(frames.length / seconds).toFixed(0)} frames/s; ` +
        `node ${busyBetween(before, after, seconds)}`,
      `  Dify send → in a frame at WeCom: ${formatMs(s, 1)}; target p99 < ${TARGET_P99_MS} ms: ${verdict(ok)}`,
      `  deltas never pushed ${missing}, frames refused ${refused}`,
    ].join('\n');
  } finally {
    await stopAll([node]);
    await dify?.stop();
    await fake.stop();
    await dropPrefix(prefix);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${await benchFrames()}\n`);
}
