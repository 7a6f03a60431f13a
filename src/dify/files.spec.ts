// The files of an answer (an agent tool's image, a workflow's output file): handed on once each, before
// the answer's end, their URLs made whole; the user's own files are not the answer's.
import { describe, expect, it } from 'vitest';
import { AnswerFold, type DifyEvent } from './events.js';
import { parseFrame } from './sse.js';

const frame = (body: Record<string, unknown>) => {
  const f = parseFrame(JSON.stringify({ conversation_id: 'c', message_id: 'm', task_id: 't', ...body }));
  if (!f) throw new Error('not a frame');
  return f;
};
const end = (events: DifyEvent[]) => events.find((e) => e.type === 'end') as { text: string } | undefined;
const filesOf = (events: DifyEvent[]) => {
  const at = events.findIndex((e) => e.type === 'files');
  // Before the end, never after it.
  expect(at).toBeLessThan(events.findIndex((e) => e.type === 'end'));
  return (events[at] as Extract<DifyEvent, { type: 'files' }> | undefined)?.files;
};

describe('the files of an answer', () => {
  it('are handed on each once, relative ones made whole; the user’s own are not', () => {
    const fold = new AnswerFold({ apiUrl: 'https://dify.example.com/v1' });
    const events = [
      frame({ event: 'agent_message', answer: '这是你要的图：' }),
      frame({
        event: 'message_file',
        id: 'f1',
        type: 'image',
        belongs_to: 'assistant',
        url: '/files/tools/f1.png?sign=s',
      }),
      frame({
        event: 'message_file',
        id: 'u1',
        type: 'image',
        belongs_to: 'user',
        url: 'https://x/user.png',
      }),
      frame({
        event: 'message_end',
        files: [
          { id: 'f1', type: 'image', url: '/files/tools/f1.png?sign=s' },
          { id: 'f2', type: 'document', filename: '报告.pdf', url: 'https://cdn.example.com/r.pdf' },
        ],
      }),
    ].flatMap((f) => fold.apply(f));
    expect(end(events)?.text).toBe('这是你要的图：');
    expect(filesOf(events)).toEqual([
      { id: 'f1', type: 'image', url: 'https://dify.example.com/files/tools/f1.png?sign=s', name: undefined },
      { id: 'f2', type: 'document', url: 'https://cdn.example.com/r.pdf', name: '报告.pdf' },
    ]);
  });

  it('of a workflow, from workflow_finished, when the answer has no text of its own', () => {
    const fold = new AnswerFold({ apiUrl: 'http://127.0.0.1/v1' });
    const events = [
      frame({ event: 'workflow_started', data: { id: 'w' } }),
      frame({
        event: 'workflow_finished',
        data: {
          status: 'succeeded',
          outputs: {},
          files: [{ type: 'image', remote_url: 'https://img.example.com/a.png' }],
        },
      }),
    ].flatMap((f) => fold.apply(f));
    expect(end(events)?.text).toBe('');
    expect(filesOf(events)).toEqual([
      { id: undefined, type: 'image', url: 'https://img.example.com/a.png', name: undefined },
    ]);
  });
});

describe('a workflow that waits for a person', () => {
  it('ends the answer saying so, after what it said so far', async () => {
    const { PAUSED_NOTE } = await import('./events.js');
    const fold = new AnswerFold();
    const events = [
      frame({ event: 'workflow_started', data: { id: 'w' } }),
      frame({ event: 'text_chunk', data: { text: '请审批：' } }),
      frame({ event: 'workflow_paused', data: { id: 'w' } }),
    ].flatMap((f) => fold.apply(f));
    expect(end(events)?.text).toBe(`请审批：\n\n${PAUSED_NOTE}`);
  });
});
