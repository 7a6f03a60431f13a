// The Dify app's opening (`GET /parameters`, docs/protocol/dify.md §2.6) against the fake Dify: read
// with the app key, every failure a value with a code, bounded in time and size; and the welcome
// built on it: rendered as text, waited for briefly, kept, refreshed in the background, and the
// welcome text wherever Dify has nothing to say in time.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  DifyWelcome,
  type DifyWelcomeOptions,
  renderWelcome,
  textWelcomeReply,
} from '../src/bots/welcome.js';
import { fetchDifyParameters, openingOf } from '../src/dify/parameters.js';
import { closedPort } from './auth/support.js';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';

const opening = {
  opening_statement: '你好，我是报销助手。',
  suggested_questions: ['差旅怎么报销？', '发票丢了怎么办？'],
  user_input_form: [],
  file_upload: {},
};

let dify: FakeDify;
const parametersAsked = () => dify.requests.filter((r) => r.path === '/v1/parameters').length;

beforeAll(async () => {
  dify = await startFakeDify({ apiKey: 'app-welcome', parameters: opening });
});
afterAll(async () => {
  await dify.stop();
});
afterEach(() => {
  dify.requests.length = 0;
});

const settings = (over: Partial<{ apiUrl: string; apiKey: string; timeoutMs: number }> = {}) => ({
  apiUrl: dify.url,
  apiKey: 'app-welcome',
  timeoutMs: 2_000,
  ...over,
});

describe('GET /parameters', () => {
  it('reads the opening statement and the suggested questions, asking with the app key and a user', async () => {
    const result = await fetchDifyParameters(settings());
    expect(result).toEqual({
      ok: true,
      opening: {
        openingStatement: opening.opening_statement,
        suggestedQuestions: opening.suggested_questions,
      },
    });
    const [asked] = dify.requests;
    expect(asked).toMatchObject({ method: 'GET', path: '/v1/parameters' });
    expect(asked?.headers.authorization).toBe('Bearer app-welcome');
    expect(asked?.query.user).toBeTruthy();
  });

  it('takes missing, null or odd fields as no opening, and drops blank questions', () => {
    expect(openingOf({ user_input_form: [] })).toEqual({ openingStatement: '', suggestedQuestions: [] });
    expect(openingOf({ opening_statement: null, suggested_questions: null })).toEqual({
      openingStatement: '',
      suggestedQuestions: [],
    });
    expect(openingOf({ opening_statement: ' 嗨 \n', suggested_questions: [' a ', '', '  '] })).toEqual({
      openingStatement: '嗨',
      suggestedQuestions: ['a'],
    });
    expect(openingOf({ opening_statement: 42, suggested_questions: 'a' })).toEqual({
      openingStatement: '',
      suggestedQuestions: [],
    });
    expect(openingOf('not an object')).toBeUndefined();
  });

  it('says a refused key with Dify’s code and status', async () => {
    const result = await fetchDifyParameters(settings({ apiKey: 'app-wrong' }));
    expect(result).toMatchObject({ ok: false, code: 'unauthorized', status: 401 });
  });

  it('says an unreachable Dify', async () => {
    const result = await fetchDifyParameters(
      settings({ apiUrl: `http://127.0.0.1:${await closedPort()}/v1` }),
    );
    expect(result).toMatchObject({ ok: false, code: 'unreachable', kind: 'unreachable' });
  });

  it('gives up on a Dify that does not answer at its deadline', async () => {
    dify.script({ kind: 'hang' }, 'parameters');
    const started = performance.now();
    const result = await fetchDifyParameters(settings({ timeoutMs: 300 }));
    expect(result).toMatchObject({ ok: false, code: 'timeout', kind: 'timeout' });
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('reads no more than its bound of a huge body', async () => {
    dify.script({ kind: 'json', body: { opening_statement: 'x'.repeat(400 * 1024) } }, 'parameters');
    const result = await fetchDifyParameters(settings());
    expect(result).toMatchObject({ ok: false, code: 'body_too_large' });
  });

  it('says a 200 that is not JSON (a proxy’s page) is not Dify’s answer', async () => {
    dify.script({ kind: 'html', status: 200 }, 'parameters');
    const result = await fetchDifyParameters(settings());
    expect(result).toMatchObject({ ok: false, code: 'http_error', status: 200 });
  });
});

describe('the welcome', () => {
  const WELCOME_TEXT = '你好，有什么可以帮你？';
  const welcomes: DifyWelcome[] = [];
  afterEach(async () => {
    await Promise.all(welcomes.splice(0).map((w) => w.close()));
  });
  const silent = { info() {}, warn() {} };
  const welcomeOn = (over: Partial<DifyWelcomeOptions> = {}) => {
    const w = new DifyWelcome({
      apiUrl: dify.url,
      apiKey: 'app-welcome',
      timeoutMs: 5_000,
      welcomeText: WELCOME_TEXT,
      logger: silent,
      ...over,
    });
    welcomes.push(w);
    return w;
  };
  /** The card of an app whose opening fits one: a title, and a button per question that asks it. */
  const rendered = {
    msgtype: 'template_card',
    template_card: {
      card_type: 'button_interaction',
      task_id: expect.stringMatching(/^wc_[\w-]{16}$/),
      main_title: { title: '你好，我是报销助手。' },
      button_list: [
        { text: '差旅怎么报销？', style: 2, key: 'wq:差旅怎么报销？' },
        { text: '发票丢了怎么办？', style: 2, key: 'wq:发票丢了怎么办？' },
      ],
    },
  };

  it('is a card of the opening statement with a button per suggested question, when it fits one', () => {
    expect(
      renderWelcome(
        { openingStatement: '嗨，我是助手\n我能回答报销问题。', suggestedQuestions: ['a', 'b'] },
        WELCOME_TEXT,
      ),
    ).toEqual({
      msgtype: 'template_card',
      template_card: {
        card_type: 'button_interaction',
        task_id: expect.any(String),
        main_title: { title: '嗨，我是助手' },
        sub_title_text: '我能回答报销问题。',
        button_list: [
          { text: 'a', style: 2, key: 'wq:a' },
          { text: 'b', style: 2, key: 'wq:b' },
        ],
      },
    });
  });

  it('is the opening statement, then the questions as a list, when the statement does not fit a card', () => {
    const long = `欢迎！\n${'这是一段很长的开场白。'.repeat(20)}`;
    expect(renderWelcome({ openingStatement: long, suggestedQuestions: ['a', 'b'] }, WELCOME_TEXT)).toEqual(
      textWelcomeReply(`${long}\n\n你可以问我：\n- a\n- b`),
    );
    expect(renderWelcome({ openingStatement: '嗨', suggestedQuestions: [] }, WELCOME_TEXT)).toEqual(
      textWelcomeReply('嗨'),
    );
  });

  it('is the welcome text for an app with no opening statement, questions or not', () => {
    expect(renderWelcome({ openingStatement: '', suggestedQuestions: ['a'] }, WELCOME_TEXT)).toEqual(
      textWelcomeReply(WELCOME_TEXT),
    );
  });

  it('gives each card it sends a task id of its own', async () => {
    const w = welcomeOn();
    const [a, b] = [await w.reply(), await w.reply()];
    expect(a).toEqual(rendered);
    expect(b).toEqual(rendered);
    expect((a as { template_card: { task_id: string } }).template_card.task_id).not.toBe(
      (b as { template_card: { task_id: string } }).template_card.task_id,
    );
  });

  it('waits for the first lookup, then answers from what it kept without asking Dify again', async () => {
    const w = welcomeOn();
    expect(await w.reply()).toEqual(rendered);
    expect(await w.reply()).toEqual(rendered);
    expect(parametersAsked()).toBe(1);
  });

  it('answers an old welcome at once and refreshes it in the background', async () => {
    let now = 0;
    const w = welcomeOn({ now: () => now, freshMs: 1_000 });
    expect(await w.reply()).toEqual(rendered);
    now = 1_000;
    dify.script({ kind: 'json', body: { opening_statement: '新的开场白' } }, 'parameters');
    expect(await w.reply()).toEqual(rendered);
    await expect.poll(() => w.reply()).toEqual(textWelcomeReply('新的开场白'));
    expect(parametersAsked()).toBe(2);
  });

  it('is the welcome text, within its wait, while Dify is slow; what Dify says later is kept', async () => {
    dify.script({ kind: 'hang' }, 'parameters');
    const w = welcomeOn({ waitMs: 200, timeoutMs: 500, retryMs: 0 });
    const started = performance.now();
    expect(await w.reply()).toEqual(textWelcomeReply(WELCOME_TEXT));
    expect(performance.now() - started).toBeLessThan(1_000);
    // The lookup gives up at its own deadline; the next one finds the opening.
    await expect.poll(() => w.reply(), { timeout: 3_000 }).toEqual(rendered);
  });

  it('is the welcome text at once, without asking again, for a while after Dify failed', async () => {
    const w = welcomeOn({ apiUrl: `http://127.0.0.1:${await closedPort()}/v1` });
    expect(await w.reply()).toEqual(textWelcomeReply(WELCOME_TEXT));
    const started = performance.now();
    expect(await w.reply()).toEqual(textWelcomeReply(WELCOME_TEXT));
    expect(performance.now() - started).toBeLessThan(100);
  });

  it('keeps the opening it had while Dify fails', async () => {
    let now = 0;
    const w = welcomeOn({ now: () => now, freshMs: 1_000 });
    w.warm();
    await expect.poll(() => parametersAsked()).toBe(1);
    expect(await w.reply()).toEqual(rendered);
    now = 1_000;
    dify.script({ kind: 'error', status: 500, code: 'internal_server_error' }, 'parameters');
    expect(await w.reply()).toEqual(rendered);
    await expect.poll(() => parametersAsked()).toBe(2);
    expect(await w.reply()).toEqual(rendered);
  });

  it('is warmed ahead of the first user', async () => {
    const w = welcomeOn();
    w.warm();
    await expect.poll(() => parametersAsked()).toBe(1);
    expect(await w.reply()).toEqual(rendered);
    expect(parametersAsked()).toBe(1);
  });
});
