// The rate limiter shared by every node: one Lua script checks and counts all of a message's limits,
// so a hit is atomic and one round trip whatever the number of limits.
//
// A sliding log, not a sliding-window counter: each key is a sorted set of the messages let through in
// the last window (score = when). The limits are a few messages a minute, so a set holds at most that
// many members; in exchange the count is exact (never the counter's estimate, which lets up to twice
// the limit through at a window's edge or refuses early) and the wait told to the user is exact too.
//
// Redis Cluster: a script's keys must share a slot, and a message's user and conversation keys hash
// anywhere. Every limiter key therefore carries the one hash tag `{rl}`: all of them live in one slot,
// so a hit stays one atomic script. The cost is that one shard takes all limiter traffic: one small
// script per new message (never per poll), far less than the `{index}` keys it already takes on
// every append. One script per key instead would need a second step to give back a count taken
// before another key refused, and could still let two nodes race between the two.
//
// When Redis is down or slow the limiter lets the message through and reports the error: refusing
// users for our own outage would be worse than a minute without limits (and the store then refuses
// the message by itself anyway, with WeCom retrying it).
import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import {
  allowed,
  checkLimits,
  type FullLimit,
  type LimitScope,
  RateLimitError,
  type RateLimiter,
  refusal,
} from './rateLimit.js';

/**
 * KEYS: one sorted set per limit. ARGV: now, the member naming this message, then (limit, windowMs)
 * per key. Drops what left each window; if any key is full returns {i, score of the member that must
 * leave first, …} for every full key and writes nothing; else adds the message to every key, each
 * kept for its window, and returns {}.
 */
const hitLua = `
local now = tonumber(ARGV[1])
local full = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[1 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - tonumber(ARGV[2 + 2 * i]))
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limit then
    local leaving = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    full[#full + 1] = i
    full[#full + 1] = leaving[2]
  end
end
if #full > 0 then return full end
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[2])
  redis.call('PEXPIRE', KEYS[i], ARGV[2 + 2 * i])
end
return full
`;

const keyScope: Record<LimitScope, string> = { user: 'user', conversation: 'conv' };

/** The key of one limit: every one shares the hash tag `{rl}` (see the header). */
export const rateLimitKey = (prefix: string, scope: LimitScope, id: string): string =>
  `${prefix}{rl}:${keyScope[scope]}:${id}`;

export interface RedisRateLimiterOptions {
  /** REDIS_KEY_PREFIX, `wd:` by default. */
  prefix?: string;
  /** Clock, for tests. */
  now?: () => number;
  /** A hit that takes longer is let through (and reported); 1000 ms by default. */
  timeoutMs?: number;
  /** Told of every hit let through because Redis failed or was slow. */
  onError?: (error: RateLimitError) => void;
}

interface HitCommand {
  wdRateLimitHit(numberOfKeys: number, ...args: (string | number)[]): Promise<(number | string)[]>;
}

export function createRedisRateLimiter(
  redis: Redis | Cluster,
  options: RedisRateLimiterOptions = {},
): RateLimiter {
  const prefix = options.prefix ?? 'wd:';
  const clock = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 1000;
  const onError = options.onError ?? (() => undefined);
  // Members need only be unique within a key: this limiter's tag and a counter.
  const tag = randomBytes(6).toString('base64url');
  let seq = 0;
  // Without numberOfKeys, the call passes it first: a hit has one key per limit.
  redis.defineCommand('wdRateLimitHit', { lua: hitLua });
  const script = redis as unknown as HitCommand;

  function withTimeout<T>(run: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new RateLimitError('timeout', `rate limit check took over ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    // The script may still answer after the timeout: its answer, or failure, is dropped.
    run.catch(() => undefined);
    return Promise.race([run, late]).finally(() => clearTimeout(timer));
  }

  return {
    async hit(limits, at) {
      checkLimits(limits);
      if (limits.length === 0) return allowed;
      const now = at ?? clock();
      const keys = limits.map((l) => rateLimitKey(prefix, l.scope, l.id));
      const args = limits.flatMap((l) => [l.limit, l.windowMs]);
      try {
        const reply = await withTimeout(
          script.wdRateLimitHit(keys.length, ...keys, now, `${tag}:${seq++}`, ...args),
        );
        const full: FullLimit[] = [];
        for (let i = 0; i + 1 < reply.length; i += 2) {
          const limit = limits[Number(reply[i]) - 1];
          if (!limit) throw new Error(`unexpected rate limit reply ${JSON.stringify(reply)}`);
          full.push({ limit, leavingAt: Number(reply[i + 1]) });
        }
        return full.length > 0 ? refusal(full, now) : allowed;
      } catch (error) {
        onError(
          error instanceof RateLimitError
            ? error
            : new RateLimitError(
                'unavailable',
                `rate limit check failed: ${error instanceof Error ? error.message : String(error)}`,
                { cause: error },
              ),
        );
        return allowed;
      }
    },
  };
}
