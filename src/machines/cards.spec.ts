// The template cards an answer carries: a form's buttons (human input) and the questions Dify suggests,
// their task ids and keys as a click brings them back, and which finishing reply carries which card.
import { describe, expect, it } from 'vitest';
import {
  actionOfKey,
  cardOfTask,
  cardTaskId,
  fill,
  inputCard,
  MAX_BUTTONS,
  suggestedCard,
  suggestionOfKey,
} from './cards.js';
import type { Form, ReadEvent } from './events.js';
import { fold, stateOf } from './fold.js';
import { render, replyCard, replyProjection } from './render.js';
import {
  bubbleClosed,
  completed,
  delta,
  failed,
  granted,
  inputExpired,
  inputGiven,
  inputRequired,
  opened,
  sampleForm,
  suggested,
  T0,
} from './specification.js';
import { type Texts, defaultTexts as texts } from './texts.js';

const streaming: ReadEvent[] = [opened(), granted(), delta('请看：')];
const waitingOn = (form: Form = sampleForm()): ReadEvent[] => [...streaming, inputRequired(form)];
const ctxOf = (events: ReadEvent[]) => fold(events).context;
/** The actions of a form, `n` of them, with the given styles in turn. */
const actions = (n: number, styles: Array<string | undefined> = [undefined]) =>
  Array.from({ length: n }, (_, i) => ({
    id: `a${i}`,
    title: `选项${i}`,
    ...(styles[i % styles.length] === undefined ? {} : { style: styles[i % styles.length] }),
  }));

describe('the card of a form (human input)', () => {
  it("shows the form's title, its deadline, the hint and a button per action", () => {
    expect(inputCard(ctxOf(waitingOn()), texts)).toEqual({
      card_type: 'button_interaction',
      task_id: 'in_stream-1',
      // T0 + 1 h is 2023-11-14 23:13 UTC: 07:13 the next day in China.
      main_title: { title: '审批', desc: '请在 11-15 07:13 前选择' },
      sub_title_text: texts.inputHint,
      button_list: [
        { text: '同意', style: 1, key: 'in:approve' },
        { text: '拒绝', style: 3, key: 'in:reject' },
      ],
    });
  });

  it('uses the default texts when none are given', () => {
    expect(inputCard(ctxOf(waitingOn()))).toEqual(inputCard(ctxOf(waitingOn()), texts));
  });

  it('a stream with no form has no input card', () => {
    expect(inputCard(ctxOf(streaming))).toBeUndefined();
    expect(inputCard(ctxOf([...streaming, completed()]))).toBeUndefined();
  });

  it('a form without a title takes the default title; a long title is cut to 26 characters with "…"', () => {
    expect(inputCard(ctxOf(waitingOn(sampleForm({ title: '' }))))?.main_title.title).toBe(texts.inputTitle);
    const long = '这是一个非常非常长的审批节点标题，远远超过了卡片能够好好显示的长度';
    const title = inputCard(ctxOf(waitingOn(sampleForm({ title: long }))))?.main_title.title ?? '';
    expect([...title]).toHaveLength(26);
    expect(title).toBe(`${[...long].slice(0, 25).join('')}…`);
  });

  it('a form without a deadline says none', () => {
    const card = inputCard(ctxOf(waitingOn(sampleForm({ expiresAt: undefined }))));
    expect(card?.main_title).toEqual({ title: '审批' });
    expect(card?.main_title).not.toHaveProperty('desc');
  });

  it('the deadline is read in China time (UTC+8), across a day and a year', () => {
    const deadline = (expiresAt: number) =>
      inputCard(ctxOf(waitingOn(sampleForm({ expiresAt }))))?.main_title.desc;
    expect(deadline(Date.UTC(2024, 11, 1, 10, 30))).toBe('请在 12-01 18:30 前选择');
    expect(deadline(Date.UTC(2024, 11, 31, 16, 5))).toBe('请在 01-01 00:05 前选择');
    expect(deadline(Date.UTC(2024, 0, 9, 0, 0, 59))).toBe('请在 01-09 08:00 前选择');
  });

  it('the deadline text comes from the texts passed in', () => {
    const own: Texts = { ...texts, inputDeadline: 'until {time}!', inputHint: 'pick one' };
    const card = inputCard(ctxOf(waitingOn()), own);
    expect(card?.main_title.desc).toBe('until 11-15 07:13!');
    expect(card?.sub_title_text).toBe('pick one');
  });

  it(`shows at most ${MAX_BUTTONS} buttons (WeCom's limit), the first ones`, () => {
    expect(MAX_BUTTONS).toBe(6);
    const card = inputCard(ctxOf(waitingOn(sampleForm({ actions: actions(9) }))));
    expect(card?.button_list.map((b) => b.key)).toEqual([
      'in:a0',
      'in:a1',
      'in:a2',
      'in:a3',
      'in:a4',
      'in:a5',
    ]);
  });

  it("maps Dify's button styles to WeCom's; an unknown or missing style is the first", () => {
    const styles = ['primary', 'default', 'accent', 'ghost', 'fancy', undefined];
    const card = inputCard(ctxOf(waitingOn(sampleForm({ actions: actions(6, styles) }))));
    expect(card?.button_list.map((b) => b.style)).toEqual([1, 2, 3, 4, 1, 1]);
  });

  it('a button\'s text is the action\'s title, trimmed, cut to 16 characters with "…"', () => {
    const form = sampleForm({
      actions: [
        { id: 'long', title: '同意并转交给财务部门的负责人进行最终审核' },
        { id: 'pad', title: '  拒绝  ' },
        { id: 'exact', title: '一二三四五六七八九十一二三四五六' },
      ],
    });
    const labels = inputCard(ctxOf(waitingOn(form)))?.button_list.map((b) => b.text);
    expect(labels).toEqual(['同意并转交给财务部门的负责人进…', '拒绝', '一二三四五六七八九十一二三四五六']);
  });

  it('an emoji in a long title is never split', () => {
    const form = sampleForm({ actions: [{ id: 'e', title: '😀'.repeat(20) }] });
    const text = inputCard(ctxOf(waitingOn(form)))?.button_list[0]?.text ?? '';
    expect(text).toBe(`${'😀'.repeat(15)}…`);
    expect(text.isWellFormed()).toBe(true);
  });

  describe('after the form', () => {
    it('given: says who chose what, with one inert button', () => {
      const ctx = ctxOf([...waitingOn(), inputGiven('reject', '拒绝', 'lisi')]);
      expect(inputCard(ctx)).toEqual({
        card_type: 'button_interaction',
        task_id: 'in_stream-1',
        main_title: { title: '审批', desc: 'lisi 选择了「拒绝」' },
        button_list: [{ text: '拒绝', style: 2, key: 'done' }],
      });
    });

    it('given: the texts passed in say it', () => {
      const own: Texts = { ...texts, inputChosen: '{action} by {by}' };
      const ctx = ctxOf([...waitingOn(), inputGiven()]);
      expect(inputCard(ctx, own)?.main_title.desc).toBe('同意 by lisi');
    });

    it('given: a name that looks like a placeholder is shown as it is', () => {
      const ctx = ctxOf([...waitingOn(), inputGiven('approve', '同意', '{action}')]);
      expect(inputCard(ctx)?.main_title.desc).toBe('{action} 选择了「同意」');
    });

    it('expired: says so, with one inert button', () => {
      const ctx = ctxOf([...waitingOn(), inputExpired('lisi')]);
      expect(inputCard(ctx)).toEqual({
        card_type: 'button_interaction',
        task_id: 'in_stream-1',
        main_title: { title: '审批', desc: texts.inputExpired },
        button_list: [{ text: texts.inputExpiredButton, style: 2, key: 'done' }],
      });
    });

    it('the inert button names no action', () => {
      const ctx = ctxOf([...waitingOn(), inputGiven()]);
      expect(actionOfKey(inputCard(ctx)?.button_list[0]?.key ?? '')).toBeUndefined();
    });
  });
});

describe("a card's task id and a button's key", () => {
  const streamIds = ['stream-1', 'AbC_dEf-0123456789xyzQ', '-_-', 'in_sq_x', 'a'.repeat(125)];

  it.each(streamIds)('a task id names its kind and its stream again: %s', (streamId) => {
    for (const kind of ['input', 'suggested'] as const)
      expect(cardOfTask(cardTaskId(kind, streamId))).toEqual({ kind, streamId });
  });

  it("the two kinds of a stream have different task ids, within WeCom's characters", () => {
    const input = cardTaskId('input', 'stream-1');
    const suggestedId = cardTaskId('suggested', 'stream-1');
    expect(input).not.toBe(suggestedId);
    for (const id of [input, suggestedId]) expect(id).toMatch(/^[A-Za-z0-9_\-@]{1,128}$/);
  });

  it.each([
    ['empty', ''],
    ['a prefix alone', 'in_'],
    ['the other prefix alone', 'sq_'],
    ['a foreign task id', 'task_1234'],
    ["another tool's card", 'approval-stream-1'],
    ['a key, not a task id', 'in:approve'],
    ['a prefix without its underscore', 'instream-1'],
    ['upper-case prefix', 'IN_stream-1'],
    ['a space', 'in_stream 1'],
    ['Chinese', 'in_审批'],
    ['a slash', 'in_a/b'],
    ['longer than 128 bytes', `in_${'a'.repeat(126)}`],
    ['a newline after it', 'in_stream-1\n'],
  ])('%s gives no card', (_, taskId) => {
    expect(cardOfTask(taskId)).toBeUndefined();
  });

  it('a task id of exactly 128 bytes is one', () => {
    expect(cardOfTask(`sq_${'a'.repeat(125)}`)).toEqual({ kind: 'suggested', streamId: 'a'.repeat(125) });
  });

  it('a form button names its action', () => {
    expect(actionOfKey('in:approve')).toBe('approve');
    expect(actionOfKey('in:a:b')).toBe('a:b');
    for (const key of ['in:', 'in', '', 'done', 'sq:0', 'approve', 'IN:approve'])
      expect(actionOfKey(key)).toBeUndefined();
  });

  it('every button of a form names its own action', () => {
    const form = sampleForm({ actions: actions(6) });
    const card = inputCard(ctxOf(waitingOn(form)));
    expect(card?.button_list.map((b) => actionOfKey(b.key))).toEqual(form.actions.map((a) => a.id));
  });

  it('a suggestion button names its question', () => {
    const ctx = ctxOf([...streaming, suggested(['还有呢？', '举个例子', '第三个']), completed()]);
    expect(suggestionOfKey(ctx, 'sq:0')).toBe('还有呢？');
    expect(suggestionOfKey(ctx, 'sq:2')).toBe('第三个');
    expect(suggestionOfKey(ctx, 'sq:01')).toBe('举个例子');
    for (const key of ['sq:3', 'sq:100', 'sq:-1', 'sq:', 'sq:x', 'sq:1 ', 'in:approve', 'done', ''])
      expect(suggestionOfKey(ctx, key)).toBeUndefined();
  });

  it('a stream with no suggestions names none', () => {
    expect(suggestionOfKey(ctxOf([...streaming, completed()]), 'sq:0')).toBeUndefined();
  });
});

describe('the card of suggested questions', () => {
  const answered = (questions: string[]) => ctxOf([...streaming, suggested(questions), completed()]);

  it('a button per question, grey, under its title', () => {
    expect(suggestedCard(answered(['还有呢？', '举个例子']))).toEqual({
      card_type: 'button_interaction',
      task_id: 'sq_stream-1',
      main_title: { title: texts.suggestedTitle },
      button_list: [
        { text: '还有呢？', style: 2, key: 'sq:0' },
        { text: '举个例子', style: 2, key: 'sq:1' },
      ],
    });
  });

  it('without `asked` it names no question; with it, it says which was asked', () => {
    expect(suggestedCard(answered(['还有呢？']))).not.toHaveProperty('sub_title_text');
    expect(suggestedCard(answered(['还有呢？', '举个例子']), texts, '举个例子')).toMatchObject({
      sub_title_text: '已提问：举个例子',
      // Another may be asked too: the buttons stay.
      button_list: [{ key: 'sq:0' }, { key: 'sq:1' }],
    });
  });

  it('the texts passed in title it and say what was asked', () => {
    const own: Texts = { ...texts, suggestedTitle: 'More?', suggestedAsked: 'asked: {question}' };
    expect(suggestedCard(answered(['a']), own, 'a')).toMatchObject({
      main_title: { title: 'More?' },
      sub_title_text: 'asked: a',
    });
  });

  it('no questions, no card', () => {
    expect(suggestedCard(ctxOf([...streaming, completed()]))).toBeUndefined();
    expect(suggestedCard(answered([]))).toBeUndefined();
  });

  it(`at most ${MAX_BUTTONS} buttons, each cut to 20 characters`, () => {
    const questions = Array.from({ length: 10 }, (_, i) => `问题${i}：${'很长'.repeat(12)}`);
    const card = suggestedCard(answered(questions));
    expect(card?.button_list).toHaveLength(MAX_BUTTONS);
    expect(card?.button_list.map((b) => b.key)).toEqual(['sq:0', 'sq:1', 'sq:2', 'sq:3', 'sq:4', 'sq:5']);
    for (const b of card?.button_list ?? []) {
      expect([...b.text]).toHaveLength(20);
      expect(b.text.endsWith('…')).toBe(true);
    }
  });
});

describe('fill', () => {
  it('fills each named place, every time it appears', () => {
    expect(fill('{a} and {a}, {b}', { a: '1', b: '2' })).toBe('1 and 1, 2');
  });

  it('leaves a place it has no value for', () => {
    expect(fill('{a} and {b}', { a: '1' })).toBe('1 and {b}');
  });

  it('does not fill again what it filled in, nor read `$` patterns in a value', () => {
    expect(fill('{by}: {action}', { by: '{action}', action: "$& $1 $'" })).toBe("{action}: $& $1 $'");
  });

  it('an empty value fills the place with nothing', () => {
    expect(fill('[{a}]', { a: '' })).toBe('[]');
  });
});

describe('which finishing reply carries a card (render)', () => {
  it('a stream waiting on a form finishes its bubble with the form and its buttons', () => {
    const view = fold(waitingOn());
    expect(stateOf(view)).toBe('waiting');
    expect(render(view, 'sid-1')).toEqual({
      msgtype: 'stream_with_template_card',
      stream: { id: 'sid-1', finish: true, content: '请看：' },
      template_card: inputCard(view.context),
    });
  });

  it('a completed answer with suggested questions carries their card', () => {
    const view = fold([...streaming, suggested(), completed()]);
    expect(render(view, 'sid-1')).toEqual({
      msgtype: 'stream_with_template_card',
      stream: { id: 'sid-1', finish: true, content: '请看：' },
      template_card: suggestedCard(view.context),
    });
  });

  it('the cards use the texts passed in', () => {
    const own: Texts = { ...texts, inputHint: 'pick', suggestedTitle: 'More?' };
    expect(render(fold(waitingOn()), 'sid-1', own).template_card?.sub_title_text).toBe('pick');
    expect(render(fold([...streaming, suggested(), completed()]), 'sid-1', own).template_card).toMatchObject({
      main_title: { title: 'More?' },
    });
  });

  it('a completed answer with no suggestions is a plain stream reply', () => {
    const reply = render(fold([...streaming, completed()]), 'sid-1');
    expect(reply).toEqual({ msgtype: 'stream', stream: { id: 'sid-1', finish: true, content: '请看：' } });
    expect(reply).not.toHaveProperty('template_card');
  });

  it('no card while the answer runs, even with questions already recorded', () => {
    expect(render(fold([...streaming, suggested()]), 'sid-1').msgtype).toBe('stream');
  });

  it('no card on a failed answer', () => {
    expect(replyCard(fold([...streaming, suggested(), failed()]))).toBeUndefined();
  });

  it('no card when the bubble was closed already: nothing would show it', () => {
    const closedThenSuggested = fold([...streaming, bubbleClosed(), suggested(), completed()]);
    expect(render(closedThenSuggested, 'sid-1').msgtype).toBe('stream');
    expect(render(closedThenSuggested, 'sid-1')).not.toHaveProperty('template_card');
    const closedThenWaiting = fold([...streaming, bubbleClosed(), inputRequired()]);
    expect(stateOf(closedThenWaiting)).toBe('waiting');
    expect(render(closedThenWaiting, 'sid-1').msgtype).toBe('stream');
  });

  it('no card on an answer that goes apart (no bubble shows it)', () => {
    const apart = [opened({ apart: true }), granted(), delta('答案')];
    expect(replyCard(fold([...apart, suggested(), completed()]))).toBeUndefined();
    expect(replyCard(fold([...apart, inputRequired()]))).toBeUndefined();
  });

  it('no suggestions card on an answer completed after its form: given or expired', () => {
    for (const outcome of [inputGiven(), inputExpired()]) {
      const view = fold([...waitingOn(), outcome, suggested()]);
      expect(stateOf(view)).toBe('completed');
      expect(view.context.suggested).toEqual(['还有呢？', '举个例子']);
      expect(render(view, 'sid-1')).toEqual({
        msgtype: 'stream',
        stream: { id: 'sid-1', finish: true, content: '请看：' },
      });
    }
  });

  it("a waiting stream's reply is fixed, card included, for every poll", () => {
    const view = fold(waitingOn());
    const projection = replyProjection(view, 'sid-1');
    expect(projection).toEqual({ fixed: JSON.stringify(render(view, 'sid-1')) });
    expect(JSON.parse((projection as { fixed: string }).fixed).template_card.task_id).toBe('in_stream-1');
  });

  it('the card is the same whenever it is rendered (no clock in it)', () => {
    const view = fold(waitingOn(sampleForm({ expiresAt: T0 })));
    expect(render(view, 'sid-1')).toEqual(render(view, 'sid-1'));
  });
});
