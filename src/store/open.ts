// The store the settings ask for: Redis, Redis Cluster, or (with neither) the in-memory store of a
// single node. Shared by the service and the commands that read streams.
import type { Config } from '../config.js';
import { createMemoryStore } from './memory.js';
import type { StreamStore } from './port.js';
import { connectRedis, createRedisStore, type RedisClient } from './redis.js';

export interface OpenedStore {
  store: StreamStore;
  /** The Redis client, when the store is Redis (the token cache shares it). */
  redis?: RedisClient;
  kind: 'redis' | 'redis-cluster' | 'memory';
}

export function openStore(
  settings: Config['store'],
  /** `prefix` overrides the settings' REDIS_KEY_PREFIX. */
  options: { prefix?: string; onError?: (error: Error) => void; onIndexError?: (error: Error) => void } = {},
): OpenedStore {
  const { cluster, ttlSeconds } = settings;
  const redis = redisFor(settings, options.onError);
  if (redis) {
    const prefix = options.prefix ?? settings.prefix;
    const store = createRedisStore(redis, { ttlSeconds, prefix, onIndexError: options.onIndexError });
    return { store, redis, kind: cluster ? 'redis-cluster' : 'redis' };
  }
  return { store: createMemoryStore({ ttlSeconds }), kind: 'memory' };
}

/** The Redis client the settings name (a server or a cluster, with its credentials), or none. */
export function redisFor(
  settings: Pick<Config['store'], 'redisUrl' | 'cluster'>,
  onError?: (error: Error) => void,
): RedisClient | undefined {
  const { redisUrl, cluster } = settings;
  if (!redisUrl && !cluster) return undefined;
  return connectRedis({ url: redisUrl, clusterNodes: cluster?.nodes, clusterAuth: cluster, onError });
}
