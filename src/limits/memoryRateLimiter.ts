// The rate limiter of a single node with the in-memory store: the same sliding log as the Redis
// adapter, in a Map. Synchronous, so a hit is atomic by itself. Keys whose window has passed are
// swept now and then, so that a node seeing many users once does not keep them all.
import {
  allowed,
  checkLimits,
  type FullLimit,
  type LimitScope,
  type RateLimiter,
  refusal,
} from './rateLimit.js';

interface Log {
  /** When each message still in the window was let through, ascending. */
  times: number[];
  windowMs: number;
}

export interface MemoryRateLimiterOptions {
  /** Clock, for tests. */
  now?: () => number;
  /** How often the logs of idle keys are dropped; a minute by default. */
  sweepEveryMs?: number;
}

export interface MemoryRateLimiter extends RateLimiter {
  /** How many keys are held (tests: idle ones are dropped). */
  size(): number;
  /** When the key of `scope`/`id` would be dropped, in ms from `now`; undefined when not held. */
  expiresIn(scope: LimitScope, id: string, now?: number): number | undefined;
}

export function createMemoryRateLimiter(options: MemoryRateLimiterOptions = {}): MemoryRateLimiter {
  const clock = options.now ?? Date.now;
  const sweepEveryMs = options.sweepEveryMs ?? 60_000;
  const logs = new Map<string, Log>();
  let nextSweep = clock() + sweepEveryMs;
  const keyOf = (scope: LimitScope, id: string) => `${scope}:${id}`;

  function sweep(now: number): void {
    for (const [key, log] of logs) {
      const last = log.times[log.times.length - 1];
      if (last === undefined || last + log.windowMs <= now) logs.delete(key);
    }
  }

  return {
    async hit(limits, at) {
      checkLimits(limits);
      if (limits.length === 0) return allowed;
      const now = at ?? clock();
      if (now >= nextSweep) {
        sweep(now);
        nextSweep = now + sweepEveryMs;
      }
      const windows = limits.map((limit) => {
        const key = keyOf(limit.scope, limit.id);
        const log = logs.get(key) ?? { times: [], windowMs: limit.windowMs };
        // An entry counts while now - t < windowMs, as the Redis script's ZREMRANGEBYSCORE decides.
        const cut = log.times.findIndex((t) => t > now - limit.windowMs);
        log.times = cut === -1 ? [] : log.times.slice(cut);
        log.windowMs = limit.windowMs;
        return { key, limit, log };
      });
      const full: FullLimit[] = windows
        .filter(({ limit, log }) => log.times.length >= limit.limit)
        .map(({ limit, log }) => ({ limit, leavingAt: log.times[log.times.length - limit.limit]! }));
      if (full.length > 0) return refusal(full, now);
      for (const { key, log } of windows) {
        // In order even when the clock stepped back, as in the Redis sorted set.
        log.times.splice(log.times.findLastIndex((t) => t <= now) + 1, 0, now);
        logs.set(key, log);
      }
      return allowed;
    },
    size: () => logs.size,
    expiresIn(scope, id, now = clock()) {
      const log = logs.get(keyOf(scope, id));
      const last = log?.times[log.times.length - 1];
      return log && last !== undefined ? last + log.windowMs - now : undefined;
    },
  };
}
