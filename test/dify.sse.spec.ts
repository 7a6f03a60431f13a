// SSE framing and the answer fold, without a network: the wire quirks of docs/protocol/dify.md §3 and §9.
import { describe, expect, it } from 'vitest';
import { DifyError } from '../src/dify/errors.js';
import { AnswerFold, type DifyEvent } from '../src/dify/events.js';
import { type DifyFrame, DifyFrameReader, FrameTooLargeError, parseFrame } from '../src/dify/sse.js';
import { fixtureFiles, fixturesAvailable, prng, readFixture, rechunk } from './support/fakeDify.js';

const enc = new TextEncoder();

function readAll(chunks: Uint8Array[]): DifyFrame[] {
  const reader = new DifyFrameReader();
  const frames = chunks.flatMap((c) => reader.push(c));
  return [...frames, ...reader.end()];
}

function fold(frames: DifyFrame[]): { events: DifyEvent[]; fold: AnswerFold } {
  const f = new AnswerFold();
  const events = frames.flatMap((frame) => (f.done ? [] : f.apply(frame)));
  if (!f.done) events.push(...f.eof());
  return { events, fold: f };
}

const chatFrame = (event: string, rest: Record<string, unknown>) =>
  `data: ${JSON.stringify({ event, conversation_id: 'c1', message_id: 'm1', created_at: 1, task_id: 't1', ...rest })}\n\n`;

describe('SSE frames', () => {
  it('a ping frame has no data and is never dispatched (§3.2)', () => {
    expect(readAll([enc.encode('event: ping\n\n')])).toEqual([]);
  });

  it('non-JSON data, JSON that is not an object, and objects without event are skipped (§9.4)', () => {
    const reader = new DifyFrameReader();
    const frames = reader.push(
      enc.encode('data: [DONE]\n\ndata: 42\n\ndata: {"answer":"x"}\n\n: comment\n\n'),
    );
    expect(frames).toEqual([]);
    expect(reader.skipped).toBe(3);
  });

  it('accepts CRLF line endings and records the id: cursor of newer servers (§3.2, §3.3)', () => {
    const frames = readAll([
      enc.encode('id: 1712345678901-0\r\ndata: {"event":"workflow_paused","task_id":"t"}\r\n\r\n'),
    ]);
    expect(frames).toEqual([{ event: 'workflow_paused', ids: { taskId: 't' }, cursor: '1712345678901-0' }]);
  });

  it('a character split across chunks survives (§9.2)', () => {
    const bytes = enc.encode(chatFrame('message', { id: 'm1', answer: '你好👋' }));
    const emoji = bytes.indexOf(0xf0);
    const frames = readAll([
      bytes.subarray(0, emoji + 1),
      bytes.subarray(emoji + 1, emoji + 3),
      bytes.subarray(emoji + 3),
    ]);
    expect(frames).toMatchObject([{ event: 'message', answer: '你好👋' }]);
  });

  it('an unterminated last frame is dropped at EOF, never guessed at (§9.3)', () => {
    const frames = readAll([
      enc.encode(`${chatFrame('message', { answer: 'a' })}data: {"event":"message","answer":"b"}`),
    ]);
    expect(frames).toHaveLength(1);
  });

  it('a frame larger than the buffer is an error, not a hang', () => {
    const reader = new DifyFrameReader({ maxFrameChars: 100 });
    expect(() => reader.push(enc.encode(`data: {"event":"message","answer":"${'x'.repeat(200)}`))).toThrow(
      FrameTooLargeError,
    );
  });

  it('a known event whose fields do not fit becomes `other`', () => {
    expect(parseFrame('{"event":"message","answer":5}')).toMatchObject({ event: 'other', name: 'message' });
  });

  it('workflow_started gives the run id from data.id when the top level lacks it', () => {
    expect(parseFrame('{"event":"workflow_started","data":{"id":"run-1"}}')?.ids).toEqual({
      workflowRunId: 'run-1',
    });
  });
});

describe.skipIf(!fixturesAvailable)('the captured streams, fed byte by byte and re-chunked', () => {
  for (const file of fixtureFiles) {
    it(`${file}: one byte at a time gives the same frames as one write`, () => {
      const bytes = readFixture(file);
      const whole = readAll([bytes]);
      expect(whole.length).toBeGreaterThan(0);
      const single = readAll([...bytes].map((b) => Uint8Array.of(b)));
      expect(single).toEqual(whole);
      for (let seed = 1; seed <= 50; seed++) expect(readAll(rechunk(bytes, prng(seed), 40))).toEqual(whole);
    });
  }
});
if (!fixturesAvailable) console.warn('fixtures/dify not found next to the project: fixture replays skipped');

describe('the answer fold (§4)', () => {
  it('appends message deltas, skips empty ones and ends at message_end', () => {
    const frames = readAll([
      enc.encode(
        chatFrame('message', { answer: 'Hel' }) +
          chatFrame('message', { answer: '' }) +
          chatFrame('message', { answer: 'lo' }) +
          chatFrame('message_end', { metadata: { usage: { total_tokens: 3 } } }),
      ),
    ]);
    expect(fold(frames).events).toEqual([
      { type: 'started', conversationId: 'c1', messageId: 'm1', taskId: 't1' },
      { type: 'delta', text: 'Hel' },
      { type: 'delta', text: 'lo' },
      { type: 'end', text: 'Hello', usage: { total_tokens: 3 } },
    ]);
  });

  it("New Agent's closing message replaces the streamed text instead of doubling it (§4.3)", () => {
    const frames = readAll([
      enc.encode(
        chatFrame('agent_message', { answer: 'Hi ' }) +
          chatFrame('agent_message', { answer: 'there' }) +
          chatFrame('message', { answer: 'Hi there!' }) +
          chatFrame('message_end', {}),
      ),
    ]);
    const { events } = fold(frames);
    expect(events.at(-2)).toEqual({ type: 'replace', text: 'Hi there!' });
    expect(events.at(-1)).toEqual({ type: 'end', text: 'Hi there!' });
  });

  it('a closing message equal to the streamed text changes nothing', () => {
    const frames = readAll([
      enc.encode(
        chatFrame('agent_message', { answer: 'Hi' }) +
          chatFrame('message', { answer: 'Hi' }) +
          chatFrame('message_end', {}),
      ),
    ]);
    expect(fold(frames).events.map((e) => e.type)).toEqual(['started', 'delta', 'end']);
  });

  it('a chatflow whose workflow_finished was lost still ends after message_end', () => {
    const frames = readAll([
      enc.encode(
        chatFrame('workflow_started', { workflow_run_id: 'r1', data: { id: 'r1' } }) +
          chatFrame('message', { answer: 'ok' }) +
          chatFrame('message_end', {}),
      ),
    ]);
    expect(fold(frames).events.at(-1)).toEqual({ type: 'end', text: 'ok' });
  });

  it('an error frame throws a typed error with the partial text (§6.1)', () => {
    const frames = readAll([
      enc.encode(
        chatFrame('message', { answer: 'par' }) +
          'data: {"event":"error","conversation_id":"c1","message_id":"m1","created_at":1,"code":"completion_request_error","status":400,"message":"Read timed out."}\n\n',
      ),
    ]);
    const f = new AnswerFold();
    f.apply(frames[0] as DifyFrame);
    const err = (() => {
      try {
        f.apply(frames[1] as DifyFrame);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(DifyError);
    expect(err).toMatchObject({
      code: 'completion_request_error',
      kind: 'server',
      retryable: false,
      partial: 'par',
    });
  });
});
