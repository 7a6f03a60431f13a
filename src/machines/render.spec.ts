import { describe, expect, it } from 'vitest';
import type { EventOf, ReadEvent } from './events.js';
import { failureCodes } from './failures.js';
import { fold } from './fold.js';
import { cutUtf8, fitContent, MAX_CONTENT_BYTES, render, renderContent } from './render.js';
import {
  bubbleClosed,
  commandHandled,
  completed,
  delta,
  denied,
  failed,
  granted,
  opened,
  queued,
  replaced,
  stored,
  T0,
  takenOver,
} from './specification.js';
import { defaultTexts, type Texts } from './texts.js';

const bytes = (text: string): number => Buffer.byteLength(text, 'utf8');
const shown = (events: ReadEvent[], texts?: Texts) => renderContent(fold(events), texts);
const answering = (...answer: ReadEvent[]): ReadEvent[] => [opened(), granted(), ...answer];

/** Text that survives a UTF-8 round trip unchanged: no split character, no lone surrogate, no U+FFFD. */
function expectValidUtf8(text: string): void {
  expect(text.includes('\uFFFD')).toBe(false);
  expect(Buffer.from(text, 'utf8').toString('utf8')).toBe(text);
}

/** A small seeded generator, so every run checks the same "random" lengths. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` characters cycling through `alphabet` (whole code points). */
function textOf(alphabet: string[], count: number): string {
  let text = '';
  for (let i = 0; i < count; i++) text += alphabet[i % alphabet.length];
  return text;
}

/** The shortest text of `alphabet` characters at least `targetBytes` long. */
function textOfBytes(alphabet: string[], targetBytes: number): string {
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < targetBytes; i++) {
    const char = alphabet[i % alphabet.length] ?? 'a';
    parts.push(char);
    size += bytes(char);
  }
  return parts.join('');
}

const alphabets: Record<string, string[]> = {
  'ASCII (1 byte)': ['a', 'b', 'c'],
  'Latin with accents (2 bytes)': ['é', 'ß', 'ø'],
  'Chinese (3 bytes)': ['中', '文', '字'],
  'emoji (4 bytes)': ['😀', '🌏', '🚀'],
  'mixed 1–4 bytes': ['a', 'é', '中', '😀', ' ', '文', '🚀', 'ß'],
};

describe('rendering a stream as a WeCom stream reply', () => {
  describe('before the answer', () => {
    it('a stream with no events has expired, and finishes the bubble', () => {
      expect(shown([])).toEqual({ finish: true, content: defaultTexts.expired });
    });

    it('while authenticating it shows the authenticating text', () => {
      expect(shown([opened()])).toEqual({ finish: false, content: defaultTexts.authenticating });
    });

    it('while thinking it shows the thinking text', () => {
      expect(shown(answering())).toEqual({ finish: false, content: defaultTexts.thinking });
    });

    it('while queued it shows the queued text', () => {
      expect(shown(answering(queued()))).toEqual({ finish: false, content: defaultTexts.queued });
    });

    it('the placeholders come from the texts passed in', () => {
      const texts: Texts = { ...defaultTexts, authenticating: 'who?', thinking: 'hmm', queued: 'wait' };
      expect(shown([opened()], texts).content).toBe('who?');
      expect(shown(answering(), texts).content).toBe('hmm');
      expect(shown(answering(queued()), texts).content).toBe('wait');
    });
  });

  describe('the answer', () => {
    it('while streaming it shows the whole answer so far, not finished', () => {
      expect(shown(answering(delta('he'), delta('llo')))).toEqual({ finish: false, content: 'hello' });
    });

    it('answer.replaced shows the replacement', () => {
      expect(shown(answering(delta('draft'), replaced('final'))).content).toBe('final');
    });

    it('a whitespace-only answer while streaming shows the thinking text instead', () => {
      expect(shown(answering(delta('\n\n  '))).content).toBe(defaultTexts.thinking);
    });

    it('a completed answer is shown with finish:true', () => {
      expect(shown(answering(delta('hello'), completed()))).toEqual({ finish: true, content: 'hello' });
    });

    it('an empty completed answer shows a visible text, so the spinner stops', () => {
      expect(shown(answering(completed()))).toEqual({ finish: true, content: defaultTexts.emptyAnswer });
    });

    it('a whitespace-only completed answer shows a visible text', () => {
      expect(shown(answering(delta(' \n\t '), completed()))).toEqual({
        finish: true,
        content: defaultTexts.emptyAnswer,
      });
    });

    it('a handled command shows its text, finished', () => {
      expect(shown([opened({ query: '/new' }), commandHandled('/new', '好的，我们重新开始。')])).toEqual({
        finish: true,
        content: '好的，我们重新开始。',
      });
    });

    it('render wraps the content in a stream reply with the stream id', () => {
      expect(render(fold(answering(delta('hi'), completed())), 'sid-1')).toEqual({
        msgtype: 'stream',
        stream: { id: 'sid-1', finish: true, content: 'hi' },
      });
    });
  });

  describe('takeover', () => {
    it('after a takeover the old answer stays visible while the new one starts', () => {
      expect(shown(answering(delta('old answer'), takenOver()))).toEqual({
        finish: false,
        content: 'old answer',
      });
    });

    it('the new answer’s first delta replaces it', () => {
      expect(shown(answering(delta('old answer'), takenOver(), granted(), delta('new'))).content).toBe('new');
    });
  });

  describe('<think> (docs/protocol/wecom.md §10.2)', () => {
    it('an unclosed <think> is closed when the answer completes, and something visible follows it', () => {
      // Only a thinking block, finished: WeCom would keep its thinking animation running.
      expect(shown(answering(delta('<think>still reasoning'), completed())).content).toBe(
        `<think>still reasoning</think>\n${defaultTexts.emptyAnswer}`,
      );
    });

    it('a closed <think> is left alone', () => {
      const answer = '<think>reasoning</think>the answer';
      expect(shown(answering(delta(answer), completed())).content).toBe(answer);
    });

    it('an unclosed <think> is left open while streaming', () => {
      expect(shown(answering(delta('<think>still reasoning'))).content).toBe('<think>still reasoning');
    });

    it('an unclosed <think> is closed before the failure reason', () => {
      const content = shown(answering(delta('<think>half'), failed('dify_timeout', 'slow'))).content;
      expect(content).toBe(`<think>half</think>\n\n---\n${defaultTexts.failures.dify_timeout}`);
    });

    // Bug: closeThink runs before the cut, so the appended `</think>` is cut away with the tail.
    it('an unclosed <think> longer than the cap is still closed when the answer completes', () => {
      const content = shown(answering(delta(`<think>${'想'.repeat(8000)}`), completed())).content;
      expect(bytes(content)).toBeLessThanOrEqual(MAX_CONTENT_BYTES);
      expect(content).toContain('</think>');
    });
  });

  describe('failures', () => {
    for (const code of failureCodes) {
      it(`answer.failed ${code} shows its user text and finishes`, () => {
        const text = defaultTexts.failures[code];
        expect(text).toMatch(/\S/);
        expect(shown(answering(failed(code, 'internal detail')))).toEqual({ finish: true, content: text });
      });
    }

    it('a failure code this version does not know (a newer node’s) reads as internal, its name kept', () => {
      const read = stored({ type: 'answer.failed', at: T0, code: 'something_new', message: 'x' });
      expect(read).toMatchObject({ code: 'internal', message: 'something_new: x' });
      expect(shown(answering(read as EventOf<'answer.failed'>)).content).toBe(defaultTexts.failures.internal);
    });

    it('the text the owner chose wins over the code table', () => {
      expect(shown(answering(failed('dify_error', 'x', '自定义说明'))).content).toBe('自定义说明');
    });

    it('the internal message is never shown', () => {
      expect(shown(answering(failed('dify_error', 'ECONNRESET at socket.js:12'))).content).not.toContain(
        'ECONNRESET',
      );
    });

    it('a failure after a partial answer keeps the answer and adds the reason', () => {
      expect(shown(answering(delta('half an answer'), failed('dify_interrupted', 'cut')))).toEqual({
        finish: true,
        content: `half an answer\n\n---\n${defaultTexts.failures.dify_interrupted}`,
      });
    });

    it('a failure after a whitespace-only answer shows only the reason', () => {
      expect(shown(answering(delta('  \n'), failed('dify_timeout', 'slow'))).content).toBe(
        defaultTexts.failures.dify_timeout,
      );
    });

    it('a failure while authenticating shows its reason', () => {
      expect(shown([opened(), failed('auth_unavailable', 'down')])).toEqual({
        finish: true,
        content: defaultTexts.failures.auth_unavailable,
      });
    });
  });

  describe('denial', () => {
    it('a denied user sees the denied text, and the bubble finishes', () => {
      expect(shown([opened(), denied('not_in_directory')])).toEqual({
        finish: true,
        content: defaultTexts.denied,
      });
    });

    it('the denied text the owner chose wins', () => {
      expect(shown([opened(), denied('not_in_directory', '请联系 IT 开通')]).content).toBe('请联系 IT 开通');
    });

    it('the denied text comes from the texts passed in', () => {
      expect(shown([opened(), denied('x')], { ...defaultTexts, denied: 'no' }).content).toBe('no');
    });
  });

  describe('a closed bubble', () => {
    it('shows the text it was closed with, finished, while the answer goes on', () => {
      expect(shown(answering(delta('he'), bubbleClosed('window', 'he…（稍后发送）'), delta('llo')))).toEqual({
        finish: true,
        content: 'he…（稍后发送）',
      });
    });

    it('keeps showing that text after the answer completes', () => {
      expect(shown(answering(delta('long'), completed(), bubbleClosed('overflow', 'lo…'))).content).toBe(
        'lo…',
      );
    });
  });

  describe('the 20480-byte cap (§5.3)', () => {
    const note = defaultTexts.truncated;

    it('an answer of exactly 20480 bytes is shown whole', () => {
      const answer = 'a'.repeat(MAX_CONTENT_BYTES - 3) + '中';
      expect(bytes(answer)).toBe(MAX_CONTENT_BYTES);
      expect(shown(answering(delta(answer), completed())).content).toBe(answer);
    });

    it('an answer one byte over is cut and ends with the note', () => {
      const answer = 'a'.repeat(MAX_CONTENT_BYTES + 1);
      const { content } = shown(answering(delta(answer), completed()));
      expect(bytes(content)).toBe(MAX_CONTENT_BYTES);
      expect(content.endsWith(note)).toBe(true);
      expect(content).toBe('a'.repeat(MAX_CONTENT_BYTES - bytes(note)) + note);
    });

    for (const [name, alphabet] of Object.entries(alphabets)) {
      it(`${name}: never over 20480 bytes, cut on a character boundary, note at the end`, () => {
        const next = random(name.length * 7919);
        const lengths = new Set<number>();
        // Every length across the boundary, then random lengths well beyond it.
        for (let b = MAX_CONTENT_BYTES - 24; b <= MAX_CONTENT_BYTES + 24; b++) lengths.add(b);
        for (let i = 0; i < 40; i++) lengths.add(MAX_CONTENT_BYTES + Math.floor(next() * 60_000));
        const budget = MAX_CONTENT_BYTES - bytes(note);
        for (const target of lengths) {
          const answer = textOfBytes(alphabet, target);
          for (const events of [answering(delta(answer)), answering(delta(answer), completed())]) {
            const { content } = shown(events);
            expect(bytes(content), `${target} bytes`).toBeLessThanOrEqual(MAX_CONTENT_BYTES);
            expectValidUtf8(content);
            if (bytes(answer) <= MAX_CONTENT_BYTES) {
              expect(content).toBe(answer);
              continue;
            }
            expect(content.endsWith(note), `${target} bytes`).toBe(true);
            const head = content.slice(0, content.length - note.length);
            expect(answer.startsWith(head)).toBe(true);
            // The longest head that fits: one more character would not.
            const nextChar = String.fromCodePoint(answer.codePointAt(head.length) ?? 0);
            expect(bytes(head)).toBeLessThanOrEqual(budget);
            expect(bytes(head + nextChar)).toBeGreaterThan(budget);
          }
        }
      });
    }

    it('an answer built from many multi-byte deltas is cut the same way', () => {
      const next = random(42);
      const chars = alphabets['mixed 1–4 bytes'] ?? [];
      const events = answering();
      for (let i = 0; i < 4000; i++) {
        events.push(
          delta(textOf(chars.slice(Math.floor(next() * chars.length)), 1 + Math.floor(next() * 5))),
        );
      }
      const { content } = shown([...events, completed()]);
      expect(bytes(content)).toBeLessThanOrEqual(MAX_CONTENT_BYTES);
      expect(content.endsWith(note)).toBe(true);
      expectValidUtf8(content);
    });

    it('a failure after a long answer keeps the head, the note and the reason within the cap', () => {
      const reason = defaultTexts.failures.dify_interrupted;
      for (const alphabet of Object.values(alphabets)) {
        const answer = textOfBytes(alphabet, MAX_CONTENT_BYTES + 5);
        const { content } = shown(answering(delta(answer), failed('dify_interrupted', 'cut')));
        expect(bytes(content)).toBeLessThanOrEqual(MAX_CONTENT_BYTES);
        expect(content.endsWith(`${note}\n\n---\n${reason}`)).toBe(true);
        expectValidUtf8(content);
      }
    });

    it('a long answer after a takeover is cut while the new one starts', () => {
      const { content } = shown(answering(delta('中'.repeat(10_000)), takenOver()));
      expect(bytes(content)).toBeLessThanOrEqual(MAX_CONTENT_BYTES);
      expect(content.endsWith(note)).toBe(true);
    });
  });
});

describe('cutUtf8', () => {
  it('leaves text that fits alone', () => {
    expect(cutUtf8('hello', 5)).toBe('hello');
    expect(cutUtf8('中文', 6)).toBe('中文');
    expect(cutUtf8('', 0)).toBe('');
  });

  it('cuts ASCII at the byte count', () => {
    expect(cutUtf8('hello', 3)).toBe('hel');
  });

  it('never splits a 3-byte Chinese character', () => {
    expect(cutUtf8('中文字', 3)).toBe('中');
    expect(cutUtf8('中文字', 4)).toBe('中');
    expect(cutUtf8('中文字', 5)).toBe('中');
    expect(cutUtf8('中文字', 6)).toBe('中文');
    expect(cutUtf8('中文字', 2)).toBe('');
  });

  it('never splits a 4-byte emoji (a surrogate pair)', () => {
    expect(cutUtf8('😀🌏', 3)).toBe('');
    expect(cutUtf8('😀🌏', 4)).toBe('😀');
    expect(cutUtf8('😀🌏', 7)).toBe('😀');
    expect(cutUtf8('😀🌏', 8)).toBe('😀🌏');
  });

  it('cuts mixed text at every byte count on a boundary', () => {
    const text = 'aé中😀b';
    const expected = ['', 'a', 'a', 'aé', 'aé', 'aé', 'aé中', 'aé中', 'aé中', 'aé中', 'aé中😀', 'aé中😀b'];
    expected.forEach((want, max) => {
      expect(cutUtf8(text, max), `${max} bytes`).toBe(want);
    });
  });

  it('gives nothing for a budget of zero or less', () => {
    expect(cutUtf8('hello', 0)).toBe('');
    expect(cutUtf8('hello', -5)).toBe('');
  });

  it('holds for random text and random budgets', () => {
    const next = random(7);
    const chars = alphabets['mixed 1–4 bytes'] ?? [];
    for (let i = 0; i < 500; i++) {
      const text = Array.from(
        { length: Math.floor(next() * 50) },
        () => chars[Math.floor(next() * chars.length)],
      ).join('');
      const max = Math.floor(next() * (bytes(text) + 4));
      const cut = cutUtf8(text, max);
      expect(bytes(cut)).toBeLessThanOrEqual(max);
      expect(text.startsWith(cut)).toBe(true);
      expectValidUtf8(cut);
      if (cut.length < text.length) {
        expect(bytes(cut + String.fromCodePoint(text.codePointAt(cut.length) ?? 0))).toBeGreaterThan(max);
      }
    }
  });
});

describe('fitContent', () => {
  it('keeps text and suffix whole when they fit together', () => {
    expect(fitContent('abc', '…', '!', 4)).toEqual({ content: 'abc!', cut: false });
  });

  it('cuts the text so that text, note and suffix fit together', () => {
    expect(fitContent('abcdef', '…', '!', 6)).toEqual({ content: 'ab…!', cut: true });
    expect(bytes('ab…!')).toBe(6);
  });

  it('counts the suffix against the cap', () => {
    expect(fitContent('中文', '~', 'xy', 7)).toEqual({ content: '中~xy', cut: true });
  });
});
