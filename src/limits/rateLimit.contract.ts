// The one specification of a rate limiter (rateLimit.ts), run against every adapter: in-memory, a
// single Redis and a Redis Cluster. Time is the test's: every hit is given its `now`, nothing sleeps.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Limit, LimitScope, RateLimitError, RateLimiter } from './rateLimit.js';

export interface RateLimiterHarness {
  /** Two limiters on one backend, as two nodes hold them (the memory adapter: the same one twice). */
  nodes: [RateLimiter, RateLimiter];
  /** In how many ms the backend drops the key of `scope`/`id`, asked right after a hit at `now`. */
  expiresIn(scope: LimitScope, id: string, now: number): Promise<number | undefined>;
  /** A limiter whose backend cannot be reached, and the errors it reported. */
  unreachable?: () => Promise<{ limiter: RateLimiter; errors: RateLimitError[] }>;
  /** Removes what the test wrote and closes its clients. */
  cleanup?: () => Promise<void>;
}

const minute = 60_000;
const t0 = Date.UTC(2025, 0, 6, 9, 0, 0);

const user = (id: string, limit: number, windowMs = minute): Limit => ({
  scope: 'user',
  id,
  limit,
  windowMs,
});
const conversation = (id: string, limit: number, windowMs = minute): Limit => ({
  scope: 'conversation',
  id,
  limit,
  windowMs,
});

export function rateLimiterContract(name: string, make: () => Promise<RateLimiterHarness>): void {
  describe(`rate limiter contract: ${name}`, () => {
    let harness: RateLimiterHarness;
    let limiter: RateLimiter;

    beforeEach(async () => {
      harness = await make();
      [limiter] = harness.nodes;
    });
    afterEach(async () => {
      await harness.cleanup?.();
    });

    /** Hits at the given offsets from t0, the verdicts in order. */
    const hits = (limits: Limit[], offsets: number[]) =>
      offsets.reduce(
        async (done, offset) => [...(await done), await limiter.hit(limits, t0 + offset)],
        Promise.resolve([] as Awaited<ReturnType<RateLimiter['hit']>>[]),
      );

    it('lets a user send `limit` messages a minute, then refuses the next, saying how long to wait', async () => {
      const limits = [user('bot:alice', 3)];
      expect(await hits(limits, [0, 1_000, 2_000])).toEqual([
        { allowed: true },
        { allowed: true },
        { allowed: true },
      ]);
      expect(await limiter.hit(limits, t0 + 3_000)).toEqual({
        allowed: false,
        scope: 'user',
        retryAfterMs: 57_000,
      });
    });

    it('slides: a message gets through as soon as the oldest counted one is a window old', async () => {
      const limits = [user('bot:bob', 2)];
      expect(await hits(limits, [0, 30_000])).toEqual([{ allowed: true }, { allowed: true }]);
      expect(await limiter.hit(limits, t0 + 59_999)).toEqual({
        allowed: false,
        scope: 'user',
        retryAfterMs: 1,
      });
      expect(await limiter.hit(limits, t0 + 60_000)).toEqual({ allowed: true });
      // Now the messages of 30 s and 60 s count: the next room is at 90 s.
      expect(await limiter.hit(limits, t0 + 60_001)).toEqual({
        allowed: false,
        scope: 'user',
        retryAfterMs: 29_999,
      });
      expect(await limiter.hit(limits, t0 + 90_000)).toEqual({ allowed: true });
    });

    it('lets exactly `limit` of many concurrent messages through, across two nodes', async () => {
      const [a, b] = harness.nodes;
      // One user's script firing 12 messages at once, spread over both nodes.
      const flood = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          (i % 2 ? a : b).hit([user('bot:script', 5), conversation('bot:single:script', 100)], t0 + i),
        ),
      );
      expect(flood.filter((v) => v.allowed)).toHaveLength(5);
      expect(flood.filter((v) => !v.allowed).map((v) => !v.allowed && v.scope)).toEqual(
        Array(7).fill('user'),
      );
      // Twenty members of one group at once: the group's limit holds across nodes too.
      const group = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? a : b).hit([user(`bot:member-${i}`, 10), conversation('bot:group:g1', 7)], t0 + i),
        ),
      );
      expect(group.filter((v) => v.allowed)).toHaveLength(7);
      expect(group.every((v) => v.allowed || v.scope === 'conversation')).toBe(true);
    });

    it('counts a refused message against neither limit', async () => {
      const group = conversation('bot:group:g2', 3);
      // Alice fills her own limit in the group; her third message is refused by it...
      expect(await hits([user('bot:alice', 2), group], [0, 1, 2])).toMatchObject([
        { allowed: true },
        { allowed: true },
        { allowed: false, scope: 'user' },
      ]);
      // ...and did not use the group's budget: Bob gets the third place.
      expect(await limiter.hit([user('bot:bob', 2), group], t0 + 3)).toEqual({ allowed: true });
      // Bob is refused by the full group, which leaves his own budget as it was: one more, elsewhere.
      expect(await limiter.hit([user('bot:bob', 2), group], t0 + 4)).toMatchObject({
        allowed: false,
        scope: 'conversation',
      });
      const bobAlone = conversation('bot:single:bob', 10);
      expect(await hits([user('bot:bob', 2), bobAlone], [5, 6])).toMatchObject([
        { allowed: true },
        { allowed: false, scope: 'user' },
      ]);
    });

    it('names the limit with the longer wait when both are full', async () => {
      const first = [user('bot:carol', 1, minute), conversation('bot:single:carol', 1, 10_000)];
      expect(await limiter.hit(first, t0)).toEqual({ allowed: true });
      expect(await limiter.hit(first, t0 + 1_000)).toEqual({
        allowed: false,
        scope: 'user',
        retryAfterMs: 59_000,
      });
      const second = [user('bot:dave', 1, 10_000), conversation('bot:single:dave', 1, minute)];
      expect(await limiter.hit(second, t0)).toEqual({ allowed: true });
      expect(await limiter.hit(second, t0 + 1_000)).toEqual({
        allowed: false,
        scope: 'conversation',
        retryAfterMs: 59_000,
      });
    });

    it('keeps limits apart by scope and by id', async () => {
      expect(await limiter.hit([user('x', 1)], t0)).toEqual({ allowed: true });
      expect(await limiter.hit([user('x', 1)], t0 + 1)).toMatchObject({ allowed: false });
      expect(await limiter.hit([conversation('x', 1)], t0 + 2)).toEqual({ allowed: true });
      expect(await limiter.hit([user('y', 1)], t0 + 3)).toEqual({ allowed: true });
    });

    it('lets a message with no limits (both off) through', async () => {
      expect(await limiter.hit([], t0)).toEqual({ allowed: true });
    });

    it('refuses a malformed limit before counting anything', async () => {
      await expect(limiter.hit([user('bot:erin', 0)], t0)).rejects.toThrow(RangeError);
      await expect(limiter.hit([user('bot:erin', 2, 0)], t0)).rejects.toThrow(RangeError);
      await expect(limiter.hit([user('bot:erin', 2), user('bot:erin', 2)], t0)).rejects.toThrow(
        /given twice/,
      );
      expect(await hits([user('bot:erin', 2)], [1, 2, 3])).toMatchObject([
        { allowed: true },
        { allowed: true },
        { allowed: false },
      ]);
    });

    it('keeps a key no longer than its window after the last message counted', async () => {
      await limiter.hit([user('bot:frank', 5, 2_000), conversation('bot:single:frank', 5, minute)], t0);
      const userTtl = await harness.expiresIn('user', 'bot:frank', t0);
      const chatTtl = await harness.expiresIn('conversation', 'bot:single:frank', t0);
      expect(userTtl).toBeGreaterThan(0);
      expect(userTtl).toBeLessThanOrEqual(2_000);
      expect(chatTtl).toBeGreaterThan(2_000);
      expect(chatTtl).toBeLessThanOrEqual(minute);
    });

    it('lets messages through when its backend is unreachable, and reports why', async (context) => {
      if (!harness.unreachable) return context.skip();
      const { limiter: down, errors } = await harness.unreachable();
      const limits = [user('bot:henry', 1), conversation('bot:single:henry', 1)];
      expect(await down.hit(limits, t0)).toEqual({ allowed: true });
      expect(await down.hit(limits, t0 + 1)).toEqual({ allowed: true });
      expect(errors).toHaveLength(2);
      expect(errors[0]).toMatchObject({ name: 'RateLimitError', code: 'unavailable' });
      expect(errors[0]?.cause).toBeDefined();
    });
  });
}
