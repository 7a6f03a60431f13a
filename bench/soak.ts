// `npm run soak`: 500 conversations over three service processes on loopback, sharing Redis, with a
// fake Dify that answers each question with its own text. A third of the way in one node is killed
// (SIGKILL) and a while later started again. WeCom is played as it behaves: a callback that fails is
// sent again (same msgid) to another node, and polls go to any node about every 200 ms.
// It checks that every answer arrives complete and equal to what Dify sent, none lost, none doubled,
// and prints time to first visible text and to completion. Bounded: a few hundred requests a second
// for about half a minute.
import { Redis } from 'ioredis';
import { createRedisStore } from '../src/store/index.js';
import { startFakeDify } from '../test/support/fakeDify.js';
import { type NodeProcess, startNode, stopNodes } from '../test/support/nodes.js';
import { dropPrefix, randomPrefix, redisUrl, testBot } from '../test/support/service.js';
import { randomMsgid, WecomClient } from '../test/support/wecomClient.js';

const CONVERSATIONS = Number(process.env.SOAK_CONVERSATIONS ?? 500);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 60);
const POLL_MS = 200;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Outcome {
  user: string;
  msgid: string;
  streamIds: Set<string>;
  expected: string;
  content?: string;
  firstTextMs?: number;
  doneMs?: number;
  callbackRetries: number;
  error?: string;
}

const answerFor = (query: string) =>
  `关于「${query}」：这是一个一段一段流出来的回答，用来检查它完整、不丢、不重。`;
const placeholders = new Set([
  '正在确认你的身份…',
  '正在思考…',
  '上一个问题还在回答中，这个问题排在它后面，请稍候…',
]);

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function main(): Promise<void> {
  const prefix = randomPrefix('soak');
  const dify = await startFakeDify();
  dify.setDefault({ kind: 'answer', echo: answerFor('{query}'), frameDelayMs: 40 });
  const env = {
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: prefix,
    DIFY_API_URL: dify.url,
    LEASE_SECONDS: '3',
    LOG_LEVEL: 'warn',
  };
  const nodes: NodeProcess[] = await Promise.all(['a', 'b', 'c'].map((n) => startNode(`soak-${n}`, env)));
  const clients = () => nodes.filter((n) => n.child.exitCode === null && n.child.signalCode === null);
  const client = (node: NodeProcess) => new WecomClient({ baseUrl: node.url, ...testBot, timeoutMs: 5_000 });
  const pick = () => {
    const live = clients();
    return client(live[Math.floor(Math.random() * live.length)]!);
  };
  const outcomes: Outcome[] = [];
  let killed: NodeProcess | undefined;
  let refusedCallbacks = 0;
  let failedPolls = 0;
  const started = Date.now();

  async function converse(i: number): Promise<void> {
    const user = `soak-user-${i}`;
    const query = `第${i}个问题`;
    const o: Outcome = {
      user,
      msgid: randomMsgid(),
      streamIds: new Set(),
      expected: answerFor(query),
      callbackRetries: 0,
    };
    outcomes.push(o);
    const sentAt = Date.now();
    let streamId: string | undefined;
    // WeCom resends a callback that got no good answer, with the same msgid.
    for (let attempt = 0; attempt < 20 && !streamId; attempt++) {
      try {
        const sent = await pick().text(query, { userid: user, msgid: o.msgid });
        if (sent.status === 200) streamId = sent.reply.stream.id;
        else refusedCallbacks++;
      } catch {
        refusedCallbacks++;
      }
      if (!streamId) {
        o.callbackRetries++;
        await sleep(300);
      }
    }
    if (!streamId) {
      o.error = 'never accepted';
      return;
    }
    o.streamIds.add(streamId);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      await sleep(POLL_MS);
      try {
        const { status, reply } = await pick().poll(streamId, { userid: user });
        if (status !== 200) {
          failedPolls++;
          continue;
        }
        const { content, finish, id } = reply.stream as { content: string; finish: boolean; id: string };
        o.streamIds.add(id);
        if (o.firstTextMs === undefined && content && !placeholders.has(content))
          o.firstTextMs = Date.now() - sentAt;
        if (finish) {
          o.content = content;
          o.doneMs = Date.now() - sentAt;
          return;
        }
      } catch {
        failedPolls++;
      }
    }
    o.error = 'not finished within 60 s';
  }

  // The failure: one node killed a third of the way in, back a few seconds later.
  const chaos = (async () => {
    while (outcomes.length < CONVERSATIONS / 3) await sleep(50);
    killed = nodes[0]!;
    killed.kill('SIGKILL');
    await killed.exited;
    console.log(`  killed node ${killed.id} (SIGKILL) after ${outcomes.length} conversations started`);
    await sleep(4_000);
    const restarted = await startNode(`${killed.id}-restarted`, env);
    nodes.push(restarted);
    console.log(`  started node ${restarted.id} after ${outcomes.length} conversations started`);
  })();

  try {
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < CONVERSATIONS) await converse(next++);
      }),
    );
    await chaos;
    const elapsed = (Date.now() - started) / 1000;

    const redis = new Redis(redisUrl);
    const store = createRedisStore(redis, { prefix, ttlSeconds: 600 });
    let takeovers = 0;
    let completedTwice = 0;
    for (const o of outcomes) {
      const id = [...o.streamIds][0];
      if (!id) continue;
      const types = (await store.read(id)).map((e) => e.event.type);
      takeovers += types.filter((t) => t === 'stream.taken_over').length;
      if (types.filter((t) => t === 'answer.completed').length > 1) completedTwice++;
    }
    redis.disconnect();

    const lost = outcomes.filter((o) => o.content === undefined);
    const wrong = outcomes.filter((o) => o.content !== undefined && o.content !== o.expected);
    const split = outcomes.filter((o) => o.streamIds.size > 1);
    const runsByUser = new Map<string, number>();
    for (const r of dify.runs()) {
      const user = (r.body as { user?: string }).user ?? '';
      runsByUser.set(user, (runsByUser.get(user) ?? 0) + 1);
    }
    const asked = [...runsByUser.values()];
    const firstText = outcomes
      .flatMap((o) => (o.firstTextMs === undefined ? [] : [o.firstTextMs]))
      .sort((x, y) => x - y);
    const done = outcomes.flatMap((o) => (o.doneMs === undefined ? [] : [o.doneMs])).sort((x, y) => x - y);
    const ms = (v: number) => `${Math.round(v)} ms`;

    console.log(
      `soak: ${outcomes.length} conversations over 3 nodes in ${elapsed.toFixed(1)} s, one node killed and restarted`,
    );
    console.log(
      `  complete and equal to Dify's answer: ${outcomes.length - lost.length - wrong.length}/${outcomes.length}`,
    );
    console.log(
      `  lost: ${lost.length}, wrong content: ${wrong.length}, answered under two stream ids: ${split.length}, completed twice: ${completedTwice}`,
    );
    console.log(
      `  callbacks refused or unanswered (then resent like WeCom): ${refusedCallbacks}; polls failed: ${failedPolls}; takeovers: ${takeovers}; ` +
        `Dify asked once: ${asked.filter((n) => n === 1).length}, asked again after a takeover: ${asked.filter((n) => n > 1).length}`,
    );
    console.log(
      `  time to first visible text: p50 ${ms(quantile(firstText, 0.5))}, p99 ${ms(quantile(firstText, 0.99))}, max ${ms(firstText.at(-1) ?? Number.NaN)} (polls every ${POLL_MS} ms)`,
    );
    console.log(
      `  time to completion:         p50 ${ms(quantile(done, 0.5))}, p99 ${ms(quantile(done, 0.99))}, max ${ms(done.at(-1) ?? Number.NaN)}`,
    );
    for (const o of [...lost, ...wrong].slice(0, 5))
      console.log(`  ! ${o.user}: ${o.error ?? 'wrong content'}: ${JSON.stringify(o.content?.slice(0, 80))}`);
    const ok = lost.length === 0 && wrong.length === 0 && split.length === 0 && completedTwice === 0;
    console.log(ok ? 'soak: PASSED' : 'soak: FAILED');
    process.exitCode = ok ? 0 : 1;
  } finally {
    await stopNodes(nodes);
    await dify.stop();
    await dropPrefix(prefix);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
