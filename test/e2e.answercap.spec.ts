// An answer has a size limit (ANSWER_MAX_BYTES): what Dify sends past it is not kept, Dify is told to
// stop, and the user is told the answer was cut. A huge answer costs the node and Redis no more than
// the limit.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKnown } from '../src/machines/events.js';
import { defaultTexts } from '../src/machines/texts.js';
import { type E2E, startE2E } from './support/e2e.js';
import { type ResponseUrlReceiver, startResponseUrlReceiver } from './support/responseUrl.js';
import { redisUrl } from './support/service.js';

const CAP = 64 * 1024;
const bytes = (s: string) => Buffer.byteLength(s);

describe('an answer past ANSWER_MAX_BYTES', () => {
  let e: E2E;
  let receiver: ResponseUrlReceiver;
  let redis: Redis;

  beforeAll(async () => {
    receiver = await startResponseUrlReceiver();
    e = await startE2E({ name: 'answercap', env: { ANSWER_MAX_BYTES: String(CAP) } });
    redis = new Redis(redisUrl);
  });
  afterAll(async () => {
    redis?.disconnect();
    await e?.stop();
    await receiver?.stop();
  });

  it('is cut at the limit, Dify is stopped, and the user is told', async () => {
    // 4 MB in 2 KB pieces, as fast as the socket takes them.
    const piece = `${'这是一个很长的回答。'.repeat(68)}\n`;
    e.dify.script({ kind: 'answer', pieces: Array.from({ length: 2000 }, () => piece) });
    const url = receiver.url();
    const [wecom] = e.clients;
    const sent = await wecom!.text('写一本书', { responseUrl: url, userid: 'writer' });
    const id: string = sent.reply.stream.id;
    const { reply } = await wecom!.pollUntilFinished(id, { userid: 'writer', timeoutMs: 20_000 });
    // The bubble holds what fits and says more follows; what follows says it was cut.
    expect(reply.stream.content.endsWith(defaultTexts.truncated)).toBe(true);
    await expect.poll(() => receiver.delivered.filter((d) => url.endsWith(d.code)).length).toBe(1);
    const delivered = receiver.delivered.find((d) => url.endsWith(d.code))!.body as {
      markdown: { content: string };
    };
    const content = delivered.markdown.content;
    expect(
      content.endsWith(defaultTexts.deliveryTruncated) || content.endsWith(defaultTexts.answerCapped),
    ).toBe(true);

    const events = (await e.nodes[0]!.store.read(id)).map((s) => s.event);
    const kept = events.reduce(
      (n, ev) => n + (isKnown(ev) && ev.type === 'answer.delta' ? bytes(ev.text) : 0),
      0,
    );
    expect(kept).toBeLessThanOrEqual(CAP);
    expect(kept).toBeGreaterThan(CAP - bytes(piece));
    expect(events.find((ev) => ev.type === 'answer.completed')).toMatchObject({ cut: true });
    // Dify was told to stop the run rather than left writing 4 MB into a closed socket.
    await expect
      .poll(() => e.dify.requests.filter((r) => /\/stop$/.test(r.path)).length, { timeout: 5_000 })
      .toBe(1);
    // What Redis keeps of the stream is bounded by the limit, not by Dify's answer.
    const keys = await redis.keys(`${e.prefix}stream:{${id}}:*`);
    let stored = 0;
    for (const key of keys) stored += (await redis.memory('USAGE', key)) ?? 0;
    // Its events, its text and its snapshot, each about the limit at most (Redis's own allocation
    // slack included): a few times the limit, against the 4 MB Dify sent.
    expect(stored).toBeLessThan(6 * CAP);
  });
});
