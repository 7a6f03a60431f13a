// Three service processes on loopback sharing Redis, the fake Dify streaming slowly, WeCom's polls
// spread over the nodes. The owner of an answer is killed with SIGKILL mid-answer, or told to stop
// with SIGTERM, and the answer still reaches the user, through another node.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisStore, type StreamStore } from '../src/store/index.js';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { type NodeProcess, startNode, stopNodes } from './support/nodes.js';
import { dropPrefix, randomPrefix, redisUrl, testBot } from './support/service.js';
import { type StreamReplyJson, WecomClient } from './support/wecomClient.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A long answer in small pieces, so that a node can be stopped half way. */
const longAnswer = Array.from({ length: 40 }, (_, i) => `第${i + 1}句，`).join('') + '完。';

interface Cluster {
  prefix: string;
  nodes: NodeProcess[];
  clients: WecomClient[];
  store: StreamStore;
  redis: Redis;
}

async function startCluster(dify: FakeDify, env: Record<string, string>): Promise<Cluster> {
  const prefix = randomPrefix('nodes');
  const nodeEnv = { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix, DIFY_API_URL: dify.url, ...env };
  const nodes = await Promise.all(
    ['n1', 'n2', 'n3'].map((id) => startNode(`${id}-${prefix.slice(-9, -1)}`, nodeEnv)),
  );
  const redis = new Redis(redisUrl);
  return {
    prefix,
    nodes,
    clients: nodes.map((node) => new WecomClient({ baseUrl: node.url, ...testBot })),
    store: createRedisStore(redis, { prefix, ttlSeconds: 600 }),
    redis,
  };
}

async function stopCluster(cluster: Cluster | undefined): Promise<void> {
  if (!cluster) return;
  await stopNodes(cluster.nodes);
  cluster.redis.disconnect();
  await dropPrefix(cluster.prefix);
}

/** Polls like WeCom, spreading the polls over the given clients, until finish:true. */
async function pollSpread(clients: WecomClient[], streamId: string, timeoutMs = 30_000) {
  const contents: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; Date.now() < deadline; i++) {
    const client = clients[i % clients.length]!;
    const { status, reply } = await client.poll(streamId).catch(() => ({ status: 0, reply: undefined }));
    if (status === 200) {
      const stream = (reply as StreamReplyJson).stream;
      contents.push(stream.content);
      if (stream.finish) return { content: stream.content, contents };
    }
    await sleep(100); // WeCom's pace between polls (a second, shortened): part of the scene
  }
  throw new Error(`stream ${streamId} did not finish; last: ${contents.at(-1)?.slice(0, 100)}`);
}

const typesOf = async (store: StreamStore, id: string) => (await store.read(id)).map((e) => e.event.type);

describe('many nodes, and one of them dies mid-answer', () => {
  let dify: FakeDify;
  let cluster: Cluster;

  beforeAll(async () => {
    dify = await startFakeDify();
    cluster = await startCluster(dify, { LEASE_SECONDS: '2', DRAIN_SECONDS: '1' });
  }, 60_000);
  afterAll(async () => {
    await stopCluster(cluster);
    await dify?.stop();
  });

  it('the owner killed with SIGKILL: another node takes the stream over and the answer completes', async () => {
    dify.setDefault({ kind: 'answer', pieces: longAnswer.match(/.{1,4}/gu)!, frameDelayMs: 60 });
    const [owner, ...others] = cluster.nodes;
    const sent = await cluster.clients[0]!.text('讲一个长故事', { userid: 'kill-test' });
    const id: string = sent.reply.stream.id;
    // Wait until the user sees part of the answer, served by the other nodes.
    await expect
      .poll(async () => (await cluster.clients[1]!.poll(id)).reply.stream.content.length, { timeout: 10_000 })
      .toBeGreaterThan(10);
    const runsBefore = dify.runs().length;
    owner!.kill('SIGKILL');
    const { content, contents } = await pollSpread(cluster.clients.slice(1), id);
    expect(content).toBe(longAnswer);
    // The bubble never went blank or back to a placeholder while the new owner started over.
    const afterKill = contents.filter((c) => c.length > 0);
    expect(afterKill.every((c) => c.startsWith('第'))).toBe(true);
    expect(dify.runs().length - runsBefore).toBe(1);
    const types = await typesOf(cluster.store, id);
    expect(types.filter((t) => t === 'stream.taken_over')).toHaveLength(1);
    expect(types.at(-1)).toBe('answer.completed');
    const takeover = (await cluster.store.read(id)).find((e) => e.event.type === 'stream.taken_over')!.event;
    expect(takeover).toMatchObject({ attempt: 1, previousNode: owner!.id });
    expect(others.map((n) => n.id)).toContain((takeover as { node: string }).node);
    expect((await owner!.exited).signal).toBe('SIGKILL');
  }, 60_000);
});

describe('a node told to stop (SIGTERM) hands its answers over', () => {
  let dify: FakeDify;
  let cluster: Cluster;

  beforeAll(async () => {
    dify = await startFakeDify();
    // A lease far longer than the test: a takeover within seconds can only be the handover.
    cluster = await startCluster(dify, { LEASE_SECONDS: '60', DRAIN_SECONDS: '2' });
  }, 60_000);
  afterAll(async () => {
    await stopCluster(cluster);
    await dify?.stop();
  });

  it('finishes what it can within DRAIN_SECONDS, hands the rest over at once, refuses new work, and exits 0', async () => {
    const [node, ...others] = cluster.nodes;
    const client = cluster.clients[0]!;
    dify.script([
      { kind: 'answer', text: '很快就答完了。', frameDelayMs: 100 },
      { kind: 'answer', pieces: longAnswer.match(/.{1,4}/gu)!, frameDelayMs: 150 },
    ]);
    const short = await client.text('短问题', { userid: 'drain-short' });
    await expect.poll(() => dify.runs().length).toBe(1);
    const long = await client.text('长问题', { userid: 'drain-long' });
    await expect.poll(() => dify.runs().length).toBe(2);
    dify.setDefault({ kind: 'answer', pieces: longAnswer.match(/.{1,4}/gu)!, frameDelayMs: 20 });
    // The node is told to stop mid-answer: the long answer has text to hand over.
    const longId: string = long.reply.stream.id;
    await expect
      .poll(async () => (await cluster.store.load(longId))?.view.context.answer.length ?? 0)
      .toBeGreaterThan(0);
    const signalled = Date.now();
    node!.kill('SIGTERM');
    await expect.poll(() => node!.output(), { timeout: 10_000 }).toMatch(/"msg":"draining"/);
    // Draining: a new message is refused so that WeCom sends it again, to a node that takes it.
    const refused = await client.text('新问题', { userid: 'drain-new' });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('2');

    const shortId: string = short.reply.stream.id;
    const [shortDone, longDone] = await Promise.all([
      pollSpread(cluster.clients.slice(1), shortId),
      pollSpread(cluster.clients.slice(1), longId),
    ]);
    expect(shortDone.content).toBe('很快就答完了。');
    expect(longDone.content).toBe(longAnswer);
    // Handed over well before its 60 s lease could have run out.
    expect(Date.now() - signalled).toBeLessThan(20_000);
    expect(await node!.exited).toEqual({ code: 0, signal: null });

    const shortTypes = await typesOf(cluster.store, shortId);
    expect(shortTypes).not.toContain('stream.taken_over');
    const longTypes = await typesOf(cluster.store, longId);
    const released = longTypes.indexOf('stream.released');
    expect(released).toBeGreaterThan(0);
    expect(longTypes.indexOf('stream.taken_over')).toBeGreaterThan(released);
    const takeover = (await cluster.store.read(longId)).find(
      (e) => e.event.type === 'stream.taken_over',
    )!.event;
    expect(others.map((n) => n.id)).toContain((takeover as { node: string }).node);
    expect(node!.output()).toMatch(/"msg":"handed over: another node answers it"/);
  }, 60_000);
});
