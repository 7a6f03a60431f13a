// A user, or a script looping inside the company, sending faster than a person types: past the
// limits (counted across all nodes in Redis), a message is answered at once with a polite sentence and
// Dify is not asked; a retry of that message gets the same answer and counts again against nothing.
import { afterEach, describe, expect, it } from 'vitest';
import { rateLimitedTexts } from '../src/limits/index.js';
import { type E2E, startE2E } from './support/e2e.js';

const metric = async (url: string, scope: string): Promise<number> => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`wecom_dify_rate_limited_total{bot="default",scope="${scope}"}`));
  return Number(line?.split(' ')[1] ?? Number.NaN);
};

describe('rate limits on new messages', () => {
  let e2e: E2E | undefined;
  afterEach(async () => {
    await e2e?.stop();
    e2e = undefined;
  });

  it('past the user’s limit, across two nodes: answered politely at once, Dify not asked, a retry not counted', async () => {
    e2e = await startE2E({
      name: 'ratelimit-user',
      nodes: 2,
      env: { RATE_LIMIT_USER_PER_MINUTE: '3', RATE_LIMIT_CONVERSATION_PER_MINUTE: '0' },
    });
    const { dify, clients, nodes } = e2e;
    dify.setDefault({ kind: 'answer', echo: '答：{query}' });
    const sent = [];
    for (let i = 0; i < 5; i++) sent.push(await clients[i % 2]!.text(`问题${i}`, { userid: 'looper' }));
    const [allowed, refused] = [sent.slice(0, 3), sent.slice(3)];
    for (const r of refused)
      expect(r.reply.stream).toMatchObject({ finish: true, content: rateLimitedTexts.user });
    for (const [i, r] of allowed.entries()) {
      const { reply } = await clients[0]!.pollUntilFinished(r.reply.stream.id, { userid: 'looper' });
      expect(reply.stream.content).toBe(`答：问题${i}`);
    }
    expect(dify.runs()).toHaveLength(3);
    // WeCom's retry of a refused message: the same answer, and nothing more counted.
    const retried = await clients[1]!.text('问题3', { userid: 'looper', msgid: refused[0]!.msgid });
    expect(retried.reply.stream).toMatchObject({ finish: true, content: rateLimitedTexts.user });
    const counted = (await metric(nodes[0]!.url, 'user')) + (await metric(nodes[1]!.url, 'user'));
    expect(counted).toBe(2);
    // Another user is not held back.
    const other = await clients[0]!.text('我也问', { userid: 'someone-else' });
    expect(other.reply.stream.finish).toBe(false);
  });

  it('a group past its limit is held back for all its members', async () => {
    e2e = await startE2E({
      name: 'ratelimit-group',
      env: { RATE_LIMIT_USER_PER_MINUTE: '0', RATE_LIMIT_CONVERSATION_PER_MINUTE: '2' },
    });
    const [client] = e2e.clients;
    e2e.dify.setDefault({ kind: 'answer', text: '好' });
    const replies = [];
    for (const userid of ['a', 'b', 'c'])
      replies.push(await client!.text('@bot 问', { userid, chatid: 'group-1' }));
    expect(replies.map((r) => r.reply.stream.content)).toEqual([
      expect.any(String),
      expect.any(String),
      rateLimitedTexts.conversation,
    ]);
    expect(replies[0]!.reply.stream.finish).toBe(false);
    // Another chat, same people: its own budget.
    const elsewhere = await client!.text('@bot 问', { userid: 'c', chatid: 'group-2' });
    expect(elsewhere.reply.stream.finish).toBe(false);
  });
});
