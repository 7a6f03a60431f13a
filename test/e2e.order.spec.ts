// Order within a conversation: a second message while the first is still being answered waits (the
// user sees it queued) and is asked when the first ends, even when the two land on different nodes;
// different conversations never wait for each other.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultTexts } from '../src/machines/texts.js';
import { type E2E, startE2E } from './support/e2e.js';
import type { FakeDify } from './support/fakeDify.js';
import type { TestService } from './support/service.js';
import type { WecomClient } from './support/wecomClient.js';

describe('order within a conversation', () => {
  let e: E2E;
  let dify: FakeDify;
  let a: TestService;
  let toA: WecomClient;
  let toB: WecomClient;

  beforeAll(async () => {
    e = await startE2E({ name: 'order', nodes: 2 });
    ({ dify } = e);
    a = e.nodes[0]!;
    [toA, toB] = [e.clients[0]!, e.clients[1]!];
  });
  afterAll(() => e?.stop());

  const eventsOf = async (id: string) => (await a.store.read(id)).map((e) => e.event);

  it('two quick messages in one conversation are answered in order, the second shown as queued meanwhile', async () => {
    const userid = `order-${Date.now()}`;
    dify.setDefault({ kind: 'answer', pieces: ['一', '二', '三', '四', '五', '六'], frameDelayMs: 200 });
    const first = await toA.text('第一个问题', { userid });
    const second = await toB.text('第二个问题', { userid });
    const firstId: string = first.reply.stream.id;
    const secondId: string = second.reply.stream.id;

    const seen: string[] = [];
    const [firstDone, secondDone] = await Promise.all([
      toB.pollUntilFinished(firstId, { intervalMs: 50 }),
      toA.pollUntilFinished(secondId, { intervalMs: 50, onReply: (r) => seen.push(r.stream.content) }),
    ]);
    expect(firstDone.reply.stream.content).toBe('一二三四五六');
    expect(secondDone.reply.stream.content).toBe('一二三四五六');
    expect(seen).toContain(defaultTexts.queued);

    // Dify heard the second question only after the first answer was complete, in the same conversation.
    const firstEvents = await eventsOf(firstId);
    const secondEvents = await eventsOf(secondId);
    const completedAt = firstEvents.find((e) => e.type === 'answer.completed')!.at!;
    const dequeuedAt = secondEvents.find((e) => e.type === 'stream.dequeued')!.at!;
    expect(secondEvents.find((e) => e.type === 'stream.queued')).toMatchObject({ behind: firstId });
    expect(dequeuedAt).toBeGreaterThanOrEqual(completedAt);
    const runs = dify.runs().filter((r) => (r.body as { user?: string }).user === userid);
    expect(runs.map((r) => (r.body as { query: string }).query)).toEqual(['第一个问题', '第二个问题']);
    const conversation = (runs[1]!.body as { conversation_id?: string }).conversation_id;
    expect(conversation).toBeDefined();
  }, 20_000);

  it('three messages keep their order, whichever node each lands on', async () => {
    const userid = `order3-${Date.now()}`;
    dify.setDefault({ kind: 'answer', pieces: ['好', '的'], frameDelayMs: 150 });
    const ids: string[] = [];
    for (const [i, client] of [toA, toB, toA].entries())
      ids.push((await client.text(`问题${i + 1}`, { userid })).reply.stream.id);
    await Promise.all(ids.map((id) => toB.pollUntilFinished(id, { intervalMs: 50 })));
    const runs = dify.runs().filter((r) => (r.body as { user?: string }).user === userid);
    expect(runs.map((r) => (r.body as { query: string }).query)).toEqual(['问题1', '问题2', '问题3']);
    for (let i = 1; i < ids.length; i++) {
      const before = (await eventsOf(ids[i - 1]!)).find((e) => e.type === 'answer.completed')!.at!;
      const started = (await eventsOf(ids[i]!)).find((e) => e.type === 'dify.started')!.at!;
      expect(started).toBeGreaterThanOrEqual(before);
    }
  }, 20_000);

  it('different conversations never wait for each other: other users, and the same user in a group', async () => {
    const userid = `par-${Date.now()}`;
    dify.setDefault({ kind: 'answer', pieces: ['甲', '乙', '丙', '丁'], frameDelayMs: 250 });
    const started = Date.now();
    const sent = await Promise.all([
      toA.text('我的问题', { userid }),
      toB.text('另一个人的问题', { userid: `${userid}-2` }),
      toA.text('@助手 群里的问题', { userid, chatid: `chat-${userid}` }),
    ]);
    const ids = sent.map((s) => s.reply.stream.id as string);
    await Promise.all(ids.map((id) => toA.pollUntilFinished(id, { intervalMs: 50 })));
    // Each takes about a second; waiting for one another would take three.
    expect(Date.now() - started).toBeLessThan(2_500);
    for (const id of ids) expect((await eventsOf(id)).map((e) => e.type)).not.toContain('stream.queued');
  }, 20_000);

  it('/stop stops the answer being written, and the next question in line goes on', async () => {
    const userid = `stopq-${Date.now()}`;
    dify.setDefault({ kind: 'answer', pieces: Array.from({ length: 30 }, () => '慢'), frameDelayMs: 100 });
    const first = await toA.text('长回答', { userid });
    const second = await toB.text('下一个', { userid });
    await expect.poll(async () => (await toA.poll(first.reply.stream.id)).reply.stream.content).toMatch(/慢/);
    await toA.text('/stop', { userid });
    const [firstDone, secondDone] = await Promise.all([
      toA.pollUntilFinished(first.reply.stream.id, { intervalMs: 50 }),
      toB.pollUntilFinished(second.reply.stream.id, { intervalMs: 50, timeoutMs: 10_000 }),
    ]);
    expect(firstDone.reply.stream.content.endsWith(defaultTexts.failures.stopped!)).toBe(true);
    expect(secondDone.reply.stream.content).toBe('慢'.repeat(30));
  }, 20_000);
});
