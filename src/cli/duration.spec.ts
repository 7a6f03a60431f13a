// Durations as operators type them (`--stuck 90s`) and as the tables show them.
import { describe, expect, it } from 'vitest';
import { formatDuration, formatOffset, parseDuration } from './duration.js';

describe('durations', () => {
  it('reads 90s, 2m, 1h30m, 500ms and 1.5h; refuses a bare number or a stray word', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('2d')).toBe(172_800_000);
    for (const bad of ['', '90', 'soon', '2 m', '1h foo', 'm2']) expect(parseDuration(bad)).toBeUndefined();
  });

  it('writes them short: tenths under ten seconds, then s, m+s, h+m, d+h', () => {
    expect(formatDuration(420)).toBe('0.4s');
    expect(formatDuration(12_345)).toBe('12s');
    expect(formatDuration(125_000)).toBe('2m05s');
    expect(formatDuration(3_720_000)).toBe('1h02m');
    expect(formatDuration(273_600_000)).toBe('3d04h');
    expect(formatDuration(-1500)).toBe('-1.5s');
  });

  it('writes an offset in a stream to the millisecond, signed', () => {
    expect(formatOffset(0)).toBe('+0.000s');
    expect(formatOffset(12_345)).toBe('+12.345s');
    expect(formatOffset(-120)).toBe('-0.120s');
  });
});
