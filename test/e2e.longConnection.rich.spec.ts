// Answers that are more than text, over the long connection: a stream frame carries neither images nor
// a card in this mode, so after the finishing frame each image of the answer is uploaded
// (aibot_upload_media_*) and sent on the message's req_id, and then the card (a form's buttons, the
// questions Dify suggests). A click comes as an event: the card's new look goes back on its req_id
// (aibot_respond_update_msg), and the answer it asked for is sent as a message of its own.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { type FakeWecomWs, startFakeWecomWs, type WsFrame } from './support/fakeWecomWs.js';
import { dropPrefix, randomPrefix, redisUrl, startTestService } from './support/service.js';
import { thinkingFrames } from './support/thinkingFrames.js';

const BOT_ID = 'aib-ws-rich';
const SECRET = 'the-ws-rich-secret';
const png = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

const pdf = Buffer.from('%PDF-1.4\n% a report\n');

const finished = (frames: WsFrame[]) =>
  frames.some((f) => f.cmd === 'aibot_respond_msg' && f.body?.msgtype === 'stream' && f.body.stream?.finish);

/** A long-connection bot on a fake WeCom and a fake Dify, subscribed; `stop` undoes it all. */
async function wsBot(
  name: string,
  bot: { id: string; secret: string },
  dify: FakeDify,
  env: Record<string, string> = {},
): Promise<{ fake: FakeWecomWs; stop(): Promise<void> }> {
  const fake = await startFakeWecomWs({ bots: { [bot.id]: bot.secret } });
  const prefix = randomPrefix(name);
  const node = await startTestService(
    {
      REDIS_URL: redisUrl,
      WECOM_MODE: 'long-connection',
      WECOM_BOT_ID: bot.id,
      WECOM_BOT_SECRET: bot.secret,
      WECOM_WS_URL: fake.url,
      WECOM_WS_FRAME_INTERVAL_MS: '100',
      DIFY_API_URL: dify.url,
      ...env,
    },
    { keyPrefix: prefix, longConnection: { heartbeatMs: 300, outboxEveryMs: 50 } },
  );
  await fake.waitFor('subscribed', () => fake.subscribed(bot.id) !== undefined, 10_000);
  return {
    fake,
    async stop() {
      await node.stop();
      await fake.stop();
      await dropPrefix(prefix);
    },
  };
}

describe('thinking hidden over the long connection (THINKING=hide)', () => {
  const botId = 'aib-ws-hide';
  let fake: FakeWecomWs;
  let dify: FakeDify;
  let bot: Awaited<ReturnType<typeof wsBot>> | undefined;
  beforeAll(async () => {
    dify = await startFakeDify();
    bot = await wsBot('ws-hide', { id: botId, secret: 'the-ws-hide-secret' }, dify, { THINKING: 'hide' });
    fake = bot.fake;
  });
  afterAll(async () => {
    await bot?.stop();
    await dify?.stop();
  });

  it('leaves the answer alone in the bubble, in every frame', async () => {
    dify.script({ kind: 'frames', frames: thinkingFrames });
    const reqId = fake.message(botId, { msgtype: 'text', text: { content: '天气如何' } });
    await fake.waitFor('the answer', () => finished(fake.repliesTo(reqId)), 10_000);
    const contents = fake.repliesTo(reqId).map((f) => String(f.body?.stream?.content ?? ''));
    expect(contents.at(-1)).toBe('今天晴。');
    expect(contents.some((c) => c.includes('think') || c.includes('用户问天气'))).toBe(false);
  });
});

describe('rich answers over the long connection', () => {
  let fake: FakeWecomWs;
  let dify: FakeDify;
  let bot: Awaited<ReturnType<typeof wsBot>> | undefined;

  beforeAll(async () => {
    dify = await startFakeDify({ suggested: ['还能做什么？'] });
    dify.serve('/files/tools/chart.png', png);
    dify.serve('/files/tools/report.pdf', pdf, 'application/pdf');
    bot = await wsBot('ws-rich', { id: BOT_ID, secret: SECRET }, dify);
    fake = bot.fake;
  });
  afterAll(async () => {
    await bot?.stop();
    await dify?.stop();
  });

  it('sends the bubble, then its image uploaded, then the suggested questions; a click asks one', async () => {
    dify.script({
      kind: 'answer',
      text: '图表在下面。',
      files: [
        { type: 'image', url: '/files/tools/chart.png?sign=x' },
        { type: 'document', url: '/files/tools/report.pdf?sign=y', filename: '报告.pdf' },
      ],
    });
    const reqId = fake.message(BOT_ID, { msgtype: 'text', text: { content: '画个图表' } });
    await fake.waitFor(
      'the card after the bubble',
      () => fake.repliesTo(reqId).some((f) => f.body?.msgtype === 'template_card'),
      10_000,
    );
    const replies = fake.repliesTo(reqId);
    const kinds = replies.map((f) => `${f.body?.msgtype}${f.body?.stream?.finish ? ':finish' : ''}`);
    // The bubble (its frames), then the image, the file, the card: in that order, each once.
    expect(kinds.slice(-4)).toEqual(['stream:finish', 'image', 'file', 'template_card']);
    const last = replies.find((f) => f.body?.stream?.finish);
    expect(last?.body?.stream).not.toHaveProperty('msg_item');
    expect(last?.body?.stream?.content).toBe('图表在下面。');
    const [uploaded, report] = fake.media();
    expect(uploaded?.type).toBe('image');
    // The document goes as a file, with its name, not as a link in the bubble.
    expect(report).toMatchObject({ type: 'file', filename: '报告.pdf', data: pdf });
    expect(replies.find((f) => f.body?.msgtype === 'file')?.body).toEqual({
      msgtype: 'file',
      file: { media_id: report!.mediaId },
    });
    expect(createHash('md5').update(uploaded!.data).digest('hex')).toBe(
      createHash('md5').update(png).digest('hex'),
    );
    expect(replies.find((f) => f.body?.msgtype === 'image')?.body).toEqual({
      msgtype: 'image',
      image: { media_id: uploaded!.mediaId },
    });
    const card = replies.find((f) => f.body?.msgtype === 'template_card')?.body?.template_card as {
      task_id: string;
      button_list: Array<{ text: string; key: string }>;
    };
    expect(card.button_list).toEqual([{ text: '还能做什么？', style: 2, key: 'sq:0' }]);

    dify.script({ kind: 'answer', text: '我还能画流程图。' });
    const click = fake.event(BOT_ID, 'template_card_event', {
      card_type: 'button_interaction',
      event_key: 'sq:0',
      task_id: card.task_id,
    });
    await fake.waitFor('the card updated', () => fake.repliesTo(click).length > 0, 5_000);
    expect(fake.repliesTo(click)[0]).toMatchObject({
      cmd: 'aibot_respond_update_msg',
      body: {
        response_type: 'update_template_card',
        template_card: { sub_title_text: '已提问：还能做什么？' },
      },
    });
    await fake.waitFor(
      'the answer as a message',
      () => fake.sent().some((f) => f.body?.msgtype === 'markdown'),
      10_000,
    );
    expect(fake.sent().find((f) => f.body?.msgtype === 'markdown')?.body).toMatchObject({
      chatid: 'zhangsan',
      markdown: { content: '我还能画流程图。' },
    });
  });

  it('shows a reasoning model’s thinking in closed blocks above the answer (THINKING=show)', async () => {
    dify.script({ kind: 'frames', frames: thinkingFrames });
    const reqId = fake.message(BOT_ID, { msgtype: 'text', text: { content: '天气如何' } });
    await fake.waitFor('the answer', () => finished(fake.repliesTo(reqId)), 10_000);
    const last = fake.repliesTo(reqId).find((f) => f.body?.stream?.finish);
    expect(last?.body?.stream?.content).toBe(
      '<think>用户问天气，查一下。</think>\n<think>再确认</think>\n今天晴。',
    );
  });

  it('sends a paused form as a card after the bubble; a click resumes the run', async () => {
    dify.script({
      kind: 'answer',
      flavour: 'chatflow',
      text: '报销单已生成。',
      humanInput: { title: '报销审批', content: '金额 ¥320，请审批。', resumeText: '已{action}。' },
    });
    const reqId = fake.message(BOT_ID, {
      msgtype: 'text',
      text: { content: '报销 320 元' },
      from: { userid: 'ws-user' },
    });
    await fake.waitFor(
      'the card',
      () =>
        finished(fake.repliesTo(reqId)) &&
        fake.repliesTo(reqId).some((f) => f.body?.msgtype === 'template_card'),
      10_000,
    );
    const card = fake.repliesTo(reqId).find((f) => f.body?.msgtype === 'template_card')?.body
      ?.template_card as {
      task_id: string;
      main_title: { title: string };
    };
    expect(card.main_title.title).toBe('报销审批');
    const before = fake.sent().length;
    const click = fake.event(
      BOT_ID,
      'template_card_event',
      { card_type: 'button_interaction', event_key: 'in:reject', task_id: card.task_id },
      { from: { userid: 'boss' } },
    );
    await fake.waitFor('the card updated', () => fake.repliesTo(click).length > 0, 5_000);
    expect(fake.repliesTo(click)[0]?.body).toMatchObject({
      template_card: { main_title: { desc: 'boss 选择了「拒绝」' } },
    });
    await fake.waitFor('the resumed answer', () => fake.sent().length > before, 10_000);
    expect(fake.sent().at(-1)?.body).toMatchObject({ chatid: 'ws-user', markdown: { content: '已拒绝。' } });
    const submit = dify.requests.find((r) => r.path.startsWith('/v1/form/human_input/'));
    expect(submit?.body).toMatchObject({ action: 'reject', user: 'ws-user' });
  });
});
