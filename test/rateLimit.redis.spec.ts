// The Redis rate limiter on a single Redis (127.0.0.1:6379) against the contract, each test under its
// own key prefix, then what only Redis shows: its keys, one round trip per message, and a Redis that
// stops or hangs letting messages through rather than refusing them.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { rateLimiterContract } from '../src/limits/rateLimit.contract.js';
import type { Limit, RateLimitError } from '../src/limits/rateLimit.js';
import { createRedisRateLimiter, rateLimitKey } from '../src/limits/redisRateLimiter.js';
import { deleteKeys, randomPrefix } from './support/redisKeys.js';
import { freePort, type RedisServer, startRedisServer } from './support/redisServer.js';

const url = 'redis://127.0.0.1:6379';
let admin: Redis;

beforeAll(() => {
  admin = new Redis(url);
});
afterAll(async () => {
  await admin.quit();
});

/** A client configured as the service's own: no offline queue, so an outage fails at once. */
const serviceClient = (port = 6379) =>
  new Redis({ port, host: '127.0.0.1', enableOfflineQueue: false, maxRetriesPerRequest: 1 });

/** Connected, so that a first command does not meet a client still connecting. */
async function connected(client: Redis): Promise<Redis> {
  if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
  return client;
}

rateLimiterContract('redis', async () => {
  const prefix = randomPrefix('ratelimit');
  const clients = [await connected(serviceClient()), await connected(serviceClient())];
  const down: Redis[] = [];
  const [a, b] = clients.map((client) => createRedisRateLimiter(client, { prefix }));
  return {
    nodes: [a!, b!],
    expiresIn: async (scope, id) => {
      const ttl = await admin.pttl(rateLimitKey(prefix, scope, id));
      return ttl < 0 ? undefined : ttl;
    },
    unreachable: async () => {
      const errors: RateLimitError[] = [];
      const client = serviceClient(await freePort());
      client.on('error', () => undefined);
      down.push(client);
      return { limiter: createRedisRateLimiter(client, { prefix, onError: (e) => errors.push(e) }), errors };
    },
    cleanup: async () => {
      for (const client of [...clients, ...down]) client.disconnect();
      await deleteKeys(admin, prefix);
    },
  };
});

describe('redis rate limiter: what only Redis shows', () => {
  const prefix = randomPrefix('ratelimit-redis');
  const now = Date.UTC(2025, 0, 6, 9, 0, 0);
  const limits: Limit[] = [
    { scope: 'user', id: 'bot-1:alice', limit: 10, windowMs: 60_000 },
    { scope: 'conversation', id: 'bot-1:group:g1', limit: 20, windowMs: 60_000 },
  ];
  afterAll(async () => {
    await deleteKeys(admin, prefix);
  });

  it('keeps a sorted set per limit under the prefix, all with the hash tag {rl}, each with a TTL', async () => {
    const client = await connected(serviceClient());
    try {
      await createRedisRateLimiter(client, { prefix }).hit(limits, now);
      const keys = (await admin.keys(`${prefix}*`)).sort();
      expect(keys).toEqual([`${prefix}{rl}:conv:bot-1:group:g1`, `${prefix}{rl}:user:bot-1:alice`]);
      for (const key of keys) {
        expect(await admin.type(key)).toBe('zset');
        expect(await admin.zcard(key)).toBe(1);
        const ttl = await admin.pttl(key);
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(60_000);
      }
    } finally {
      client.disconnect();
    }
  });

  it('checks and counts both limits of a message in one round trip', async () => {
    const client = await connected(serviceClient());
    try {
      const limiter = createRedisRateLimiter(client, { prefix });
      await limiter.hit(limits, now); // loads the script (EVALSHA, then EVAL once on NOSCRIPT)
      const sent = vi.spyOn(client, 'sendCommand');
      for (let i = 1; i <= 5; i++) await limiter.hit(limits, now + i);
      expect(sent.mock.calls.map(([command]) => command.name)).toEqual(Array(5).fill('evalsha'));
    } finally {
      client.disconnect();
    }
  });

  describe('when Redis fails, messages get through and the failure is reported', () => {
    let server: RedisServer;
    let client: Redis;
    beforeAll(async () => {
      server = await startRedisServer();
      client = await connected(serviceClient(server.port));
      client.on('error', () => undefined);
    });
    afterAll(async () => {
      client?.disconnect();
      await server?.dispose();
    });

    it('a Redis that stopped: let through, reported as unavailable', async () => {
      const errors: RateLimitError[] = [];
      const limiter = createRedisRateLimiter(client, { prefix, onError: (e) => errors.push(e) });
      const one = [{ scope: 'user', id: 'bot-1:ivan', limit: 1, windowMs: 60_000 } satisfies Limit];
      expect(await limiter.hit(one, now)).toEqual({ allowed: true });
      expect(await limiter.hit(one, now + 1)).toMatchObject({ allowed: false });
      await server.stop();
      try {
        expect(await limiter.hit(one, now + 2)).toEqual({ allowed: true });
        expect(errors).toEqual([expect.objectContaining({ code: 'unavailable' })]);
      } finally {
        await server.start();
      }
      await expect.poll(() => client.status, { timeout: 10_000 }).toBe('ready');
      // Back (empty, not persisted): counting again.
      expect(await limiter.hit(one, now + 3)).toEqual({ allowed: true });
      expect(await limiter.hit(one, now + 4)).toMatchObject({ allowed: false });
    });

    it('a Redis that hangs: let through within the timeout, reported as timeout', async () => {
      const errors: RateLimitError[] = [];
      const limiter = createRedisRateLimiter(client, {
        prefix,
        timeoutMs: 200,
        onError: (e) => errors.push(e),
      });
      server.pause();
      try {
        const started = Date.now();
        expect(await limiter.hit(limits, now)).toEqual({ allowed: true });
        expect(Date.now() - started).toBeLessThan(1_000);
        expect(errors).toEqual([expect.objectContaining({ code: 'timeout' })]);
      } finally {
        server.resume();
      }
    });
  });
});
