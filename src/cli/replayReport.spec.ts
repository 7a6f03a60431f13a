// The replay report, given events, a lease and a clock: what each step shows and what the diagnosis says.
import { describe, expect, it } from 'vitest';
import { fold, parseEvent, type ReadEvent, type StreamEvent, stateOf } from '../machines/index.js';
import { buildReplay, formatReplay, type ReplayInput } from './replayReport.js';

const t0 = Date.UTC(2025, 0, 2, 3, 4, 5);

const opened: StreamEvent = {
  type: 'stream.opened',
  at: t0,
  streamId: 's-1',
  msgid: 'm-1',
  bot: 'hr',
  userid: 'zhangsan',
  chattype: 'single',
  query: '你好',
  node: 'node-a',
};
const granted: StreamEvent = { type: 'auth.granted', at: t0 + 5, user: { id: 'zhangsan', name: '张三' } };
const started: StreamEvent = { type: 'dify.started', at: t0 + 200, conversationId: 'c-1', taskId: 't-1' };
const delta = (at: number, text: string): StreamEvent => ({ type: 'answer.delta', at: t0 + at, text });
const completed: StreamEvent = { type: 'answer.completed', at: t0 + 900, usage: { total_tokens: 41 } };

const given = (...events: ReadEvent[]): ReplayInput[] => events.map((event, i) => ({ seq: i + 1, event }));

describe('replaying a stream', () => {
  it('a completed stream: each step has its offset, the state after it and how the answer grew', () => {
    const report = buildReplay(
      given(opened, granted, started, delta(300, '你好！'), delta(400, '有什么事？'), completed),
      {
        lease: null,
        now: t0 + 60_000,
      },
    );
    expect(report.streamId).toBe('s-1');
    expect(report.bot).toBe('hr');
    expect(report.steps.map((s) => [s.offsetMs, s.type, s.state, s.answerLength])).toEqual([
      [0, 'stream.opened', 'authenticating', 0],
      [5, 'auth.granted', 'thinking', 0],
      [200, 'dify.started', 'thinking', 0],
      [300, 'answer.delta', 'streaming', 3],
      [400, 'answer.delta', 'streaming', 8],
      [900, 'answer.completed', 'completed', 8],
    ]);
    expect(report.steps[4]).toMatchObject({
      answerDelta: 5,
      answerReplaced: false,
      answerTail: '有什么事？',
    });
    expect(report.steps[5]?.summary).toBe('41 tokens');
    expect(report.diagnosis).toMatchObject({
      state: 'completed',
      finished: true,
      outcome: 'completed',
      stuck: false,
      events: 6,
      answerLength: 8,
    });
  });

  it('gives the same states as the live fold, step by step, whatever the events', () => {
    const events: ReadEvent[] = [
      opened,
      granted,
      { type: 'stream.queued', at: t0 + 10, behind: 's-0' },
      { type: 'stream.dequeued', at: t0 + 20 },
      started,
      delta(300, 'a'),
      { type: 'stream.taken_over', at: t0 + 400, node: 'node-b', attempt: 1, previousNode: 'node-a' },
      delta(500, 'b'),
      { type: 'answer.replaced', at: t0 + 600, text: 'xyz' },
      completed,
      { type: 'delivery.sent', at: t0 + 1000, bytes: 3 },
    ];
    const report = buildReplay(given(...events), { lease: null, now: t0 + 2000 });
    report.steps.forEach((step, i) => {
      const live = fold(events.slice(0, i + 1));
      expect(step.state).toBe(stateOf(live));
      expect(step.answerLength).toBe(live.context.answer.length);
    });
  });

  it('an unknown event is shown with its problem, kept out of the fold', () => {
    const future = parseEvent({ type: 'stream.teleported', at: t0 + 50, to: 'mars' });
    const report = buildReplay(given(opened, future, granted), { lease: null, now: t0 + 100 });
    expect(report.steps[1]).toMatchObject({
      type: 'stream.teleported',
      unknown: true,
      applied: false,
      state: 'authenticating',
      offsetMs: 50,
    });
    expect(report.steps[1]?.summary).toContain('unknown event type "stream.teleported"');
    expect(report.steps[2]?.state).toBe('thinking');
    expect(report.diagnosis.unknownEvents).toBe(1);
    expect(formatReplay(report).join('\n')).toContain('stream.teleported (unknown)');
  });

  it('an event its state does not take is marked ignored', () => {
    const report = buildReplay(given(opened, granted, completed, delta(950, 'late')), {
      lease: null,
      now: t0 + 1000,
    });
    expect(report.steps[3]).toMatchObject({
      applied: false,
      unknown: false,
      state: 'completed',
      answerLength: 0,
    });
    expect(formatReplay(report).join('\n')).toContain('(completed, ignored)');
  });

  it('an answer replaced by another shows the new text, not a growth', () => {
    const report = buildReplay(
      given(opened, granted, delta(300, 'draft answer'), {
        type: 'answer.replaced',
        at: t0 + 400,
        text: 'final',
      }),
      { lease: null, now: t0 + 500 },
    );
    expect(report.steps[3]).toMatchObject({
      answerReplaced: true,
      answerDelta: -7,
      answerTail: 'final',
      answerLength: 5,
    });
  });
});

describe('diagnosing an unfinished stream', () => {
  it('whose owner died while Dify answered: no live lease, no event since, waiting on Dify since', () => {
    const report = buildReplay(given(opened, granted, started), { lease: null, now: t0 + 200 + 5 * 60_000 });
    const d = report.diagnosis;
    expect(d).toMatchObject({ state: 'thinking', finished: false, stuck: true, quietMs: 5 * 60_000 });
    expect(d.lease).toEqual({ status: 'none' });
    expect(d.waiting).toMatchObject({ on: 'dify', lastEvent: 'dify.started', forMs: 5 * 60_000 });
    const text = d.reasons.join('\n');
    expect(text).toContain('no event for 5m00s (the last: dify.started');
    expect(text).toContain('no live lease');
    expect(text).toMatch(/waiting on Dify since 2025-01-02T03:04:05\.200Z \(5m00s\)/);
    expect(formatReplay(report).join('\n')).toContain('not finished — STUCK');
  });

  it('whose owner holds its lease and wrote lately: still running, not stuck', () => {
    const report = buildReplay(given(opened, granted, started, delta(300, 'a')), {
      lease: { node: 'node-a', until: t0 + 10_000 },
      now: t0 + 2_000,
    });
    expect(report.diagnosis).toMatchObject({
      stuck: false,
      lease: { status: 'held', node: 'node-a', remainingMs: 8_000 },
    });
    expect(report.diagnosis.reasons.join('\n')).toContain(
      'held by node node-a until 2025-01-02T03:04:15.000Z',
    );
    expect(report.diagnosis.waiting).toMatchObject({ on: 'dify', lastEvent: 'answer.delta' });
    expect(formatReplay(report).join('\n')).toContain('still running');
  });

  it('quiet for longer than --stuck, lease or not, counts as stuck', () => {
    const inputs = given(opened, granted, started);
    const lease = { node: 'node-a', until: t0 + 10 * 60_000 };
    expect(buildReplay(inputs, { lease, now: t0 + 3 * 60_000 }).diagnosis.stuck).toBe(true);
    expect(
      buildReplay(inputs, { lease, now: t0 + 3 * 60_000, stuckAfterMs: 5 * 60_000 }).diagnosis.stuck,
    ).toBe(false);
  });

  it('whose lease ran out: says whose, and how long ago', () => {
    const report = buildReplay(given(opened, granted), {
      lease: { node: 'node-x', until: t0 + 1000 },
      now: t0 + 31_000,
    });
    expect(report.diagnosis.lease).toEqual({
      status: 'expired',
      node: 'node-x',
      until: t0 + 1000,
      expiredMs: 30_000,
    });
    expect(report.diagnosis.reasons.join('\n')).toContain('the lease of node-x expired 30s ago');
    expect(report.diagnosis.waiting).toMatchObject({ on: 'dify-start' });
  });

  it('queued behind another stream: names it, and its state when known', () => {
    const report = buildReplay(
      given(opened, granted, { type: 'stream.queued', at: t0 + 10, behind: 's-0' }),
      {
        lease: { node: 'node-a', until: t0 + 20_000 },
        now: t0 + 10_010,
        behind: { streamId: 's-0', state: 'completed', finished: true },
      },
    );
    expect(report.diagnosis.waiting).toMatchObject({ on: 'queue', behind: 's-0', behindState: 'completed' });
    expect(report.diagnosis.reasons.join('\n')).toContain('queued behind s-0 since');
    expect(report.diagnosis.reasons.join('\n')).toContain('that stream is completed');
  });

  it('past WeCom’s polling window: the bubble can no longer change', () => {
    const report = buildReplay(given(opened, granted), { lease: null, now: t0 + 7 * 60_000 });
    expect(report.diagnosis.windowPassed).toBe(true);
    expect(report.diagnosis.reasons.join('\n')).toContain('WeCom stopped polling 6m00s after the message');
  });

  it('with no events at all: it does not exist or expired', () => {
    const report = buildReplay([], { lease: null, now: t0 });
    expect(report.diagnosis).toMatchObject({ state: 'idle', finished: false, stuck: false, events: 0 });
    expect(report.diagnosis.reasons[0]).toContain('does not exist, or it expired');
    expect(formatReplay(report)).toContain('(no events)');
  });

  it('a failed stream says its code and message', () => {
    const failed: StreamEvent = {
      type: 'answer.failed',
      at: t0 + 500,
      code: 'dify_timeout',
      message: 'no answer in 60 s',
    };
    const report = buildReplay(given(opened, granted, started, failed), { lease: null, now: t0 + 600 });
    expect(report.diagnosis).toMatchObject({
      state: 'error',
      finished: true,
      stuck: false,
      outcome: 'dify_timeout: no answer in 60 s',
    });
    expect(formatReplay(report).join('\n')).toContain('final state: error (dify_timeout: no answer in 60 s)');
  });
});

describe('the replay as text', () => {
  it('one line per event with +seconds offsets, then the final state', () => {
    const lines = formatReplay(
      buildReplay(given(opened, granted, started, delta(1300, '你好！'), completed), {
        lease: null,
        now: t0 + 2000,
      }),
    );
    const text = lines.join('\n');
    expect(lines[0]).toBe('stream s-1 · zhangsan asked "你好" · node node-a · bot hr');
    expect(text).toMatch(/\+0\.000s {2}stream\.opened {2,}authenticating/);
    expect(text).toMatch(/\+1\.300s {2}answer\.delta {2,}streaming {2,}3 {2,}\+3 {2}"你好！"/);
    expect(lines.at(-1)).toBe('final state: completed, 5 events over 1.3s, answer 3 chars');
  });
});

describe('the bot of a replay', () => {
  it('a stream that never opened names no bot, in its report or in its header', () => {
    const report = buildReplay(given(granted), { lease: null, now: t0 });
    expect(report).not.toHaveProperty('bot');
    expect(formatReplay(report)[0]).toBe('stream (unknown id)');
  });
});
