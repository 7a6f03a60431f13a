// Why a stream stands still, given what is known of it, its lease and the clock.
import { describe, expect, it } from 'vitest';
import { defaultStuckSettings, diagnoseStuck, type StreamFacts } from './stuck.js';

const now = 1_700_000_000_000;
const settings = { stuckAfterMs: 60_000, windowMs: 360_000 };
const live = { node: 'node-a', until: now + 10_000 };
const streaming = (over: Partial<StreamFacts> = {}): StreamFacts => ({
  state: 'streaming',
  finished: false,
  openedAt: now - 30_000,
  lastEventAt: now - 1_000,
  ...over,
});

describe('whose stream it is', () => {
  it('a live lease: its owner is alive, with the time it has left', () => {
    expect(diagnoseStuck(streaming(), live, now, settings).lease).toEqual({
      status: 'held',
      node: 'node-a',
      until: now + 10_000,
      remainingMs: 10_000,
    });
  });

  it('a lease that ran out, or none at all: its owner is gone, and the stream is stuck', () => {
    const expired = diagnoseStuck(streaming(), { node: 'node-a', until: now - 5_000 }, now, settings);
    expect(expired.lease).toEqual({
      status: 'expired',
      node: 'node-a',
      until: now - 5_000,
      expiredMs: 5_000,
    });
    expect(expired.stuck).toBe('no-lease');
    const none = diagnoseStuck(streaming(), null, now, settings);
    expect(none.lease).toEqual({ status: 'none' });
    expect(none.stuck).toBe('no-lease');
    // A lease ends at `until`: at that very moment it is no longer held.
    expect(diagnoseStuck(streaming(), { node: 'node-a', until: now }, now, settings).stuck).toBe('no-lease');
  });
});

describe('when an unfinished stream is stuck', () => {
  it('quiet for stuckAfterMs, even with a live owner', () => {
    expect(diagnoseStuck(streaming({ lastEventAt: now - 60_000 }), live, now, settings)).toMatchObject({
      quietMs: 60_000,
      stuck: 'quiet',
    });
    const moving = diagnoseStuck(streaming({ lastEventAt: now - 59_999 }), live, now, settings);
    expect(moving.quietMs).toBe(59_999);
    expect(moving).not.toHaveProperty('stuck');
  });

  it('an owner that is gone is the reason given, however quiet', () => {
    expect(diagnoseStuck(streaming({ lastEventAt: now - 600_000 }), null, now, settings).stuck).toBe(
      'no-lease',
    );
  });

  it('a finished stream never is, lease or not; nor one that never opened', () => {
    const done = diagnoseStuck(
      { state: 'completed', finished: true, openedAt: now - 600_000, lastEventAt: now - 590_000 },
      null,
      now,
      settings,
    );
    expect(done).toEqual({
      lease: { status: 'none' },
      quietMs: 590_000,
      windowEndsAt: now - 240_000,
      windowPassed: true,
    });
    expect(diagnoseStuck({ state: 'idle', finished: false, openedAt: 0 }, null, now, settings)).toEqual({
      lease: { status: 'none' },
      windowPassed: false,
    });
  });
});

describe('what it waits for', () => {
  const since = now - 4_000;
  it('authentication', () => {
    expect(
      diagnoseStuck(streaming({ state: 'authenticating', stateSince: since }), live, now, settings).waiting,
    ).toEqual({ on: 'auth', since, forMs: 4_000 });
  });

  it('the stream it is queued behind, with that stream’s state when known', () => {
    const queued = streaming({
      state: 'queued',
      stateSince: since,
      behind: { streamId: 's-0', state: 'streaming' },
    });
    expect(diagnoseStuck(queued, live, now, settings).waiting).toEqual({
      on: 'queue',
      since,
      forMs: 4_000,
      behind: 's-0',
      behindState: 'streaming',
    });
    expect(
      diagnoseStuck(streaming({ state: 'queued', stateSince: since }), live, now, settings).waiting,
    ).toEqual({
      on: 'queue',
      since,
      forMs: 4_000,
      behind: '?',
    });
  });

  it('the Dify call to start, then Dify itself, naming the last event taken', () => {
    const thinking = streaming({ state: 'thinking', stateSince: since, lastTaken: 'auth.granted' });
    expect(diagnoseStuck(thinking, live, now, settings).waiting).toEqual({
      on: 'dify-start',
      since,
      forMs: 4_000,
    });
    const started = { ...thinking, lastTaken: 'dify.started' };
    expect(diagnoseStuck(started, live, now, settings).waiting).toMatchObject({
      on: 'dify',
      lastEvent: 'dify.started',
    });
    const answering = streaming({ stateSince: since, lastTaken: 'answer.delta' });
    expect(diagnoseStuck(answering, live, now, settings).waiting).toMatchObject({
      on: 'dify',
      lastEvent: 'answer.delta',
    });
  });

  it('since the last event when the time the state began is not known (a summary)', () => {
    expect(diagnoseStuck(streaming({ state: 'authenticating' }), live, now, settings).waiting).toEqual({
      on: 'auth',
      since: now - 1_000,
      forMs: 1_000,
    });
  });
});

describe("WeCom's window", () => {
  it('closes windowMs after the message: past it the bubble can no longer change', () => {
    const open = diagnoseStuck(streaming({ openedAt: now - 359_999 }), live, now, settings);
    expect(open).toMatchObject({ windowEndsAt: now + 1, windowPassed: false });
    const passed = diagnoseStuck(streaming({ openedAt: now - 360_000 }), live, now, settings);
    expect(passed).toMatchObject({ windowEndsAt: now, windowPassed: true });
  });

  it('defaults to STREAM_WINDOW_SECONDS’s 6 minutes and a minute of quiet', () => {
    expect(defaultStuckSettings).toEqual({ stuckAfterMs: 60_000, windowMs: 360_000 });
  });
});
