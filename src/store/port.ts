// What the service keeps, as the few narrow ports its code uses: the streams' events (with their
// projections), the poll replies, the owners' leases, the conversations and their lines, the users'
// stop requests. One Redis class (single node and Cluster) and one in-memory class implement them all
// (`StreamStore`), and one contract suite, a section per port, runs against each
// (test/store.contract.ts).
import type {
  PersistedStream,
  ReadEvent,
  ReplyProjection,
  StreamEvent,
  StreamSnapshot,
  StreamView,
} from '../machines/index.js';

/** An event as read back, with its position. `seq` is 1-based: the stream's version after it. */
export interface StoredEvent {
  seq: number;
  /** The adapter's id of the entry (the Redis Stream entry id, or `seq` as a string). */
  id: string;
  event: ReadEvent;
}

/** A stream rehydrated for a poll: the stored snapshot plus the events after it. */
export interface LoadedStream {
  /** State and context: all a poll renders. With no events after the stored snapshot, it is that. */
  view: StreamView;
  /** The machine's snapshot (rebuilt from `view` on first use when there was no tail to fold). */
  readonly snapshot: StreamSnapshot;
  /** How many events the stream has. */
  version: number;
  /** How many events were folded on top of the stored snapshot to get here. */
  tail: number;
  /** The owner's lease, when asked for (`withLease`) and live: read in the same round trip. */
  lease?: Lease;
}

export interface LoadOptions {
  /** Also read the stream's lease, in the same round trip (a poll deciding on a takeover). */
  withLease?: boolean;
}

export interface AppendOptions {
  /** The stream's version the appender saw; 0 for a new stream. A mismatch appends nothing. */
  expectedVersion: number;
  /**
   * The snapshot after these events, computed by the appender (the owner holds it anyway), written
   * in the same atomic step. Without it the stored snapshot stays where it was and `load` folds the
   * tail. Expected with `text.set` (the store rebuilds a snapshot's answer from the text; a text set
   * anew without one leaves readers folding the whole stream until the next snapshot).
   */
  snapshot?: PersistedStream | undefined;
  /**
   * What a poll answers after these events (the poll reply projection, machines/render.ts), kept
   * beside the stream: a poll of a stream whose projection is set answers from it, with no fold (a
   * projection from the text costs a poll the text's first bytes only). `unchanged` keeps the
   * current one (the appender knows it still holds); without it the projection is dropped, and polls
   * fold and render until an appender sets one again, so it is never stale.
   */
  reply?: ReplyProjection | 'unchanged' | undefined;
  /**
   * How these events change the answer's text, kept as its own projection: an appender that keeps it
   * says so on every append (`{append: ''}` when the text did not change), and a snapshot it writes
   * then leaves the answer to the text. Without it, the snapshot holds its answer itself.
   */
  text?: TextChange | undefined;
  /** Take the stream's lease for `holder` in the same atomic step (opening a stream). */
  lease?: { holder: LeaseHolder; ttlMs: number } | undefined;
}

/**
 * The answer's text after some events: more text at its end (`''` for none: the appender keeps the
 * text projection, and these events did not change it), or all of it anew.
 */
export type TextChange = { append: string } | { set: string };

/** The most of the answer's text a poll reads: one byte past WeCom's cap tells that it overflows. */
export const POLL_TEXT_BYTES = 20481;

/** What a poll reads, in one round trip (`StreamStore.poll`). */
export interface PolledStream {
  version: number;
  /** The stream's state, for the takeover check. */
  state: string;
  /** The projected reply, when it is fixed: sent as it is. */
  reply?: string;
  /** The projected reply is the answer's text: its first `POLL_TEXT_BYTES` bytes at most. */
  text?: string;
  /** Otherwise the stream, loaded, for the caller to render. */
  loaded?: LoadedStream;
  /** The owner's lease, when live. */
  lease?: Lease;
}

/**
 * Who holds a lease: a node, and the one owner job on it (a node may own many streams, and may even
 * run two jobs for one stream at once, a winner and a loser of a race: only the winner's token is
 * the lease's).
 */
export interface LeaseHolder {
  node: string;
  token: string;
}

export interface Lease {
  node: string;
  /** Epoch ms after which the lease counts as run out. */
  until: number;
  /** Which of the node's jobs holds it (absent in a lease an older version wrote). */
  token?: string;
}

export interface StreamSummary {
  streamId: string;
  /** The bot the stream answers for. */
  bot: string;
  userid: string;
  state: string;
  openedAt: number;
  lastEventAt: number;
  answerLength: number;
  finished: boolean;
  lease?: Lease;
}

/**
 * The streams' events: appended atomically with optimistic concurrency (an append at version 0 opens a
 * stream, and is how a message is deduplicated: its stream id is derived from it), read whole for
 * replay, loaded as snapshot + tail for the few who need the machine's state.
 */
export interface EventStore {
  /** Append atomically; throws `StoreError` code `version_conflict` when the version moved on. */
  append(streamId: string, events: StreamEvent[], options: AppendOptions): Promise<{ version: number }>;
  /** Every event, for replay. Empty when the stream does not exist (or expired). */
  read(streamId: string): Promise<StoredEvent[]>;
  /** Snapshot + tail, never the whole history. `undefined` when the stream does not exist. */
  load(streamId: string, options?: LoadOptions): Promise<LoadedStream | undefined>;
  /**
   * Recent streams, newest first: by when their state was last recorded (opened, or an append with a
   * snapshot: every change of state and every few events), not by every piece of an answer.
   */
  listStreams(options?: ListOptions): Promise<StreamSummary[]>;
}

export interface ListOptions {
  /** At most this many (default 50). */
  limit?: number;
  unfinishedOnly?: boolean;
  /**
   * Only the streams a sweep takes over, oldest first (from a random point of that order when more
   * streams are quiet than `limit`: see `sweepOrder`): unfinished, without a live lease, and nothing
   * recorded since this time (ms, the store's clock), neither their state nor any event. Found by when
   * their state was last recorded, so that the healthy answers of a busy cluster (recorded every few
   * seconds) are not even read: a sweep reads the streams quiet that long (orphans, and answers whose
   * Dify has said nothing yet), however many answers run beside them.
   */
  orphanedBefore?: number;
}

/** The poll reply projection: what a WeCom poll of a stream is answered with, in one round trip. */
export interface PollReplies {
  /** The projected reply when there is one (else the loaded stream), and the lease. */
  poll(streamId: string): Promise<PolledStream | undefined>;
}

/** Who owns a running stream: one lease per stream, held by one job of one node. */
export interface Leases {
  /**
   * Take the lease when it is free, expired, or already this holder's (by token), and set its
   * deadline `ttlMs` from now: the one call to take and to renew. Returns whether the holder has it.
   */
  acquireLease(streamId: string, holder: LeaseHolder, ttlMs: number): Promise<boolean>;
  /** Drop the lease if this holder (by token) has it; another's is never touched. */
  releaseLease(streamId: string, holder: LeaseHolder): Promise<void>;
  getLease(streamId: string): Promise<Lease | undefined>;
}

/**
 * A conversation (a user in a single chat, a user in a group) of a bot: its Dify conversation id, and
 * its line, the streams of one conversation in arrival order (the head is answered, the others wait).
 * A stream joins the line when it is accepted and leaves it when it is finished.
 */
export interface Conversations {
  getConversation(bot: string, scope: string): Promise<string | undefined>;
  setConversation(bot: string, scope: string, conversationId: string): Promise<void>;
  clearConversation(bot: string, scope: string): Promise<void>;
  joinLine(bot: string, scope: string, streamId: string): Promise<void>;
  leaveLine(bot: string, scope: string, streamId: string): Promise<void>;
  line(bot: string, scope: string): Promise<string[]>;
}

/**
 * A user's `/stop` of the answer being written: a flag, not an event, since only the owner appends
 * to a stream; it records the stop itself when it learns of it. Every node hears of a request at once
 * (`onStopRequested`); the flag stays for whoever missed that (a reconnect), and is looked at now and then.
 */
export interface StopRequests {
  /** Set the flag, and tell every node listening. */
  requestStop(streamId: string): Promise<void>;
  isStopRequested(streamId: string): Promise<boolean>;
  /** Be told of every stop request, on any node, as it is made; returns how to stop being told. */
  onStopRequested(listener: (streamId: string) => void): () => void;
}

/** The backend itself: a round trip for /readyz, and closing. */
export interface Backend {
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Everything the service keeps: what one adapter implements. */
export interface StreamStore extends EventStore, PollReplies, Leases, Conversations, StopRequests, Backend {}

export type StoreErrorCode = 'version_conflict' | 'unavailable' | 'corrupt';

/** Every failure of a store is one of these; the HTTP edge maps `code` to an answer. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface StoreOptions {
  /** Key prefix, `wd:` by default; tests give each suite its own. */
  prefix?: string | undefined;
  /** TTL of every key of a stream, and of the dedup and index keys (STREAM_TTL_SECONDS). */
  ttlSeconds: number;
  /** Clock, for tests. */
  now?: (() => number) | undefined;
}
