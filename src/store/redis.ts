// The Redis store, for a single Redis and for Redis Cluster: one class implementing every store port
// (port.ts). Writes and reads of one stream are Lua scripts (./lua/*.lua, loaded once) over keys sharing
// the `{streamId}` hash tag, so each is atomic and one round trip on either topology. On a single
// Redis, the polls and the appends a node makes in the same moment go as one script call each, every
// stream still its own atomic step. Needs Redis ≥ 6.2 (exclusive XRANGE starts).
import { readFileSync } from 'node:fs';
import { Cluster, Redis } from 'ioredis';
import { isFinished, parseEventJson, type StreamEvent } from '../machines/index.js';
import {
  conversationKey,
  defaultPrefix,
  indexKey,
  queueKey,
  runningKey,
  type StreamKeys,
  stopChannel,
  streamKeys,
} from './keys.js';
import { loadedStream } from './loaded.js';
import {
  type AppendOptions,
  type Lease,
  type LeaseHolder,
  type ListOptions,
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
import { isOrphan, summarize, sweepOrder } from './summary.js';

export type RedisClient = Redis | Cluster;

export interface RedisStoreOptions extends StoreOptions {
  /** TTL of the Dify conversation ids; 30 days by default. */
  conversationTtlSeconds?: number | undefined;
  /**
   * Told when the index of recent streams could not be updated after a durable append. The append is
   * not failed for it (a retry would only meet a version conflict); the stream is just missing from
   * the inspector's list until its next change of state.
   */
  onIndexError?: ((error: StoreError) => void) | undefined;
}

const defaultConversationTtlSeconds = 30 * 24 * 3600;
/** How many streams' key names are kept ready (a node's answers in flight, with room to spare). */
const KEYS_KEPT = 4096;
/** The most appends one script call carries: a few milliseconds of Redis's time at most. */
const APPENDS_PER_CALL = 256;
/** The most polls one script call carries. */
const POLLS_PER_CALL = 256;

/**
 * Calls made in the same turn of the event loop, sent together: each `add` waits for the turn's end
 * (`setImmediate`, after the I/O of the turn: the polls of every request read in it, the appends of
 * every stream whose pieces were told in it), when the items added meanwhile go out in calls of at
 * most `perCall` (`send`, which answers each item in its order), each item with its own outcome.
 */
class Batches<T, R> {
  #waiting: Array<{ item: T; resolve(result: R): void; reject(error: unknown): void }> = [];

  constructor(
    private readonly perCall: number,
    private readonly send: (items: T[]) => Promise<R[]>,
  ) {}

  add(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (this.#waiting.length === 1) setImmediate(() => this.#flush());
    });
  }

  #flush(): void {
    const all = this.#waiting;
    this.#waiting = [];
    for (let from = 0; from < all.length; from += this.perCall) {
      const batch = all.slice(from, from + this.perCall);
      this.send(batch.map((waiting) => waiting.item)).then(
        (results) => {
          for (const [i, waiting] of batch.entries()) waiting.resolve(results[i] as R);
        },
        (error: unknown) => {
          for (const waiting of batch) waiting.reject(error);
        },
      );
    }
  }
}

const lua = (name: string): string => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');
const afterSnapshot = lua('after-snapshot');
const projection = lua('projection');
/** The scripts, by the command name ioredis gives each (`defineCommand`), and how many keys it takes. */
const scriptDefinitions = {
  // One stream's append, its four keys declared (so that a Redis Cluster routes it to the stream's
  // slot); and the same script for many streams at once, on a single Redis, each named by its base.
  wdStoreAppend: { numberOfKeys: 4, lua: lua('append') },
  wdStoreAppendMany: { lua: lua('append') },
  wdStoreLoad: { numberOfKeys: 4, lua: `${afterSnapshot}\n${lua('load')}` },
  wdStorePoll: { numberOfKeys: 4, lua: `${afterSnapshot}\n${projection}\n${lua('poll')}` },
  // The polls of many streams at once, on a single Redis.
  wdStorePollMany: { lua: `${projection}\n${lua('poll-many')}` },
  wdStoreAcquire: { numberOfKeys: 1, lua: lua('acquire') },
  wdStoreRelease: { numberOfKeys: 1, lua: lua('release') },
} as const;

type Arg = string | number;

/** The commands `defineCommand` adds; ioredis types them only at runtime. */
interface ScriptCommands {
  wdStoreAppend(
    events: string,
    snap: string,
    text: string,
    lease: string,
    ...args: Arg[]
  ): Promise<[number, number | string, string]>;
  wdStoreAppendMany(keyCount: number, ...keysThenArgs: Arg[]): Promise<Array<number | string>>;
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
  wdStorePollMany(keyCount: number, ...keysThenBytes: Arg[]): Promise<Array<PollReply | [0] | null>>;
  wdStoreAcquire(lease: string, ...args: Arg[]): Promise<number>;
  wdStoreRelease(lease: string, token: string): Promise<number>;
}

/** A stream's outcome in an append call: its status, its version (or bad key), why its indexes failed. */
type AppendOutcome = readonly [status: number, value: number | string, indexError: string];
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
  return new RedisStore(redis, options);
}

export class RedisStore implements StreamStore {
  readonly #redis: RedisClient;
  readonly #scripts: ScriptCommands;
  readonly #prefix: string;
  readonly #now: () => number;
  readonly #ttl: number;
  readonly #conversationTtl: number;
  readonly #index: string;
  readonly #running: string;
  readonly #onIndexError: ((error: StoreError) => void) | undefined;
  /** Waiting for a connection is for start-up only (see `guard`). */
  #connected: boolean;
  /** When the indexes were last trimmed (the store's clock). */
  #trimmedAt = -Infinity;
  readonly #keys = new Map<string, StreamKeys>();
  /** Appends and polls for the next script call of each (single Redis only). */
  readonly #appends = new Batches<{ keys: StreamKeys; args: Arg[] }, AppendOutcome>(
    APPENDS_PER_CALL,
    (appends) => this.#sendAppends(appends),
  );
  readonly #polls = new Batches<StreamKeys, PollReply | [0] | null>(POLLS_PER_CALL, (polls) =>
    this.#sendPolls(polls),
  );
  readonly #cluster: boolean;
  readonly #stopListeners = new Set<(streamId: string) => void>();
  #subscriber: RedisClient | undefined;

  constructor(redis: RedisClient, options: RedisStoreOptions) {
    this.#redis = redis;
    this.#prefix = options.prefix ?? defaultPrefix;
    this.#now = options.now ?? Date.now;
    this.#ttl = options.ttlSeconds;
    this.#conversationTtl = options.conversationTtlSeconds ?? defaultConversationTtlSeconds;
    this.#index = indexKey(this.#prefix);
    this.#running = runningKey(this.#prefix);
    this.#onIndexError = options.onIndexError;
    for (const [name, definition] of Object.entries(scriptDefinitions)) redis.defineCommand(name, definition);
    this.#scripts = redis as unknown as ScriptCommands;
    this.#cluster = redis instanceof Cluster;
    // The calls that carry many streams are batched here already, and go out at once. Auto-pipelined,
    // one would wait for the pipeline in flight to be answered: under load its arguments and replies
    // then live long enough to be promoted, and fill the old generation (a full collection a second).
    // (A new array: the one a client starts with is ioredis's default, shared by every client.)
    const ignored = new Set(redis.options.autoPipeliningIgnoredCommands);
    redis.options.autoPipeliningIgnoredCommands = [
      ...ignored.add('wdStorePollMany').add('wdStoreAppendMany'),
    ];
    this.#connected = redis.status === 'ready';
    if (!this.#connected) {
      redis.once('ready', () => {
        this.#connected = true;
      });
    }
  }

  // ---- EventStore ----------------------------------------------------------------------------

  async append(streamId: string, events: StreamEvent[], appendOptions: AppendOptions) {
    const { expectedVersion, snapshot } = appendOptions;
    const keys = this.#keysOf(streamId);
    // The indexes follow the stream's state: touched when a snapshot is written (every state change
    // and now and then), not for every piece of an answer. On a single Redis the append script does it.
    const index =
      events.length > 0 && (snapshot || expectedVersion === 0)
        ? snapshot !== undefined && isFinished(snapshot)
          ? 'f'
          : 'r'
        : '-';
    const args = this.#appendArgs(events, appendOptions, index);
    const [status, value, indexError] = await this.#guard('append', { streamId }, () =>
      this.#cluster
        ? this.#scripts.wdStoreAppend(
            keys.events,
            keys.snap,
            keys.text,
            keys.lease,
            this.#ttl,
            4,
            '-',
            ...args,
          )
        : this.#appends.add({ keys, args }),
    );
    if (status === -1) {
      throw new StoreError('corrupt', `stream ${streamId}: its key ${value} holds another type`, {
        streamId,
        key: value,
      });
    }
    if (status !== 1) {
      throw new StoreError(
        'version_conflict',
        `stream ${streamId} is at version ${value}, not ${expectedVersion}`,
        { streamId, expected: expectedVersion, actual: value },
      );
    }
    const version = Number(value);
    if (indexError) this.#indexFailed(streamId, indexError);
    else if (index !== '-' && this.#cluster) await this.#touchIndex(streamId, index === 'f');
    return { version };
  }

  /** One stream's part of an append call (lua/append.lua): its header, what the header names, its events. */
  #appendArgs(events: StreamEvent[], options: AppendOptions, index: 'r' | 'f' | '-'): Arg[] {
    const { expectedVersion, snapshot, reply, text, lease } = options;
    // An appender that says how its events change the text keeps the text projection: the
    // snapshot's answer is then not stored twice (the snapshot records the text's length instead,
    // and a reader takes the answer from the text), so a snapshot costs the same for any answer.
    const apart = snapshot !== undefined && (text !== undefined || snapshot.context.answer === '');
    const textChange =
      text === undefined || ('append' in text && text.append === '') ? '-' : 'append' in text ? 'a' : 's';
    const replyMode = reply === undefined ? '-' : reply === 'unchanged' ? '=' : 'fixed' in reply ? 'f' : 't';
    const leaseMs = lease ? Math.max(1, Math.ceil(lease.ttlMs)) : 0;
    const args: Arg[] = [
      `${expectedVersion} ${events.length} ${leaseMs} ${textChange}${replyMode}${apart ? '1' : '0'}${index} ${snapshot?.value ?? '-'}`,
    ];
    if (snapshot)
      args.push(
        JSON.stringify(
          apart ? { value: snapshot.value, context: { ...snapshot.context, answer: '' } } : snapshot,
        ),
      );
    if (textChange !== '-' && text) args.push('append' in text ? text.append : text.set);
    if (lease) args.push(leaseValue(lease.holder, this.#now() + lease.ttlMs));
    if (reply !== undefined && reply !== 'unchanged' && 'fixed' in reply) args.push(reply.fixed);
    for (const event of events) args.push(event.type, JSON.stringify(event));
    return args;
  }

  /**
   * The appends of many streams made in the same moment, in one script call: each stream still its
   * own atomic step with its own outcome.
   */
  async #sendAppends(appends: Array<{ keys: StreamKeys; args: Arg[] }>): Promise<AppendOutcome[]> {
    const keys: string[] = [];
    const at = this.#now();
    const trim = this.#trimDue(at);
    const args: Arg[] = [this.#ttl, 1, `${Math.floor(at)} ${trim ? 1 : 0}`, this.#index, this.#running];
    for (const append of appends) {
      keys.push(append.keys.base);
      for (const arg of append.args) args.push(arg);
    }
    const reply = await this.#scripts.wdStoreAppendMany(keys.length, ...keys, ...args);
    return appends.map(
      (_, i) => [Number(reply[3 * i]), reply[3 * i + 1] ?? 0, String(reply[3 * i + 2] ?? '')] as const,
    );
  }

  /** The polls of many streams this node answers in the same moment, in one script call. */
  async #sendPolls(polls: StreamKeys[]): Promise<Array<PollReply | [0] | null>> {
    const keys = polls.map((k) => k.base);
    const replies = await this.#scripts.wdStorePollMany(keys.length, ...keys, POLL_TEXT_BYTES);
    return polls.map((_, i) => replies[i] ?? null);
  }

  async read(streamId: string): Promise<StoredEvent[]> {
    const keys = streamKeys(this.#prefix, streamId);
    const entries = await this.#guard('read', { streamId }, () => this.#redis.xrange(keys.events, '-', '+'));
    return entries.map(([id, fields], i) => ({
      seq: i + 1,
      id,
      event: parseEventJson(fieldOf(fields, 'e')),
    }));
  }

  async load(streamId: string, loadOptions: LoadOptions = {}) {
    const keys = streamKeys(this.#prefix, streamId);
    const withLease = loadOptions.withLease ?? false;
    const reply = await this.#guard('load', { streamId }, () => this.#loadRaw(keys, withLease));
    if (!reply) return undefined;
    const loaded = this.#rehydrate(streamId, reply);
    const lease = withLease ? liveLease(reply[4], this.#now()) : undefined;
    if (lease) loaded.lease = lease;
    return loaded;
  }

  async listStreams(listOptions: ListOptions = {}) {
    const limit = listOptions.limit ?? 50;
    const before = listOptions.orphanedBefore;
    const page = Math.max(limit, 20);
    const summaries: StreamSummary[] = [];
    const gone: string[] = [];
    // Unfinished streams are found in their own index: a sweep reads the few that run, not all; and
    // of those, only the ones whose state was last recorded before the time it names, oldest first.
    const from = listOptions.unfinishedOnly || before !== undefined ? this.#running : this.#index;
    await this.#guard('listStreams', {}, async () => {
      const minScore = this.#now() - this.#ttl * 1000;
      // The quiet ones are few (their names are read at once, the streams page by page).
      const quiet =
        before === undefined
          ? undefined
          : sweepOrder(await this.#redis.zrangebyscore(from, minScore, before), limit);
      for (let offset = 0; summaries.length < limit; offset += page) {
        const ids = quiet
          ? quiet.slice(offset, offset + page)
          : await this.#redis.zrevrangebyscore(from, '+inf', minScore, 'LIMIT', offset, page);
        // Each stream is its own slot on a cluster: one script per stream, sent together.
        const replies = await Promise.all(ids.map((id) => this.#loadRaw(streamKeys(this.#prefix, id), true)));
        for (const [i, id] of ids.entries()) {
          const reply = replies[i];
          if (!reply) {
            gone.push(id);
            continue;
          }
          if (summaries.length >= limit) continue;
          const summary = this.#summarize(id, reply);
          // A finished stream left in the running index (its last index update failed): drop it there.
          if (summary?.finished && from === this.#running) gone.push(id);
          else if (summary && (before === undefined || isOrphan(summary, before))) summaries.push(summary);
        }
        if (ids.length < page) break;
      }
      // Streams that expired (or, in the running index, finished) before the index noticed: forget
      // them there, so later listings skip no work.
      if (gone.length > 0) await this.#redis.zrem(from, ...gone);
    });
    return summaries;
  }

  // ---- PollReplies ---------------------------------------------------------------------------

  async poll(streamId: string) {
    const keys = streamKeys(this.#prefix, streamId);
    const pollAlone = () =>
      this.#scripts.wdStorePoll(keys.snap, keys.events, keys.lease, keys.text, POLL_TEXT_BYTES);
    const batched = await this.#guard('poll', { streamId }, () =>
      this.#cluster ? pollAlone() : this.#polls.add(keys),
    );
    // A stream whose poll must fold its events is polled alone (poll-many.lua leaves it to poll.lua).
    const reply =
      batched?.length === 1
        ? await this.#guard('poll', { streamId }, pollAlone)
        : (batched as PollReply | null);
    if (!reply) return undefined;
    let polled: PolledStream;
    if (reply[0] === 1) polled = { version: Number(reply[1]), state: reply[2], reply: reply[3] };
    else if (reply[0] === 2) polled = { version: Number(reply[1]), state: reply[2], text: reply[3] };
    else {
      const loaded = this.#rehydrate(streamId, reply.slice(1) as LoadReply);
      polled = { version: loaded.version, state: String(loaded.view.value), loaded };
    }
    const live = liveLease(reply[0] === 0 ? reply[5] : reply[4], this.#now());
    if (live) polled.lease = live;
    return polled;
  }

  // ---- Leases --------------------------------------------------------------------------------

  async acquireLease(streamId: string, holder: LeaseHolder, ttlMs: number) {
    const at = this.#now();
    const key = streamKeys(this.#prefix, streamId).lease;
    const won = await this.#guard('acquireLease', { streamId, node: holder.node }, () =>
      this.#scripts.wdStoreAcquire(
        key,
        holder.token,
        Math.max(1, Math.ceil(ttlMs)),
        at,
        leaseValue(holder, at + ttlMs),
      ),
    );
    return won === 1;
  }

  async releaseLease(streamId: string, holder: LeaseHolder) {
    const key = streamKeys(this.#prefix, streamId).lease;
    await this.#guard('releaseLease', { streamId, node: holder.node }, () =>
      this.#scripts.wdStoreRelease(key, holder.token),
    );
  }

  async getLease(streamId: string) {
    const key = streamKeys(this.#prefix, streamId).lease;
    const value = await this.#guard('getLease', { streamId }, () => this.#redis.get(key));
    return liveLease(value, this.#now());
  }

  // ---- Conversations -------------------------------------------------------------------------

  async getConversation(bot: string, scope: string) {
    const value = await this.#guard('getConversation', { bot, scope }, () =>
      this.#redis.get(conversationKey(this.#prefix, bot, scope)),
    );
    return value ?? undefined;
  }

  async setConversation(bot: string, scope: string, conversationId: string) {
    await this.#guard('setConversation', { bot, scope }, () =>
      this.#redis.set(conversationKey(this.#prefix, bot, scope), conversationId, 'EX', this.#conversationTtl),
    );
  }

  async clearConversation(bot: string, scope: string) {
    await this.#guard('clearConversation', { bot, scope }, () =>
      this.#redis.del(conversationKey(this.#prefix, bot, scope)),
    );
  }

  async joinLine(bot: string, scope: string, streamId: string) {
    const key = queueKey(this.#prefix, bot, scope);
    await this.#guard('joinLine', { bot, scope, streamId }, () =>
      this.#redis.multi().rpush(key, streamId).expire(key, this.#ttl).exec().then(failedPipeline),
    );
  }

  async leaveLine(bot: string, scope: string, streamId: string) {
    const key = queueKey(this.#prefix, bot, scope);
    await this.#guard('leaveLine', { bot, scope, streamId }, () => this.#redis.lrem(key, 0, streamId));
  }

  async line(bot: string, scope: string) {
    const key = queueKey(this.#prefix, bot, scope);
    return this.#guard('line', { bot, scope }, () => this.#redis.lrange(key, 0, -1));
  }

  // ---- StopRequests --------------------------------------------------------------------------

  async requestStop(streamId: string) {
    const key = streamKeys(this.#prefix, streamId).stop;
    await this.#guard('requestStop', { streamId }, () => this.#redis.set(key, '1', 'EX', this.#ttl));
    // Told at once to whoever listens; a node that missed it finds the flag at its next look.
    await this.#guard('requestStop', { streamId }, () =>
      this.#redis.publish(stopChannel(this.#prefix), streamId),
    );
  }

  onStopRequested(listener: (streamId: string) => void) {
    this.#stopListeners.add(listener);
    this.#subscribe();
    return () => void this.#stopListeners.delete(listener);
  }

  /** The connection that listens for stop requests: one per store, opened on first need. */
  #subscribe(): void {
    if (this.#subscriber) return;
    const channel = stopChannel(this.#prefix);
    // Queued until it is connected (the store's own client fails at once instead: see connectRedis).
    const redis = this.#redis;
    const subscriber =
      redis instanceof Cluster
        ? redis.duplicate(undefined, { enableOfflineQueue: true })
        : redis.duplicate({ enableOfflineQueue: true });
    this.#subscriber = subscriber;
    // Its failures are the main connection's too; the flag covers what is missed meanwhile.
    subscriber.on('error', () => undefined);
    subscriber.on('message', (from: string, streamId: string) => {
      if (from !== channel) return;
      for (const listener of this.#stopListeners) listener(streamId);
    });
    subscriber.subscribe(channel).catch(() => undefined);
  }

  async isStopRequested(streamId: string) {
    const key = streamKeys(this.#prefix, streamId).stop;
    return (await this.#guard('isStopRequested', { streamId }, () => this.#redis.exists(key))) === 1;
  }

  // ---- Backend -------------------------------------------------------------------------------

  async ping() {
    await this.#guard('ping', {}, () => this.#redis.ping());
  }

  async close() {
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    if (subscriber) subscriber.disconnect();
    const redis = this.#redis;
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
  }

  // ---- inside --------------------------------------------------------------------------------

  /**
   * Runs one backend operation; every failure that is not already ours becomes `unavailable`. Waiting
   * for a connection is for start-up only: once the client has been up, a reconnect in progress means
   * Redis is down, and commands must fail at once.
   */
  #guard<T>(op: string, details: Record<string, unknown>, run: () => Promise<T>): Promise<T> {
    const unavailable = (error: unknown): never => {
      if (error instanceof StoreError) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new StoreError(
        'unavailable',
        `redis ${op} failed: ${reason}`,
        { op, ...details },
        { cause: error },
      );
    };
    if (!this.#connected) return firstConnection(this.#redis).then(run).catch(unavailable);
    try {
      return run().catch(unavailable);
    } catch (error) {
      return unavailable(error);
    }
  }

  /** A stream's keys, kept for the streams in use: appends come several times a second each. */
  #keysOf(streamId: string): StreamKeys {
    let keys = this.#keys.get(streamId);
    if (!keys) {
      keys = streamKeys(this.#prefix, streamId);
      if (this.#keys.size >= KEYS_KEPT) this.#keys.delete(this.#keys.keys().next().value as string);
      this.#keys.set(streamId, keys);
    }
    return keys;
  }

  #loadRaw(keys: StreamKeys, withLease: boolean): Promise<LoadReply | null> {
    return this.#scripts.wdStoreLoad(keys.snap, keys.events, keys.lease, keys.text, withLease ? '1' : '0');
  }

  #rehydrate(streamId: string, reply: LoadReply): LoadedStream {
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
  #summarize(streamId: string, reply: LoadReply): StreamSummary | undefined {
    try {
      return summarize(streamId, this.#rehydrate(streamId, reply).view, liveLease(reply[4], this.#now()));
    } catch (error) {
      if (error instanceof StoreError && error.code === 'corrupt') return undefined;
      throw error;
    }
  }

  /**
   * On a Cluster (a single Redis updates the indexes in the append script): `finished`, whether the
   * appended snapshot is settled. Without a snapshot it is not known, and the stream is kept in the
   * running index, a superset of the unfinished streams that listings filter.
   */
  async #touchIndex(streamId: string, finished: boolean): Promise<void> {
    const at = this.#now();
    const ttl = this.#ttl;
    try {
      const pipeline = this.#redis.pipeline().zadd(this.#index, at, streamId);
      if (finished) pipeline.zrem(this.#running, streamId);
      else pipeline.zadd(this.#running, at, streamId);
      if (this.#trimDue(at)) {
        pipeline
          .zremrangebyscore(this.#index, '-inf', at - ttl * 1000)
          .expire(this.#index, ttl)
          .zremrangebyscore(this.#running, '-inf', at - ttl * 1000)
          .expire(this.#running, ttl);
      }
      await pipeline.exec().then(failedPipeline);
    } catch (error) {
      this.#indexFailed(streamId, error instanceof Error ? error.message : String(error), error);
    }
  }

  /**
   * Whether the indexes are to be trimmed now (entries older than the streams' TTL dropped, the
   * indexes' own TTL renewed): once a second at most, not with every one of the hundreds of touches a
   * second of a busy node.
   */
  #trimDue(at: number): boolean {
    if (at - this.#trimmedAt < 1000) return false;
    this.#trimmedAt = at;
    return true;
  }

  #indexFailed(streamId: string, reason: string, cause?: unknown): void {
    this.#onIndexError?.(
      new StoreError('unavailable', `redis index update failed: ${reason}`, { streamId }, { cause }),
    );
  }
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
  url?: string | undefined;
  /** Seed nodes of a Redis Cluster; wins over `url`. */
  clusterNodes?: { host: string; port: number }[] | undefined;
  /** The cluster's credentials and TLS, the same for every node. */
  clusterAuth?:
    | { username?: string | undefined; password?: string | undefined; tls?: boolean | undefined }
    | undefined;
  connectTimeoutMs?: number | undefined;
  /** Upper bound of one command, including a Redis that accepts the connection but hangs. */
  commandTimeoutMs?: number | undefined;
  /** Connection errors; the client reconnects by itself, and every failed command surfaces as a StoreError. */
  onError?: ((error: Error) => void) | undefined;
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
 * - `enableAutoPipelining`: the commands issued in one tick go out in one write, which on a busy node
 *   saves a syscall per command. (On a single Redis the store batches polls and appends itself, and
 *   sends those calls past the auto-pipeline: see the constructor.)
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
