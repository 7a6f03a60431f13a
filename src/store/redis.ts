// The Redis event store, for a single Redis and for Redis Cluster (DESIGN.md "Redis keys"). Writes
// and reads of one stream are Lua scripts over keys sharing the `{streamId}` hash tag, so each is atomic
// and one round trip on either topology. Needs Redis ≥ 6.2 (exclusive XRANGE starts).
import { Cluster, Redis } from 'ioredis';
import { isFinished, parseEventJson, type StreamEvent } from '../machines/index.js';
import {
  conversationKey,
  defaultPrefix,
  indexKey,
  queueKey,
  runningKey,
  type StreamKeys,
  streamKeys,
} from './keys.js';
import { loadedStream } from './loaded.js';
import {
  type AppendOptions,
  type Lease,
  type LeaseHolder,
  type LoadedStream,
  type LoadOptions,
  POLL_TEXT_BYTES,
  type PolledStream,
  type StoredEvent,
  StoreError,
  type StoreOptions,
  type StreamStore,
  type StreamSummary,
} from './port.js';
import { summarize } from './summary.js';

export type RedisClient = Redis | Cluster;

export interface RedisStoreOptions extends StoreOptions {
  /** TTL of the Dify conversation ids; 30 days by default. */
  conversationTtlSeconds?: number;
  /**
   * Told when the index of recent streams could not be updated after a durable append. The append is
   * not failed for it (a retry would only meet a version conflict); the stream is just missing from
   * the inspector's list until its next append.
   */
  onIndexError?: (error: StoreError) => void;
}

const defaultConversationTtlSeconds = 30 * 24 * 3600;

/**
 * KEYS: events, snap, text, lease. ARGV: expectedVersion, ttlSeconds, n, snapshot JSON ('' = none),
 * its state, the reply projection ('' drop, '=' keep, 't' from the text, else the fixed reply JSON),
 * the text change ('' none, 'a' append, 's' set), its text, the lease JSON ('' = none), its TTL (ms),
 * '1' when the snapshot leaves its answer to the text, then n pairs (type, event JSON). The version
 * lives in the snap hash so the check and the XADDs are one step. A snapshot that leaves its answer
 * out records how long the text was then (`sl`), and a reader takes its answer from there; a text
 * set anew without a snapshot drops the stored one, so that readers fold from the start. Returns
 * {1, version} or, on a conflict, {0, actual} having written nothing.
 */
const appendLua = `
local v = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
if v ~= tonumber(ARGV[1]) then return {0, v} end
local n = tonumber(ARGV[3])
if n == 0 then return {1, v} end
local id
for i = 0, n - 1 do
  id = redis.call('XADD', KEYS[1], '*', 't', ARGV[12 + 2 * i], 'e', ARGV[13 + 2 * i])
end
v = v + n
if ARGV[7] == 'a' then
  redis.call('APPEND', KEYS[3], ARGV[8])
elseif ARGV[7] == 's' then
  redis.call('SET', KEYS[3], ARGV[8])
end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], 'v', v, 's', ARGV[4], 'sv', v, 'sid', id, 'st', ARGV[5])
  if ARGV[11] == '1' then
    redis.call('HSET', KEYS[2], 'sl', redis.call('STRLEN', KEYS[3]))
  else
    redis.call('HDEL', KEYS[2], 'sl')
  end
else
  redis.call('HSET', KEYS[2], 'v', v)
  -- The text no longer starts with the stored snapshot's answer: readers fold from the start.
  if ARGV[7] == 's' then redis.call('HDEL', KEYS[2], 's', 'sv', 'sid', 'sl') end
end
local reply = ARGV[6]
if reply == 't' then
  redis.call('HSET', KEYS[2], 'rm', 't')
  redis.call('HDEL', KEYS[2], 'r')
elseif reply == '' then
  redis.call('HDEL', KEYS[2], 'rm', 'r')
elseif reply ~= '=' then
  redis.call('HSET', KEYS[2], 'rm', 'f', 'r', reply)
end
if ARGV[9] ~= '' then redis.call('SET', KEYS[4], ARGV[9], 'PX', ARGV[10]) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[2])
return {1, v}
`;

/**
 * The events (KEYS[2]) a reader folds on top of the stored snapshot: only the entries after the
 * snapshot's entry `sid` (exclusive range), never the whole history; none at all when the snapshot is
 * of the latest version `v`. `sv` and `sid` are false when there is none. And the snapshot's answer:
 * the first `sl` bytes of the text (KEYS[4]); false for a snapshot that holds its answer itself.
 */
const afterSnapshot = `
local function entriesAfter(v, sv, sid)
  if v == sv then return {} end
  local from = '-'
  if sid then from = '(' .. sid end
  return redis.call('XRANGE', KEYS[2], from, '+')
end
local function answerAt(s, sl)
  if not s or not sl then return false end
  local n = tonumber(sl)
  if n == 0 then return '' end
  return redis.call('GETRANGE', KEYS[4], 0, n - 1)
end
`;

/**
 * KEYS: snap, events, lease, text. ARGV: '1' to return the lease too. One round trip: the snapshot
 * fields, the entries after it, its answer. Returns nil for a missing stream, else
 * {v, s, sv, entries, lease, answer}.
 */
const loadLua = `${afterSnapshot}
local h = redis.call('HMGET', KEYS[1], 'v', 's', 'sv', 'sid', 'sl')
if not h[1] then return false end
local entries = entriesAfter(h[1], h[3], h[4])
local lease = false
if ARGV[1] == '1' then lease = redis.call('GET', KEYS[3]) end
return {h[1], h[2], h[3], entries, lease, answerAt(h[2], h[5])}
`;

/**
 * KEYS: snap, events, lease, text. ARGV: how many bytes of the text a poll reads. A poll's read, from
 * the reply projection when there is one: {1, v, state, reply, lease} for a fixed reply, {2, v,
 * state, the text's first bytes, lease} for one made from the text; otherwise what `load` returns,
 * after a 0: {0, v, s, sv, entries, lease, answer}. (A reply `r` without `rm` was written by an
 * older version, which kept it current with the snapshot's version.)
 */
const pollLua = `${afterSnapshot}
local h = redis.call('HMGET', KEYS[1], 'v', 'rm', 'r', 'st', 's', 'sv', 'sid', 'sl')
if not h[1] then return false end
local lease = redis.call('GET', KEYS[3])
if h[2] == 'f' or (not h[2] and h[3] and h[1] == h[6]) then return {1, h[1], h[4], h[3], lease} end
if h[2] == 't' then
  return {2, h[1], h[4], redis.call('GETRANGE', KEYS[4], 0, tonumber(ARGV[1]) - 1), lease}
end
return {0, h[1], h[5], h[6], entriesAfter(h[1], h[6], h[7]), lease, answerAt(h[5], h[8])}
`;

/**
 * Whether the current lease (KEYS[1]) is held by another holder: present, parseable, not this
 * token's, and not past its deadline on the caller's clock. The key's own PX TTL normally removes it
 * at that deadline; the deadline check keeps the memory and Redis adapters alike when clocks are
 * injected.
 */
const leaseHeldByOther = `
local function heldByOther(token, now)
  local cur = redis.call('GET', KEYS[1])
  if not cur then return false end
  local ok, lease = pcall(cjson.decode, cur)
  if not ok or type(lease) ~= 'table' then return false end
  return tonumber(lease['until'] or 0) > now and lease['token'] ~= token
end
`;

/** KEYS: lease. ARGV: token, ttlMs, now, value JSON. Take (or renew) when free, expired or this holder's. */
const acquireLua = `${leaseHeldByOther}
if heldByOther(ARGV[1], tonumber(ARGV[3])) then return 0 end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[2])
return 1
`;

/** KEYS: lease. ARGV: token. Compare-and-delete: never drop another holder's lease. */
const releaseLua = `
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local ok, lease = pcall(cjson.decode, cur)
if ok and type(lease) == 'table' and lease['token'] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

type Arg = string | number;

/** The commands `defineCommand` adds; ioredis types them only at runtime. */
interface ScriptCommands {
  wdStoreAppend(
    events: string,
    snap: string,
    text: string,
    lease: string,
    ...args: Arg[]
  ): Promise<[number, number]>;
  wdStoreLoad(
    snap: string,
    events: string,
    lease: string,
    text: string,
    withLease: Arg,
  ): Promise<LoadReply | null>;
  wdStorePoll(
    snap: string,
    events: string,
    lease: string,
    text: string,
    bytes: Arg,
  ): Promise<PollReply | null>;
  wdStoreAcquire(lease: string, ...args: Arg[]): Promise<number>;
  wdStoreRelease(lease: string, token: string): Promise<number>;
}

type Entry = [id: string, fields: string[]];
type PollReply =
  | [kind: 1, version: string, state: string, reply: string, lease: string | null]
  | [kind: 2, version: string, state: string, text: string, lease: string | null]
  | [kind: 0, ...LoadReply];
type LoadReply = [
  version: string,
  snapshot: string | null,
  snapshotVersion: string | null,
  entries: Entry[],
  lease: string | null,
  /** The snapshot's answer, from the text; null when the snapshot holds its own (an older version's). */
  answer: string | null,
];

export function createRedisStore(redis: RedisClient, options: RedisStoreOptions): StreamStore {
  const prefix = options.prefix ?? defaultPrefix;
  const now = options.now ?? Date.now;
  const ttl = options.ttlSeconds;
  const conversationTtl = options.conversationTtlSeconds ?? defaultConversationTtlSeconds;
  const index = indexKey(prefix);
  const running = runningKey(prefix);

  redis.defineCommand('wdStoreAppend', { numberOfKeys: 4, lua: appendLua });
  redis.defineCommand('wdStoreLoad', { numberOfKeys: 4, lua: loadLua });
  redis.defineCommand('wdStorePoll', { numberOfKeys: 4, lua: pollLua });
  redis.defineCommand('wdStoreAcquire', { numberOfKeys: 1, lua: acquireLua });
  redis.defineCommand('wdStoreRelease', { numberOfKeys: 1, lua: releaseLua });
  const scripts = redis as unknown as ScriptCommands;

  // Waiting for a connection is for start-up only: once the client has been up, a reconnect in
  // progress means Redis is down, and commands must fail at once.
  let connected = redis.status === 'ready';
  if (!connected) {
    redis.once('ready', () => {
      connected = true;
    });
  }

  /** Runs one backend operation; every failure that is not already ours becomes `unavailable`. */
  async function guard<T>(op: string, details: Record<string, unknown>, run: () => Promise<T>): Promise<T> {
    try {
      if (!connected) await firstConnection(redis);
      return await run();
    } catch (error) {
      if (error instanceof StoreError) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new StoreError(
        'unavailable',
        `redis ${op} failed: ${reason}`,
        { op, ...details },
        { cause: error },
      );
    }
  }

  function loadRaw(keys: StreamKeys, withLease: boolean): Promise<LoadReply | null> {
    return scripts.wdStoreLoad(keys.snap, keys.events, keys.lease, keys.text, withLease ? '1' : '0');
  }

  function rehydrate(streamId: string, reply: LoadReply): LoadedStream {
    const [versionText, snapshotJson, snapshotVersionText, entries, , answer] = reply;
    const version = Number(versionText);
    const expected = version - (snapshotJson ? Number(snapshotVersionText) : 0);
    if (entries.length !== expected) {
      throw new StoreError(
        'corrupt',
        `stream ${streamId} has ${entries.length} events after its snapshot, expected ${expected}`,
        { streamId, version, tail: entries.length },
      );
    }
    const tail = entries.map(([, fields]) => parseEventJson(fieldOf(fields, 'e')));
    return loadedStream(streamId, snapshotJson || undefined, tail, version, answer ?? undefined);
  }

  /** A stream that cannot be rebuilt is left out of a listing rather than failing all of it. */
  function summarizeReply(streamId: string, reply: LoadReply): StreamSummary | undefined {
    try {
      return summarize(streamId, rehydrate(streamId, reply).view, liveLease(reply[4], now()));
    } catch (error) {
      if (error instanceof StoreError && error.code === 'corrupt') return undefined;
      throw error;
    }
  }

  /**
   * `finished`: whether the appended snapshot is settled. Without a snapshot it is not known, and the
   * stream is kept in the running index, a superset of the unfinished streams that listings filter.
   */
  async function touchIndex(streamId: string, finished: boolean): Promise<void> {
    const at = now();
    try {
      const pipeline = redis
        .pipeline()
        .zadd(index, at, streamId)
        .zremrangebyscore(index, '-inf', at - ttl * 1000)
        .expire(index, ttl);
      if (finished) pipeline.zrem(running, streamId);
      else pipeline.zadd(running, at, streamId);
      pipeline.zremrangebyscore(running, '-inf', at - ttl * 1000).expire(running, ttl);
      await pipeline.exec().then(failedPipeline);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      options.onIndexError?.(
        new StoreError('unavailable', `redis index update failed: ${reason}`, { streamId }, { cause: error }),
      );
    }
  }

  return {
    async append(streamId: string, events: StreamEvent[], appendOptions: AppendOptions) {
      const { expectedVersion, snapshot, reply, text, lease } = appendOptions;
      const keys = streamKeys(prefix, streamId);
      // An appender that says how its events change the text keeps the text projection: the
      // snapshot's answer is then not stored twice (the snapshot records the text's length instead,
      // and a reader takes the answer from the text), so a snapshot costs the same for any answer.
      const apart = snapshot !== undefined && (text !== undefined || snapshot.context.answer === '');
      const args: Arg[] = [
        expectedVersion,
        ttl,
        events.length,
        snapshot
          ? JSON.stringify(
              apart ? { value: snapshot.value, context: { ...snapshot.context, answer: '' } } : snapshot,
            )
          : '',
        snapshot?.value ?? '',
        reply === undefined ? '' : reply === 'unchanged' ? '=' : 'fixed' in reply ? reply.fixed : 't',
        text === undefined || ('append' in text && text.append === '') ? '' : 'append' in text ? 'a' : 's',
        text === undefined ? '' : 'append' in text ? text.append : text.set,
        lease ? leaseValue(lease.holder, now() + lease.ttlMs) : '',
        lease ? Math.max(1, Math.ceil(lease.ttlMs)) : 0,
        apart ? '1' : '',
      ];
      for (const event of events) args.push(event.type, JSON.stringify(event));
      const [ok, version] = await guard('append', { streamId }, () =>
        scripts.wdStoreAppend(keys.events, keys.snap, keys.text, keys.lease, ...args),
      );
      if (ok !== 1) {
        throw new StoreError(
          'version_conflict',
          `stream ${streamId} is at version ${version}, not ${expectedVersion}`,
          { streamId, expected: expectedVersion, actual: version },
        );
      }
      // The indexes follow the stream's state: touched when a snapshot is written (every state change
      // and now and then), not for every piece of an answer.
      if (events.length > 0 && (snapshot || expectedVersion === 0))
        await touchIndex(streamId, snapshot !== undefined && isFinished(snapshot));
      return { version };
    },

    async read(streamId: string): Promise<StoredEvent[]> {
      const keys = streamKeys(prefix, streamId);
      const entries = await guard('read', { streamId }, () => redis.xrange(keys.events, '-', '+'));
      return entries.map(([id, fields], i) => ({
        seq: i + 1,
        id,
        event: parseEventJson(fieldOf(fields, 'e')),
      }));
    },

    async load(streamId: string, loadOptions: LoadOptions = {}) {
      const keys = streamKeys(prefix, streamId);
      const withLease = loadOptions.withLease ?? false;
      const reply = await guard('load', { streamId }, () => loadRaw(keys, withLease));
      if (!reply) return undefined;
      const loaded = rehydrate(streamId, reply);
      const lease = withLease ? liveLease(reply[4], now()) : undefined;
      if (lease) loaded.lease = lease;
      return loaded;
    },

    async poll(streamId: string) {
      const keys = streamKeys(prefix, streamId);
      const reply = await guard('poll', { streamId }, () =>
        scripts.wdStorePoll(keys.snap, keys.events, keys.lease, keys.text, POLL_TEXT_BYTES),
      );
      if (!reply) return undefined;
      let polled: PolledStream;
      if (reply[0] === 1) polled = { version: Number(reply[1]), state: reply[2], reply: reply[3] };
      else if (reply[0] === 2) polled = { version: Number(reply[1]), state: reply[2], text: reply[3] };
      else {
        const loaded = rehydrate(streamId, reply.slice(1) as LoadReply);
        polled = { version: loaded.version, state: String(loaded.view.value), loaded };
      }
      const live = liveLease(reply[0] === 0 ? reply[5] : reply[4], now());
      if (live) polled.lease = live;
      return polled;
    },

    async getConversation(bot: string, scope: string) {
      const value = await guard('getConversation', { bot, scope }, () =>
        redis.get(conversationKey(prefix, bot, scope)),
      );
      return value ?? undefined;
    },

    async setConversation(bot: string, scope: string, conversationId: string) {
      await guard('setConversation', { bot, scope }, () =>
        redis.set(conversationKey(prefix, bot, scope), conversationId, 'EX', conversationTtl),
      );
    },

    async clearConversation(bot: string, scope: string) {
      await guard('clearConversation', { bot, scope }, () => redis.del(conversationKey(prefix, bot, scope)));
    },

    async acquireLease(streamId: string, holder: LeaseHolder, ttlMs: number) {
      const at = now();
      const key = streamKeys(prefix, streamId).lease;
      const won = await guard('acquireLease', { streamId, node: holder.node }, () =>
        scripts.wdStoreAcquire(
          key,
          holder.token,
          Math.max(1, Math.ceil(ttlMs)),
          at,
          leaseValue(holder, at + ttlMs),
        ),
      );
      return won === 1;
    },

    async releaseLease(streamId: string, holder: LeaseHolder) {
      const key = streamKeys(prefix, streamId).lease;
      await guard('releaseLease', { streamId, node: holder.node }, () =>
        scripts.wdStoreRelease(key, holder.token),
      );
    },

    async getLease(streamId: string) {
      const key = streamKeys(prefix, streamId).lease;
      const value = await guard('getLease', { streamId }, () => redis.get(key));
      return liveLease(value, now());
    },

    async requestStop(streamId: string) {
      const key = streamKeys(prefix, streamId).stop;
      await guard('requestStop', { streamId }, () => redis.set(key, '1', 'EX', ttl));
    },

    async isStopRequested(streamId: string) {
      const key = streamKeys(prefix, streamId).stop;
      return (await guard('isStopRequested', { streamId }, () => redis.exists(key))) === 1;
    },

    async joinQueue(bot: string, scope: string, streamId: string) {
      const key = queueKey(prefix, bot, scope);
      await guard('joinQueue', { bot, scope, streamId }, () =>
        redis.multi().rpush(key, streamId).expire(key, ttl).exec().then(failedPipeline),
      );
    },

    async leaveQueue(bot: string, scope: string, streamId: string) {
      const key = queueKey(prefix, bot, scope);
      await guard('leaveQueue', { bot, scope, streamId }, () => redis.lrem(key, 0, streamId));
    },

    async queue(bot: string, scope: string) {
      const key = queueKey(prefix, bot, scope);
      return guard('queue', { bot, scope }, () => redis.lrange(key, 0, -1));
    },

    async listStreams(listOptions: { limit?: number; unfinishedOnly?: boolean } = {}) {
      const limit = listOptions.limit ?? 50;
      const page = Math.max(limit, 20);
      const summaries: StreamSummary[] = [];
      const gone: string[] = [];
      await guard('listStreams', {}, async () => {
        const minScore = now() - ttl * 1000;
        // Unfinished streams are found in their own index: a sweep reads the few that run, not all.
        const from = listOptions.unfinishedOnly ? running : index;
        for (let offset = 0; summaries.length < limit; offset += page) {
          const ids = await redis.zrevrangebyscore(from, '+inf', minScore, 'LIMIT', offset, page);
          // Each stream is its own slot on a cluster: one script per stream, sent together.
          const replies = await Promise.all(ids.map((id) => loadRaw(streamKeys(prefix, id), true)));
          for (const [i, id] of ids.entries()) {
            const reply = replies[i];
            if (!reply) {
              gone.push(id);
              continue;
            }
            if (summaries.length >= limit) continue;
            const summary = summarizeReply(id, reply);
            // A finished stream left in the running index (its last index update failed): drop it there.
            if (summary?.finished && listOptions.unfinishedOnly) gone.push(id);
            else if (summary) summaries.push(summary);
          }
          if (ids.length < page) break;
        }
        // Streams that expired (or, in the running index, finished) before the index noticed: forget
        // them there, so later listings skip no work.
        if (gone.length > 0) await redis.zrem(from, ...gone);
      });
      return summaries;
    },

    async ping() {
      await guard('ping', {}, () => redis.ping());
    },

    async close() {
      if (redis.status === 'end') return;
      if (redis.status !== 'ready') {
        redis.disconnect();
        return;
      }
      try {
        await redis.quit();
      } catch {
        // Quitting a connection that is going away anyway: make sure it is gone, and say nothing.
        redis.disconnect();
      }
    },
  };
}

function fieldOf(fields: string[], name: string): string {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1] ?? '';
  return '';
}

const leaseValue = (holder: LeaseHolder, until: number): string =>
  JSON.stringify({ node: holder.node, token: holder.token, until } satisfies Lease);

function liveLease(value: string | null, at: number): Lease | undefined {
  if (value === null) return undefined;
  try {
    const lease = JSON.parse(value) as Partial<Lease>;
    if (typeof lease.node !== 'string' || typeof lease.until !== 'number' || lease.until <= at)
      return undefined;
    return typeof lease.token === 'string'
      ? { node: lease.node, until: lease.until, token: lease.token }
      : { node: lease.node, until: lease.until };
  } catch {
    return undefined;
  }
}

/** A pipeline resolves even when its commands fail; surface the first failure. */
function failedPipeline(results: [Error | null, unknown][] | null): void {
  const failure = results?.find(([error]) => error !== null)?.[0];
  if (failure) throw failure;
}

/**
 * Waits for the very first connection, bounded by the client's own connect timeout: commands are not
 * queued while disconnected (see `connectRedis`), so without this a command sent right after the
 * client was created would fail before it ever had a chance to connect. Once the client has been
 * up, an outage is not waited out here: commands fail at once and the store reports `unavailable`.
 */
export async function firstConnection(redis: RedisClient): Promise<void> {
  if (redis.status === 'wait') {
    await redis.connect().catch(() => undefined);
    return;
  }
  if (redis.status !== 'connecting' && redis.status !== 'connect') return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      for (const event of ['ready', 'error', 'close', 'end']) redis.off(event, done);
      resolve();
    };
    const timer = setTimeout(done, connectTimeoutOf(redis));
    for (const event of ['ready', 'error', 'close', 'end']) redis.once(event, done);
  });
}

function connectTimeoutOf(redis: RedisClient): number {
  const options = redis instanceof Cluster ? redis.options.redisOptions : redis.options;
  return (options?.connectTimeout ?? 10_000) + 500;
}

export interface ConnectRedisOptions {
  /** `redis://…` of a single Redis. */
  url?: string;
  /** Seed nodes of a Redis Cluster; wins over `url`. */
  clusterNodes?: { host: string; port: number }[];
  /** The cluster's credentials and TLS, the same for every node. */
  clusterAuth?: { username?: string; password?: string; tls?: boolean };
  connectTimeoutMs?: number;
  /** Upper bound of one command, including a Redis that accepts the connection but hangs. */
  commandTimeoutMs?: number;
  /** Connection errors; the client reconnects by itself, and every failed command surfaces as a StoreError. */
  onError?: (error: Error) => void;
}

/**
 * A client for the store. The choice, for an outage:
 * - `enableOfflineQueue: false`: a command sent while Redis is down fails at once ("Stream isn't
 *   writeable…") instead of waiting in a queue. A poll then answers quickly, and an append the caller
 *   already gave up on cannot run later, behind its back, when Redis returns. The store waits only
 *   for the very first connection (see `firstConnection`).
 * - `maxRetriesPerRequest: 1` and `commandTimeout`: a command caught by a dropped or hung connection
 *   fails within about a second or two rather than hanging.
 * - the default `retryStrategy` (capped at 2 s): the client keeps reconnecting on its own, so the
 *   store is usable again as soon as Redis is back, with no restart.
 * - `enableAutoPipelining`: the commands of concurrent polls and appends issued in one tick go out in
 *   one write, which on a busy node saves a syscall per command.
 */
export function connectRedis(options: ConnectRedisOptions): RedisClient {
  const connectTimeout = options.connectTimeoutMs ?? 2_000;
  const commandTimeout = options.commandTimeoutMs ?? 2_000;
  const retryStrategy = (times: number): number => Math.min(times * 100, 2_000);
  const onError = options.onError ?? (() => undefined);
  let client: RedisClient;
  if (options.clusterNodes && options.clusterNodes.length > 0) {
    client = new Cluster(options.clusterNodes, {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      clusterRetryStrategy: retryStrategy,
      slotsRefreshTimeout: connectTimeout,
      redisOptions: {
        connectTimeout,
        commandTimeout,
        maxRetriesPerRequest: 1,
        ...(options.clusterAuth?.username ? { username: options.clusterAuth.username } : {}),
        ...(options.clusterAuth?.password ? { password: options.clusterAuth.password } : {}),
        ...(options.clusterAuth?.tls ? { tls: {} } : {}),
      },
    });
  } else if (options.url) {
    client = new Redis(options.url, {
      connectTimeout,
      commandTimeout,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      retryStrategy,
    });
  } else {
    throw new StoreError('unavailable', 'connectRedis needs a url or cluster nodes');
  }
  client.on('error', onError);
  return client;
}
