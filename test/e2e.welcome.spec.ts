// The welcome a user gets on opening the bot's chat (`enter_chat`), through the real service on the
// real Redis: with WELCOME=dify (the default) the Dify app's opening statement and suggested questions
// as a card whose buttons ask them, over a callback and over the long connection; WELCOME_TEXT, still within WeCom's 5 s, when Dify is
// down or does not answer; and always WELCOME_TEXT with WELCOME=text.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closedPort } from './auth/support.js';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { type FakeWecomWs, startFakeWecomWs } from './support/fakeWecomWs.js';
import { startResponseUrlReceiver } from './support/responseUrl.js';
import { dropPrefix, randomPrefix, redisUrl, startTestService, testBot } from './support/service.js';
import { WecomClient } from './support/wecomClient.js';

const WELCOME_TEXT = '欢迎！我是公司的 AI 助手。';
const opening = {
  opening_statement: '你好，我是报销助手，报销的事都可以问我。',
  suggested_questions: ['差旅怎么报销？', '发票丢了怎么办？'],
  user_input_form: [],
  file_upload: {},
};
/** The opening as a card: the statement, and a button per suggested question whose key asks it. */
const openingCard = {
  msgtype: 'template_card',
  template_card: {
    card_type: 'button_interaction',
    task_id: expect.stringMatching(/^wc_/),
    main_title: { title: '你好，我是报销助手，报销的事都可以问我。' },
    button_list: [
      { text: '差旅怎么报销？', style: 2, key: 'wq:差旅怎么报销？' },
      { text: '发票丢了怎么办？', style: 2, key: 'wq:发票丢了怎么办？' },
    ],
  },
};
/** WeCom takes the welcome within 5 s only (docs/protocol/wecom.md §6.6). */
const WECOM_WAITS_MS = 5_000;

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

/** A callback bot of the environment on its own Redis prefix, and WeCom to call it. */
async function callbackBot(env: Record<string, string>) {
  const keyPrefix = randomPrefix('welcome');
  const service = await startTestService({ REDIS_URL: redisUrl, WELCOME_TEXT, ...env }, { keyPrefix });
  stops.push(async () => {
    await service.stop();
    await dropPrefix(keyPrefix);
  });
  return new WecomClient({ baseUrl: service.url, ...testBot });
}

/** The welcome the bot answers `enter_chat` with, and how long it took. */
async function welcomeOf(wecom: WecomClient) {
  const started = performance.now();
  const result = await wecom.event('enter_chat', {}, { userid: 'zhangsan' });
  return { status: result.status, reply: result.reply, ms: performance.now() - started };
}

describe('the welcome of a callback bot', () => {
  let dify: FakeDify;
  beforeAll(async () => {
    dify = await startFakeDify({ parameters: opening });
  });
  afterAll(async () => {
    await dify?.stop();
  });

  it('is a card of the Dify app’s opening statement, a button per suggested question; a click asks it', async () => {
    const receiver = await startResponseUrlReceiver();
    stops.push(() => receiver.stop());
    const wecom = await callbackBot({ DIFY_API_URL: dify.url });
    const welcome = await welcomeOf(wecom);
    expect(welcome.status).toBe(200);
    expect(welcome.reply).toEqual(openingCard);
    dify.script({ kind: 'answer', text: '发票丢了可以补开。' });
    const url = receiver.url();
    const clicked = await wecom.event(
      'template_card_event',
      {
        card_type: 'button_interaction',
        event_key: 'wq:发票丢了怎么办？',
        task_id: welcome.reply.template_card.task_id,
      },
      { responseUrl: url },
    );
    expect(clicked.status).toBe(200);
    await expect
      .poll(
        () =>
          (receiver.delivered.find((d) => url.endsWith(d.code))?.body as { markdown?: { content?: string } })
            ?.markdown?.content,
      )
      .toBe('发票丢了可以补开。');
    expect((dify.runs().at(-1)!.body as { query?: string }).query).toBe('发票丢了怎么办？');
  });

  it('is WELCOME_TEXT, within WeCom’s 5 s, when Dify is down', async () => {
    const wecom = await callbackBot({ DIFY_API_URL: `http://127.0.0.1:${await closedPort()}/v1` });
    const welcome = await welcomeOf(wecom);
    expect(welcome.reply).toEqual({ msgtype: 'text', text: { content: WELCOME_TEXT } });
    expect(welcome.ms).toBeLessThan(WECOM_WAITS_MS);
  });

  it('is WELCOME_TEXT, within WeCom’s 5 s, when Dify does not answer', async () => {
    const silent = await startFakeDify({ parameters: opening });
    stops.push(() => silent.stop());
    // The lookup made at start never gets an answer: the welcome waits for it only so long.
    silent.script({ kind: 'hang' }, 'parameters');
    const wecom = await callbackBot({ DIFY_API_URL: silent.url });
    await expect.poll(() => silent.requests.some((r) => r.path === '/v1/parameters')).toBe(true);
    const welcome = await welcomeOf(wecom);
    expect(welcome.reply).toEqual({ msgtype: 'text', text: { content: WELCOME_TEXT } });
    expect(welcome.ms).toBeLessThan(WECOM_WAITS_MS);
  });

  it('is WELCOME_TEXT with WELCOME=text, and Dify is not asked for an opening', async () => {
    const asked = dify.requests.length;
    const wecom = await callbackBot({ DIFY_API_URL: dify.url, WELCOME: 'text' });
    const welcome = await welcomeOf(wecom);
    expect(welcome.reply).toEqual({ msgtype: 'text', text: { content: WELCOME_TEXT } });
    expect(dify.requests.slice(asked).filter((r) => r.path === '/v1/parameters')).toEqual([]);
  });
});

describe('the welcome of a long-connection bot', () => {
  const BOT_ID = 'aib-welcome-test';
  const SECRET = 'the-welcome-secret';
  let fake: FakeWecomWs;
  let dify: FakeDify;
  beforeAll(async () => {
    fake = await startFakeWecomWs({ bots: { [BOT_ID]: SECRET } });
    dify = await startFakeDify({ parameters: opening });
  });
  afterAll(async () => {
    await dify?.stop();
    await fake?.stop();
  });

  /** A long-connection bot on its own prefix, on Dify at `difyUrl`, subscribed when this returns. */
  async function wsBot(difyUrl: string): Promise<void> {
    const keyPrefix = randomPrefix('welcome-ws');
    const before = fake.subscribes.filter((x) => x.accepted).length;
    const service = await startTestService(
      {
        REDIS_URL: redisUrl,
        WECOM_MODE: 'long-connection',
        WECOM_BOT_ID: BOT_ID,
        WECOM_BOT_SECRET: SECRET,
        WECOM_WS_URL: fake.url,
        DIFY_API_URL: difyUrl,
        WELCOME_TEXT,
      },
      { keyPrefix, longConnection: { heartbeatMs: 300 } },
    );
    stops.push(async () => {
      await service.stop();
      await dropPrefix(keyPrefix);
    });
    await fake.waitFor(
      'the bot subscribed',
      () => fake.subscribes.filter((x) => x.accepted).length > before,
      10_000,
    );
  }

  it('answers enter_chat with aibot_respond_welcome_msg carrying the Dify app’s opening', async () => {
    await wsBot(dify.url);

    const reqId = fake.event(BOT_ID, 'enter_chat');
    await fake.waitFor('the welcome', () => fake.repliesTo(reqId).length > 0, WECOM_WAITS_MS);
    const [welcome] = fake.repliesTo(reqId);
    expect(welcome?.cmd).toBe('aibot_respond_welcome_msg');
    expect(welcome?.body).toEqual(openingCard);
    const ack = fake.received.find((r) => r.frame.headers?.req_id === reqId)?.ack;
    expect(ack?.errcode).toBe(0);
  });

  it('answers with WELCOME_TEXT, within WeCom’s 5 s, when Dify is down', async () => {
    await wsBot(`http://127.0.0.1:${await closedPort()}/v1`);
    const started = Date.now();
    const reqId = fake.event(BOT_ID, 'enter_chat');
    await fake.waitFor('the welcome', () => fake.repliesTo(reqId).length > 0, WECOM_WAITS_MS);
    expect(Date.now() - started).toBeLessThan(WECOM_WAITS_MS);
    expect(fake.repliesTo(reqId)[0]?.body).toEqual({ msgtype: 'text', text: { content: WELCOME_TEXT } });
  });
});
