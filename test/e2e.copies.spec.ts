// Copies of one message arriving at once (WeCom's retries, or a proxy's, landing together): each
// message is one Dify request and one answer, whichever node each copy reaches, and no copy that
// lost the race disturbs the one that won (no false takeover, no second question in Dify's
// conversation).
import { afterEach, describe, expect, it } from 'vitest';
import { type E2E, startE2E } from './support/e2e.js';
import { randomMsgid } from './support/wecomClient.js';

describe('copies of one message arriving together', () => {
  let e2e: E2E | undefined;
  afterEach(async () => {
    await e2e?.stop();
    e2e = undefined;
  });

  it('five copies of each of ten messages on one node: ten Dify requests, ten whole answers, no takeover', async () => {
    e2e = await startE2E({ name: 'copies-one-node', env: { LEASE_SECONDS: '3' } });
    const { dify, clients, nodes } = e2e;
    const [client] = clients;
    dify.setDefault({ kind: 'answer', echo: '回答：{query}', frameDelayMs: 30 });
    const messages = Array.from({ length: 10 }, (_, i) => ({ msgid: randomMsgid(), q: `问题${i}` }));
    const replies = await Promise.all(
      messages.flatMap(({ msgid, q }, i) =>
        Array.from({ length: 5 }, () => client!.text(q, { msgid, userid: `user-${i}` })),
      ),
    );
    for (const r of replies) expect(r.status).toBe(200);
    // Every copy of a message names the same stream.
    for (const [i, { msgid }] of messages.entries()) {
      const ids = new Set(replies.filter((r) => r.msgid === msgid).map((r) => r.reply.stream.id));
      expect(ids.size, `message ${i}`).toBe(1);
    }
    const outcomes = await Promise.all(
      messages.map(({ msgid }, i) => {
        const id = replies.find((r) => r.msgid === msgid)!.reply.stream.id as string;
        return client!.pollUntilFinished(id, { userid: `user-${i}`, timeoutMs: 20_000 });
      }),
    );
    for (const [i, o] of outcomes.entries()) expect(o.reply.stream.content).toBe(`回答：问题${i}`);
    expect(dify.runs()).toHaveLength(10);
    // A copy that lost never let go of the winner's lease: the polls above would have taken the
    // stream over the moment its lease was gone.
    const metrics = async () => (await fetch(`${nodes[0]!.url}/metrics`)).text();
    expect(await metrics()).toMatch(/^wecom_dify_takeovers_total\{bot="default"\} 0$/m);
  });

  it('copies split over two nodes, at once: one Dify request per message', async () => {
    e2e = await startE2E({ name: 'copies-two-nodes', nodes: 2, env: { LEASE_SECONDS: '3' } });
    const { dify, clients } = e2e;
    dify.setDefault({ kind: 'answer', echo: '回答：{query}', frameDelayMs: 20 });
    const messages = Array.from({ length: 8 }, (_, i) => ({ msgid: randomMsgid(), q: `并发${i}` }));
    const replies = await Promise.all(
      messages.flatMap(({ msgid, q }, i) =>
        Array.from({ length: 6 }, (_, k) => clients[k % 2]!.text(q, { msgid, userid: `u-${i}` })),
      ),
    );
    for (const r of replies) expect(r.status).toBe(200);
    const outcomes = await Promise.all(
      messages.map(({ msgid }, i) => {
        const ids = new Set(replies.filter((r) => r.msgid === msgid).map((r) => r.reply.stream.id));
        expect(ids.size).toBe(1);
        return clients[i % 2]!.pollUntilFinished([...ids][0] as string, { userid: `u-${i}` });
      }),
    );
    for (const [i, o] of outcomes.entries()) expect(o.reply.stream.content).toBe(`回答：并发${i}`);
    expect(dify.runs()).toHaveLength(8);
  });
});
