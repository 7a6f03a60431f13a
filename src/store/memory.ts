// The in-memory event store: the embedded single-node mode and the reference the contract suite holds
// the Redis adapter to. Same semantics as Redis, down to storing events as JSON text (so a round trip
// through it is the round trip through Redis) and TTLs, which are emulated with the injectable clock.
import { parseEventJson, type ReplyProjection, type StreamEvent } from '../machines/index.js';
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

export interface MemoryStoreOptions extends StoreOptions {
  /** TTL of the Dify conversation ids; 30 days by default. */
  conversationTtlSeconds?: number;
}

interface MemoryStream {
  /** Event JSON texts, in order; the version is their count. */
  events: string[];
  /** The stored snapshot's JSON and the version it was taken at, and the state now. */
  snapshot?: { json: string; version: number; state: string } | undefined;
  /** The answer's text projection. */
  text: string;
  /** The poll reply projection. */
  reply?: ReplyProjection | undefined;
  expiresAt: number;
  /** The store's clock at the last append, then a counter for appends in the same ms: the index order. */
  touchedAt: number;
  touchedSeq: number;
}

interface Expiring<T> {
  value: T;
  expiresAt: number;
}

const defaultConversationTtlSeconds = 30 * 24 * 3600;

export function createMemoryStore(options: MemoryStoreOptions): StreamStore {
  const now = options.now ?? Date.now;
  const ttlMs = options.ttlSeconds * 1000;
  const conversationTtlMs = (options.conversationTtlSeconds ?? defaultConversationTtlSeconds) * 1000;
  const streams = new Map<string, MemoryStream>();
  const conversations = new Map<string, Expiring<string>>();
  const leases = new Map<string, Lease>();
  const stops = new Map<string, Expiring<true>>();
  const queues = new Map<string, Expiring<string[]>>();
  const stopListeners = new Set<(streamId: string) => void>();
  let closed = false;
  let appends = 0;
  let sweptAt = now();

  /** Drop what has expired now and then, so a long-running embedded node does not keep every stream. */
  function sweep(at: number): void {
    if (at - sweptAt < 60_000) return;
    sweptAt = at;
    for (const map of [streams, conversations, stops, queues] as Map<string, { expiresAt: number }>[]) {
      for (const [key, entry] of map) if (entry.expiresAt <= at) map.delete(key);
    }
    for (const [key, lease] of leases) if (lease.until <= at) leases.delete(key);
  }

  const open = (): void => {
    if (closed) throw new StoreError('unavailable', 'the in-memory store is closed');
  };

  /** The live value of a key, dropping it when its TTL has run out (what Redis does lazily too). */
  function live<T extends { expiresAt: number }>(map: Map<string, T>, key: string): T | undefined {
    const entry = map.get(key);
    if (entry && entry.expiresAt <= now()) {
      map.delete(key);
      return undefined;
    }
    return entry;
  }

  function liveLease(streamId: string): Lease | undefined {
    const lease = leases.get(streamId);
    if (lease && lease.until <= now()) {
      leases.delete(streamId);
      return undefined;
    }
    return lease;
  }

  function loadStream(streamId: string, stream: MemoryStream): LoadedStream {
    const from = stream.snapshot;
    const tail = stream.events.slice(from?.version ?? 0).map(parseEventJson);
    return loadedStream(streamId, from?.json, tail, stream.events.length);
  }

  return {
    async append(streamId: string, events: StreamEvent[], appendOptions: AppendOptions) {
      open();
      const { snapshot, reply, text, lease } = appendOptions;
      const stream = live(streams, streamId);
      const actual = stream?.events.length ?? 0;
      if (actual !== appendOptions.expectedVersion) {
        throw new StoreError(
          'version_conflict',
          `stream ${streamId} is at version ${actual}, not ${appendOptions.expectedVersion}`,
          { streamId, expected: appendOptions.expectedVersion, actual },
        );
      }
      if (events.length === 0) return { version: actual };
      const at = now();
      sweep(at);
      const target: MemoryStream = stream ?? {
        events: [],
        text: '',
        expiresAt: 0,
        touchedAt: 0,
        touchedSeq: 0,
      };
      for (const event of events) target.events.push(JSON.stringify(event));
      if (text) target.text = 'append' in text ? target.text + text.append : text.set;
      if (snapshot) {
        target.snapshot = {
          json: JSON.stringify(snapshot),
          version: target.events.length,
          state: String(snapshot.value),
        };
        // As in Redis: a text set anew without a snapshot leaves readers folding from the start.
      } else if (text && 'set' in text) target.snapshot = undefined;
      if (reply !== 'unchanged') target.reply = reply;
      if (lease)
        leases.set(streamId, { node: lease.holder.node, token: lease.holder.token, until: at + lease.ttlMs });
      target.expiresAt = at + ttlMs;
      // The index order follows the stream's recorded state, as Redis's does: opened, snapshots.
      if (snapshot || !stream) {
        target.touchedAt = at;
        target.touchedSeq = ++appends;
      }
      streams.set(streamId, target);
      return { version: target.events.length };
    },

    async read(streamId: string): Promise<StoredEvent[]> {
      open();
      const stream = live(streams, streamId);
      if (!stream) return [];
      return stream.events.map((json, i) => ({ seq: i + 1, id: String(i + 1), event: parseEventJson(json) }));
    },

    async load(streamId: string, loadOptions: LoadOptions = {}) {
      open();
      const stream = live(streams, streamId);
      if (!stream) return undefined;
      const loaded = loadStream(streamId, stream);
      const lease = loadOptions.withLease ? liveLease(streamId) : undefined;
      if (lease) loaded.lease = { ...lease };
      return loaded;
    },

    async poll(streamId: string) {
      open();
      const stream = live(streams, streamId);
      if (!stream) return undefined;
      const { reply } = stream;
      const version = stream.events.length;
      const state = stream.snapshot?.state ?? '';
      const lease = liveLease(streamId);
      const polled: PolledStream = !reply
        ? (() => {
            const loaded = loadStream(streamId, stream);
            return { version: loaded.version, state: String(loaded.view.value), loaded };
          })()
        : 'fixed' in reply
          ? { version, state, reply: reply.fixed }
          : { version, state, text: firstBytes(stream.text, POLL_TEXT_BYTES) };
      if (lease) polled.lease = { ...lease };
      return polled;
    },

    async getConversation(bot: string, scope: string) {
      open();
      return live(conversations, `${bot}:${scope}`)?.value;
    },

    async setConversation(bot: string, scope: string, conversationId: string) {
      open();
      conversations.set(`${bot}:${scope}`, { value: conversationId, expiresAt: now() + conversationTtlMs });
    },

    async clearConversation(bot: string, scope: string) {
      open();
      conversations.delete(`${bot}:${scope}`);
    },

    async acquireLease(streamId: string, holder: LeaseHolder, leaseMs: number) {
      open();
      const held = liveLease(streamId);
      if (held && held.token !== holder.token) return false;
      leases.set(streamId, { node: holder.node, token: holder.token, until: now() + leaseMs });
      return true;
    },

    async releaseLease(streamId: string, holder: LeaseHolder) {
      open();
      if (liveLease(streamId)?.token === holder.token) leases.delete(streamId);
    },

    async getLease(streamId: string) {
      open();
      const lease = liveLease(streamId);
      return lease ? { ...lease } : undefined;
    },

    async requestStop(streamId: string) {
      open();
      stops.set(streamId, { value: true, expiresAt: now() + ttlMs });
      for (const listener of stopListeners) listener(streamId);
    },

    onStopRequested(listener: (streamId: string) => void) {
      stopListeners.add(listener);
      return () => void stopListeners.delete(listener);
    },

    async isStopRequested(streamId: string) {
      open();
      return live(stops, streamId) !== undefined;
    },

    async joinLine(bot: string, scope: string, streamId: string) {
      open();
      const key = `${bot}:${scope}`;
      const line = live(queues, key)?.value ?? [];
      queues.set(key, { value: [...line, streamId], expiresAt: now() + ttlMs });
    },

    async leaveLine(bot: string, scope: string, streamId: string) {
      open();
      const key = `${bot}:${scope}`;
      const entry = live(queues, key);
      if (!entry) return;
      const line = entry.value.filter((id) => id !== streamId);
      if (line.length === 0) queues.delete(key);
      else entry.value = line;
    },

    async line(bot: string, scope: string) {
      open();
      return [...(live(queues, `${bot}:${scope}`)?.value ?? [])];
    },

    async listStreams(listOptions: ListOptions = {}) {
      open();
      const limit = listOptions.limit ?? 50;
      const before = listOptions.orphanedBefore;
      const recent: [string, MemoryStream][] = [];
      for (const id of [...streams.keys()]) {
        const stream = live(streams, id);
        if (stream && (before === undefined || stream.touchedAt <= before)) recent.push([id, stream]);
      }
      recent.sort((a, b) => b[1].touchedAt - a[1].touchedAt || b[1].touchedSeq - a[1].touchedSeq);
      const order = before === undefined ? recent : sweepOrder(recent.reverse(), limit);
      const summaries: StreamSummary[] = [];
      for (const [id, stream] of order) {
        if (summaries.length >= limit) break;
        const summary = summarize(id, loadStream(id, stream).view, liveLease(id));
        if (listOptions.unfinishedOnly && summary.finished) continue;
        if (before !== undefined && !isOrphan(summary, before)) continue;
        summaries.push(summary);
      }
      return summaries;
    },

    async ping() {
      open();
    },

    async close() {
      closed = true;
    },
  };
}

/** The first `max` bytes of a text's UTF-8, as Redis's GETRANGE gives them (a cut character decodes as U+FFFD). */
function firstBytes(text: string, max: number): string {
  if (text.length * 3 <= max) return text;
  const bytes = Buffer.from(text, 'utf8');
  return bytes.length <= max ? text : bytes.subarray(0, max).toString('utf8');
}
