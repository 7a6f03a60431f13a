// The one specification of the store's ports (src/store/port.ts), a section per port (EventStore,
// PollReplies, Leases, Conversations, StopRequests, Backend), run against every adapter: in-memory, a
// single Redis and a Redis Cluster. An adapter that passes it can stand in for any other.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  fold,
  type PersistedStream,
  parseEvent,
  persist,
  type ReadEvent,
  type StreamEvent,
} from '../src/machines/index.js';
import { prng } from '../src/machines/specification.js';
import { textChange } from '../src/runner/writer.js';
import {
  conversationKey,
  indexKey,
  type LeaseHolder,
  POLL_TEXT_BYTES,
  queueKey,
  runningKey,
  StoreError,
  type StreamStore,
  streamKeys,
} from '../src/store/index.js';

export interface StoreHarness {
  store: StreamStore;
  /** The TTL the store was made with. */
  ttlSeconds: number;
  /** A second client on the same backend; absent = the same store serves both sides. */
  another?: () => Promise<StreamStore>;
  /** Direct access to the backend's keys, for TTL checks. */
  raw?: { prefix: string; ttl(key: string): Promise<number> };
  /** Moves the store's clock on (memory) instead of waiting in real time. */
  advance?: (ms: number) => void;
  /** The store's clock, where it is not the real one. */
  now?: () => number;
  /** A store whose backend cannot be reached. */
  unreachable?: () => Promise<StreamStore>;
  /** Removes what the test wrote and closes any extra clients. */
  cleanup?: () => Promise<void>;
}

// ---- events, as the runner writes them --------------------------------------------------------

let clock = Date.now();
const at = (): number => ++clock;

const opened = (streamId: string, userid = 'zhangsan'): StreamEvent => ({
  type: 'stream.opened',
  at: at(),
  streamId,
  msgid: `msg-${streamId}`,
  bot: 'bot-1',
  userid,
  chattype: 'single',
  query: '你好',
});
const granted = (id = 'zhangsan'): StreamEvent => ({
  type: 'auth.granted',
  at: at(),
  user: { id, name: '张三' },
});
const denied = (): StreamEvent => ({ type: 'auth.denied', at: at(), reason: 'not_in_directory' });
const started = (): StreamEvent => ({
  type: 'dify.started',
  at: at(),
  conversationId: 'conv-1',
  messageId: 'm-1',
  taskId: 't-1',
});
const delta = (text: string): StreamEvent => ({ type: 'answer.delta', at: at(), text });
const replaced = (text: string): StreamEvent => ({ type: 'answer.replaced', at: at(), text });
const completed = (): StreamEvent => ({ type: 'answer.completed', at: at(), usage: { total_tokens: 42 } });
const failed = (): StreamEvent => ({ type: 'answer.failed', at: at(), code: 'dify_error', message: 'boom' });
/** A fact a newer version might write: stores keep it, the fold ignores it. */
const future = (): StreamEvent =>
  ({ type: 'future.thing', at: at(), payload: { x: 1 } }) as unknown as StreamEvent;

/** What a reader should get back for an appended event: its JSON round trip, parsed. */
const asRead = (event: StreamEvent): ReadEvent => parseEvent(JSON.parse(JSON.stringify(event)));

const snapshotOf = (events: StreamEvent[]): PersistedStream => persist(fold(events));

/**
 * The store as its appender (the runner's writer) uses it: every append says how its events change
 * the answer's text, computed from the fold before and after them, unless the test says otherwise.
 */
function appending(store: StreamStore): StreamStore {
  const append: StreamStore['append'] = async (streamId, events, options) => {
    if ('text' in options || events.length === 0) return store.append(streamId, events, options);
    const before = (await store.read(streamId)).map((e) => e.event);
    const text = textChange(fold(before), fold([...before, ...events]), events);
    return store.append(streamId, events, { ...options, ...(text ? { text } : {}) });
  };
  // A proxy, not a spread: an adapter may be a class, its methods on its prototype.
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'append') return append;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const holder = (node: string, token = `${node}-job`): LeaseHolder => ({ node, token });

let idCounter = 0;
const newId = (label: string): string =>
  `${label}-${Date.now().toString(36)}-${(++idCounter).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- random, valid event sequences ------------------------------------------------------------

const alphabets: [number, number][] = [
  [0x20, 0x7e], // ASCII, quotes and backslashes included
  [0x4e00, 0x9fff], // CJK
  [0x1f300, 0x1f6ff], // emoji, outside the BMP
  [0x0300, 0x036f], // combining marks
  [0x05d0, 0x05ea], // Hebrew, right to left
];
const oddities = ['\n', '\r\n', '\t', '\u0000', '\u2028', '\u200b', '\ufeff', '\ud800', '"', '\\', '{}'];

function randomText(random: () => number): string {
  const length = Math.floor(random() * 12);
  let text = '';
  for (let i = 0; i < length; i++) {
    if (random() < 0.08) {
      text += oddities[Math.floor(random() * oddities.length)];
      continue;
    }
    const [lo, hi] = alphabets[Math.floor(random() * alphabets.length)] ?? [0x61, 0x7a];
    text += String.fromCodePoint(lo + Math.floor(random() * (hi - lo + 1)));
  }
  // A lone surrogate (one of the oddities) becomes U+FFFD, as the runner makes every answer text:
  // the answer's stored text is UTF-8, which cannot hold one.
  return text.toWellFormed();
}

function randomSequence(random: () => number, streamId: string): StreamEvent[] {
  const events: StreamEvent[] = [opened(streamId, `u${Math.floor(random() * 5)}`)];
  const maybeFuture = (): void => {
    if (random() < 0.1) events.push(future());
  };
  if (random() < 0.1) {
    events.push(denied());
    maybeFuture();
    return events;
  }
  if (random() < 0.9) events.push(granted());
  if (random() < 0.7) events.push(started());
  const deltas = Math.floor(random() * 30);
  for (let i = 0; i < deltas; i++) {
    const roll = random();
    if (roll < 0.06) events.push(replaced(randomText(random)));
    else if (roll < 0.08) events.push(started());
    else events.push(delta(randomText(random)));
    maybeFuture();
  }
  const end = random();
  if (end < 0.45) events.push(completed());
  else if (end < 0.65) events.push(failed());
  maybeFuture();
  return events;
}

// ---- the contract ----------------------------------------------------------------------------

export function storeContract(name: string, makeStore: () => Promise<StoreHarness>): void {
  describe(`${name}: the event store contract`, () => {
    let harness: StoreHarness;
    let store: StreamStore;
    let others: StreamStore[];

    beforeEach(async () => {
      harness = await makeStore();
      store = appending(harness.store);
      others = [];
    });

    afterEach(async () => {
      await harness.cleanup?.();
      await Promise.all([store, ...others].map((s) => s.close()));
    });

    const second = async (): Promise<StreamStore> => {
      if (!harness.another) return store;
      const other = await harness.another();
      others.push(other);
      return appending(other);
    };

    /**
     * Lets the store's clock move, so that "newer" is unambiguous: time passing is the scene here, not a
     * wait for the store.
     */
    const tick = async (ms = 5): Promise<void> => {
      if (harness.advance) harness.advance(ms);
      else await sleep(ms);
    };

    describe('EventStore: appending and reading', () => {
      it('reads back what was appended, in order, numbered from 1', async () => {
        const id = newId('read');
        const events = [opened(id), granted(), started(), delta('你好'), delta('，世界 👋')];
        expect(await store.append(id, events.slice(0, 2), { expectedVersion: 0 })).toEqual({ version: 2 });
        expect(await store.append(id, events.slice(2), { expectedVersion: 2 })).toEqual({ version: 5 });

        const read = await store.read(id);
        expect(read.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
        expect(read.map((e) => e.event)).toEqual(events.map(asRead));
        expect(new Set(read.map((e) => e.id)).size).toBe(5);
      });

      it('has nothing for a stream that was never written', async () => {
        expect(await store.read(newId('none'))).toEqual([]);
        expect(await store.load(newId('none'))).toBeUndefined();
      });

      it('loads what the full fold of the events gives, without a snapshot', async () => {
        const id = newId('fold');
        const events = [opened(id), granted(), started(), delta('一'), delta('二'), completed()];
        await store.append(id, events, { expectedVersion: 0 });

        const loaded = await store.load(id);
        expect(loaded?.version).toBe(6);
        expect(loaded?.tail).toBe(6);
        expect(persist(loaded!.snapshot)).toEqual(persist(fold(events)));
        expect(loaded!.snapshot.context.answer).toBe('一二');
        expect(loaded!.view.value).toBe('completed');
      });

      it('folds only the events after the stored snapshot', async () => {
        const id = newId('snap');
        const first = [opened(id), granted(), started(), delta('a'), delta('b')];
        await store.append(id, first, { expectedVersion: 0, snapshot: snapshotOf(first) });
        const tail = [delta('c'), delta('d')];
        await store.append(id, tail, { expectedVersion: 5 });

        const loaded = await store.load(id);
        expect(loaded).toMatchObject({ version: 7, tail: 2 });
        expect(persist(loaded!.snapshot)).toEqual(snapshotOf([...first, ...tail]));

        const last = [completed()];
        await store.append(id, last, {
          expectedVersion: 7,
          snapshot: snapshotOf([...first, ...tail, ...last]),
        });
        const settled = await store.load(id);
        expect(settled).toMatchObject({ version: 8, tail: 0 });
        expect(settled!.view.value).toBe('completed');
        expect(settled!.snapshot.context.answer).toBe('abcd');
      });

      it('keeps an unknown event type: read shows it, the fold ignores it', async () => {
        const id = newId('unknown');
        const events = [opened(id), future(), granted()];
        await store.append(id, events, { expectedVersion: 0 });

        const read = await store.read(id);
        expect(read).toHaveLength(3);
        expect(read[1]?.event).toMatchObject({ type: 'future.thing', unknown: true });
        const loaded = await store.load(id);
        expect(loaded?.version).toBe(3);
        expect(loaded!.view.value).toBe('thinking');
      });

      it('appending no events changes nothing', async () => {
        const id = newId('empty');
        expect(await store.append(id, [], { expectedVersion: 0 })).toEqual({ version: 0 });
        expect(await store.load(id)).toBeUndefined();
      });
    });

    describe('EventStore: optimistic concurrency', () => {
      it('refuses an append at a stale version and appends nothing', async () => {
        const id = newId('conflict');
        await store.append(id, [opened(id), granted()], { expectedVersion: 0 });

        const attempt = store.append(id, [delta('lost')], { expectedVersion: 1, snapshot: snapshotOf([]) });
        await expect(attempt).rejects.toBeInstanceOf(StoreError);
        await expect(attempt).rejects.toMatchObject({
          code: 'version_conflict',
          details: { streamId: id, expected: 1, actual: 2 },
        });
        await expect(store.append(id, [delta('lost')], { expectedVersion: 0 })).rejects.toMatchObject({
          code: 'version_conflict',
        });

        expect(await store.read(id)).toHaveLength(2);
        const loaded = await store.load(id);
        expect(loaded).toMatchObject({ version: 2, tail: 2 });
        expect(loaded!.view.value).toBe('thinking');
      });

      it('of two clients appending at the same version, exactly one wins', async () => {
        const other = await second();
        for (let round = 0; round < 20; round++) {
          const id = newId('race');
          // Both try to open the stream, then both try to add the next event.
          const opens = await Promise.allSettled([
            store.append(id, [opened(id, 'a')], { expectedVersion: 0 }),
            other.append(id, [opened(id, 'b')], { expectedVersion: 0 }),
          ]);
          expect(opens.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
          const next = await Promise.allSettled([
            store.append(id, [granted('a'), delta('from a')], { expectedVersion: 1 }),
            other.append(id, [granted('b'), delta('from b')], { expectedVersion: 1 }),
          ]);
          const won = next.findIndex((r) => r.status === 'fulfilled');
          expect(next.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
          const lost = next[1 - won];
          expect(lost?.status === 'rejected' && lost.reason).toMatchObject({ code: 'version_conflict' });

          const read = await store.read(id);
          expect(read).toHaveLength(3);
          expect((await other.load(id))?.snapshot.context.answer).toBe(won === 0 ? 'from a' : 'from b');
        }
      });
    });

    describe('EventStore: snapshot + tail equals the full fold, for any history', () => {
      it('holds over hundreds of random streams appended in random batches', async () => {
        const seed = Number(process.env.STORE_SEED ?? Math.floor(Math.random() * 2 ** 31));
        // Eight streams at a time, each from its own seeded generator, so a case replays alone.
        const cases = Array.from({ length: 200 }, (_, n) => n);
        for (let from = 0; from < cases.length; from += 8) {
          await Promise.all(cases.slice(from, from + 8).map((n) => oneCase(seed, n)));
        }
      });

      async function oneCase(seed: number, n: number): Promise<void> {
        const random = prng(seed * 1000 + n);
        const id = newId(`prop${n}`);
        const events = randomSequence(random, id);
        const why = `STORE_SEED=${seed}, case ${n}`;
        let version = 0;
        let snapshotVersion = 0;
        while (version < events.length) {
          const size = 1 + Math.floor(random() * 6);
          const batch = events.slice(version, version + size);
          const withSnapshot = random() < 0.3;
          const upTo = version + batch.length;
          const text = textChange(fold(events.slice(0, version)), fold(events.slice(0, upTo)), batch);
          const result = await store.append(id, batch, {
            expectedVersion: version,
            ...(withSnapshot ? { snapshot: snapshotOf(events.slice(0, upTo)) } : {}),
            ...(text ? { text } : {}),
          });
          expect(result.version, why).toBe(upTo);
          version = upTo;
          if (withSnapshot) snapshotVersion = upTo;
          // A text set anew without a snapshot leaves readers folding from the start.
          else if (text && 'set' in text) snapshotVersion = 0;
        }

        const loaded = await store.load(id);
        expect(loaded?.version, why).toBe(events.length);
        expect(loaded?.tail, why).toBe(events.length - snapshotVersion);
        expect(persist(loaded!.snapshot), why).toEqual(persist(fold(events)));
        const read = await store.read(id);
        expect(
          read.map((e) => e.event),
          why,
        ).toEqual(events.map(asRead));
      }
    });

    describe('EventStore: opening a stream, the dedup of a message', () => {
      it('of many copies opening one stream at once, exactly one opens it and holds its lease', async () => {
        const other = await second();
        const id = newId('open');
        const opens = await Promise.allSettled(
          Array.from({ length: 10 }, (_, i) =>
            (i % 2 ? other : store).append(id, [opened(id, `u${i}`)], {
              expectedVersion: 0,
              lease: { holder: holder('node-a', `job-${i}`), ttlMs: 10_000 },
            }),
          ),
        );
        const won = opens.findIndex((o) => o.status === 'fulfilled');
        expect(opens.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
        for (const o of opens)
          if (o.status === 'rejected') expect(o.reason).toMatchObject({ code: 'version_conflict' });
        expect(await store.read(id)).toHaveLength(1);
        expect((await other.load(id))?.view.context.userid).toBe(`u${won}`);
        expect(await other.getLease(id)).toMatchObject({ node: 'node-a', token: `job-${won}` });
      });
    });

    describe('Conversations: the Dify conversation ids', () => {
      it('remembers, replaces and forgets the Dify conversation of a scope', async () => {
        const scope = newId('user');
        expect(await store.getConversation('bot-1', scope)).toBeUndefined();
        await store.setConversation('bot-1', scope, 'conv-a');
        expect(await store.getConversation('bot-1', scope)).toBe('conv-a');
        await store.setConversation('bot-1', scope, 'conv-b');
        expect(await store.getConversation('bot-1', scope)).toBe('conv-b');
        expect(await store.getConversation('bot-2', scope)).toBeUndefined();
        expect(await store.getConversation('bot-1', `chat-x:${scope}`)).toBeUndefined();
        await store.clearConversation('bot-1', scope);
        expect(await store.getConversation('bot-1', scope)).toBeUndefined();
      });
    });

    describe('Leases', () => {
      it('one holder holds a stream; another is refused until it is released', async () => {
        const other = await second();
        const id = newId('lease');
        const [a, b] = [holder('node-a'), holder('node-b')];
        const before = Date.now();
        expect(await store.acquireLease(id, a, 10_000)).toBe(true);
        const lease = await other.getLease(id);
        expect(lease?.node).toBe('node-a');
        expect(lease?.until).toBeGreaterThanOrEqual(before + 10_000 - 5_000);

        expect(await other.acquireLease(id, b, 10_000)).toBe(false);
        await tick(5);
        // Taking it again is how its holder renews it.
        expect(await store.acquireLease(id, a, 20_000)).toBe(true);
        expect((await store.getLease(id))?.until).toBeGreaterThan(lease!.until);

        await other.releaseLease(id, b);
        expect((await store.getLease(id))?.node).toBe('node-a');
        await store.releaseLease(id, a);
        expect(await store.getLease(id)).toBeUndefined();
        expect(await other.acquireLease(id, b, 10_000)).toBe(true);
        expect((await store.getLease(id))?.node).toBe('node-b');
      });

      it('two jobs of one node are two holders: neither takes nor releases the other’s lease', async () => {
        const id = newId('same-node');
        const [winner, loser] = [holder('node-a', 'job-1'), holder('node-a', 'job-2')];
        expect(await store.acquireLease(id, winner, 10_000)).toBe(true);
        expect(await store.acquireLease(id, loser, 10_000)).toBe(false);
        await store.releaseLease(id, loser);
        expect(await store.getLease(id)).toMatchObject({ node: 'node-a', token: 'job-1' });
      });

      it('a lease that ran out lets another holder take the stream', async () => {
        const other = await second();
        const id = newId('expiry');
        const [a, b] = [holder('node-a'), holder('node-b')];
        expect(await store.acquireLease(id, a, 100)).toBe(true);
        expect(await other.acquireLease(id, b, 100)).toBe(false);
        if (harness.advance) {
          harness.advance(250);
          expect(await store.getLease(id)).toBeUndefined();
        } else await expect.poll(() => store.getLease(id), { timeout: 2_000 }).toBeUndefined();
        expect(await other.acquireLease(id, b, 10_000)).toBe(true);
        expect(await store.acquireLease(id, a, 10_000)).toBe(false);
      });

      it('releasing a lease nobody holds is harmless', async () => {
        const id = newId('free');
        await store.releaseLease(id, holder('node-a'));
        expect(await store.getLease(id)).toBeUndefined();
        // It leaves nothing behind that would keep the stream from its next holder.
        expect(await store.acquireLease(id, holder('node-b'), 10_000)).toBe(true);
        expect(await store.getLease(id)).toMatchObject({ node: 'node-b' });
      });
    });

    describe('EventStore: loading with the lease', () => {
      it('loads the lease with the stream when asked, in the same read', async () => {
        const other = await second();
        const id = newId('poll-lease');
        await store.append(id, [opened(id)], { expectedVersion: 0 });
        expect((await other.load(id, { withLease: true }))?.lease).toBeUndefined();
        await store.acquireLease(id, holder('node-a'), 10_000);
        const loaded = await other.load(id, { withLease: true });
        expect(loaded?.lease?.node).toBe('node-a');
        expect(loaded?.view.value).toBe('authenticating');
        expect((await other.load(id))?.lease).toBeUndefined();
      });
    });

    describe('PollReplies: the reply projection a poll reads', () => {
      it('a fixed reply is sent as it is, with the lease', async () => {
        const other = await second();
        const id = newId('reply');
        const events = [opened(id), granted(), delta('你好')];
        await store.append(id, events, {
          expectedVersion: 0,
          snapshot: snapshotOf(events),
          reply: { fixed: '{"r":1}' },
        });
        await store.acquireLease(id, holder('node-a'), 10_000);
        expect(await other.poll(id)).toMatchObject({
          version: 3,
          state: 'streaming',
          reply: '{"r":1}',
          lease: { node: 'node-a' },
        });
        expect((await other.poll(id))?.loaded).toBeUndefined();
      });

      it('a reply made from the text gives the answer’s text as it grows, and its first bytes only', async () => {
        const other = await second();
        const id = newId('reply-text');
        const events = [opened(id), granted(), delta('你好')];
        await store.append(id, events, {
          expectedVersion: 0,
          snapshot: snapshotOf(events),
          reply: { fromText: true },
        });
        expect(await other.poll(id)).toMatchObject({ version: 3, state: 'streaming', text: '你好' });
        await store.append(id, [delta('，世界')], { expectedVersion: 3, reply: 'unchanged' });
        expect(await other.poll(id)).toMatchObject({ version: 4, state: 'streaming', text: '你好，世界' });
        const long = '字'.repeat(10_000);
        await store.append(id, [delta(long)], { expectedVersion: 4, reply: 'unchanged' });
        const polled = await other.poll(id);
        expect(Buffer.byteLength(polled?.text ?? '')).toBeLessThanOrEqual(POLL_TEXT_BYTES + 2);
        expect((polled?.text ?? '').startsWith(`你好，世界${'字'.repeat(6000)}`)).toBe(true);
        // The text is the fold's answer, and loading the stream gives all of it.
        expect((await other.load(id))?.view.context.answer).toBe(`你好，世界${long}`);
      });

      it('an append without a projection drops it: polls fold the stream, never a stale reply', async () => {
        const other = await second();
        const id = newId('reply-tail');
        const events = [opened(id), granted()];
        await store.append(id, events, {
          expectedVersion: 0,
          snapshot: snapshotOf(events),
          reply: { fixed: '{"old":1}' },
        });
        await store.append(id, [delta('新')], { expectedVersion: 2 });
        const polled = await other.poll(id);
        expect(polled?.reply).toBeUndefined();
        expect(polled?.text).toBeUndefined();
        expect(polled).toMatchObject({ version: 3, state: 'streaming' });
        expect(polled?.loaded?.view.context.answer).toBe('新');
        expect(polled?.lease).toBeUndefined();
      });

      it('is nothing for a stream that does not exist', async () => {
        expect(await store.poll(newId('none'))).toBeUndefined();
      });
    });

    describe('EventStore: the answer’s text, kept apart from the snapshot', () => {
      it('a snapshot and later deltas load as the fold, the answer started over after a takeover too', async () => {
        const other = await second();
        const id = newId('text');
        const first = [opened(id), granted(), delta('旧的回答')];
        await store.append(id, first, { expectedVersion: 0, snapshot: snapshotOf(first) });
        const takeover: StreamEvent = { type: 'stream.taken_over', at: at(), node: 'n2', attempt: 1 };
        const second_ = [takeover];
        await store.append(id, second_, { expectedVersion: 3, snapshot: snapshotOf([...first, ...second_]) });
        expect((await other.load(id))?.view.context.answer).toBe('旧的回答');
        const third = [granted(), delta('新'), delta('的')];
        await store.append(id, third, { expectedVersion: 4 });
        const all = [...first, ...second_, ...third];
        expect(persist((await other.load(id))!.snapshot)).toEqual(snapshotOf(all));
        await store.append(id, [completed()], {
          expectedVersion: 7,
          snapshot: snapshotOf([...all, completed()]),
        });
        expect((await other.load(id))?.view.context.answer).toBe('新的');
      });
    });

    describe('StopRequests', () => {
      it('a stop asked for on one client is seen by another', async () => {
        const other = await second();
        const id = newId('stop');
        expect(await other.isStopRequested(id)).toBe(false);
        await store.requestStop(id);
        expect(await other.isStopRequested(id)).toBe(true);
        expect(await other.isStopRequested(newId('stop-other'))).toBe(false);
      });

      it('every listener, on any client, hears of a stop request as it is made', async () => {
        const other = await second();
        const heard: string[] = [];
        const unlisten = other.onStopRequested((streamId) => heard.push(streamId));
        const id = newId('stop-heard');
        // The listening connection may still be opening: ask until it hears.
        await expect
          .poll(async () => {
            await store.requestStop(id);
            return heard.includes(id);
          })
          .toBe(true);
        unlisten();
        const later = newId('stop-unheard');
        await store.requestStop(later);
        await store.requestStop(id);
        expect(heard).not.toContain(later);
      });
    });

    describe('Conversations: the line of a conversation', () => {
      it('keeps arrival order, removes from anywhere, and is separate per bot and scope', async () => {
        const other = await second();
        const scope = newId('scope');
        await store.joinLine('bot-1', scope, 's1');
        await other.joinLine('bot-1', scope, 's2');
        await store.joinLine('bot-1', scope, 's3');
        await store.joinLine('bot-2', scope, 'x1');
        expect(await other.line('bot-1', scope)).toEqual(['s1', 's2', 's3']);
        await other.leaveLine('bot-1', scope, 's2');
        expect(await store.line('bot-1', scope)).toEqual(['s1', 's3']);
        await store.leaveLine('bot-1', scope, 's1');
        await store.leaveLine('bot-1', scope, 's1');
        expect(await other.line('bot-1', scope)).toEqual(['s3']);
        expect(await other.line('bot-2', scope)).toEqual(['x1']);
        expect(await other.line('bot-1', newId('empty'))).toEqual([]);
      });
    });

    describe('EventStore: listing streams', () => {
      it('lists recent streams newest first, with their state, and can skip finished ones', async () => {
        const [a, b, c] = [newId('list-a'), newId('list-b'), newId('list-c')];
        await store.append(a, [opened(a, 'ua'), granted('ua')], { expectedVersion: 0 });
        await tick();
        await store.append(b, [opened(b, 'ub')], { expectedVersion: 0 });
        await tick();
        const cEvents = [opened(c, 'uc'), granted('uc'), delta('done!'), completed()];
        await store.append(c, cEvents, { expectedVersion: 0, snapshot: snapshotOf(cEvents) });
        await tick();
        await store.append(a, [delta('你好')], {
          expectedVersion: 2,
          snapshot: snapshotOf([opened(a, 'ua'), granted('ua'), delta('你好')]),
        });
        await store.acquireLease(a, holder('node-a'), 10_000);

        const all = await store.listStreams();
        expect(all.map((s) => s.streamId)).toEqual([a, c, b]);
        expect(all[0]).toMatchObject({
          streamId: a,
          userid: 'ua',
          state: 'streaming',
          answerLength: 2,
          finished: false,
          lease: { node: 'node-a' },
        });
        expect(all[0]!.lastEventAt).toBeGreaterThanOrEqual(all[0]!.openedAt);
        expect(all[1]).toMatchObject({ streamId: c, state: 'completed', answerLength: 5, finished: true });
        expect(all[1]!.lease).toBeUndefined();
        expect(all[2]).toMatchObject({ streamId: b, state: 'authenticating', finished: false });

        expect((await store.listStreams({ unfinishedOnly: true })).map((s) => s.streamId)).toEqual([a, b]);
        expect((await store.listStreams({ limit: 2 })).map((s) => s.streamId)).toEqual([a, c]);
        expect((await store.listStreams({ limit: 1, unfinishedOnly: true })).map((s) => s.streamId)).toEqual([
          a,
        ]);
      });
    });

    describe('EventStore: finding orphans', () => {
      it('lists the running streams nobody holds and nothing happened to since a time, oldest first', async () => {
        const storeNow = harness.now ?? Date.now;
        const old = (event: StreamEvent): StreamEvent => ({ ...event, at: storeNow() - 60_000 });
        const [orphan1, orphan2, held, done, lively, recent] = [
          newId('orphan-1'),
          newId('orphan-2'),
          newId('held'),
          newId('done'),
          newId('lively'),
          newId('recent'),
        ];
        await store.append(orphan1, [old(opened(orphan1)), old(granted())], { expectedVersion: 0 });
        await tick();
        await store.append(orphan2, [old(opened(orphan2))], { expectedVersion: 0 });
        await store.append(held, [old(opened(held))], { expectedVersion: 0 });
        await store.acquireLease(held, holder('node-a'), 10_000);
        const doneEvents = [old(opened(done)), old(granted()), old(completed())];
        await store.append(done, doneEvents, { expectedVersion: 0, snapshot: snapshotOf(doneEvents) });
        await store.append(lively, [old(opened(lively)), old(granted())], { expectedVersion: 0 });
        const before = storeNow();
        await tick();
        // Its state was recorded before, but a piece of its answer came after.
        await store.append(lively, [{ ...delta('刚刚'), at: storeNow() }], { expectedVersion: 2 });
        await store.append(recent, [old(opened(recent))], { expectedVersion: 0 });

        const mine = new Set([orphan1, orphan2, held, done, lively, recent]);
        const orphans = async (limit?: number) =>
          (await store.listStreams({ orphanedBefore: before, ...(limit ? { limit } : {}) })).filter((s) =>
            mine.has(s.streamId),
          );
        expect((await orphans()).map((s) => s.streamId)).toEqual([orphan1, orphan2]);
        expect((await orphans(500)).map((s) => s.streamId)).toEqual([orphan1, orphan2]);
        expect((await orphans())[0]).toMatchObject({ streamId: orphan1, state: 'thinking', finished: false });
        expect((await orphans())[0]?.lease).toBeUndefined();
      });
    });

    describe('Backend: expiry', () => {
      it('puts a TTL of at most STREAM_TTL_SECONDS on every key it writes', async (context) => {
        const raw = harness.raw;
        if (!raw) return context.skip();
        const id = newId('ttl');
        const events = [opened(id), granted()];
        await store.append(id, [...events, delta('答')], {
          expectedVersion: 0,
          snapshot: snapshotOf([...events, delta('答')]),
        });
        await store.acquireLease(id, holder('node-a'), 10_000);
        await store.setConversation('bot-1', id, 'conv-1');
        await store.requestStop(id);
        await store.joinLine('bot-1', id, id);

        const keys = streamKeys(raw.prefix, id);
        for (const key of [
          keys.events,
          keys.snap,
          keys.text,
          keys.lease,
          keys.stop,
          queueKey(raw.prefix, 'bot-1', id),
          indexKey(raw.prefix),
          runningKey(raw.prefix),
        ]) {
          const ttl = await raw.ttl(key);
          expect(ttl, key).toBeGreaterThan(0);
          expect(ttl, key).toBeLessThanOrEqual(harness.ttlSeconds);
        }
        expect(await raw.ttl(keys.lease)).toBeLessThanOrEqual(10);
        expect(await raw.ttl(conversationKey(raw.prefix, 'bot-1', id))).toBeGreaterThan(0);
      });

      it('forgets a stream and its lease once the TTL has run out, counted from the last append', async (context) => {
        const advance = harness.advance;
        if (!advance) return context.skip();
        const ttlMs = harness.ttlSeconds * 1000;
        const id = newId('expire');
        await store.append(id, [opened(id)], { expectedVersion: 0 });
        advance(ttlMs - 1_000);
        await store.append(id, [granted()], { expectedVersion: 1 });
        advance(2_000);
        expect((await store.load(id))?.version).toBe(2);

        advance(ttlMs);
        expect(await store.load(id)).toBeUndefined();
        expect(await store.read(id)).toEqual([]);
        expect(await store.listStreams()).toEqual([]);
        expect(await store.append(id, [opened(id)], { expectedVersion: 0 })).toEqual({ version: 1 });
      });
    });

    describe('Backend: failures', () => {
      it('reports an unreachable backend as StoreError "unavailable", quickly', async (context) => {
        if (!harness.unreachable) return context.skip();
        const down = await harness.unreachable();
        others.push(down);
        const id = newId('down');
        const started = Date.now();
        for (const call of [
          () => down.ping(),
          () => down.load(id),
          () => down.read(id),
          () => down.append(id, [opened(id)], { expectedVersion: 0 }),
          () => down.acquireLease(id, holder('node-a'), 1_000),
          () => down.listStreams(),
        ]) {
          const error = await call().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error).toBeInstanceOf(StoreError);
          expect(error).toMatchObject({ code: 'unavailable' });
          expect((error as StoreError).cause).toBeDefined();
        }
        expect(Date.now() - started).toBeLessThan(10_000);
      });

      it('reports use after close as StoreError "unavailable"', async () => {
        const id = newId('closed');
        await store.append(id, [opened(id)], { expectedVersion: 0 });
        await store.close();
        await expect(store.load(id)).rejects.toMatchObject({ name: 'StoreError', code: 'unavailable' });
        await expect(store.append(id, [granted()], { expectedVersion: 1 })).rejects.toMatchObject({
          code: 'unavailable',
        });
        await expect(store.ping()).rejects.toBeInstanceOf(StoreError);
      });
    });
  });
}
