// Two bots in one deployment, each with its own Token, AES key and Dify app, served by two nodes
// sharing the real Redis: each bot's questions reach only its own Dify with its own key, on its own
// path or on the one shared URL; a callback signed for one bot is refused on the other's path; the
// same user keeps one conversation per bot, and the same msgid in two bots is two messages.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { logLines } from './support/logLines.js';
import { dropPrefix, randomPrefix, redisUrl, startTestService, type TestService } from './support/service.js';
import { randomMsgid, type StreamReplyJson, WecomClient } from './support/wecomClient.js';

const hr = {
  token: 'hrToken7',
  encodingAESKey: 'hRkEy0123456789abcdefghijklmnopqrstuvwxyzAB',
  aibotid: 'aib-hr-123',
};
const it_ = {
  token: 'itToken9',
  encodingAESKey: 'iTkEy0123456789abcdefghijklmnopqrstuvwxyzAB',
  aibotid: 'aib-it-456',
};

const botsYaml = (difyHr: string, difyIt: string) => `
bots:
  - id: hr
    name: HR 助手
    aibotid: ${hr.aibotid}
    callback:
      token: \${HR_WECOM_TOKEN}
      encodingAesKey: \${HR_WECOM_AES_KEY}
    dify:
      apiUrl: ${difyHr}
      apiKey: \${HR_DIFY_KEY}
    welcomeText: 你好，我是 HR 助手
  - id: it
    callback:
      token: \${IT_WECOM_TOKEN}
      encodingAesKey: \${IT_WECOM_AES_KEY}
    dify:
      apiUrl: ${difyIt}
      apiKey: \${IT_DIFY_KEY}
`;

interface Line {
  msg: string;
  bot?: string;
  outcome?: string;
  streamId?: string;
}

describe('two bots in one deployment, two nodes', () => {
  const prefix = randomPrefix('bots');
  const dir = mkdtempSync(join(tmpdir(), 'wd-bots-'));
  const { lines, sink } = logLines<Line>();
  let difyHr: FakeDify;
  let difyIt: FakeDify;
  const nodes: TestService[] = [];
  /** WeCom as each bot, on its own path and on the shared one, towards each node. */
  const client = (node: number, bot: typeof hr, path?: string) =>
    new WecomClient({
      baseUrl: nodes[node]!.url,
      token: bot.token,
      encodingAESKey: bot.encodingAESKey,
      botId: bot.aibotid,
      ...(path ? { path } : {}),
    });

  beforeAll(async () => {
    difyHr = await startFakeDify({ apiKey: 'app-hr' });
    difyIt = await startFakeDify({ apiKey: 'app-it' });
    difyHr.setDefault({ kind: 'answer', echo: 'HR 答：{query}' });
    difyIt.setDefault({ kind: 'answer', echo: 'IT 答：{query}' });
    const file = join(dir, 'bots.yaml');
    writeFileSync(file, botsYaml(difyHr.url, difyIt.url));
    const env = {
      REDIS_URL: redisUrl,
      WECOM_BOTS_FILE: file,
      HR_WECOM_TOKEN: hr.token,
      HR_WECOM_AES_KEY: hr.encodingAESKey,
      HR_DIFY_KEY: 'app-hr',
      IT_WECOM_TOKEN: it_.token,
      IT_WECOM_AES_KEY: it_.encodingAESKey,
      IT_DIFY_KEY: 'app-it',
      LOG_LEVEL: 'info',
    };
    nodes.push(await startTestService(env, { keyPrefix: prefix, logTo: sink }));
    nodes.push(await startTestService(env, { keyPrefix: prefix }));
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    await Promise.all([difyHr?.stop(), difyIt?.stop()]);
    await dropPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves each bot from its own file entry, and no default bot', () => {
    expect(nodes[0]!.config.bots.map((b) => b.id)).toEqual(['hr', 'it']);
  });

  it("asks each bot's own Dify with its own key, on its own path and on the shared URL, polled on either node", async () => {
    const hrOwn = await client(0, hr, '/wecom/callback/hr').text('年假怎么请？', { userid: 'zhangsan' });
    const itShared = await client(1, it_).text('VPN 连不上', { userid: 'lisi' });
    expect(hrOwn.status).toBe(200);
    expect(itShared.status).toBe(200);
    const hrStream = hrOwn.reply!.stream!.id;
    const itStream = itShared.reply!.stream!.id;
    // Polled on the other node, through the shared URL and the own path in turn.
    const hrDone = await client(1, hr).pollUntilFinished(hrStream, { userid: 'zhangsan' });
    const itDone = await client(0, it_, '/wecom/callback/it').pollUntilFinished(itStream, { userid: 'lisi' });
    expect(hrDone.reply.stream.content).toBe('HR 答：年假怎么请？');
    expect(itDone.reply.stream.content).toBe('IT 答：VPN 连不上');

    const queries = (dify: FakeDify) => dify.runs().map((r) => (r.body as { query: string }).query);
    expect(queries(difyHr)).toContain('年假怎么请？');
    expect(queries(difyHr)).not.toContain('VPN 连不上');
    expect(queries(difyIt)).toContain('VPN 连不上');
    expect(queries(difyIt)).not.toContain('年假怎么请？');
    expect(new Set(difyHr.runs().map((r) => r.headers.authorization))).toEqual(new Set(['Bearer app-hr']));
    expect(new Set(difyIt.runs().map((r) => r.headers.authorization))).toEqual(new Set(['Bearer app-it']));

    // The callback line names the bot; /metrics counts by bot.
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: 'callback', bot: 'hr', outcome: 'accepted' }),
    );
    const metrics = await (await fetch(`${nodes[0]!.url}/metrics`)).text();
    expect(metrics).toMatch(/^wecom_dify_streams_opened_total\{bot="hr"\} [1-9]/m);
    expect(metrics).toMatch(/^wecom_dify_callbacks_total\{bot="hr",msgtype="text",outcome="accepted"\} 1$/m);
    expect(metrics).toMatch(/^wecom_dify_poll_duration_seconds_count\{bot="it"\} [1-9]/m);
  });

  it("refuses a callback signed for one bot on the other's path (401), an unknown bot (404), a Token nobody has (401)", async () => {
    const before = difyHr.runs().length + difyIt.runs().length;
    const cross = await client(0, hr, '/wecom/callback/it').text('串门', { userid: 'zhangsan' });
    expect(cross.status).toBe(401);
    const unknown = await client(0, hr, '/wecom/callback/sales').text('谁在', { userid: 'zhangsan' });
    expect(unknown.status).toBe(404);
    const stranger = { ...hr, token: 'nobodysToken' };
    expect((await client(1, stranger).text('我是谁', { userid: 'x' })).status).toBe(401);
    expect(difyHr.runs().length + difyIt.runs().length).toBe(before);
    // The URL check (GET) the same way: own path, shared URL, and the wrong bot's path.
    expect((await client(0, hr, '/wecom/callback/hr').verifyUrl('hr-echo')).status).toBe(200);
    expect((await client(1, it_).verifyUrl('it-echo')).body).toBe('it-echo');
    expect((await client(0, it_, '/wecom/callback/hr').verifyUrl('x')).status).toBe(401);
    expect((await client(0, it_, '/wecom/callback/nope').verifyUrl('x')).status).toBe(404);
  });

  it("refuses a callback whose aibotid is not the bot's, and welcomes with each bot's own text", async () => {
    const wrong = await new WecomClient({
      baseUrl: nodes[0]!.url,
      token: hr.token,
      encodingAESKey: hr.encodingAESKey,
      botId: 'aib-somebody-else',
    }).text('你好', { userid: 'zhangsan' });
    expect(wrong.status).toBe(403);
    const hrWelcome = await client(0, hr).event('enter_chat', {}, { userid: 'zhangsan' });
    expect(hrWelcome.reply).toEqual({ msgtype: 'text', text: { content: '你好，我是 HR 助手' } });
    const itWelcome = await client(0, it_).event('enter_chat', {}, { userid: 'zhangsan' });
    expect(itWelcome.reply).toEqual({
      msgtype: 'text',
      text: { content: nodes[0]!.config.bots[1]!.welcomeText },
    });
    expect(itWelcome.reply?.text?.content).not.toBe('你好，我是 HR 助手');
  });

  it('keeps one Dify conversation per bot for the same user', async () => {
    const ask = async (bot: typeof hr, node: number, text: string) => {
      const sent = await client(node, bot).text(text, { userid: 'wangwu' });
      await client(1 - node, bot).pollUntilFinished(sent.reply!.stream!.id, { userid: 'wangwu' });
    };
    const runsOf = (dify: FakeDify, query: string) =>
      dify.runs().find((r) => (r.body as { query: string }).query === query)!.body as {
        conversation_id?: string;
        user: string;
      };
    await ask(hr, 0, '第一问 HR');
    await ask(it_, 1, '第一问 IT');
    await ask(hr, 1, '第二问 HR');
    await ask(it_, 0, '第二问 IT');
    // The first question of each bot starts a conversation; the second continues that bot's own.
    expect(runsOf(difyHr, '第一问 HR').conversation_id ?? '').toBe('');
    expect(runsOf(difyIt, '第一问 IT').conversation_id ?? '').toBe('');
    const hrConversation = runsOf(difyHr, '第二问 HR').conversation_id;
    const itConversation = runsOf(difyIt, '第二问 IT').conversation_id;
    expect(difyHr.conversations.has(hrConversation!)).toBe(true);
    expect(difyIt.conversations.has(itConversation!)).toBe(true);
    expect(hrConversation).not.toBe(itConversation);
    expect(runsOf(difyHr, '第二问 HR').user).toBe('wangwu');
    expect(runsOf(difyIt, '第二问 IT').user).toBe('wangwu');
  });

  it('takes the same msgid in two bots as two messages, and a retry within one bot as the same', async () => {
    const msgid = randomMsgid();
    const toHr = await client(0, hr).text('同一个 msgid', { userid: 'zhaoliu', msgid });
    const toIt = await client(1, it_).text('同一个 msgid', { userid: 'zhaoliu', msgid });
    const hrStream = toHr.reply!.stream!.id;
    const itStream = toIt.reply!.stream!.id;
    expect(hrStream).not.toBe(itStream);
    const [hrDone, itDone] = await Promise.all([
      client(1, hr).pollUntilFinished(hrStream, { userid: 'zhaoliu' }),
      client(0, it_).pollUntilFinished(itStream, { userid: 'zhaoliu' }),
    ]);
    expect(hrDone.reply.stream.content).toBe('HR 答：同一个 msgid');
    expect(itDone.reply.stream.content).toBe('IT 答：同一个 msgid');
    // WeCom retrying hr's callback, on the other node: the same stream, Dify not asked again.
    const retried = await client(1, hr, '/wecom/callback/hr').text('同一个 msgid', {
      userid: 'zhaoliu',
      msgid,
    });
    expect((retried.reply as StreamReplyJson).stream.id).toBe(hrStream);
    const count = (dify: FakeDify) =>
      dify.runs().filter((r) => (r.body as { query: string }).query === '同一个 msgid').length;
    expect(count(difyHr)).toBe(1);
    expect(count(difyIt)).toBe(1);
  });
});
