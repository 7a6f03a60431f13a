// The simulator prints a bubble's snapshots as a growing text: only what is new, unless it changed.
import { describe, expect, it } from 'vitest';
import { growth } from './growth.js';

describe('a bubble as it grows', () => {
  it('the first snapshot is printed whole', () => {
    expect(growth(undefined, '正在思考…')).toEqual({ kind: 'reprint', text: '正在思考…' });
  });
  it('a snapshot extending what is shown prints only its new end', () => {
    expect(growth('你好', '你好！世界')).toEqual({ kind: 'append', text: '！世界' });
  });
  it('the same snapshot prints nothing', () => {
    expect(growth('你好', '你好')).toEqual({ kind: 'same' });
  });
  it('a snapshot that does not extend it (placeholder to answer, a replaced answer) is printed again', () => {
    expect(growth('正在思考…', '你好')).toEqual({ kind: 'reprint', text: '你好' });
    expect(growth('draft', 'final')).toEqual({ kind: 'reprint', text: 'final' });
  });
});
