// The Redis rate limiter on a three-master Redis Cluster of its own against the contract: a user's and a
// conversation's keys hash to one slot through the `{rl}` tag, so one script counts both, on a cluster
// as on a single Redis.
import { Cluster } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { rateLimiterContract } from '../src/limits/rateLimit.contract.js';
import type { RateLimitError } from '../src/limits/rateLimit.js';
import { createRedisRateLimiter, rateLimitKey } from '../src/limits/redisRateLimiter.js';
import { type RedisClusterHandle, startRedisCluster } from './support/redisCluster.js';
import { deleteKeys, randomPrefix } from './support/redisKeys.js';
import { freePort } from './support/redisServer.js';

let cluster: RedisClusterHandle;
let admin: Cluster;

beforeAll(async () => {
  cluster = await startRedisCluster();
  admin = new Cluster(cluster.nodes);
  await admin.ping();
});
afterAll(async () => {
  await admin?.quit();
  await cluster?.stop();
});

/** As the service connects: no offline queue, so an outage fails at once. */
const serviceCluster = (nodes: { host: string; port: number }[]) =>
  new Cluster(nodes, { enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1 } });

rateLimiterContract('redis cluster', async () => {
  const prefix = randomPrefix('ratelimit-cluster');
  const clients = [serviceCluster(cluster.nodes), serviceCluster(cluster.nodes)];
  await Promise.all(
    clients.map((c) => (c.status === 'ready' ? undefined : new Promise((r) => c.once('ready', r)))),
  );
  const down: Cluster[] = [];
  const [a, b] = clients.map((client) => createRedisRateLimiter(client, { prefix }));
  return {
    nodes: [a!, b!],
    expiresIn: async (scope, id) => {
      const ttl = await admin.pttl(rateLimitKey(prefix, scope, id));
      return ttl < 0 ? undefined : ttl;
    },
    unreachable: async () => {
      const errors: RateLimitError[] = [];
      const client = serviceCluster([{ host: '127.0.0.1', port: await freePort() }]);
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
