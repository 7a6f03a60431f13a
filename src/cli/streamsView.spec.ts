// What `wecom-dify streams` keeps and shows, given the store's summaries and the clock.
import { describe, expect, it } from 'vitest';
import type { StreamSummary } from '../store/port.js';
import { selectStreams, streamsTable, stuckReason } from './streamsView.js';

const now = 1_000_000_000;
const summary = (streamId: string, over: Partial<StreamSummary> = {}): StreamSummary => ({
  streamId,
  bot: 'hr',
  userid: 'zhangsan',
  state: 'streaming',
  openedAt: now - 60_000,
  lastEventAt: now - 1_000,
  answerLength: 12,
  finished: false,
  lease: { node: 'node-a', until: now + 10_000 },
  ...over,
});
/** As the store gives a stream nobody holds: with no `lease` at all. */
const unleased = (streamId: string, over: Partial<StreamSummary> = {}): StreamSummary => {
  const { lease: _lease, ...rest } = summary(streamId, over);
  return rest;
};

describe('streams: stuck', () => {
  it('an unfinished stream with no live lease: its owner is gone', () => {
    expect(stuckReason(unleased('a'), now, 60_000)).toBe('no-lease');
    expect(stuckReason(summary('a', { lease: { node: 'x', until: now - 1 } }), now, 60_000)).toBe('no-lease');
  });
  it('an unfinished stream quiet for the threshold, even with a live owner', () => {
    expect(stuckReason(summary('a', { lastEventAt: now - 120_000 }), now, 90_000)).toBe('quiet');
    expect(stuckReason(summary('a', { lastEventAt: now - 60_000 }), now, 90_000)).toBeUndefined();
  });
  it('a finished stream never is', () => {
    expect(stuckReason(unleased('a', { finished: true, state: 'completed' }), now, 1)).toBeUndefined();
  });
});

describe('streams: filters and table', () => {
  const all = [
    summary('running'),
    unleased('done', { finished: true, state: 'completed', userid: 'lisi' }),
    unleased('orphan', { state: 'thinking', bot: 'it' }),
  ];

  it('--unfinished, --user and --limit', () => {
    expect(selectStreams(all, { unfinished: true, limit: 10 }, now).map((r) => r.streamId)).toEqual([
      'running',
      'orphan',
    ]);
    expect(selectStreams(all, { user: 'lisi', limit: 10 }, now).map((r) => r.streamId)).toEqual(['done']);
    expect(selectStreams(all, { limit: 2 }, now).map((r) => r.streamId)).toEqual(['running', 'done']);
  });

  it('--bot keeps one bot’s streams, with the other filters and the limit applied to them', () => {
    expect(selectStreams(all, { bot: 'hr', limit: 10 }, now).map((r) => r.streamId)).toEqual([
      'running',
      'done',
    ]);
    expect(selectStreams(all, { bot: 'it', limit: 10 }, now)).toMatchObject([
      { streamId: 'orphan', bot: 'it' },
    ]);
    expect(
      selectStreams(all, { bot: 'hr', unfinished: true, limit: 10 }, now).map((r) => r.streamId),
    ).toEqual(['running']);
    expect(selectStreams(all, { bot: 'hr', limit: 1 }, now).map((r) => r.streamId)).toEqual(['running']);
    expect(selectStreams(all, { bot: 'finance', limit: 10 }, now)).toEqual([]);
  });

  it('--stuck keeps the stuck ones and says why', () => {
    expect(selectStreams(all, { stuckAfterMs: 90_000, limit: 10 }, now)).toMatchObject([
      { streamId: 'orphan', stuck: 'no-lease', ageMs: 60_000, quietMs: 1_000, lease: null },
    ]);
  });

  it('lays them out with the owner and its time left', () => {
    const lines = streamsTable(selectStreams(all, { limit: 10 }, now), now);
    expect(lines[0]).toBe('STREAM   BOT  USER      STATE        AGE  LAST EVENT  ANSWER  OWNER');
    expect(lines[1]).toBe('running  hr   zhangsan  streaming  1m00s    1.0s ago      12  node-a (10s left)');
    expect(lines[2]).toMatch(/^done {5}hr {3}lisi {6}completed .* -$/);
    expect(lines[3]).toMatch(/^orphan {3}it {3}zhangsan .* none$/);
    expect(lines.at(-1)).toBe('3 streams');
    expect(streamsTable([], now)).toEqual(['no streams']);
  });
});
