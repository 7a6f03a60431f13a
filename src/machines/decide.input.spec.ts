// What a stream records around Dify's human input and suggested questions, told as given/when/then:
// the run pausing on a form, a button chosen or clicked too late, the questions offered with the
// finished answer, and the stream a click opens to resume the run, whose answer goes apart.
import { describe, expect, it } from 'vitest';
import {
  type Command,
  type DecideSettings,
  decide,
  defaultDecideSettings,
  type IncomingMessage,
} from './decide.js';
import { deliveryFor } from './delivery.js';
import type { EventOf, ReadEvent, Resume, StreamEvent } from './events.js';
import { fold, stateOf } from './fold.js';
import { MAX_CONTENT_BYTES, render } from './render.js';
import {
  bubbleClosed,
  completed,
  decider,
  deliverySent,
  delta,
  failed,
  given,
  granted,
  inputExpired,
  inputGiven,
  inputRequired,
  opened,
  sampleForm,
  suggested,
  T0,
  takenOver,
} from './specification.js';
import { failureText, defaultTexts as texts } from './texts.js';

const thinking: ReadEvent[] = [opened(), granted()];
const streaming: ReadEvent[] = [...thinking, delta('先看一下：')];
const form = sampleForm();
const waiting: ReadEvent[] = [...streaming, delta(`\n\n${form.content}`), inputRequired(form)];
const done: ReadEvent[] = [...streaming, completed()];

const pause = (f = form): Command => ({ type: 'pause', at: T0, form: f });
const choose = (action = 'approve', by = 'lisi', answeredIn = 'stream-9'): Command => ({
  type: 'choose',
  at: T0,
  by,
  action,
  answeredIn,
});
const end = (fields: { suggested?: string[]; usage?: Record<string, unknown> } = {}): Command => ({
  type: 'end',
  at: T0,
  ...fields,
});
/** The state after `history` and what `command` decides on it. */
const decideOn = (history: ReadEvent[], command: Command, settings?: DecideSettings) => {
  const decided = decide(command, fold(history), settings);
  return { decided, view: fold([...history, ...decided]) };
};

describe('the run pauses on a form (pause)', () => {
  it("before any text: the form's text is the answer, and the stream waits for a person", () => {
    decider
      .given(thinking)
      .when(pause())
      .then([delta(form.content), inputRequired(form)]);
  });

  it("after some text: the form's text follows it, after a blank line", () => {
    decider
      .given(streaming)
      .when(pause())
      .then([delta(`\n\n${form.content}`), inputRequired(form)]);
  });

  it("the form's text is trimmed", () => {
    const padded = sampleForm({ content: `\n  ${form.content}  \n` });
    decider
      .given(streaming)
      .when(pause(padded))
      .then([delta(`\n\n${form.content}`), inputRequired(padded)]);
  });

  it('a form with no text adds none', () => {
    for (const content of ['', '  \n ']) {
      const blank = sampleForm({ content });
      decider
        .given(streaming)
        .when(pause(blank))
        .then([inputRequired(blank)]);
    }
  });

  it('after a blank answer, no blank line goes before the form', () => {
    decider
      .given([...thinking, delta('  \n')])
      .when(pause())
      .then([delta(form.content), inputRequired(form)]);
  });

  it('the stream then waits: finished, the answer settled, the form recorded', () => {
    const { view } = decideOn(streaming, pause());
    expect(stateOf(view)).toBe('waiting');
    expect(view.context.answer).toBe(`先看一下：\n\n${form.content}`);
    expect(view.context.input).toEqual({ form, at: T0 });
    expect(render(view, 'sid').stream).toEqual({
      id: 'sid',
      finish: true,
      content: `先看一下：\n\n${form.content}`,
    });
    expect(render(view, 'sid').msgtype).toBe('stream_with_template_card');
  });

  it('after a takeover the answer starts over: no blank line before the form', () => {
    decider
      .given([...streaming, takenOver(), granted()])
      .when(pause())
      .then([delta(form.content), inputRequired(form)]);
    const { view } = decideOn([...streaming, takenOver(), granted()], pause());
    expect(view.context.answer).toBe(form.content);
  });

  it('the bubble closed already (its window): the form is named, the user told, and the answer ends', () => {
    decider
      .given([...streaming, bubbleClosed()])
      .when(pause())
      .then([delta(`\n\n${form.content}\n\n${texts.inputElsewhere}`), completed()]);
  });

  it('the bubble closed before any text: no blank line first', () => {
    decider
      .given([...thinking, bubbleClosed()])
      .when(pause())
      .then([delta(`${form.content}\n\n${texts.inputElsewhere}`), completed()]);
  });

  it('a form with no text under a closed bubble: only the note', () => {
    decider
      .given([...streaming, bubbleClosed()])
      .when(pause(sampleForm({ content: ' ' })))
      .then([delta(`\n\n${texts.inputElsewhere}`), completed()]);
  });

  it('the note comes from the texts passed in', () => {
    const settings: DecideSettings = {
      ...defaultDecideSettings,
      texts: { ...texts, inputElsewhere: '(elsewhere)' },
    };
    decider
      .given([...streaming, bubbleClosed()], settings)
      .when(pause())
      .then([delta(`\n\n${form.content}\n\n(elsewhere)`), completed()]);
  });

  it("an answer that goes apart (a click's) has no bubble for the card: it ends with the note", () => {
    const apart = [opened({ apart: true }), granted()];
    const { decided, view } = decideOn(apart, pause());
    expect(decided).toEqual([delta(`${form.content}\n\n${texts.inputElsewhere}`), completed()]);
    expect(stateOf(view)).toBe('completed');
    expect(view.context.input).toBeUndefined();
  });

  it("the form's text past the answer's limit: the answer ends there, cut, with no card", () => {
    const settings: DecideSettings = { ...defaultDecideSettings, answerMaxBytes: 20 };
    const { decided, view } = decideOn(thinking, pause(sampleForm({ content: 'x'.repeat(50) })), settings);
    expect(decided).toEqual([delta('x'.repeat(20)), { type: 'answer.completed', at: T0, cut: true }]);
    expect(stateOf(view)).toBe('completed');
    expect(view.context.input).toBeUndefined();
  });

  it('a stream that is not answering decides nothing', () => {
    for (const history of [[], [opened()], waiting, done, [...streaming, failed()]])
      decider.given(history).when(pause()).thenNothing();
  });

  // BUG (decide.ts `pause`): when the form's text pushes the answer past the bubble's 20480 bytes,
  // `addText` closes the bubble (`bubble.closed`, overflow) and `pause` returns with neither the card
  // (`input.required`) nor the note that the step cannot be taken here (texts.inputElsewhere), which
  // its doc comment promises whenever no bubble is left to carry the buttons. Remove `.fails` once fixed.
  it("the form's text overflowing the bubble: the user is told the step cannot be taken here", () => {
    const long = [...thinking, delta('中'.repeat(6820))];
    const { decided } = decideOn(long, pause());
    expect(decided.some((e) => e.type === 'bubble.closed')).toBe(true);
    const added = decided.flatMap((e) => (e.type === 'answer.delta' ? [e.text] : [])).join('');
    expect(added).toContain(texts.inputElsewhere);
  });
});

describe('a button of the form is chosen (choose)', () => {
  it('in a waiting stream, an action of the form: given, with its title from the form', () => {
    decider
      .given(waiting)
      .when(choose('approve', 'lisi', 'stream-9'))
      .then([inputGiven()]);
    decider
      .given(waiting)
      .when(choose('reject', 'wangwu', 'stream-7'))
      .then([inputGiven('reject', '拒绝', 'wangwu', 'stream-7')]);
  });

  it('the stream then completes, and remembers who chose what', () => {
    const { view } = decideOn(waiting, choose('reject', 'wangwu'));
    expect(stateOf(view)).toBe('completed');
    expect(view.context.input?.outcome).toEqual({
      type: 'given',
      at: T0,
      by: 'wangwu',
      action: 'reject',
      actionText: '拒绝',
      answeredIn: 'stream-9',
    });
    // The answer stays what it was.
    expect(view.context.answer).toBe(`先看一下：\n\n${form.content}`);
  });

  it('choose of an unknown action decides nothing', () => {
    for (const action of ['approve2', 'APPROVE', '', 'in:approve', '同意'])
      decider.given(waiting).when(choose(action)).thenNothing();
  });

  it('a second choose after the first decides nothing', () => {
    const first = decideOn(waiting, choose('approve', 'lisi'));
    decider
      .given([...waiting, ...first.decided])
      .when(choose('reject', 'wangwu'))
      .thenNothing();
    decider
      .given([...waiting, ...first.decided])
      .when(choose('approve', 'lisi'))
      .thenNothing();
  });

  it('a form that expired takes no choice', () => {
    decider
      .given([...waiting, inputExpired()])
      .when(choose())
      .thenNothing();
  });

  it('a stream that waits on no form decides nothing', () => {
    for (const history of [[], thinking, streaming, done, [...streaming, failed()]])
      decider.given(history).when(choose()).thenNothing();
  });
});

describe('a form clicked past its deadline (expire)', () => {
  it('in a waiting stream: expired, with who clicked', () => {
    decider
      .given(waiting)
      .when({ type: 'expire', at: T0, by: 'lisi' })
      .then([inputExpired('lisi')]);
  });

  it('without who: expired, naming nobody', () => {
    decider
      .given(waiting)
      .when({ type: 'expire', at: T0 })
      .then([{ type: 'input.expired', at: T0 }]);
  });

  it('the stream then completes, its form expired', () => {
    const { view } = decideOn(waiting, { type: 'expire', at: T0, by: 'lisi' });
    expect(stateOf(view)).toBe('completed');
    expect(view.context.input?.outcome).toEqual({ type: 'expired', at: T0, by: 'lisi' });
  });

  it('only in a waiting stream', () => {
    for (const history of [
      [],
      thinking,
      streaming,
      done,
      [...waiting, inputGiven()],
      [...waiting, inputExpired()],
    ])
      decider.given(history).when({ type: 'expire', at: T0, by: 'lisi' }).thenNothing();
  });
});

describe('the answer ends with suggested questions (end)', () => {
  it('the questions are recorded before the answer completes', () => {
    decider
      .given(streaming)
      .when(end({ suggested: ['还有呢？', '举个例子'] }))
      .then([suggested(['还有呢？', '举个例子']), completed()]);
  });

  it('with usage, the completion keeps it', () => {
    decider
      .given(streaming)
      .when(end({ suggested: ['还有呢？'], usage: { total_tokens: 7 } }))
      .then([suggested(['还有呢？']), completed({ total_tokens: 7 })]);
  });

  it('from thinking (an empty answer) too', () => {
    decider
      .given(thinking)
      .when(end({ suggested: ['还有呢？'] }))
      .then([suggested(['还有呢？']), completed()]);
  });

  it('no questions, or an empty list: only the completion', () => {
    decider.given(streaming).when(end()).then([completed()]);
    decider
      .given(streaming)
      .when(end({ suggested: [] }))
      .then([completed()]);
    decider
      .given(streaming)
      .when(end({ suggested: ['', ''] }))
      .then([completed()]);
  });

  it('empty questions are left out', () => {
    decider
      .given(streaming)
      .when(end({ suggested: ['', 'a', ''] }))
      .then([suggested(['a']), completed()]);
  });

  it('each question is cut to 200 characters', () => {
    decider
      .given(streaming)
      .when(end({ suggested: ['问'.repeat(250), 'b'.repeat(200)] }))
      .then([suggested(['问'.repeat(200), 'b'.repeat(200)]), completed()]);
  });

  it('at most 10 questions, the first ones', () => {
    const questions = Array.from({ length: 14 }, (_, i) => `q${i}`);
    decider
      .given(streaming)
      .when(end({ suggested: questions }))
      .then([suggested(questions.slice(0, 10)), completed()]);
  });

  it('what is recorded is what the store reads back', () => {
    const { decided } = decideOn(
      streaming,
      end({ suggested: Array.from({ length: 12 }, () => 'x'.repeat(300)) }),
    );
    const { view } = decideOn(streaming, end({ suggested: ['a', 'b'] }));
    expect(view.context.suggested).toEqual(['a', 'b']);
    expect(stateOf(view)).toBe('completed');
    // Within the event's schema: at most 10, none empty.
    const recorded = decided[0] as EventOf<'answer.suggested'>;
    expect(recorded.questions).toHaveLength(10);
    expect(recorded.questions.every((q) => q.length === 200)).toBe(true);
  });

  it('not when the bubble was closed: no card would carry them', () => {
    decider
      .given([...streaming, bubbleClosed()])
      .when(end({ suggested: ['还有呢？'] }))
      .then([completed()]);
  });

  it('not on an answer that goes apart', () => {
    decider
      .given([opened({ apart: true }), granted(), delta('答案')])
      .when(end({ suggested: ['还有呢？'] }))
      .then([completed()]);
  });

  it('not once the stream waits on a form, nor after it ended', () => {
    for (const history of [waiting, done, [...waiting, inputGiven()], [...streaming, failed()]])
      decider
        .given(history)
        .when(end({ suggested: ['还有呢？'] }))
        .thenNothing();
  });

  // BUG (decide.ts `end`): a question is cut with `q.slice(0, 200)`, on UTF-16 units, so an emoji
  // across the 200th unit leaves a lone surrogate in the stored question (and in the card's
  // sub_title_text and the question a click asks), where the answer's text is kept well-formed
  // (`toWellFormed` in addText). Remove `.fails` once fixed.
  it('a question cut at 200 characters stays well-formed', () => {
    const { decided } = decideOn(streaming, end({ suggested: [`a${'😀'.repeat(150)}`] }));
    const recorded = decided[0] as EventOf<'answer.suggested'>;
    expect(recorded.questions[0]?.isWellFormed()).toBe(true);
  });
});

describe('a click opens a stream that resumes the run (open with resume)', () => {
  const resume: Resume = {
    of: 'stream-1',
    formToken: 'form-token-1',
    action: 'approve',
    actionText: '同意',
    workflowRunId: 'run-1',
    inputs: { comment: '' },
  };
  const message: IncomingMessage = {
    msgid: 'msg-1#input',
    bot: 'bot-1',
    userid: 'zhangsan',
    chattype: 'single',
    text: '同意',
    resume,
    apart: true,
  };
  const open = (m: Partial<IncomingMessage> = {}, extra: object = {}, base = message): Command => ({
    type: 'open',
    at: T0,
    streamId: 'stream-9',
    node: 'node-a',
    message: { ...base, ...m },
    ...extra,
  });
  const { apart: _apart, ...inBubble } = message;
  const { resume: _resume, ...question } = message;
  const openedBy = (fields: Partial<EventOf<'stream.opened'>> = {}): StreamEvent =>
    opened({
      streamId: 'stream-9',
      msgid: 'msg-1#input',
      query: '同意',
      node: 'node-a',
      chatid: undefined,
      responseUrl: undefined,
      resume,
      apart: true,
      ...fields,
    });

  it('the stream opens with what to resume, apart', () => {
    decider.given([]).when(open()).then([openedBy()]);
  });

  it('where everyone may ask, the grant comes with it', () => {
    decider
      .given([])
      .when(open({}, { grant: { id: 'zhangsan' } }))
      .then([openedBy(), granted()]);
  });

  it("a form's answer is no question: a text that reads as a command is not one", () => {
    for (const text of ['/stop', '/help', '/new', '帮助', ''])
      decider
        .given([])
        .when(open({ text }))
        .then([openedBy({ query: text })]);
  });

  it("a form's answer is not held to the user's rate limit", () => {
    decider
      .given([])
      .when(open({}, { refused: { text: '慢一点', message: 'the user limit is full' } }))
      .then([openedBy()]);
  });

  it('the context keeps the resume, and a bubble of reason apart that shows nothing', () => {
    const ctx = fold(decide(open({}, { grant: { id: 'zhangsan' } }), fold([]))).context;
    expect(ctx.resume).toEqual(resume);
    expect(ctx.bubble).toEqual({ reason: 'apart', text: '', at: T0, shown: 0 });
    expect(stateOf(fold(decide(open({}, { grant: { id: 'zhangsan' } }), fold([]))))).toBe('thinking');
  });

  it('resume without apart: a bubble of its own', () => {
    const decided = decide(open({}, {}, inBubble), fold([]));
    expect(decided).toEqual([openedBy({ apart: undefined })]);
    expect(decided[0]).not.toHaveProperty('apart');
    expect(fold(decided).context.bubble).toBeUndefined();
  });

  it('apart without resume (a suggested question asked): the question, apart', () => {
    const decided = decide(open({ text: '举个例子' }, {}, question), fold([]));
    expect(decided).toEqual([openedBy({ resume: undefined, query: '举个例子' })]);
    expect(decided[0]).not.toHaveProperty('resume');
    expect(fold(decided).context.bubble?.reason).toBe('apart');
  });

  it('an apart stream never has its window closed: no bubble to close', () => {
    const apart = [openedBy(), granted(), delta('好的')];
    decider.given(apart).when({ type: 'closeWindow', at: T0 }).thenNothing();
  });

  describe('its answer is sent whole, as a message, once settled (deliveryFor)', () => {
    const apart = [openedBy(), granted()];

    it('nothing while it runs', () => {
      expect(deliveryFor(fold(apart))).toBeUndefined();
      expect(deliveryFor(fold([...apart, delta('已同意，')]))).toBeUndefined();
    });

    it('the whole answer once completed', () => {
      expect(deliveryFor(fold([...apart, delta('已同意，'), delta('报销单已提交。'), completed()]))).toBe(
        '已同意，报销单已提交。',
      );
    });

    it('an empty answer sends the empty-answer text', () => {
      expect(deliveryFor(fold([...apart, completed()]))).toBe(texts.emptyAnswer);
    });

    it('a failure sends why', () => {
      expect(deliveryFor(fold([...apart, delta('部分'), failed('form_closed', 'expired')]))).toBe(
        texts.deliveryFailed + failureText('form_closed'),
      );
    });

    it('a resumed run that pauses again: the form and the note, sent', () => {
      const { view } = decideOn([...apart, delta('已同意。')], pause());
      expect(deliveryFor(view)).toBe(`已同意。\n\n${form.content}\n\n${texts.inputElsewhere}`);
    });

    it('once sent, nothing more', () => {
      expect(deliveryFor(fold([...apart, delta('好'), completed(), deliverySent()]))).toBeUndefined();
    });

    // BUG (delivery.ts `deliveryFor`): an apart stream's bubble records `shown: 0`, and `shown > 0` is
    // required to use it, so an answer past 20480 bytes falls back to "the bubble showed the first
    // 20480 bytes" and sends texts.continued + only the rest: the head of the answer reaches nobody.
    // Remove `.fails` once fixed.
    it('an answer longer than a message sends its head, not "continued" and its tail', () => {
      const long = '中'.repeat(8000);
      expect(Buffer.byteLength(long)).toBeGreaterThan(MAX_CONTENT_BYTES);
      const sent = deliveryFor(fold([...apart, delta(long), completed()])) ?? '';
      expect(sent.startsWith(texts.continued)).toBe(false);
      expect(sent.startsWith('中'.repeat(100))).toBe(true);
    });
  });
});

describe('a waiting stream, folded', () => {
  it('is finished but keeps its form until a choice', () => {
    const then = given(waiting).when().thenState('waiting');
    expect(then.context.input).toEqual({ form, at: T0 });
  });
});
