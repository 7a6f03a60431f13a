// What the nodes share about the long connections, in Redis: which node holds each bot's connection
// (a lease: WeCom keeps one connection per bot and a newer subscribe kicks the older one), how that
// connection is doing (for every node's /readyz), which answers are still being pushed over it (so
// that a new holder carries on), what was shown of each, the messages that go over it from another
// node (the rest of an answer its owner could not show), and once-only claims. Without Redis, one
// node: the same in this process.
import type { Cluster, Redis } from 'ioredis';

export interface Holder {
  node: string;
  /** Which attempt of the node holds it: a node restarted under the same NODE_ID is another holder. */
  token: string;
}

export interface ConnectionStatus {
  /** The node that holds the bot's connection (its NODE_ID). */
  holder: string;
  connected: boolean;
  /** Since when the holder holds it (ms). */
  since: number;
  /** When the connection was last subscribed (ms), on any node. */
  lastConnectedAt?: number | undefined;
  /** Why it is not connected, when known (the secret was refused, kicked by another connection…). */
  problem?: string | undefined;
}

/** A message for the bot's connection, from a node that does not hold it. */
export interface OutgoingMessage {
  id: string;
  /** Sent at most once per key, whoever sends it. */
  onceKey: string;
  chatid: string;
  chatType: 1 | 2;
  markdown: string;
}

export interface ConnectionState {
  /** Take the bot's connection lease, or renew it if `holder` has it. */
  acquire(bot: string, holder: Holder, ttlMs: number): Promise<boolean>;
  release(bot: string, holder: Holder): Promise<void>;
  setStatus(bot: string, status: ConnectionStatus): Promise<void>;
  status(bot: string): Promise<ConnectionStatus | undefined>;
  /** The answers being pushed over the bot's connection. */
  addActive(bot: string, streamId: string): Promise<void>;
  removeActive(bot: string, streamId: string): Promise<void>;
  active(bot: string): Promise<string[]>;
  /** How much of an answer's bubble WeCom took (its content's length), for a holder carrying on. */
  setShown(streamId: string, content: string): Promise<void>;
  shown(streamId: string): Promise<string | undefined>;
  /** True for the first caller of `key` (within `ttlMs`), false for every other. */
  claim(key: string, ttlMs: number): Promise<boolean>;
  enqueue(bot: string, message: OutgoingMessage): Promise<void>;
  dequeue(bot: string): Promise<OutgoingMessage | undefined>;
  setResult(id: string, result: string): Promise<void>;
  result(id: string): Promise<string | undefined>;
}

const DAY_MS = 24 * 3600_000;
/** Long enough for any answer to be pushed, short enough to forget the dead. */
const ACTIVE_TTL_MS = 2 * 3600_000;
const RESULT_TTL_MS = 60_000;

// Renew only what this holder holds; take what nobody holds.
const ACQUIRE = `
local current = redis.call('GET', KEYS[1])
if current == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
local ok, held = pcall(cjson.decode, current)
if ok and held.token == ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0`;
const RELEASE = `
local current = redis.call('GET', KEYS[1])
if current == false then return 0 end
local ok, held = pcall(cjson.decode, current)
if ok and held.token == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export function redisConnectionState(redis: Redis | Cluster, prefix: string): ConnectionState {
  const k = {
    lease: (bot: string) => `${prefix}ws:{${bot}}:lease`,
    status: (bot: string) => `${prefix}ws:{${bot}}:status`,
    active: (bot: string) => `${prefix}ws:{${bot}}:active`,
    outbox: (bot: string) => `${prefix}ws:{${bot}}:outbox`,
    shown: (streamId: string) => `${prefix}ws:shown:${streamId}`,
    claim: (key: string) => `${prefix}ws:once:${key}`,
    result: (id: string) => `${prefix}ws:result:${id}`,
  };
  return {
    async acquire(bot, holder, ttlMs) {
      const value = JSON.stringify({ node: holder.node, token: holder.token, at: Date.now() });
      return (await redis.eval(ACQUIRE, 1, k.lease(bot), value, holder.token, ttlMs)) === 1;
    },
    async release(bot, holder) {
      await redis.eval(RELEASE, 1, k.lease(bot), holder.token);
    },
    async setStatus(bot, status) {
      await redis.set(k.status(bot), JSON.stringify(status), 'PX', DAY_MS);
    },
    async status(bot) {
      const text = await redis.get(k.status(bot));
      return text ? (JSON.parse(text) as ConnectionStatus) : undefined;
    },
    async addActive(bot, streamId) {
      await redis.multi().sadd(k.active(bot), streamId).pexpire(k.active(bot), ACTIVE_TTL_MS).exec();
    },
    async removeActive(bot, streamId) {
      await redis.srem(k.active(bot), streamId);
    },
    active: (bot) => redis.smembers(k.active(bot)),
    async setShown(streamId, content) {
      await redis.set(k.shown(streamId), content, 'PX', ACTIVE_TTL_MS);
    },
    async shown(streamId) {
      return (await redis.get(k.shown(streamId))) ?? undefined;
    },
    async claim(key, ttlMs) {
      return (await redis.set(k.claim(key), '1', 'PX', ttlMs, 'NX')) === 'OK';
    },
    async enqueue(bot, message) {
      await redis.multi().rpush(k.outbox(bot), JSON.stringify(message)).pexpire(k.outbox(bot), DAY_MS).exec();
    },
    async dequeue(bot) {
      const text = await redis.lpop(k.outbox(bot));
      return text ? (JSON.parse(text) as OutgoingMessage) : undefined;
    },
    async setResult(id, result) {
      await redis.set(k.result(id), result, 'PX', RESULT_TTL_MS);
    },
    async result(id) {
      return (await redis.get(k.result(id))) ?? undefined;
    },
  };
}

/** One node, no Redis: the same state in this process. */
export function memoryConnectionState(now: () => number = Date.now): ConnectionState {
  const leases = new Map<string, { token: string; until: number }>();
  const statuses = new Map<string, ConnectionStatus>();
  const actives = new Map<string, Set<string>>();
  const shown = new Map<string, string>();
  const claims = new Map<string, number>();
  const outboxes = new Map<string, OutgoingMessage[]>();
  const results = new Map<string, string>();
  return {
    async acquire(bot, holder, ttlMs) {
      const lease = leases.get(bot);
      if (lease && lease.until > now() && lease.token !== holder.token) return false;
      leases.set(bot, { token: holder.token, until: now() + ttlMs });
      return true;
    },
    async release(bot, holder) {
      if (leases.get(bot)?.token === holder.token) leases.delete(bot);
    },
    async setStatus(bot, status) {
      statuses.set(bot, status);
    },
    status: async (bot) => statuses.get(bot),
    async addActive(bot, streamId) {
      const set = actives.get(bot) ?? new Set<string>();
      actives.set(bot, set);
      set.add(streamId);
    },
    async removeActive(bot, streamId) {
      actives.get(bot)?.delete(streamId);
    },
    active: async (bot) => [...(actives.get(bot) ?? [])],
    async setShown(streamId, content) {
      shown.set(streamId, content);
    },
    shown: async (streamId) => shown.get(streamId),
    async claim(key, ttlMs) {
      const until = claims.get(key);
      if (until !== undefined && until > now()) return false;
      claims.set(key, now() + ttlMs);
      return true;
    },
    async enqueue(bot, message) {
      const box = outboxes.get(bot) ?? [];
      outboxes.set(bot, box);
      box.push(message);
    },
    dequeue: async (bot) => outboxes.get(bot)?.shift(),
    async setResult(id, result) {
      results.set(id, result);
    },
    result: async (id) => results.get(id),
  };
}
