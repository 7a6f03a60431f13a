// Why a stream stands still, decided once for `wecom-dify replay`, `wecom-dify streams` and the
// inspector: whether its owner is alive (its lease), how long it has been quiet, what it waits for,
// whether WeCom still polls for it, and so whether it counts as stuck. Pure: what is known of the
// stream, its lease and the clock come in; the words each reader prints are its own.

/** A lease as read: the node that owns the stream's answer, until when (epoch ms). */
export interface LeaseView {
  node: string;
  until: number;
}

/**
 * What is known of a stream. A summary (the store's list) knows the state, whether it finished and its
 * times; a replay of its events knows the rest, and the diagnosis is the more precise for it.
 */
export interface StreamFacts {
  state: string;
  finished: boolean;
  /** When the message came (stream.opened); WeCom polls for a window from then. */
  openedAt: number;
  /** The time of its last event, whether the machine took it or not; absent when none has a time. */
  lastEventAt?: number;
  /** When the machine last took an event: what the state waits for, it has waited since. Default lastEventAt. */
  stateSince?: number;
  /** The type of the last event the machine took: in `thinking`, whether the Dify call has started. */
  lastTaken?: string;
  /** In `queued`: the stream this one waits behind, and that one's state when it was looked up. */
  behind?: { streamId: string; state?: string };
}

export interface StuckSettings {
  /** Unfinished and quiet this long counts as stuck, even with a live owner. */
  stuckAfterMs: number;
  /** WeCom's polling window after a message (STREAM_WINDOW_SECONDS). */
  windowMs: number;
}

/** What a reader uses when it is not told: a minute of quiet; the window's default of 6 minutes. */
export const defaultStuckSettings: StuckSettings = { stuckAfterMs: 60_000, windowMs: 360_000 };

export type LeaseStatus =
  | { status: 'held'; node: string; until: number; remainingMs: number }
  | { status: 'expired'; node: string; until: number; expiredMs: number }
  | { status: 'none' };

export type Waiting =
  | { on: 'auth'; since: number; forMs: number }
  | { on: 'queue'; since: number; forMs: number; behind: string; behindState?: string }
  | { on: 'dify-start'; since: number; forMs: number }
  | { on: 'dify'; since: number; forMs: number; lastEvent: string };

/** `no-lease`: its owner is gone (the lease ran out, was handed back, or was never taken). */
export type StuckReason = 'no-lease' | 'quiet';

export interface StuckDiagnosis {
  lease: LeaseStatus;
  /** Since the last event. */
  quietMs?: number;
  /** What an unfinished stream waits for. */
  waiting?: Waiting;
  /** When WeCom stops polling: past it, the bubble can no longer change. */
  windowEndsAt?: number;
  windowPassed: boolean;
  /** Set when the stream is unfinished and stuck, saying why; an owner that is gone comes first. */
  stuck?: StuckReason;
}

/** A stream with no `stream.opened` yet (or any more): nothing to wait for, nothing stuck. */
const NOT_OPENED = 'idle';

export function diagnoseStuck(
  facts: StreamFacts,
  lease: LeaseView | null | undefined,
  now: number,
  settings: StuckSettings,
): StuckDiagnosis {
  const status = leaseStatus(lease, now);
  if (facts.state === NOT_OPENED) return { lease: status, windowPassed: false };
  const quietMs = facts.lastEventAt === undefined ? undefined : now - facts.lastEventAt;
  const windowEndsAt = facts.openedAt + settings.windowMs;
  const common = {
    lease: status,
    ...(quietMs !== undefined ? { quietMs } : {}),
    windowEndsAt,
    windowPassed: now >= windowEndsAt,
  };
  if (facts.finished) return common;
  const waiting = waitingOf(facts, now);
  const stuck: StuckReason | undefined =
    status.status !== 'held'
      ? 'no-lease'
      : quietMs !== undefined && quietMs >= settings.stuckAfterMs
        ? 'quiet'
        : undefined;
  return { ...common, ...(waiting ? { waiting } : {}), ...(stuck ? { stuck } : {}) };
}

/** A store returns only a live lease, but one read a while ago (an export, another clock) may have run out. */
export function leaseStatus(lease: LeaseView | null | undefined, now: number): LeaseStatus {
  if (!lease) return { status: 'none' };
  return lease.until > now
    ? { status: 'held', node: lease.node, until: lease.until, remainingMs: lease.until - now }
    : { status: 'expired', node: lease.node, until: lease.until, expiredMs: now - lease.until };
}

function waitingOf(facts: StreamFacts, now: number): Waiting | undefined {
  const since = facts.stateSince ?? facts.lastEventAt;
  if (since === undefined) return undefined;
  const forMs = now - since;
  switch (facts.state) {
    case 'authenticating':
      return { on: 'auth', since, forMs };
    case 'queued': {
      const behind = facts.behind?.streamId ?? '?';
      const behindState = facts.behind?.state;
      return { on: 'queue', since, forMs, behind, ...(behindState !== undefined ? { behindState } : {}) };
    }
    case 'thinking':
      return facts.lastTaken === 'dify.started'
        ? { on: 'dify', since, forMs, lastEvent: 'dify.started' }
        : { on: 'dify-start', since, forMs };
    case 'streaming':
      return { on: 'dify', since, forMs, lastEvent: facts.lastTaken ?? '?' };
    default:
      return undefined;
  }
}
