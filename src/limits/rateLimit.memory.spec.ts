// The in-memory rate limiter against the contract, then what only it shows: idle keys are dropped.
import { describe, expect, it } from 'vitest';
import { createMemoryRateLimiter } from './memoryRateLimiter.js';
import { rateLimiterContract } from './rateLimit.contract.js';

rateLimiterContract('memory', async () => {
  const limiter = createMemoryRateLimiter();
  return {
    nodes: [limiter, limiter],
    expiresIn: async (scope, id, now) => limiter.expiresIn(scope, id, now),
  };
});

describe('memory rate limiter', () => {
  it('forgets the users and chats whose window has passed', async () => {
    let now = Date.UTC(2025, 0, 6, 9, 0, 0);
    const limiter = createMemoryRateLimiter({ now: () => now, sweepEveryMs: 60_000 });
    for (let i = 0; i < 100; i++)
      await limiter.hit([{ scope: 'user', id: `bot:user-${i}`, limit: 10, windowMs: 60_000 }]);
    expect(limiter.size()).toBe(100);
    now += 60_000;
    await limiter.hit([{ scope: 'user', id: 'bot:late', limit: 10, windowMs: 60_000 }]);
    expect(limiter.size()).toBe(1);
    expect(limiter.expiresIn('user', 'bot:user-0')).toBeUndefined();
  });
});
