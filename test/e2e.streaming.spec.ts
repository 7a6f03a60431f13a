// End to end, through HTTP: WeCom is played by the official @wecom/crypto package (test/support/
// wecomClient.ts), Dify by a local server speaking its real SSE (test/support/fakeDify.ts), and two
// service instances share the real Redis. A message lands on one node, the polls on the other.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defaultTexts } from '../src/machines/texts.js';
import { type E2E, startE2E } from './support/e2e.js';
import { type FakeDify, fixturesAvailable, readFixture } from './support/fakeDify.js';
import { redisUrl, startTestService, type TestService, testBot } from './support/service.js';
import { randomMsgid, WecomClient } from './support/wecomClient.js';

const f = defaultTexts.failures;

describe('a WeCom user asks, and the answer streams in across nodes', () => {
  let e: E2E;
  let dify: FakeDify;
  let a: TestService;
  let b: TestService;
  let toA: WecomClient;
  let toB: WecomClient;

  beforeAll(async () => {
    e = await startE2E({ name: 'e2e', nodes: 2, env: { DIFY_TIMEOUT_SECONDS: '5' } });
    ({ dify } = e);
    [a, b] = [e.nodes[0]!, e.nodes[1]!];
    [toA, toB] = [e.clients[0]!, e.clients[1]!];
  });
  afterEach(() => dify.setDefault({ kind: 'answer' }));
  afterAll(() => e?.stop());

  /** Send on A, poll on B until finished; the stream id and what the user saw. */
  async function ask(text: string, options: Parameters<WecomClient['text']>[1] = {}) {
    const sent = await toA.text(text, options);
    expect(sent.status).toBe(200);
    const streamId: string = sent.reply.stream.id;
    expect(sent.reply.stream.finish).toBe(false);
    const outcome = await toB.pollUntilFinished(streamId, { intervalMs: 50, timeoutMs: 20_000, ...options });
    return { streamId, sent, ...outcome, content: outcome.reply.stream.content };
  }

  it('a message to one node, polls to the other: the answer grows until finish:true with exactly Dify’s answer', async () => {
    const answer = '你好！这是一个分成很多小段、慢慢流出来的回答。🌏 Each piece arrives on its own.';
    dify.setDefault({ kind: 'answer', text: answer, frameDelayMs: 40 });
    const started = Date.now();
    const { sent, contents, content } = await ask('你好');
    expect(Date.now() - started).toBeLessThan(15_000);
    // AUTH_MODE=none: everyone may ask, so the first bubble says the bot thinks, not that it checks.
    expect(sent.reply.stream.content).toBe(defaultTexts.thinking);
    expect(content).toBe(answer);
    // Growing snapshots, never deltas: each is a prefix of the next.
    const texts = [
      ...new Set(contents.filter((c) => c !== defaultTexts.authenticating && c !== defaultTexts.thinking)),
    ];
    expect(texts.length).toBeGreaterThan(2);
    for (let i = 1; i < texts.length; i++) expect(texts[i]!.startsWith(texts[i - 1]!)).toBe(true);
  });

  it('a retried callback gets the same stream id, on either node, and Dify is asked once', async () => {
    dify.setDefault({ kind: 'answer', text: 'once only', frameDelayMs: 30 });
    const before = dify.runs().length;
    const msgid = randomMsgid();
    const first = await toA.text('重复的消息', { msgid });
    const [second, third] = await Promise.all([
      toB.text('重复的消息', { msgid }),
      toA.text('重复的消息', { msgid }),
    ]);
    const id = first.reply.stream.id;
    expect(second.reply.stream.id).toBe(id);
    expect(third.reply.stream.id).toBe(id);
    const { reply } = await toB.pollUntilFinished(id, { intervalMs: 50 });
    expect(reply.stream.content).toBe('once only');
    const late = await toB.text('重复的消息', { msgid });
    expect(late.reply.stream).toMatchObject({ id, finish: true, content: 'once only' });
    expect(dify.runs().length - before).toBe(1);
  });

  it('a follow-up question carries the conversation id of the first, per user', async () => {
    const userid = `conv-${Date.now()}`;
    dify.setDefault({ kind: 'answer', text: 'first answer' });
    await ask('第一个问题', { userid });
    const firstRun = dify.runs().at(-1)!;
    expect(firstRun.body).toMatchObject({ query: '第一个问题', user: userid, response_mode: 'streaming' });
    expect((firstRun.body as Record<string, unknown>).conversation_id).toBeUndefined();
    const conversation = [...dify.conversations].at(-1);
    dify.setDefault({ kind: 'answer', text: 'second answer' });
    await ask('第二个问题', { userid });
    expect(dify.runs().at(-1)!.body).toMatchObject({ query: '第二个问题', conversation_id: conversation });
    // Someone else starts their own conversation.
    await ask('别人的问题', { userid: `${userid}-other` });
    expect((dify.runs().at(-1)!.body as Record<string, unknown>).conversation_id).toBeUndefined();
  });

  it('a conversation Dify no longer knows is dropped and the question asked again without it', async () => {
    const userid = `gone-${Date.now()}`;
    await ask('开始', { userid });
    dify.forgetConversations();
    dify.setDefault({ kind: 'answer', text: 'fresh start' });
    const before = dify.runs().length;
    const { content } = await ask('还记得吗', { userid });
    expect(content).toBe('fresh start');
    const runs = dify.runs().slice(before);
    expect(runs).toHaveLength(2);
    expect((runs[0]!.body as Record<string, unknown>).conversation_id).toBeDefined();
    expect((runs[1]!.body as Record<string, unknown>).conversation_id).toBeUndefined();
  });

  it('a group message reaches Dify without the @mention, and its conversation is the chat and the user', async () => {
    dify.setDefault({ kind: 'answer', text: 'group answer' });
    const chatid = `chat-${Date.now()}`;
    const { content } = await ask('@智能助手 今天天气怎么样', { chatid, userid: 'lisi' });
    expect(content).toBe('group answer');
    expect(dify.runs().at(-1)!.body).toMatchObject({ query: '今天天气怎么样', user: 'lisi' });
    await ask('明天呢@智能助手', { chatid, userid: 'lisi' });
    expect(dify.runs().at(-1)!.body).toMatchObject({ query: '明天呢' });
    expect((dify.runs().at(-1)!.body as Record<string, unknown>).conversation_id).toBeDefined();
    // The same user alone with the bot is another conversation.
    await ask('私聊', { userid: 'lisi' });
    expect((dify.runs().at(-1)!.body as Record<string, unknown>).conversation_id).toBeUndefined();
  });

  describe('commands', () => {
    it('/help answers at once without Dify', async () => {
      const before = dify.runs().length;
      const sent = await toA.text('/help');
      expect(sent.reply.stream).toMatchObject({ finish: true, content: defaultTexts.help });
      expect(dify.runs().length).toBe(before);
    });

    it('/new forgets the conversation; /new <question> asks in a new one', async () => {
      const userid = `new-${Date.now()}`;
      await ask('一', { userid });
      await ask('二', { userid });
      expect((dify.runs().at(-1)!.body as Record<string, unknown>).conversation_id).toBeDefined();
      const reset = await toA.text('/new', { userid });
      expect(reset.reply.stream).toMatchObject({ finish: true, content: defaultTexts.newConversation });
      await ask('三', { userid });
      expect((dify.runs().at(-1)!.body as Record<string, unknown>).conversation_id).toBeUndefined();
      await ask('新对话 四', { userid });
      expect(dify.runs().at(-1)!.body).toMatchObject({ query: '四' });
      expect((dify.runs().at(-1)!.body as Record<string, unknown>).conversation_id).toBeUndefined();
    });

    it('/stop stops the answer being written, on whichever node it runs, and Dify is told', async () => {
      const userid = `stop-${Date.now()}`;
      dify.setDefault({
        kind: 'answer',
        text: 'a very long answer that goes on and on '.repeat(20),
        frameDelayMs: 50,
      });
      const sent = await toA.text('讲个长故事', { userid });
      const id: string = sent.reply.stream.id;
      await expect
        .poll(async () => (await toB.poll(id)).reply.stream.content.length, { timeout: 5000 })
        .toBeGreaterThan(20);
      const stop = await toB.text('/stop', { userid });
      expect(stop.reply.stream).toMatchObject({ finish: true, content: defaultTexts.stopped });
      const { reply } = await toB.pollUntilFinished(id, { intervalMs: 50 });
      expect(reply.stream.content).toMatch(new RegExp(`${f.stopped}$`));
      expect(reply.stream.content.length).toBeLessThan(800);
      await expect.poll(() => dify.requests.some((r) => r.path.endsWith('/stop'))).toBe(true);
      const nothing = await toA.text('停止', { userid });
      expect(nothing.reply.stream.content).toBe('现在没有正在生成的回答。');
    });
  });

  describe('every Dify failure ends the bubble with a clear text, and nothing is left running', () => {
    const cases: Array<[string, Parameters<FakeDify['setDefault']>[0], string]> = [
      [
        'an error frame mid-stream',
        { kind: 'answer', text: 'partial answer here', failAfter: 3 },
        f.dify_error!,
      ],
      [
        'EOF before a terminal event',
        { kind: 'answer', text: 'cut off answer', eofAfter: 3 },
        f.dify_interrupted!,
      ],
      [
        'a dropped connection mid-stream',
        { kind: 'answer', text: 'dropped answer', destroyAfter: 3 },
        f.dify_interrupted!,
      ],
      [
        '400 before the stream (app misconfigured)',
        { kind: 'error', status: 400, code: 'invalid_param' },
        f.dify_misconfigured!,
      ],
      ['401 (wrong key)', { kind: 'error', status: 401, code: 'unauthorized' }, f.dify_misconfigured!],
      ['quota exhausted', { kind: 'error', status: 400, code: 'provider_quota_exceeded' }, f.dify_quota!],
      [
        '429 past the retries',
        { kind: 'error', status: 429, code: 'too_many_requests' },
        f.dify_rate_limited!,
      ],
      ['500 past the retries', { kind: 'error', status: 500, code: 'internal_server_error' }, f.dify_error!],
      ['an HTML 502 from a proxy', { kind: 'html', status: 502 }, f.dify_error!],
      ['a hung Dify', { kind: 'hang', headers: true }, f.dify_timeout!],
    ];
    for (const [name, scenario, text] of cases) {
      it(name, async () => {
        dify.setDefault(scenario);
        const { content, streamId } = await ask(`问题：${name}`);
        expect(content.endsWith(text)).toBe(true);
        expect(content).not.toMatch(/Error|at \w+ \(|status|code/);
        await expect.poll(() => a.runner.inflight + b.runner.inflight).toBe(0);
        const loaded = await a.store.load(streamId);
        expect(loaded?.view.value).toBe('error');
        // Polls after the end keep saying the same.
        expect((await toA.poll(streamId)).reply.stream).toMatchObject({ finish: true, content });
      }, 20_000);
    }

    it('an unreachable Dify', async () => {
      const unreachable = await startTestService(
        { REDIS_URL: redisUrl, DIFY_API_URL: 'http://127.0.0.1:9/v1', WECOM_BOT_ID: testBot.botId },
        { keyPrefix: e.prefix },
      );
      try {
        const client = new WecomClient({ baseUrl: unreachable.url, ...testBot });
        const sent = await client.text('有人吗');
        const { reply } = await toB.pollUntilFinished(sent.reply.stream.id, { intervalMs: 100 });
        expect(reply.stream.content).toBe(f.dify_unreachable);
      } finally {
        await unreachable.stop();
      }
    }, 20_000);
  });

  describe.skipIf(!fixturesAvailable)(
    'the captured Dify streams, replayed end to end (../shared/fixtures)',
    () => {
      it('a real chatflow stream, re-chunked inside UTF-8 characters, shows its answer exactly', async () => {
        const raw = readFixture('real_chatflow_2026-04_orjson.sse').toString('utf8');
        const expected = raw
          .split('\n\n')
          .filter((frame) => frame.startsWith('data: '))
          .map((frame) => JSON.parse(frame.slice(6)))
          .filter((frame) => frame.event === 'message')
          .map((frame) => frame.answer)
          .join('');
        dify.setDefault({
          kind: 'fixture',
          file: 'real_chatflow_2026-04_orjson.sse',
          chunking: 'random',
          seed: 7,
          maxChunkBytes: 40,
        });
        const { content } = await ask('chatflow');
        expect(content).toBe(expected);
      });
    },
  );
});
