// The pieces of an answer told together: a few times a second, or at once past the byte threshold,
// all their text in order with the time of the last; nothing told twice, nothing after dispose.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Pieces } from './pieces.js';

describe('Pieces', () => {
  let told: Array<[string, number]>;
  const tell = (text: string, at: number) => void told.push([text, at]);
  beforeEach(() => {
    told = [];
    vi.useFakeTimers();
  });
  afterEach(() => vi.useRealTimers());

  it('tells what came within flushMs as one, with the time of the last piece', () => {
    vi.setSystemTime(1_000_010); // 10 ms into a grain of the shared clock
    const pieces = new Pieces(tell, { flushMs: 150 });
    pieces.add('你', 1);
    pieces.add('好', 2);
    // Told with the pieces due in the same grain: at most 20 ms before flushMs, never after.
    vi.advanceTimersByTime(129);
    expect(told).toEqual([]);
    vi.advanceTimersByTime(21);
    expect(told).toEqual([['你好', 2]]);
    pieces.add('！', 3);
    vi.advanceTimersByTime(150);
    expect(told).toEqual([
      ['你好', 2],
      ['！', 3],
    ]);
  });

  it('tells at once when the text waiting reaches flushBytes (UTF-8 bytes, not characters)', () => {
    const pieces = new Pieces(tell, { flushMs: 150, flushBytes: 6 });
    pieces.add('一', 1);
    expect(told).toEqual([]);
    pieces.add('二', 2); // 6 bytes
    expect(told).toEqual([['一二', 2]]);
    vi.advanceTimersByTime(1000);
    expect(told).toHaveLength(1);
    // ASCII: a byte a character, so six characters, not two.
    for (const [i, piece] of ['ab', 'cd'].entries()) pieces.add(piece, 3 + i);
    expect(told).toHaveLength(1);
    pieces.add('ef', 5);
    expect(told).toEqual([
      ['一二', 2],
      ['abcdef', 5],
    ]);
  });

  it('flush tells what waits now, and nothing when nothing does', () => {
    const pieces = new Pieces(tell);
    pieces.flush();
    pieces.add('a', 1);
    pieces.flush();
    pieces.flush();
    vi.advanceTimersByTime(1000);
    expect(told).toEqual([['a', 1]]);
  });

  it('the pieces of many streams due within a grain are told by one timer', () => {
    vi.setSystemTime(2_000_000 - 150); // due at the start of a grain
    const streams = Array.from({ length: 50 }, () => new Pieces(tell, { flushMs: 150 }));
    for (const [i, pieces] of streams.entries()) {
      pieces.add(`s${i}`, i);
      if (i % 10 === 9) vi.advanceTimersByTime(3);
    }
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(150);
    expect(told.map(([text]) => text)).toEqual(streams.map((_, i) => `s${i}`));
  });

  it('drops what waits on dispose, and its timer tells nothing later', () => {
    const pieces = new Pieces(tell);
    pieces.add('lost', 1);
    pieces.dispose();
    vi.advanceTimersByTime(1000);
    expect(told).toEqual([]);
  });
});
