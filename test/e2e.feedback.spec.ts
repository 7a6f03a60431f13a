// A user rates an answer in WeCom (👍/👎, docs/protocol/wecom.md §5.5, §6.7): the first reply carried
// `feedback.id`, WeCom sends feedback_event, the service answers it empty and passes the rating on to
// Dify as the message's feedback, under the user who asked.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type E2E, startE2E } from './support/e2e.js';
import type { FakeDify } from './support/fakeDify.js';
import type { TestService } from './support/service.js';
import type { WecomClient } from './support/wecomClient.js';

describe('ratings reach Dify', () => {
  let e: E2E;
  let dify: FakeDify;
  let service: TestService;
  let wecom: WecomClient;

  beforeAll(async () => {
    e = await startE2E({ name: 'feedback' });
    ({ dify } = e);
    service = e.nodes[0]!;
    wecom = e.clients[0]!;
  });
  afterAll(() => e?.stop());

  const feedbacks = () => dify.requests.filter((r) => r.path.endsWith('/feedbacks'));

  it('👍, 👎 with reasons, and taking it back: each reaches Dify and is recorded', async () => {
    const sent = await wecom.text('评价我', { userid: 'asker', chatid: 'chat-fb' });
    const id: string = sent.reply.stream.id;
    expect(sent.reply.stream.feedback).toEqual({ id });
    await wecom.pollUntilFinished(id, { intervalMs: 30 });
    const messageId = (await service.store.load(id))!.snapshot.context.messageId;
    expect(messageId).toBeDefined();

    const like = await wecom.event('feedback_event', { id, type: 1 }, { userid: 'asker', chatid: 'chat-fb' });
    expect(like.status).toBe(200);
    expect(like.reply).toEqual({});
    await expect.poll(() => feedbacks().length).toBe(1);
    expect(feedbacks()[0]).toMatchObject({
      path: `/v1/messages/${messageId}/feedbacks`,
      body: { rating: 'like', user: 'asker' },
    });

    // Someone else in the group rates it: Dify keeps it under the asker.
    await wecom.event(
      'feedback_event',
      { id, type: 2, content: '数字不对', inaccurate_reason_list: [2, 3] },
      { userid: 'colleague', chatid: 'chat-fb' },
    );
    await expect.poll(() => feedbacks().length).toBe(2);
    expect(feedbacks()[1]!.body).toEqual({
      rating: 'dislike',
      user: 'asker',
      content: '[回答不完整、回答有错误] 数字不对',
    });

    await wecom.event('feedback_event', { id, type: 3 }, { userid: 'asker', chatid: 'chat-fb' });
    await expect.poll(() => feedbacks().length).toBe(3);
    expect(feedbacks()[2]!.body).toEqual({ rating: null, user: 'asker' });

    await expect
      .poll(
        async () => (await service.store.read(id)).filter((e) => e.event.type === 'feedback.given').length,
      )
      .toBe(3);
    const given = (await service.store.read(id))
      .filter((e) => e.event.type === 'feedback.given')
      .map((e) => e.event);
    expect(given.map((e) => (e as { by: string }).by)).toEqual(['asker', 'colleague', 'asker']);
    expect(given.every((e) => (e as { forwarded: boolean }).forwarded)).toBe(true);
    expect((await service.store.load(id))!.snapshot.context.feedback?.rating).toBeNull();
  });

  it('a rating for a stream that is gone is answered empty and ignored', async () => {
    const before = feedbacks().length;
    // Ids of no stream: a made-up one, and one shaped like ours (an answer expired, or never opened).
    for (const id of ['no-such-stream', 'AAAAAAAAAAAAAAAAAAAAAA']) {
      const res = await wecom.event('feedback_event', { id, type: 1 });
      expect(res.status).toBe(200);
      expect(res.reply).toEqual({});
    }
    // A rating of a real answer, sent after them, reaches Dify: theirs have been dealt with by then.
    const sent = await wecom.text('评价之后');
    const id: string = sent.reply.stream.id;
    await wecom.pollUntilFinished(id, { intervalMs: 30 });
    const messageId = (await service.store.load(id))!.snapshot.context.messageId;
    await wecom.event('feedback_event', { id, type: 1 });
    await expect.poll(() => feedbacks().length).toBeGreaterThan(before);
    expect(
      feedbacks()
        .slice(before)
        .map((r) => r.path),
    ).toEqual([`/v1/messages/${messageId}/feedbacks`]);
    expect(await service.store.read('AAAAAAAAAAAAAAAAAAAAAA')).toEqual([]);
  });

  it('a rating Dify refuses is recorded as not passed on', async () => {
    const sent = await wecom.text('再评价');
    const id: string = sent.reply.stream.id;
    await wecom.pollUntilFinished(id, { intervalMs: 30 });
    dify.script(
      { kind: 'error', status: 404, code: 'not_found', message: 'Message Not Exists.' },
      'feedback',
    );
    await wecom.event('feedback_event', { id, type: 1 });
    await expect
      .poll(async () => (await service.store.read(id)).at(-1)?.event)
      .toMatchObject({
        type: 'feedback.given',
        forwarded: false,
        problem: 'Message Not Exists.',
      });
  });
});
