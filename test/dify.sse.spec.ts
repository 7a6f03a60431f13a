// SSE framing and the answer fold, without a network: the wire quirks of docs/protocol/dify.md §3 and §9.

import { createParser } from 'eventsource-parser';
import { describe, expect, it } from 'vitest';
import { DifyError } from '../src/dify/errors.js';
import { AnswerFold, type DifyEvent } from '../src/dify/events.js';
import {
  type DifyFrame,
  DifyFrameReader,
  FrameTooLargeError,
  parseFrame,
  SseDecoder,
  type SseEvent,
} from '../src/dify/sse.js';
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
    const reader = new DifyFrameReader({ maxFrameBytes: 100 });
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

/** The events a reader makes of these chunks. */
function decodeAll(chunks: Uint8Array[]): SseEvent[] {
  const events: SseEvent[] = [];
  const decoder = new SseDecoder((e) => events.push(e), 1 << 20);
  for (const chunk of chunks) decoder.push(chunk);
  decoder.end();
  return events;
}

/** What the reference parser (eventsource-parser, behind a streaming TextDecoder) makes of the bytes. */
function referenceEvents(bytes: Uint8Array): SseEvent[] {
  const events: SseEvent[] = [];
  const parser = createParser({
    onEvent: (m) => events.push(m.id ? { data: m.data, id: m.id } : { data: m.data }),
  });
  parser.feed(new TextDecoder().decode(bytes));
  return events;
}

/** A random event stream: every kind of line, every line ending, characters of 1 to 4 UTF-8 bytes. */
function randomStream(rand: () => number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
  const words = ['a', 'data', '你好', '👋', '{"event":"message","answer":"x"}', ':', ' ', 'é', 'id', ''];
  const text = () => Array.from({ length: Math.floor(rand() * 4) }, () => pick(words)).join('');
  const lines = [
    () => `data: ${text()}`,
    () => `data:${text()}`,
    () => 'data',
    () => `id: ${text().replace(/[\r\n]/g, '')}`,
    () => `event: ${text()}`,
    () => `retry: ${Math.floor(rand() * 1000)}`,
    () => `: ${text()}`,
    () => `${pick(['foo', 'dat', 'datum'])}: ${text()}`,
    () => '',
  ];
  let out = rand() < 0.2 ? '\uFEFF' : '';
  for (let i = 0; i < 40; i++) out += pick(lines)() + pick(['\n', '\n', '\r\n', '\r']);
  // Not ending on a lone CR: the reference waits for the LF that may follow it even after the last
  // chunk, where the standard (and this reader) take the CR as the line's end.
  return `${out}\n`;
}

describe('the SSE wire format, read on bytes', () => {
  it('CR, LF and CRLF all end a line, also when a CRLF is split between chunks', () => {
    const expected = [{ data: 'one' }, { data: 'two' }, { data: 'three\nfour' }];
    const bytes = enc.encode('data: one\r\rdata: two\n\ndata: three\r\ndata: four\r\n\r\n');
    expect(decodeAll([bytes])).toEqual(expected);
    const crlf = Buffer.from(bytes).indexOf('three\r\n') + 'three'.length; // its CR
    expect(decodeAll([bytes.subarray(0, crlf + 1), bytes.subarray(crlf + 1)])).toEqual(expected);
  });

  it('a BOM at the start is skipped, also when it comes a byte at a time', () => {
    const bytes = enc.encode('\uFEFFdata: x\n\n');
    expect(bytes[0]).toBe(0xef);
    expect(decodeAll([bytes])).toEqual([{ data: 'x' }]);
    expect(decodeAll([...bytes].map((b) => Uint8Array.of(b)))).toEqual([{ data: 'x' }]);
  });

  it('comments, unknown fields and events without data dispatch nothing; an empty data line dispatches ""', () => {
    expect(decodeAll([enc.encode(': hi\nfoo: bar\nevent: ping\n\nretry: 5\n\ndata\n\n')])).toEqual([
      { data: '' },
    ]);
  });

  it('the id: of an event goes with it, and only with it', () => {
    expect(decodeAll([enc.encode('id: 7\ndata: a\n\ndata: b\n\n')])).toEqual([
      { data: 'a', id: '7' },
      { data: 'b' },
    ]);
  });

  it('an event held across chunks counts against the bound, whatever its lines', () => {
    const decoder = new SseDecoder(() => {}, 64);
    decoder.push(enc.encode(`data: ${'x'.repeat(40)}\n`));
    expect(() => decoder.push(enc.encode(`data: ${'y'.repeat(40)}\n`))).toThrow(FrameTooLargeError);
  });

  it('gives the same events as the reference parser, for random streams cut at random places', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rand = prng(seed);
      const bytes = Buffer.from(randomStream(rand));
      const expected = referenceEvents(bytes);
      expect(decodeAll([bytes]), `seed ${seed}`).toEqual(expected);
      expect(decodeAll(rechunk(bytes, rand, 7)), `seed ${seed}, rechunked`).toEqual(expected);
    }
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
