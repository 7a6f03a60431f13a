// The Redis store on a three-master Redis Cluster of its own against the store contract: every script
// touches only keys of one hash slot, and the index and dedup keys live elsewhere.
import { Cluster } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { connectRedis, createRedisStore } from '../src/store/index.js';
import { storeContract } from './store.contract.js';
import { type RedisClusterHandle, startRedisCluster } from './support/redisCluster.js';
import { deleteKeys, randomPrefix } from './support/redisKeys.js';
import { freePort } from './support/redisServer.js';

const ttlSeconds = 600;
const password = 'cluster-secret';
let cluster: RedisClusterHandle;
let admin: Cluster;

beforeAll(async () => {
  // With a password, as production clusters have: the store must pass it to every node.
  cluster = await startRedisCluster({ password });
  // A plain client with an offline queue: test plumbing, not the store's fail-fast one.
  admin = new Cluster(cluster.nodes, { redisOptions: { password } });
  await admin.ping();
});

afterAll(async () => {
  await admin?.quit();
  await cluster?.stop();
});

storeContract('redis cluster', async () => {
  const prefix = randomPrefix('cluster');
  const make = () =>
    createRedisStore(connectRedis({ clusterNodes: cluster.nodes, clusterAuth: { password } }), {
      prefix,
      ttlSeconds,
    });
  return {
    store: make(),
    ttlSeconds,
    another: async () => make(),
    raw: { prefix, ttl: (key: string) => admin.ttl(key) },
    unreachable: async () =>
      createRedisStore(connectRedis({ clusterNodes: [{ host: '127.0.0.1', port: await freePort() }] }), {
        prefix,
        ttlSeconds,
      }),
    cleanup: async () => {
      await deleteKeys(admin, prefix);
    },
  };
});
