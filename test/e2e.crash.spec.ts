// A node that dies while it accepts a message: frozen at the last instant before the message's
// stream was opened in Redis (its Redis traffic held at the write that carries `stream.opened`), then
// killed with SIGKILL. WeCom's retry of that message lands on another node, and the user still gets
// the answer: never "this answer has expired", never nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { type NodeProcess, startNode, stopNodes } from './support/nodes.js';
import { dropPrefix, randomPrefix, redisUrl, testBot } from './support/service.js';
import { startTripwireProxy, type TripwireProxy } from './support/tripwireProxy.js';
import { randomMsgid, WecomClient } from './support/wecomClient.js';

describe('a node killed while it accepts a message', () => {
  let dify: FakeDify;
  let proxy: TripwireProxy;
  const prefix = randomPrefix('crash');
  const nodes: NodeProcess[] = [];

  beforeAll(async () => {
    dify = await startFakeDify();
    proxy = await startTripwireProxy({ host: '127.0.0.1', port: 6379 }, 'stream.opened');
    const env = { REDIS_KEY_PREFIX: prefix, DIFY_API_URL: dify.url, LEASE_SECONDS: '2' };
    nodes.push(
      await startNode(`doomed-${prefix.slice(-9, -1)}`, {
        ...env,
        REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      }),
      await startNode(`survivor-${prefix.slice(-9, -1)}`, { ...env, REDIS_URL: redisUrl }),
    );
  }, 60_000);
  afterAll(async () => {
    await stopNodes(nodes);
    await proxy?.close();
    await dify?.stop();
    await dropPrefix(prefix);
  });

  it('before its stream was opened: the retry on another node answers', async () => {
    dify.setDefault({ kind: 'answer', text: '这是完整的回答。', frameDelayMs: 20 });
    const [doomed, survivor] = nodes as [NodeProcess, NodeProcess];
    const toDoomed = new WecomClient({ baseUrl: doomed.url, ...testBot, timeoutMs: 20_000 });
    const toSurvivor = new WecomClient({ baseUrl: survivor.url, ...testBot });
    const msgid = randomMsgid();
    // The first delivery hangs inside the doomed node; WeCom gives up on it.
    const first = toDoomed.text('你好', { msgid, userid: 'crash-user' }).catch(() => undefined);
    await proxy.tripped;
    doomed.kill('SIGKILL');
    await doomed.exited;
    await first;
    // WeCom retries the same message; it reaches the other node.
    const retried = await toSurvivor.text('你好', { msgid, userid: 'crash-user' });
    expect(retried.status).toBe(200);
    const outcome = await toSurvivor.pollUntilFinished(retried.reply.stream.id, {
      userid: 'crash-user',
      timeoutMs: 15_000,
    });
    expect(outcome.reply.stream.content).toBe('这是完整的回答。');
    expect(dify.runs()).toHaveLength(1);
  });
});
