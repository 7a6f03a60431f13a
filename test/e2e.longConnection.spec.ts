// A long-connection bot over two nodes on the real Redis, against a fake of WeCom's WebSocket server:
// one connection per bot across the cluster; an answer pushed as frames whose content only grows and
// ends complete and finished; the welcome within WeCom's 5 s; the connection moving to another node
// while an answer runs (it goes out once, as a message of its own); the stream window; WeCom's errors.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { type FakeWecomWs, startFakeWecomWs, type WsFrame } from './support/fakeWecomWs.js';
import { type NodeProcess, startNode, stopNodes } from './support/nodes.js';
import { dropPrefix, randomPrefix, redisUrl, startTestService, type TestService } from './support/service.js';

const BOT_ID = 'aib-ws-test';
const SECRET = 'the-ws-secret';

interface Ready {
  status: string;
  bots: Record<string, { mode: string; connected?: boolean; holder?: string | null; problem?: string }>;
}
const readyz = async (node: TestService): Promise<Ready> =>
  (await (await fetch(`${node.url}/readyz`)).json()) as Ready;

/** The stream frames of a reply, in order. */
const streamFrames = (frames: WsFrame[]) =>
  frames.filter((f) => f.cmd === 'aibot_respond_msg' && f.body?.msgtype === 'stream');

/** A long-connection bot of the environment, on the fake WeCom and the fake Dify, with short leases. */
function settingsFor(
  fake: FakeWecomWs,
  dify: FakeDify,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    REDIS_URL: redisUrl,
    WECOM_MODE: 'long-connection',
    WECOM_BOT_ID: BOT_ID,
    WECOM_BOT_SECRET: SECRET,
    WECOM_WS_URL: fake.url,
    WECOM_WS_FRAME_INTERVAL_MS: '100',
    DIFY_API_URL: dify.url,
    LEASE_SECONDS: '2',
    ...extra,
  };
}

async function cluster(name: string, fake: FakeWecomWs, dify: FakeDify, env: Record<string, string> = {}) {
  const prefix = randomPrefix(name);
  const settings = settingsFor(fake, dify, env);
  const tuning = { heartbeatMs: 300, kickedWaitMs: 1500, outboxEveryMs: 50 };
  const nodes = [
    await startTestService(
      { ...settings, NODE_ID: `${name}-a` },
      { keyPrefix: prefix, longConnection: tuning },
    ),
    await startTestService(
      { ...settings, NODE_ID: `${name}-b` },
      { keyPrefix: prefix, longConnection: tuning },
    ),
  ];
  await fake.waitFor('a node subscribed', () => fake.subscribed(BOT_ID) !== undefined, 10_000);
  return {
    prefix,
    nodes,
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
      await dropPrefix(prefix);
    },
  };
}

describe('the long connection, two nodes', () => {
  let fake: FakeWecomWs;
  let dify: FakeDify;
  let c: Awaited<ReturnType<typeof cluster>>;

  beforeAll(async () => {
    fake = await startFakeWecomWs({ bots: { [BOT_ID]: SECRET } });
    dify = await startFakeDify();
    dify.setDefault({ kind: 'answer', echo: '这是对「{query}」的回答，一点一点地长出来。' });
    c = await cluster('ws', fake, dify);
  });
  afterAll(async () => {
    await c?.stop();
    await dify?.stop();
    await fake?.stop();
  });

  it('holds one connection for the bot across the cluster, and both nodes say which holds it', async () => {
    const [a, b] = c.nodes as [TestService, TestService];
    // Several lease periods pass: the nodes do not fight over the connection.
    const started = Date.now();
    await fake.waitFor('three lease periods', () => Date.now() - started > 6_000, 8_000);
    expect(fake.subscribes.filter((s) => s.accepted)).toHaveLength(1);
    expect(fake.openSockets()).toBe(1);
    const [ra, rb] = await Promise.all([readyz(a), readyz(b)]);
    expect(ra.status).toBe('ready');
    expect(ra.bots.default).toMatchObject({ mode: 'long-connection', connected: true });
    expect(rb.bots.default?.holder).toBe(ra.bots.default?.holder);
    expect([a.config.nodeId, b.config.nodeId]).toContain(ra.bots.default?.holder);
    const metrics = await (
      await fetch(`${(ra.bots.default?.holder === a.config.nodeId ? a : b).url}/metrics`)
    ).text();
    expect(metrics).toMatch(/^wecom_dify_connection_up\{bot="default"\} 1$/m);
  });

  it('pushes the answer as frames of one stream whose content only grows, the last one finished', async () => {
    const reqId = fake.message(BOT_ID, { msgtype: 'text', text: { content: '长连接好用吗' } });
    await fake.waitFor('the finishing frame', () =>
      streamFrames(fake.repliesTo(reqId)).some((f) => f.body?.stream?.finish === true),
    );
    const frames = streamFrames(fake.repliesTo(reqId));
    const ids = new Set(frames.map((f) => f.body?.stream?.id));
    expect(ids.size).toBe(1);
    const texts = frames.map((f) => String(f.body?.stream?.content ?? ''));
    const answer = '这是对「长连接好用吗」的回答，一点一点地长出来。';
    expect(texts.at(-1)).toBe(answer);
    // After the placeholder, each frame extends the one before it.
    const grown = texts.filter((t) => answer.startsWith(t) && t.length > 0);
    for (let i = 1; i < grown.length; i++) expect(grown[i]!.startsWith(grown[i - 1]!)).toBe(true);
    expect(frames.filter((f) => f.body?.stream?.finish)).toHaveLength(1);
    expect(frames[0]?.body?.stream?.feedback).toEqual({ id: frames[0]?.body?.stream?.id });
    expect(frames.length).toBeLessThanOrEqual(80);
    // Every frame was taken.
    const acks = fake.received.filter((r) => r.frame.headers?.req_id === reqId).map((r) => r.ack?.errcode);
    expect(acks.every((code) => code === 0)).toBe(true);
  });

  it('answers enter_chat with the welcome, within WeCom’s 5 s', async () => {
    const reqId = fake.event(BOT_ID, 'enter_chat');
    await fake.waitFor('the welcome', () => fake.repliesTo(reqId).length > 0, 5_000);
    const [welcome] = fake.repliesTo(reqId);
    expect(welcome?.cmd).toBe('aibot_respond_welcome_msg');
    expect(welcome?.body).toEqual({
      msgtype: 'text',
      text: { content: c.nodes[0]!.config.bots[0]!.welcomeText },
    });
    const ack = fake.received.find((r) => r.frame.cmd === 'aibot_respond_welcome_msg')?.ack;
    expect(ack?.errcode).toBe(0);
  });

  it('passes a rating that arrives as an event on to Dify', async () => {
    const reqId = fake.message(BOT_ID, {
      msgtype: 'text',
      text: { content: '评一下' },
      from: { userid: 'pingjia' },
    });
    await fake.waitFor('the answer', () =>
      streamFrames(fake.repliesTo(reqId)).some((f) => f.body?.stream?.finish === true),
    );
    const streamId = streamFrames(fake.repliesTo(reqId))[0]?.body?.stream?.id;
    fake.event(BOT_ID, 'feedback_event', { id: streamId, type: 1 }, { from: { userid: 'pingjia' } });
    await fake.waitFor(
      'Dify told',
      () =>
        dify.requests.some(
          (r) => r.path.endsWith('/feedbacks') && (r.body as { rating?: string }).rating === 'like',
        ),
      5000,
    );
  });

  it('answers the same msgid once, and skips a frame that is not JSON', async () => {
    fake.sendRaw(BOT_ID, 'this is not json {');
    const msgid = `ws-dup-${Date.now()}`;
    const first = fake.message(BOT_ID, { msgid, msgtype: 'text', text: { content: '同一条消息' } });
    const again = fake.message(BOT_ID, { msgid, msgtype: 'text', text: { content: '同一条消息' } });
    await fake.waitFor('the answer', () =>
      streamFrames(fake.repliesTo(first)).some((f) => f.body?.stream?.finish === true),
    );
    expect(dify.runs().filter((r) => (r.body as { query: string }).query === '同一条消息')).toHaveLength(1);
    expect(streamFrames(fake.repliesTo(again))).toHaveLength(0);
  });

  it('retries a frame WeCom answers 6000, and subscribes again on 846609', async () => {
    const subscribed = fake.subscribes.filter((s) => s.accepted).length;
    fake.failNext('aibot_respond_msg', 6000);
    fake.failNext('aibot_respond_msg', 846609, { match: (f) => f.body?.stream?.finish === true });
    const reqId = fake.message(BOT_ID, { msgtype: 'text', text: { content: '错误也要答完' } });
    await fake.waitFor(
      'the answer finished after a resubscribe',
      () => fake.subscribes.filter((s) => s.accepted).length > subscribed,
      10_000,
    );
    // The frames of the old connection's req_id are refused now: the answer goes apart, once.
    await fake.waitFor(
      'the answer delivered',
      () =>
        streamFrames(fake.repliesTo(reqId)).some((f) => f.body?.stream?.finish === true) ||
        fake
          .sent()
          .some((f) =>
            String((f.body?.markdown as { content?: string } | undefined)?.content ?? '').includes(
              '错误也要答完',
            ),
          ),
      15_000,
    );
    const apart = fake
      .sent()
      .filter((f) =>
        String((f.body?.markdown as { content?: string } | undefined)?.content ?? '').includes(
          '错误也要答完',
        ),
      );
    expect(apart.length).toBeLessThanOrEqual(1);
  });
});

describe('the connection moving while an answer runs', () => {
  let fake: FakeWecomWs;
  let dify: FakeDify;
  let c: Awaited<ReturnType<typeof cluster>>;
  let redis: Redis;

  beforeAll(async () => {
    fake = await startFakeWecomWs({ bots: { [BOT_ID]: SECRET } });
    dify = await startFakeDify();
    c = await cluster('wsmove', fake, dify);
    redis = new Redis(redisUrl);
  });
  afterAll(async () => {
    redis?.disconnect();
    await c?.stop();
    await dify?.stop();
    await fake?.stop();
  });

  it('the owner finishes the answer, the new holder sends it once as a message of its own', async () => {
    const pieces = Array.from({ length: 40 }, (_, i) => `第${i + 1}段。`);
    dify.script({ kind: 'answer', pieces, frameDelayMs: 50 });
    const reqId = fake.message(BOT_ID, {
      msgtype: 'text',
      text: { content: '很长的回答' },
      from: { userid: 'lisi' },
    });
    await fake.waitFor('the answer has begun', () => streamFrames(fake.repliesTo(reqId)).length >= 2);
    // The holder loses its lease (as to a network split: someone else holds it for a moment) and
    // closes its connection, while it goes on owning the answer; then a node takes the connection.
    const before = fake.subscribed(BOT_ID);
    const stolen = JSON.stringify({ node: 'elsewhere', token: 'not-a-node-of-this-test', at: Date.now() });
    await redis.set(`${c.prefix}ws:{default}:lease`, stolen, 'PX', 1500);
    await fake.waitFor(
      'another connection subscribed',
      () => {
        const now = fake.subscribed(BOT_ID);
        return now !== undefined && now !== before;
      },
      10_000,
    );
    await fake.waitFor(
      'the rest sent apart',
      () =>
        fake
          .sent()
          .some((f) =>
            String((f.body?.markdown as { content?: string } | undefined)?.content ?? '').includes(
              '第40段。',
            ),
          ),
      20_000,
    );
    const sent = fake.sent();
    expect(sent).toHaveLength(1);
    expect(sent[0]?.body).toMatchObject({ chatid: 'lisi', msgtype: 'markdown' });
    // Dify was asked once: the answer was not started over.
    expect(dify.runs()).toHaveLength(1);
  });
});

describe('WeCom refusing the secret, or kicking the connection', () => {
  let fake: FakeWecomWs;
  let dify: FakeDify;
  let node: TestService;
  const prefix = randomPrefix('wsbad');

  beforeAll(async () => {
    fake = await startFakeWecomWs({ bots: { [BOT_ID]: 'another-secret' } });
    dify = await startFakeDify();
    node = await startTestService(
      settingsFor(fake, dify),
      // Readiness gives up on the bot after a lease and the back-off's cap: shortened here.
      { keyPrefix: prefix, longConnection: { heartbeatMs: 300, kickedWaitMs: 1500, backoffCapMs: 1000 } },
    );
  });
  afterAll(async () => {
    await node?.stop();
    await dify?.stop();
    await fake?.stop();
    await dropPrefix(prefix);
  });

  it('retries a refused secret with back-off, never in a tight loop, and /readyz says why', async () => {
    await fake.waitFor('two refusals', () => fake.subscribes.filter((s) => !s.accepted).length >= 2, 10_000);
    const started = Date.now();
    await fake.waitFor('three seconds', () => Date.now() - started > 3000, 5000);
    // 1 s, 2 s, 4 s…: a handful of attempts in these seconds, not hundreds.
    expect(fake.subscribes.length).toBeLessThan(8);
    const ready = await readyz(node);
    expect(ready.bots.default).toMatchObject({ mode: 'long-connection', connected: false });
    expect(ready.bots.default?.problem).toMatch(/refused/);
    // Never connected for longer than a lease (2 s) and the back-off's cap (1 s here): not ready.
    expect(ready.status).toBe('not ready');
    expect((await fetch(`${node.url}/readyz`)).status).toBe(503);
  });
});

describe('the stream window, a kick, a silent WeCom', () => {
  let fake: FakeWecomWs;
  let dify: FakeDify;
  let node: TestService;
  const prefix = randomPrefix('wswin');

  beforeAll(async () => {
    fake = await startFakeWecomWs({ bots: { [BOT_ID]: SECRET } });
    dify = await startFakeDify();
    node = await startTestService(
      settingsFor(fake, dify, { STREAM_WINDOW_SECONDS: '5', WINDOW_MARGIN_SECONDS: '2' }),
      { keyPrefix: prefix, longConnection: { heartbeatMs: 300, kickedWaitMs: 1500, outboxEveryMs: 50 } },
    );
    await fake.waitFor('subscribed', () => fake.subscribed(BOT_ID) !== undefined, 10_000);
  });
  afterAll(async () => {
    await node?.stop();
    await dify?.stop();
    await fake?.stop();
    await dropPrefix(prefix);
  });

  it('closes the bubble at the window and sends the rest with aibot_send_msg, once', async () => {
    const pieces = Array.from({ length: 30 }, (_, i) => `片段${i + 1}；`);
    dify.script({ kind: 'answer', pieces, frameDelayMs: 200 });
    const reqId = fake.message(BOT_ID, {
      msgtype: 'text',
      text: { content: '讲很久' },
      from: { userid: 'wangwu' },
    });
    await fake.waitFor(
      'the rest sent',
      () =>
        fake
          .sent()
          .some((f) => String((f.body?.markdown as { content?: string })?.content).includes('片段30；')),
      20_000,
    );
    const frames = streamFrames(fake.repliesTo(reqId));
    const last = frames.at(-1);
    expect(last?.body?.stream?.finish).toBe(true);
    expect(frames.filter((f) => f.body?.stream?.finish)).toHaveLength(1);
    const shown = String(last?.body?.stream?.content ?? '');
    expect(shown).not.toContain('片段30；');
    const sent = fake.sent();
    expect(sent).toHaveLength(1);
    expect(sent[0]?.body).toMatchObject({ chatid: 'wangwu', msgtype: 'markdown' });
  });

  it('waits after a kick before subscribing again, and says why meanwhile', async () => {
    const before = fake.subscribes.length;
    const kickedAt = Date.now();
    fake.kick(BOT_ID);
    await fake.waitFor('a second', () => Date.now() - kickedAt > 1000, 3000);
    expect(fake.subscribes.length).toBe(before);
    const ready = await readyz(node);
    expect(ready.bots.default?.connected).toBe(false);
    expect(ready.bots.default?.problem).toMatch(/kicked/);
    await fake.waitFor('subscribed again', () => fake.subscribed(BOT_ID) !== undefined, 10_000);
    expect(fake.subscribes.length).toBe(before + 1);
  });

  it('reconnects when WeCom stops answering pings', async () => {
    const connection = fake.subscribed(BOT_ID);
    fake.silence(BOT_ID);
    await fake.waitFor(
      'a new connection',
      () => {
        const now = fake.subscribed(BOT_ID);
        return now !== undefined && now !== connection;
      },
      10_000,
    );
    const reqId = fake.message(BOT_ID, { msgtype: 'text', text: { content: '还在吗' } });
    await fake.waitFor('answered', () =>
      streamFrames(fake.repliesTo(reqId)).some((f) => f.body?.stream?.finish),
    );
  });
});

describe('the holder killed mid-answer', () => {
  let fake: FakeWecomWs;
  let dify: FakeDify;
  let nodes: NodeProcess[] = [];
  const prefix = randomPrefix('wskill');

  beforeAll(async () => {
    fake = await startFakeWecomWs({ bots: { [BOT_ID]: SECRET } });
    dify = await startFakeDify();
    const env = settingsFor(fake, dify, { REDIS_KEY_PREFIX: prefix });
    nodes = await Promise.all([
      startNode(`wskill-a-${prefix.slice(-9, -1)}`, env),
      startNode(`wskill-b-${prefix.slice(-9, -1)}`, env),
    ]);
    await fake.waitFor('subscribed', () => fake.subscribed(BOT_ID) !== undefined, 15_000);
  });
  afterAll(async () => {
    await stopNodes(nodes);
    await dify?.stop();
    await fake?.stop();
    await dropPrefix(prefix);
  });

  it('another node takes the connection within the lease, and the answer reaches the user once', async () => {
    const pieces = Array.from({ length: 40 }, (_, i) => `句${i + 1}。`);
    dify.setDefault({ kind: 'answer', pieces, frameDelayMs: 60 });
    const reqId = fake.message(BOT_ID, {
      msgtype: 'text',
      text: { content: '杀掉也要答完' },
      from: { userid: 'zhao' },
    });
    await fake.waitFor('frames flowing', () => streamFrames(fake.repliesTo(reqId)).length >= 2, 10_000);
    const holder = (await (await fetch(`${nodes[0]!.url}/readyz`)).json()) as Ready;
    const holding = nodes.find((n) => n.id === holder.bots.default?.holder)!;
    const other = nodes.find((n) => n !== holding)!;
    const killedAt = Date.now();
    holding.kill('SIGKILL');
    await holding.exited;
    await fake.waitFor(
      'the other node subscribed',
      () => fake.subscribes.filter((s) => s.accepted).length >= 2,
      15_000,
    );
    // LEASE_SECONDS (2) + a lease tick + the SDK's first connect.
    expect(Date.now() - killedAt).toBeLessThan(2000 + 5000);
    await fake.waitFor(
      'the answer delivered',
      () =>
        fake
          .sent()
          .some((f) => String((f.body?.markdown as { content?: string })?.content).includes('句40。')) ||
        streamFrames(fake.repliesTo(reqId)).some(
          (f) => f.body?.stream?.finish && String(f.body.stream.content).includes('句40。'),
        ),
      30_000,
    );
    const apart = fake
      .sent()
      .filter((f) => String((f.body?.markdown as { content?: string })?.content).includes('句40。'));
    expect(apart.length).toBeLessThanOrEqual(1);
    const ready = (await (await fetch(`${other.url}/readyz`)).json()) as Ready;
    expect(ready.bots.default?.holder).toBe(other.id);
    nodes = nodes.filter((n) => n !== holding);
  });
});
