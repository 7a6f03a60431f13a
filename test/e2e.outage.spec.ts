// Redis goes away for a few seconds while answers stream (a Redis of the test's own, persisting to an
// append-only file, as a production one restarting would), then comes back: new messages are refused
// meanwhile with a status that makes WeCom retry, running answers keep their text in memory and write
// it when Redis is back, and every answer arrives whole, once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type E2E, startE2E } from './support/e2e.js';
import type { FakeDify } from './support/fakeDify.js';
import { type RedisServer, startRedisServer } from './support/redisServer.js';
import type { TestService } from './support/service.js';
import { randomMsgid, type WecomClient } from './support/wecomClient.js';

/** A node's `wecom_dify_store_errors_total` for one operation, as its /metrics says. */
const storeErrors = async (node: TestService, op: string): Promise<number> => {
  const metric = await node.metrics.storeErrors.get();
  return metric.values.find((v) => v.labels.op === op)?.value ?? 0;
};

describe('Redis stops for a few seconds during answers', () => {
  let redis: RedisServer;
  let e: E2E;
  let dify: FakeDify;
  let a: TestService;
  let toA: WecomClient;
  let toB: WecomClient;

  beforeAll(async () => {
    redis = await startRedisServer({ persist: true });
    e = await startE2E({ name: 'outage', nodes: 2, redisUrl: `redis://127.0.0.1:${redis.port}` });
    ({ dify } = e);
    a = e.nodes[0]!;
    [toA, toB] = [e.clients[0]!, e.clients[1]!];
  });
  afterAll(async () => {
    await e?.stop();
    await redis?.dispose();
  });

  it('no answer is lost or doubled, and the service recovers by itself', async () => {
    const answer = Array.from({ length: 24 }, (_, i) => `片段${i}；`).join('');
    dify.setDefault({ kind: 'answer', pieces: answer.match(/.{1,4}/gu)!, frameDelayMs: 200 });
    const users = ['u1', 'u2', 'u3'].map((u) => `${u}-${Date.now()}`);
    const sent = await Promise.all(
      users.map((userid, i) => (i % 2 ? toB : toA).text(`问题 ${userid}`, { userid })),
    );
    const ids = sent.map((s) => s.reply.stream.id as string);
    await expect.poll(async () => (await toB.poll(ids[0]!)).reply.stream.content.length).toBeGreaterThan(4);

    await redis.stop();
    const down = Date.now();
    // A new message is refused at once with 503, so that WeCom sends it again later.
    const lateMsgid = randomMsgid();
    const refused = await toA.text('停机时的问题', { msgid: lateMsgid, userid: 'late' });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBeTruthy();
    expect(Date.now() - down).toBeLessThan(2_500);
    // A poll meanwhile is refused too; WeCom polls again a second later.
    expect((await toB.poll(ids[1]!)).status).toBe(503);
    // Redis stays down while Dify sends every answer five more frames, which only memory can hold.
    const runs = dify.runs().slice(-3);
    const before = runs.map((r) => r.written);
    await expect
      .poll(() => runs.every((r, i) => r.written >= before[i]! + 5), { timeout: 10_000 })
      .toBe(true);
    expect(runs.every((r) => r.written < answer.match(/.{1,4}/gu)!.length)).toBe(true);
    await redis.start();

    // WeCom retries the refused message: it is taken now, and answered once.
    await expect
      .poll(async () => (await toA.text('停机时的问题', { msgid: lateMsgid, userid: 'late' })).status, {
        timeout: 10_000,
        interval: 500,
      })
      .toBe(200);
    const retried = await toB.text('停机时的问题', { msgid: lateMsgid, userid: 'late' });
    ids.push(retried.reply.stream.id);

    const done = await Promise.all(
      ids.map((id) => toB.pollUntilFinished(id, { intervalMs: 100, timeoutMs: 30_000 })),
    );
    for (const d of done) expect(d.reply.stream.content).toBe(answer);
    const all = dify.runs();
    expect(all).toHaveLength(4);
    expect(new Set(all.map((r) => (r.body as { user: string }).user)).size).toBe(4);
    for (const id of ids) {
      const types = (await a.store.read(id)).map((e) => e.event.type);
      expect(types.filter((t) => t === 'answer.completed')).toHaveLength(1);
      expect(types).not.toContain('stream.taken_over');
    }
    // Readiness reflects it: ready again.
    const ready = await fetch(`${a.url}/readyz`);
    expect(ready.status).toBe(200);
  }, 60_000);

  it('Dify starting to answer while Redis is down: the answer arrives whole, and the conversation goes on', async () => {
    const userid = `slow-${Date.now()}`;
    const answer = '这是在停机期间开始的回答。';
    const before = dify.runs().length;
    dify.script({ kind: 'answer', pieces: answer.match(/.{1,3}/gu)!, pause: { afterFrames: 0, ms: 1_500 } });
    const first = await toA.text('第一个问题', { userid });
    const id = first.reply.stream.id as string;
    await expect.poll(async () => (await a.store.load(id))?.view.value).toBe('thinking');
    await expect.poll(() => dify.runs().length).toBe(before + 1);
    const run = dify.runs().at(-1)!;
    const appendFailures = () => storeErrors(a, 'append');
    const failuresBefore = await appendFailures();
    await redis.stop();
    // Dify's first frame, with the conversation id, comes while Redis is down, and the owner's write of
    // it fails.
    await expect.poll(() => run.written, { timeout: 10_000 }).toBeGreaterThan(0);
    await expect.poll(appendFailures, { timeout: 10_000 }).toBeGreaterThan(failuresBefore);
    await redis.start();
    // WeCom's polls meanwhile get 503 and go on; the first ones after, until the node has reconnected, too.
    await expect.poll(async () => (await toB.poll(id)).status, { timeout: 10_000, interval: 200 }).toBe(200);
    const done = await toB.pollUntilFinished(id, { intervalMs: 100, timeoutMs: 20_000 });
    expect(done.reply.stream.content).toBe(answer);
    const started = (await a.store.read(id)).find((e) => e.event.type === 'dify.started')?.event;
    const conversationId = (started as { conversationId?: string } | undefined)?.conversationId;
    expect(conversationId).toBeTruthy();

    // The next question of the same user goes on in the same Dify conversation.
    const second = await toB.text('第二个问题', { userid });
    await toA.pollUntilFinished(second.reply.stream.id, { intervalMs: 100, timeoutMs: 20_000 });
    const runs = dify.runs().slice(before) as Array<{ body: { conversation_id?: string } }>;
    expect(runs.map((r) => r.body.conversation_id || undefined)).toEqual([undefined, conversationId]);
  }, 60_000);
});
