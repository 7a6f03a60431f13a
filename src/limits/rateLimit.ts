// The rate limiter port: a message is let through only while every limit it falls under (its user,
// its conversation) has room in its sliding window. One `hit` checks and counts all of a message's
// limits in one atomic step, on every node alike; a Redis adapter for many nodes and an in-memory one
// for a single node implement it, and one contract suite (rateLimit.contract.ts) runs against both.
//
// A refused message is counted against none of its limits: a script that loops is held back only as
// long as it keeps sending faster than allowed, and a message refused by a full group does not use up
// its sender's own budget (nor the other way round). A window is a sliding log: a message counts for
// exactly `windowMs` after it was let through.

export type LimitScope = 'user' | 'conversation';

/** One limit a message falls under: at most `limit` messages of `id` in any `windowMs`. */
export interface Limit {
  scope: LimitScope;
  /** Opaque; the same string on every node (e.g. `<aibotid>:<userid>`). */
  id: string;
  /** Messages allowed in a window, at least 1 (a limit that is off is simply not passed). */
  limit: number;
  windowMs: number;
}

export type RateVerdict =
  | { allowed: true }
  /**
   * `scope`: the limit the message ran into, the one with the longer wait when both are full.
   * `retryAfterMs`: when a message sent then would be let through, if nothing else is sent meanwhile.
   */
  | { allowed: false; scope: LimitScope; retryAfterMs: number };

export interface RateLimiter {
  /**
   * Counts one message against `limits` if every one of them has room; otherwise counts nothing and
   * says which limit is full. `now` (epoch ms) is for tests; the limiter's own clock otherwise.
   * No limits: allowed, with no IO.
   */
  hit(limits: readonly Limit[], now?: number): Promise<RateVerdict>;
}

export const allowed: RateVerdict = { allowed: true };

export type RateLimitErrorCode = 'unavailable' | 'timeout';

/** A limiter that could not decide (Redis down or slow); reported, never thrown at the caller. */
export class RateLimitError extends Error {
  override readonly name = 'RateLimitError';
  constructor(
    readonly code: RateLimitErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The limits of one hit, checked before any IO. A malformed limit, or one scope and id given twice
 * (it would be counted twice), is a programming error.
 */
export function checkLimits(limits: readonly Limit[]): void {
  const seen = new Set<string>();
  for (const l of limits) {
    if (!Number.isInteger(l.limit) || l.limit < 1)
      throw new RangeError(`a ${l.scope} limit must be a whole number ≥ 1, got ${l.limit}`);
    if (!Number.isInteger(l.windowMs) || l.windowMs < 1)
      throw new RangeError(`a ${l.scope} window must be a whole number of ms ≥ 1, got ${l.windowMs}`);
    const key = `${l.scope}:${l.id}`;
    if (seen.has(key)) throw new RangeError(`the ${l.scope} limit of ${JSON.stringify(l.id)} is given twice`);
    seen.add(key);
  }
}

/** A limit with no room, and when the entry that must leave its window for one more is counted. */
export interface FullLimit {
  limit: Limit;
  /** Epoch ms: that entry leaves the window at `leavingAt + windowMs`. */
  leavingAt: number;
}

/**
 * The verdict when some limits are full: the one with the longest wait, which is how long the sender
 * must wait for every limit to have room. The wait is at least 1 ms and at most the window, even with
 * a clock that stepped back.
 */
export function refusal(full: readonly FullLimit[], now: number): RateVerdict {
  let verdict: RateVerdict = allowed;
  for (const { limit, leavingAt } of full) {
    const wait = Math.min(limit.windowMs, Math.max(1, leavingAt + limit.windowMs - now));
    if (verdict.allowed || wait > verdict.retryAfterMs)
      verdict = { allowed: false, scope: limit.scope, retryAfterMs: wait };
  }
  return verdict;
}
