// WeCom polls a bubble for six minutes at most, and a bubble holds 20480 bytes (docs/protocol/wecom.md
// §5.3, §9.2). An answer that outlives the window, or outgrows the bubble, finishes the bubble early
// and follows, once, through the message's response_url. Here the window is a few seconds long.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultTexts } from '../src/machines/texts.js';
import { type E2E, startE2E } from './support/e2e.js';
import type { FakeDify } from './support/fakeDify.js';
import { type ResponseUrlReceiver, startResponseUrlReceiver } from './support/responseUrl.js';
import type { TestService } from './support/service.js';
import type { WecomClient } from './support/wecomClient.js';

const t = defaultTexts;
const bytes = (s: string) => Buffer.byteLength(s);

describe('past the bubble: the window and the size limit', () => {
  let e: E2E;
  let dify: FakeDify;
  let receiver: ResponseUrlReceiver;
  let service: TestService;
  let wecom: WecomClient;

  beforeAll(async () => {
    receiver = await startResponseUrlReceiver();
    e = await startE2E({ name: 'window', env: { STREAM_WINDOW_SECONDS: '5', WINDOW_MARGIN_SECONDS: '2' } });
    ({ dify } = e);
    service = e.nodes[0]!;
    wecom = e.clients[0]!;
  });
  afterAll(async () => {
    await e?.stop();
    await receiver?.stop();
  });

  const deliveriesTo = (url: string) => receiver.delivered.filter((d) => url.endsWith(d.code));
  const typesOf = async (id: string) => (await service.store.read(id)).map((e) => e.event.type);

  it('an answer still running near the window’s end: the bubble finishes with what is there, the whole answer follows once', async () => {
    const answer = Array.from({ length: 30 }, (_, i) => `第${i + 1}段。`).join('');
    dify.script({ kind: 'answer', pieces: answer.match(/.{1,4}/gu)!, frameDelayMs: 200 });
    const url = receiver.url();
    const started = Date.now();
    const sent = await wecom.text('慢慢回答', { responseUrl: url });
    const id: string = sent.reply.stream.id;
    const { reply } = await wecom.pollUntilFinished(id, { intervalMs: 100 });
    expect(Date.now() - started).toBeLessThan(4_500);
    expect(reply.stream.content.endsWith(t.windowClosed)).toBe(true);
    const shown = reply.stream.content.slice(0, -t.windowClosed.length);
    expect(shown.length).toBeGreaterThan(0);
    expect(answer.startsWith(shown)).toBe(true);
    expect(shown.length).toBeLessThan(answer.length);

    await expect.poll(() => deliveriesTo(url).length, { timeout: 10_000 }).toBe(1);
    expect(deliveriesTo(url)[0]!.body).toEqual({ msgtype: 'markdown', markdown: { content: answer } });
    await expect.poll(() => typesOf(id)).toContain('delivery.sent');
    const types = await typesOf(id);
    expect(types.indexOf('bubble.closed')).toBeLessThan(types.indexOf('answer.completed'));
    // A late poll still sees the closed bubble, not the rest of the answer.
    expect((await wecom.poll(id)).reply.stream).toEqual({ id, finish: true, content: reply.stream.content });
    // Once the owner's job has ended, nothing is left to send it again: it went once.
    await expect.poll(() => service.runner.inflight).toBe(0);
    expect(deliveriesTo(url)).toHaveLength(1);
    expect((await typesOf(id)).filter((t) => t === 'delivery.sent')).toHaveLength(1);
  }, 20_000);

  it('the window ends before any text: the bubble says the answer will follow, and it does', async () => {
    dify.script({
      kind: 'answer',
      text: '终于想好了。',
      pause: { afterFrames: 0, ms: 3_500 },
      pingEveryMs: 500,
    });
    const url = receiver.url();
    const sent = await wecom.text('难题', { responseUrl: url });
    const { reply } = await wecom.pollUntilFinished(sent.reply.stream.id, { intervalMs: 100 });
    expect(reply.stream.content).toBe(t.windowPending);
    await expect.poll(() => deliveriesTo(url).length, { timeout: 10_000 }).toBe(1);
    expect(deliveriesTo(url)[0]!.body).toMatchObject({ markdown: { content: '终于想好了。' } });
  }, 20_000);

  it('an answer that fails after the bubble closed: the user is told through response_url', async () => {
    dify.script({
      kind: 'answer',
      pieces: ['开始了', '……', '还在', '继续', '……'],
      frameDelayMs: 900,
      failAfter: 5,
    });
    const url = receiver.url();
    const sent = await wecom.text('会失败的问题', { responseUrl: url });
    await wecom.pollUntilFinished(sent.reply.stream.id, { intervalMs: 100 });
    await expect.poll(() => deliveriesTo(url).length, { timeout: 10_000 }).toBe(1);
    expect(deliveriesTo(url)[0]!.body).toMatchObject({
      markdown: { content: t.deliveryFailed + t.failures.dify_error },
    });
  }, 20_000);

  const longAnswer = (lines: number) =>
    Array.from({ length: lines }, (_, i) => `第${i}行：企业微信的气泡最多两万字节。\n`).join('');

  /** Asks, waits for the bubble and the one delivery; what the bubble showed and what followed. */
  async function askLong(answer: string) {
    dify.script({
      kind: 'answer',
      pieces: answer.match(/[^\n]*\n/gu)!,
      chunking: 'frame',
      framesPerChunk: 50,
    });
    const url = receiver.url();
    const sent = await wecom.text('很长的回答', { responseUrl: url });
    const id: string = sent.reply.stream.id;
    const { reply } = await wecom.pollUntilFinished(id, { intervalMs: 50 });
    const content = reply.stream.content;
    expect(bytes(content)).toBeLessThanOrEqual(20480);
    expect(content.endsWith(t.truncated)).toBe(true);
    await expect.poll(() => deliveriesTo(url).length, { timeout: 10_000 }).toBe(1);
    const delivered = (deliveriesTo(url)[0]!.body as { markdown: { content: string } }).markdown.content;
    expect(bytes(delivered)).toBeLessThanOrEqual(20480);
    expect(delivered.startsWith(t.continued)).toBe(true);
    await expect.poll(() => typesOf(id)).toContain('delivery.sent');
    return { head: content.slice(0, -t.truncated.length), rest: delivered.slice(t.continued.length) };
  }

  it('an answer longer than the bubble: the bubble shows its head, the rest follows once, nothing lost', async () => {
    const answer = longAnswer(700);
    expect(bytes(answer)).toBeGreaterThan(30_000);
    expect(bytes(answer)).toBeLessThan(40_000);
    const { head, rest } = await askLong(answer);
    expect(head + rest).toBe(answer);
  }, 20_000);

  it('an answer longer than the bubble and one message: what cannot be sent is said to be missing', async () => {
    const answer = longAnswer(1200);
    expect(bytes(answer)).toBeGreaterThan(60_000);
    const { head, rest } = await askLong(answer);
    expect(rest.endsWith(t.deliveryTruncated)).toBe(true);
    const body = rest.slice(0, -t.deliveryTruncated.length);
    expect(answer.startsWith(head + body)).toBe(true);
    expect(bytes(head + body)).toBeGreaterThan(40_000);
  }, 20_000);

  it('a delivery that WeCom refuses is recorded, not retried in a loop', async () => {
    receiver.failWith({ status: 500 });
    try {
      dify.script({ kind: 'answer', pieces: ['很', '慢', '的', '回', '答'], frameDelayMs: 800 });
      const url = receiver.url();
      const sent = await wecom.text('再问一次', { responseUrl: url });
      const id: string = sent.reply.stream.id;
      await wecom.pollUntilFinished(id, { intervalMs: 100 });
      await expect.poll(() => typesOf(id), { timeout: 10_000 }).toContain('delivery.failed');
      expect(deliveriesTo(url)).toHaveLength(1);
      const failed = (await service.store.read(id)).find((e) => e.event.type === 'delivery.failed')!.event;
      expect((failed as { message: string }).message).toMatch(/HTTP 500/);
    } finally {
      receiver.failWith(undefined);
    }
  }, 20_000);
});
