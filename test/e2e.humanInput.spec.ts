// Dify's human input from WeCom (callback mode): a chatflow that pauses on a form finishes its bubble
// with the form's buttons (stream_with_template_card); the first click answers the form, resumes the
// run and sends its answer as a message of its own (the click's response_url), and the card shows the
// choice and who made it; a later click, or one past the form's deadline, is told so. And the questions
// Dify suggests after an answer come as buttons that ask them.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORM_TIMEOUT_NOTE, PAUSED_NOTE } from '../src/dify/events.js';
import { isKnown, type StreamEvent } from '../src/machines/events.js';
import { defaultTexts } from '../src/machines/texts.js';
import { runInProcess } from './support/cliInProcess.js';
import { type E2E, startE2E } from './support/e2e.js';
import { startFakeDify } from './support/fakeDify.js';
import { type ResponseUrlReceiver, startResponseUrlReceiver } from './support/responseUrl.js';
import { redisUrl } from './support/service.js';

const png = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);

/** The markdown a response_url got, by the URL it was handed out as. */
function deliveredTo(receiver: ResponseUrlReceiver, url: string): string | undefined {
  const body = receiver.delivered.find((d) => url.endsWith(d.code))?.body as
    | { markdown?: { content?: string } }
    | undefined;
  return body?.markdown?.content;
}

describe('a Dify form from WeCom', () => {
  let e: E2E;
  let receiver: ResponseUrlReceiver;
  const events = async (id: string): Promise<StreamEvent[]> =>
    (await e.nodes[0]!.store.read(id)).map((s) => s.event).filter(isKnown);
  /** What `wecom-dify replay` prints for a stream. */
  const replay = async (id: string): Promise<string> => {
    const { code, stdout } = await runInProcess(['replay', id], {
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: e.prefix,
    });
    expect(code).toBe(0);
    return stdout;
  };

  beforeAll(async () => {
    receiver = await startResponseUrlReceiver();
    e = await startE2E({ name: 'human-input', nodes: 2 });
  });
  afterAll(async () => {
    await e?.stop();
    await receiver?.stop();
  });

  /** Ask, and poll until the bubble finishes (on the second node: any node answers). */
  async function askAndFinish(question: string, userid = 'zhangsan') {
    const sent = await e.clients[0]!.text(question, { userid });
    const id: string = sent.reply.stream.id;
    const { reply } = await e.clients[1]!.pollUntilFinished(id, { userid });
    return { id, reply };
  }

  it('finishes the bubble with the form and its buttons, and a click resumes the run', async () => {
    e.dify.script({
      kind: 'answer',
      flavour: 'chatflow',
      text: '草稿已写好。',
      humanInput: {
        title: '发布审批',
        content: '请确认是否发布这篇草稿。',
        resumeText: '已{action}，草稿已发布。',
      },
    });
    const { id, reply } = await askAndFinish('写一篇草稿并发布');
    expect(reply.msgtype).toBe('stream_with_template_card');
    expect(reply.stream.content).toBe('草稿已写好。\n\n请确认是否发布这篇草稿。');
    const card = reply.template_card as {
      task_id: string;
      button_list: Array<{ text: string; key: string }>;
    };
    expect(card).toMatchObject({ card_type: 'button_interaction', main_title: { title: '发布审批' } });
    expect(card.task_id).toBe(`in_${id}`);
    expect(card.button_list.map((b) => b.text)).toEqual(['同意', '拒绝']);
    const summary = await e.nodes[1]!.store.load(id);
    expect(summary?.view.value).toBe('waiting');
    // A stuck-looking stream's replay says who it waits for, and until when.
    const waiting = await replay(id);
    expect(waiting).toContain('input.required');
    expect(waiting).toContain('final state: waiting (waiting for a person)');
    expect(waiting).toMatch(
      /waits for a person to choose on the card "发布审批" \[同意 \/ 拒绝\]: asked of zhangsan/,
    );
    expect(waiting).toMatch(/its form expires at \S+ \(/);

    // Someone else in the chat clicks 同意, on the other node.
    const url = receiver.url();
    const clicked = await e.clients[1]!.event(
      'template_card_event',
      { card_type: 'button_interaction', event_key: card.button_list[0]!.key, task_id: card.task_id },
      { userid: 'lisi', responseUrl: url },
    );
    expect(clicked.reply).toMatchObject({
      response_type: 'update_template_card',
      template_card: { task_id: card.task_id, main_title: { desc: 'lisi 选择了「同意」' } },
    });
    await expect.poll(() => deliveredTo(receiver, url), { timeout: 10_000 }).toBe('已同意，草稿已发布。');
    // Dify got the form's answer for the user who asked (its runs are that user's), and the run went on.
    const submit = e.dify.requests.find((r) => r.path.startsWith('/v1/form/human_input/'));
    expect(submit?.body).toMatchObject({ action: 'approve', user: 'zhangsan', inputs: { comment: '' } });

    const recorded = await events(id);
    const given = recorded.find((ev) => ev.type === 'input.given');
    expect(given).toMatchObject({ by: 'lisi', action: 'approve', actionText: '同意' });
    const answeredIn = (given as { answeredIn: string }).answeredIn;
    await expect.poll(async () => (await e.nodes[0]!.store.load(answeredIn))?.view.value).toBe('completed');
    expect(await replay(id)).toContain(`lisi chose "同意": the run went on in stream ${answeredIn}`);
    expect(await replay(answeredIn)).toContain(`answers the form of stream ${id} with "同意"`);
    const child = await events(answeredIn);
    expect(child[0]).toMatchObject({
      type: 'stream.opened',
      apart: true,
      resume: { of: id, action: 'approve' },
    });
    expect(child.some((ev) => ev.type === 'delivery.sent')).toBe(true);

    // A second click (another user, the other button) is shown the first choice; Dify is not asked again.
    const again = await e.clients[0]!.event(
      'template_card_event',
      { card_type: 'button_interaction', event_key: card.button_list[1]!.key, task_id: card.task_id },
      { userid: 'wangwu', responseUrl: receiver.url() },
    );
    expect(again.reply.template_card.main_title.desc).toBe('lisi 选择了「同意」');
    expect(e.dify.requests.filter((r) => r.path.startsWith('/v1/form/human_input/'))).toHaveLength(1);
  });

  it('keeps the answer’s images with the card of a run that paused after drawing them', async () => {
    e.dify.serve('/files/tools/draft.png', png);
    e.dify.script({
      kind: 'answer',
      flavour: 'chatflow',
      text: '草稿如图。',
      files: [{ type: 'image', url: '/files/tools/draft.png?sign=z' }],
      humanInput: { title: '确认草稿' },
    });
    const { reply } = await askAndFinish('画一张草稿');
    expect(reply.msgtype).toBe('stream_with_template_card');
    expect(reply.stream.msg_item).toEqual([
      {
        msgtype: 'image',
        image: { base64: png.toString('base64'), md5: createHash('md5').update(png).digest('hex') },
      },
    ]);
    expect(reply.template_card).toMatchObject({ main_title: { title: '确认草稿' } });
  });

  it('two clicks at once, on two nodes, on different buttons: one choice, the same everywhere and in Dify', async () => {
    e.dify.script({
      kind: 'answer',
      flavour: 'chatflow',
      text: '请审批。',
      humanInput: { resumeText: '已{action}。' },
    });
    const { id, reply } = await askAndFinish('并发审批');
    const task = (reply.template_card as { task_id: string }).task_id;
    const before = e.dify.requests.length;
    const submits = () =>
      e.dify.requests.slice(before).filter((r) => r.path.startsWith('/v1/form/human_input/'));
    const [a, b] = await Promise.all([
      e.clients[0]!.event(
        'template_card_event',
        { event_key: 'in:approve', task_id: task },
        { userid: 'alice' },
      ),
      e.clients[1]!.event(
        'template_card_event',
        { event_key: 'in:reject', task_id: task },
        { userid: 'bob' },
      ),
    ]);
    const given = (await events(id)).filter((ev) => ev.type === 'input.given');
    expect(given).toHaveLength(1);
    const choice = given[0] as { by: string; actionText: string; action: string };
    const desc = `${choice.by} 选择了「${choice.actionText}」`;
    expect(a.reply.template_card.main_title.desc).toBe(desc);
    expect(b.reply.template_card.main_title.desc).toBe(desc);
    await expect.poll(() => submits().length).toBe(1);
    const submit = submits()[0];
    expect((submit!.body as { action: string }).action).toBe(choice.action);
  });

  it('tells a click past the form’s deadline that it expired, and does not submit it', async () => {
    e.dify.script({
      kind: 'answer',
      flavour: 'workflow',
      text: '需要审批。',
      humanInput: { expiresInS: -5 },
    });
    const { id, reply } = await askAndFinish('申请报销');
    const card = reply.template_card as { task_id: string };
    const before = e.dify.requests.length;
    const clicked = await e.clients[0]!.event('template_card_event', {
      card_type: 'button_interaction',
      event_key: 'in:approve',
      task_id: card.task_id,
    });
    expect(clicked.reply.template_card).toMatchObject({
      main_title: { desc: defaultTexts.inputExpired },
      button_list: [{ text: defaultTexts.inputExpiredButton }],
    });
    expect(e.dify.requests.slice(before).some((r) => r.path.startsWith('/v1/form/'))).toBe(false);
    expect((await events(id)).some((ev) => ev.type === 'input.expired')).toBe(true);
  });

  it('says when the resumed run reports the form timed out', async () => {
    e.dify.script({
      kind: 'answer',
      flavour: 'chatflow',
      text: '请选择。',
      humanInput: { timedOut: true, resumeText: '按默认处理。' },
    });
    const { reply } = await askAndFinish('走默认流程');
    const url = receiver.url();
    await e.clients[0]!.event(
      'template_card_event',
      { event_key: 'in:reject', task_id: (reply.template_card as { task_id: string }).task_id },
      { responseUrl: url },
    );
    await expect
      .poll(() => deliveredTo(receiver, url), { timeout: 10_000 })
      .toBe(`${FORM_TIMEOUT_NOTE}\n\n按默认处理。`);
  });

  it('tells the user when Dify no longer takes the form', async () => {
    e.dify.script({ kind: 'answer', flavour: 'chatflow', text: '请审批。', humanInput: {} });
    const { reply } = await askAndFinish('审批一下');
    e.dify.script(
      { kind: 'error', status: 412, code: 'human_input_form_submitted', message: 'already submitted' },
      'form',
    );
    const url = receiver.url();
    const clicked = await e.clients[0]!.event(
      'template_card_event',
      { event_key: 'in:approve', task_id: (reply.template_card as { task_id: string }).task_id },
      { responseUrl: url },
    );
    expect(clicked.reply.template_card.main_title.desc).toBe('zhangsan 选择了「同意」');
    await expect
      .poll(() => deliveredTo(receiver, url), { timeout: 10_000 })
      .toBe(defaultTexts.deliveryFailed + defaultTexts.failures.form_closed);
  });

  it('names a form WeCom cannot answer (no token for the Service API) instead of showing buttons', async () => {
    e.dify.script({
      kind: 'answer',
      flavour: 'chatflow',
      text: '已提交。',
      humanInput: { noToken: true, content: '请在邮件中审批。' },
    });
    const { id, reply } = await askAndFinish('提交申请');
    expect(reply.msgtype).toBe('stream');
    expect(reply.stream.content).toBe(`已提交。\n\n请在邮件中审批。\n\n${PAUSED_NOTE}`);
    expect((await e.nodes[0]!.store.load(id))?.view.value).toBe('completed');
  });

  it('ignores a click on a card that is not ours, or a button the form does not have', async () => {
    const foreign = await e.clients[0]!.event('template_card_event', {
      event_key: 'in:approve',
      task_id: 'someone_elses_card',
    });
    expect(foreign.reply).toEqual({});
    e.dify.script({ kind: 'answer', flavour: 'chatflow', text: '请审批。', humanInput: {} });
    const { reply } = await askAndFinish('再审批一下');
    const task = (reply.template_card as { task_id: string }).task_id;
    const odd = await e.clients[0]!.event('template_card_event', { event_key: 'in:launch', task_id: task });
    // The card stays as it was: still waiting, every button there.
    expect(odd.reply.template_card.button_list).toHaveLength(2);
  });
});

describe('questions Dify suggests after an answer', () => {
  it('come as buttons under the answer, and a click asks one in the same conversation', async () => {
    const receiver = await startResponseUrlReceiver();
    const dify = await startFakeDify({ suggested: ['报销需要哪些材料？', '多久能到账？'] });
    const e = await startE2E({ name: 'suggested', env: { DIFY_API_URL: dify.url } });
    try {
      dify.script({ kind: 'answer', text: '报销请走 OA 流程。' });
      const sent = await e.clients[0]!.text('怎么报销');
      const id: string = sent.reply.stream.id;
      const { reply } = await e.clients[0]!.pollUntilFinished(id);
      expect(reply.msgtype).toBe('stream_with_template_card');
      expect(reply.stream.content).toBe('报销请走 OA 流程。');
      expect(reply.template_card).toMatchObject({
        task_id: `sq_${id}`,
        main_title: { title: defaultTexts.suggestedTitle },
        button_list: [
          { text: '报销需要哪些材料？', key: 'sq:0' },
          { text: '多久能到账？', key: 'sq:1' },
        ],
      });
      const first = dify.runs()[0]!.body as { user: string };
      expect(dify.requests.find((r) => r.path.endsWith('/suggested'))?.query.user).toBe(first.user);

      dify.script({ kind: 'answer', text: '一般三个工作日到账。' });
      const url = receiver.url();
      const clicked = await e.clients[0]!.event(
        'template_card_event',
        { card_type: 'button_interaction', event_key: 'sq:1', task_id: `sq_${id}` },
        { responseUrl: url },
      );
      expect(clicked.reply.template_card.sub_title_text).toBe('已提问：多久能到账？');
      await expect.poll(() => deliveredTo(receiver, url), { timeout: 10_000 }).toBe('一般三个工作日到账。');
      const asked = dify.runs()[1]!.body as { query: string; conversation_id?: string };
      expect(asked.query).toBe('多久能到账？');
      // The same conversation as the answer it was suggested under.
      expect(asked.conversation_id).toBe([...dify.conversations][0]);
    } finally {
      await e.stop();
      await dify.stop();
      await receiver.stop();
    }
  });

  it('an app that does not say what it suggests in time: the answer ends without them, after ~3 s', async () => {
    const dify = await startFakeDify({ suggested: ['还有吗？'] });
    const e = await startE2E({ name: 'suggested-late', env: { DIFY_API_URL: dify.url } });
    try {
      dify.script({ kind: 'answer', text: '答案在此。' });
      dify.script({ kind: 'hang' }, 'suggested');
      const asked = Date.now();
      const sent = await e.clients[0]!.text('问');
      const { reply } = await e.clients[0]!.pollUntilFinished(sent.reply.stream.id);
      expect(reply.msgtype).toBe('stream');
      expect(reply.stream.content).toBe('答案在此。');
      expect(dify.requests.filter((r) => r.path.endsWith('/suggested'))).toHaveLength(1);
      // It waited for them (3 s), and no longer.
      expect(Date.now() - asked).toBeGreaterThanOrEqual(3_000);
      expect(Date.now() - asked).toBeLessThan(10_000);
    } finally {
      await e.stop();
      await dify.stop();
    }
  });

  it('an app that suggests nothing is asked once, and its answers end as plain bubbles', async () => {
    const e = await startE2E({ name: 'no-suggested' });
    try {
      for (const q of ['一', '二']) {
        const sent = await e.clients[0]!.text(q);
        const { reply } = await e.clients[0]!.pollUntilFinished(sent.reply.stream.id);
        expect(reply.msgtype).toBe('stream');
      }
      expect(e.dify.requests.filter((r) => r.path.endsWith('/suggested'))).toHaveLength(1);
    } finally {
      await e.stop();
    }
  });
});
