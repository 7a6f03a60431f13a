// Thinking, shown or hidden: the filter against every way a model's `<think>` can be split across
// deltas, and the fold putting Dify's reasoning and an agent's tool calls into one closed block.
import { describe, expect, it } from 'vitest';
import { AnswerFold, type DifyEvent } from './events.js';
import type { DifyFrame } from './sse.js';
import { ThinkingFilter, toolLine, withoutThinking } from './thinking.js';

const ids = { conversationId: 'c', messageId: 'm', taskId: 't' };
const f = (body: Record<string, unknown>): DifyFrame => ({ ids, ...body }) as DifyFrame;
const textOf = (events: DifyEvent[]) =>
  events.reduce((t, e) => (e.type === 'delta' ? t + e.text : e.type === 'replace' ? e.text : t), '');

function run(frames: DifyFrame[], thinking: 'show' | 'hide') {
  const fold = new AnswerFold({ thinking });
  const events = frames.flatMap((frame) => fold.apply(frame));
  return { events, text: textOf(events), end: events.find((e) => e.type === 'end') };
}

describe('hidden thinking', () => {
  const answer = '<think>先想一想：用户要天气。\n</think>\n\n今天晴，25 度。';

  it('takes the <think> section out of a whole text, and the blank lines after it', () => {
    expect(withoutThinking(answer)).toBe('今天晴，25 度。');
    expect(withoutThinking('前言<think>a</think>正文')).toBe('前言正文');
    expect(withoutThinking('<think>还没想完')).toBe('');
    expect(withoutThinking('a < b, <thin ice>')).toBe('a < b, <thin ice>');
  });

  it('gives the same text however the stream splits it, tags included', () => {
    for (let cut = 1; cut < answer.length; cut++) {
      for (let second = cut + 1; second <= answer.length; second += 7) {
        const filter = new ThinkingFilter();
        const out =
          filter.push(answer.slice(0, cut)) +
          filter.push(answer.slice(cut, second)) +
          filter.push(answer.slice(second)) +
          filter.flush();
        expect(out, `cut at ${cut}, ${second}`).toBe('今天晴，25 度。');
      }
    }
  });

  it('leaves the reasoning and tool calls out, and the answer as it is', () => {
    const { text, end } = run(
      [
        f({ event: 'reasoning_chunk', reasoning: '推理中' }),
        f({ event: 'agent_thought', id: 'a1', tool: 'dataset_search', toolLabels: {} }),
        f({ event: 'message', answer: '<think>内心独白</think>答' }),
        f({ event: 'message', answer: '案' }),
        f({ event: 'message_end' }),
      ],
      'hide',
    );
    expect(text).toBe('答案');
    expect(end).toMatchObject({ text: '答案' });
  });
});

describe('shown thinking', () => {
  it('puts Dify’s reasoning in one block above the answer, closed when the answer begins', () => {
    const { text, end } = run(
      [
        f({ event: 'workflow_started' }),
        f({ event: 'reasoning_chunk', reasoning: '先' }),
        f({ event: 'reasoning_chunk', reasoning: '想想' }),
        f({ event: 'text_chunk', text: '结论' }),
        f({ event: 'workflow_finished', status: 'succeeded' }),
      ],
      'show',
    );
    expect(text).toBe('<think>先想想</think>\n结论');
    expect(end).toMatchObject({ text: '<think>先想想</think>\n结论' });
  });

  it('names each tool an agent calls once, by its label, and closes the block at the end if no text came', () => {
    const { text } = run(
      [
        f({ event: 'agent_thought', id: 'a1', tool: '', toolLabels: {} }),
        f({
          event: 'agent_thought',
          id: 'a1',
          tool: 'dataset_search',
          toolLabels: { dataset_search: { zh_Hans: '查询知识库' } },
        }),
        f({
          event: 'agent_thought',
          id: 'a1',
          tool: 'dataset_search',
          toolLabels: { dataset_search: { zh_Hans: '查询知识库' } },
        }),
        f({ event: 'message_end' }),
      ],
      'show',
    );
    expect(text).toBe('<think>正在使用工具：查询知识库…\n</think>');
  });

  it('keeps a model’s own <think> as it is: WeCom folds it', () => {
    expect(
      run([f({ event: 'message', answer: '<think>x</think>y' }), f({ event: 'message_end' })], 'show').text,
    ).toBe('<think>x</think>y');
  });

  it('words several tools, and a tool with no label by its name', () => {
    expect(toolLine('a;b', { a: { en_US: 'Search' } })).toBe('正在使用工具：Search、b…\n');
    expect(toolLine('', {})).toBe('');
  });
});

describe('a tool’s progress, with thinking hidden', () => {
  it('stands in the bubble while the tool runs, and the answer replaces it', () => {
    const labels = { dataset_search: { zh_Hans: '查询知识库' } };
    const { events, text } = run(
      [
        f({ event: 'agent_thought', id: 'a1', tool: '', toolLabels: {} }),
        f({ event: 'agent_thought', id: 'a1', tool: 'dataset_search', toolLabels: labels }),
        f({ event: 'agent_thought', id: 'a2', tool: 'web', toolLabels: {} }),
        f({ event: 'agent_message', answer: '答' }),
        f({ event: 'agent_thought', id: 'a3', tool: 'late', toolLabels: {} }),
        f({ event: 'agent_message', answer: '案' }),
        f({ event: 'message_end' }),
      ],
      'hide',
    );
    const shown = events.flatMap((e) => (e.type === 'replace' ? [e.text] : []));
    expect(shown).toEqual(['正在使用工具：查询知识库…', '正在使用工具：web…', '答']);
    expect(text).toBe('答案');
  });

  it('goes when tools ran and no answer came', () => {
    const { text } = run(
      [f({ event: 'agent_thought', id: 'a1', tool: 'web', toolLabels: {} }), f({ event: 'message_end' })],
      'hide',
    );
    expect(text).toBe('');
  });
});
