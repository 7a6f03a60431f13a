// The Redis store on a single Redis (127.0.0.1:6379) against the store contract, then what only Redis
// can show: one round trip per poll, corrupt data, and an outage the client recovers from by itself.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fold, persist, type StreamEvent } from '../src/machines/index.js';
import { connectRedis, createRedisStore, indexKey, StoreError, streamKeys } from '../src/store/index.js';
import { storeContract } from './store.contract.js';
import { deleteKeys, randomPrefix } from './support/redisKeys.js';
import { freePort, type RedisServer, startRedisServer } from './support/redisServer.js';

const url = 'redis://127.0.0.1:6379';
const ttlSeconds = 600;
let admin: Redis;

beforeAll(() => {
  admin = new Redis(url);
});
afterAll(async () => {
  await admin.quit();
});

storeContract('redis', async () => {
  const prefix = randomPrefix('store');
  const make = () => createRedisStore(connectRedis({ url }), { prefix, ttlSeconds });
  return {
    store: make(),
    ttlSeconds,
    another: async () => make(),
    raw: { prefix, ttl: (key: string) => admin.ttl(key) },
    unreachable: async () =>
      createRedisStore(connectRedis({ url: `redis://127.0.0.1:${await freePort()}` }), {
        prefix,
        ttlSeconds,
      }),
    cleanup: async () => {
      await deleteKeys(admin, prefix);
    },
  };
});

/** The names of the commands `client` sends from now on, in order. */
function commandsSent(client: Redis): string[] {
  const sent: string[] = [];
  const original = client.sendCommand.bind(client);
  client.sendCommand = ((command: Parameters<Redis['sendCommand']>[0], ...rest: unknown[]) => {
    sent.push(command.name);
    return (original as (...args: unknown[]) => unknown)(command, ...rest);
  }) as Redis['sendCommand'];
  return sent;
}

const opened = (streamId: string): StreamEvent => ({
  type: 'stream.opened',
  at: Date.now(),
  streamId,
  msgid: `msg-${streamId}`,
  bot: 'bot-1',
  userid: 'lisi',
  chattype: 'single',
  query: 'hi',
});
const granted = (): StreamEvent => ({ type: 'auth.granted', at: Date.now(), user: { id: 'lisi' } });
const delta = (text: string): StreamEvent => ({ type: 'answer.delta', at: Date.now(), text });

describe('redis store: what only Redis shows', () => {
  const prefix = randomPrefix('redis-only');
  afterAll(async () => {
    await deleteKeys(admin, prefix);
  });

  it('answers a poll in one round trip, however long the stream', async () => {
    const client = connectRedis({ url }) as Redis;
    const store = createRedisStore(client, { prefix, ttlSeconds });
    const id = `one-trip-${Date.now()}`;
    const events = [opened(id), granted(), ...Array.from({ length: 499 }, (_, i) => delta(`${i} `))];
    await store.append(id, events, { expectedVersion: 0, snapshot: persist(fold(events)) });
    await store.append(id, [delta('tail')], { expectedVersion: 501 });
    await store.load(id); // loads the script into Redis' cache (EVALSHA may first meet NOSCRIPT)

    const sent = commandsSent(client);
    const loaded = await store.load(id);
    expect(sent).toEqual(['evalsha']);
    expect(loaded).toMatchObject({ version: 502, tail: 1 });
    expect(loaded!.snapshot.context.answer.endsWith('498 tail')).toBe(true);
    await store.close();
  });

  it('polls a stream an older version wrote: its reply while current, the folded stream after', async () => {
    const store = createRedisStore(connectRedis({ url }), { prefix, ttlSeconds });
    const id = `older-${Date.now()}`;
    const events = [opened(id), granted(), delta('Hello')];
    await store.append(id, events, { expectedVersion: 0, snapshot: persist(fold(events)) });
    // An older version kept a reply `r` beside the snapshot, with no reply mode, current while the
    // snapshot's version is the stream's.
    const snap = streamKeys(prefix, id).snap;
    await admin.hdel(snap, 'rm');
    await admin.hset(snap, 'r', '{"msgtype":"stream","stream":{"id":"x","finish":false,"content":"Hello"}}');
    expect(await store.poll(id)).toMatchObject({ version: 3, reply: expect.stringContaining('"Hello"') });
    // Once an event lands after that snapshot, a reply still beside it is stale: the poll folds instead.
    await store.append(id, [delta(' world')], { expectedVersion: 3 });
    await admin.hset(snap, 'r', '{"msgtype":"stream","stream":{"id":"x","finish":false,"content":"Hello"}}');
    const polled = await store.poll(id);
    expect(polled?.reply).toBeUndefined();
    expect(polled?.loaded?.view.context.answer).toBe('Hello world');
    await store.close();
  });

  it('answers the polls of many streams made at once in one call, each with its own answer', async () => {
    const client = connectRedis({ url }) as Redis;
    const store = createRedisStore(client, { prefix, ttlSeconds });
    // Per stream, in turn: a fixed reply, a reply from its text, no projection (the poll folds), none.
    const ids = Array.from({ length: 300 }, (_, i) => `polls-${Date.now()}-${i}`);
    await Promise.all(
      ids.map((id, i) => {
        const events = [opened(id), granted(), delta(`text of ${i}`)];
        const written = { expectedVersion: 0, snapshot: persist(fold(events)) };
        if (i % 4 === 0) return store.append(id, events, { ...written, reply: { fixed: `{"n":${i}}` } });
        if (i % 4 === 1)
          return store.append(id, events, {
            ...written,
            reply: { fromText: true },
            text: { append: `text of ${i}` },
          });
        if (i % 4 === 2) return store.append(id, events, written);
        return undefined;
      }),
    );
    await Promise.all([store.poll(ids[0]!), store.poll(ids[2]!)]); // the scripts into Redis' cache

    const sent = commandsSent(client);
    const polled = await Promise.all(ids.map((id) => store.poll(id)));
    // Two calls for all 300 (at most 256 each), then one for each stream that must fold (75).
    expect(sent.filter((name) => name === 'evalsha' || name === 'eval')).toHaveLength(2 + 75);
    for (const [i, p] of polled.entries()) {
      if (i % 4 === 0) expect(p).toMatchObject({ version: 3, reply: `{"n":${i}}` });
      else if (i % 4 === 1) expect(p).toMatchObject({ version: 3, text: `text of ${i}` });
      else if (i % 4 === 2) expect(p?.loaded?.view.context.answer).toBe(`text of ${i}`);
      else expect(p).toBeUndefined();
    }
    await store.close();
  });

  it('reports a snapshot it cannot restore as StoreError "corrupt"', async () => {
    const store = createRedisStore(connectRedis({ url }), { prefix, ttlSeconds });
    const id = `corrupt-${Date.now()}`;
    const events = [opened(id)];
    await store.append(id, events, { expectedVersion: 0, snapshot: persist(fold(events)) });
    await admin.hset(streamKeys(prefix, id).snap, 's', '{not json');
    await expect(store.load(id)).rejects.toMatchObject({ name: 'StoreError', code: 'corrupt' });
    // The inspector's list leaves it out rather than failing.
    expect((await store.listStreams()).map((s) => s.streamId)).not.toContain(id);
    await store.close();
  });

  it('sends the appends of many streams made at once in one call, each with its own outcome', async () => {
    const client = connectRedis({ url }) as Redis;
    const store = createRedisStore(client, { prefix, ttlSeconds });
    const ids = Array.from({ length: 300 }, (_, i) => `many-${Date.now()}-${i}`);
    await Promise.all(ids.map((id) => store.append(id, [opened(id)], { expectedVersion: 0 })));
    // One stream's key is not a hash any more; another appender saw an old version.
    const [broken, stale] = ids as [string, string];
    await admin.del(streamKeys(prefix, broken).snap);
    await admin.set(streamKeys(prefix, broken).snap, 'not a hash');

    const sent = commandsSent(client);
    const outcomes = await Promise.allSettled(
      ids.map((id) =>
        store.append(id, [delta(`piece of ${id}`)], {
          expectedVersion: id === stale ? 0 : 1,
          text: { append: `piece of ${id}` },
        }),
      ),
    );
    // 300 appends in two calls (at most 256 each), not 300.
    expect(sent.filter((name) => name === 'evalsha' || name === 'eval')).toHaveLength(2);
    expect(outcomes[0]).toMatchObject({ status: 'rejected', reason: { code: 'corrupt' } });
    expect(outcomes[1]).toMatchObject({ status: 'rejected', reason: { code: 'version_conflict' } });
    expect(outcomes.slice(2).every((o) => o.status === 'fulfilled' && o.value.version === 2)).toBe(true);
    // Nothing was written for the broken stream; the others hold their piece.
    expect(await admin.xlen(streamKeys(prefix, broken).events)).toBe(1);
    const last = ids.at(-1) as string;
    expect(await admin.get(streamKeys(prefix, last).text)).toBe(`piece of ${last}`);
    expect(await admin.xlen(streamKeys(prefix, last).events)).toBe(2);
    expect((await store.load(stale))?.version).toBe(1);
    await store.close();
  });

  it('keeps the indexes of streams in the append call itself, and an index it cannot update fails no append', async () => {
    const own = randomPrefix('redis-index');
    const client = connectRedis({ url }) as Redis;
    const told: StoreError[] = [];
    const store = createRedisStore(client, {
      prefix: own,
      ttlSeconds,
      onIndexError: (error) => told.push(error),
    });
    try {
      const [a, b] = [`index-a-${Date.now()}`, `index-b-${Date.now()}`];
      await store.ping();
      const sent = commandsSent(client);
      await Promise.all([a, b].map((id) => store.append(id, [opened(id)], { expectedVersion: 0 })));
      const done: StreamEvent[] = [
        opened(b),
        granted(),
        delta('答'),
        { type: 'answer.completed', at: Date.now() },
      ];
      await store.append(b, done.slice(1), { expectedVersion: 1, snapshot: persist(fold(done)) });
      // Three appends, two calls; nothing else went to Redis for the indexes.
      expect(sent).toEqual(['evalsha', 'evalsha']);
      expect((await store.listStreams()).map((s) => s.streamId)).toEqual([b, a]);
      expect((await store.listStreams({ unfinishedOnly: true })).map((s) => s.streamId)).toEqual([a]);
      expect(await admin.ttl(indexKey(own))).toBeGreaterThan(0);
      expect(told).toEqual([]);

      // Someone else's value where the index should be: the append is made, and the failure told.
      await admin.del(indexKey(own));
      await admin.set(indexKey(own), 'not a sorted set');
      const c = `index-c-${Date.now()}`;
      expect(await store.append(c, [opened(c)], { expectedVersion: 0 })).toEqual({ version: 1 });
      expect((await store.load(c))?.version).toBe(1);
      expect(told).toHaveLength(1);
      expect(told[0]).toMatchObject({ code: 'unavailable', details: { streamId: c } });
      expect(told[0]?.message).toMatch(/^redis index update failed: WRONGTYPE/);
    } finally {
      await store.close();
      await deleteKeys(admin, own);
    }
  });

  it('refuses a stream id that would break the hash tag', async () => {
    const store = createRedisStore(connectRedis({ url }), { prefix, ttlSeconds });
    await expect(store.load('a}b')).rejects.toBeInstanceOf(RangeError);
    await store.close();
  });
});

describe('redis store: through an outage', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('fails fast while Redis is down and recovers by itself when it is back', async () => {
    const store = createRedisStore(connectRedis({ url: `redis://127.0.0.1:${server.port}` }), {
      prefix: 'wdtest:outage:',
      ttlSeconds,
    });
    const id = 'outage-1';
    await store.append(id, [opened(id)], { expectedVersion: 0 });

    await server.stop();
    const started = Date.now();
    const error = await store.load(id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ code: 'unavailable' });
    expect(Date.now() - started).toBeLessThan(2_500);

    await server.start();
    const deadline = Date.now() + 10_000;
    let back = false;
    while (!back && Date.now() < deadline) {
      back = await store.ping().then(
        () => true,
        () => false,
      );
      if (!back) await new Promise((r) => setTimeout(r, 100));
    }
    expect(back).toBe(true);
    // The restarted Redis kept nothing (no persistence): the stream is gone, the store works.
    expect(await store.load(id)).toBeUndefined();
    expect(await store.append(id, [opened(id)], { expectedVersion: 0 })).toEqual({ version: 1 });
    await store.close();
  });

  it('gives up on a hung Redis after the command timeout', async () => {
    const store = createRedisStore(
      connectRedis({ url: `redis://127.0.0.1:${server.port}`, commandTimeoutMs: 300 }),
      {
        prefix: 'wdtest:hung:',
        ttlSeconds,
      },
    );
    await store.ping();
    server.pause();
    try {
      const started = Date.now();
      await expect(store.load('hung-1')).rejects.toMatchObject({ code: 'unavailable' });
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      server.resume();
    }
    await store.close();
  });
});
