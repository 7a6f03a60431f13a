// Writes one stream's events: each append atomic, with what the events change of the stream's
// projections (the answer's text, the poll reply, now and then the snapshot). Pieces of the answer are
// coalesced (at most every ~150 ms or ~1 KB) so that a long answer is tens of events, not thousands;
// anything else is written at once, after the pieces before it. Appends are serialized; while the
// store is unreachable the events wait in memory (bounded) and are written, in order, when it is back.
//
// What one append costs does not grow with the answer: a piece is written as itself, with the text it
// adds to the answer's text; the snapshot (which leaves the answer out) is written when something else
// changes, and every SNAPSHOT_EVERY events, so that a reader folds a short tail.
import { isDeepStrictEqual } from 'node:util';
import {
  type EventOf,
  fold,
  isFinished,
  persist,
  type ReplyProjection,
  type StreamEvent,
  type StreamSnapshot,
} from '../machines/index.js';
import type { EventStore, TextChange } from '../store/port.js';
import { isConflict, isUnavailable, whileStoreDown } from './patience.js';

/** A snapshot at least this often (in events), so that a reader folds a short tail. */
const SNAPSHOT_EVERY = 32;

export interface WriterOptions {
  flushMs?: number | undefined;
  flushBytes?: number | undefined;
  /** How much unwritten text may wait in memory during a store outage before the answer is cut. */
  maxPendingBytes?: number | undefined;
  /** Retry delays while the store is unreachable (ms); the last one repeats. */
  retryDelays?: number[] | undefined;
  /** How long to keep retrying before giving up (ms). */
  retryForMs?: number | undefined;
  now?: (() => number) | undefined;
  onStoreError?: ((error: unknown) => void) | undefined;
  /** How polls show a snapshot (AppendOptions.reply). Without it, no projection is kept. */
  projectionOf?: (snapshot: StreamSnapshot) => ReplyProjection;
}

export class StreamWriter {
  /** Pieces of the answer not yet queued: merged into one `answer.delta` when they are. */
  private pending: Array<EventOf<'answer.delta'>> = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private queue: StreamEvent[] = [];
  /** The stream after the queued events: what to write with them. */
  private queuedAs: StreamSnapshot;
  private failed: unknown;
  private readonly flushMs: number;
  private readonly flushBytes: number;
  private readonly now: () => number;
  /** The projection the store holds now, as far as this writer knows. */
  private projected: ReplyProjection | undefined;
  /** The version of the snapshot the store holds, as far as this writer knows. */
  private snapshotVersion = -1;
  /** The snapshot at `version`: what the store holds. */
  private written: StreamSnapshot;
  /** Told after each successful append, with what it wrote: when text became visible to polls. */
  onAppended?: (events: StreamEvent[]) => void;
  /** Told once when the writer gives up (the store refused or stayed away): nothing more is written. */
  onFailed?: (error: unknown) => void;

  constructor(
    private readonly store: EventStore,
    readonly streamId: string,
    /** The stream after every event handed to this writer, written or not. */
    public snapshot: StreamSnapshot,
    /** The version of the stream in the store, as far as this writer knows. */
    public version: number,
    private readonly options: WriterOptions = {},
  ) {
    this.flushMs = options.flushMs ?? 150;
    this.flushBytes = options.flushBytes ?? 1024;
    this.now = options.now ?? Date.now;
    this.written = snapshot;
    this.queuedAs = snapshot;
  }

  get finished(): boolean {
    return isFinished(this.snapshot);
  }

  /**
   * Record events the caller folded into `after` (the stream after them). Pieces of the answer wait
   * to be merged; anything else is written now, after them. Resolves when they are written.
   */
  record(events: readonly StreamEvent[], after: StreamSnapshot): Promise<void> {
    this.snapshot = after;
    if (this.failed || events.length === 0) return this.chain;
    if (events.every((e) => e.type === 'answer.delta')) {
      for (const e of events as Array<EventOf<'answer.delta'>>) {
        this.pending.push(e);
        this.pendingBytes += Buffer.byteLength(e.text);
      }
      if (this.pendingBytes >= this.flushBytes) this.flushPending();
      else this.timer ??= setTimeout(() => this.flushPending(), this.flushMs);
      return this.chain;
    }
    this.flushPending();
    this.enqueue(events);
    return this.chain;
  }

  /** Record events now, folding them here (for whoever does not hold the stream's state itself). */
  emit(...events: StreamEvent[]): Promise<void> {
    const after = fold(events, this.snapshot);
    this.flushPending();
    this.snapshot = after;
    this.enqueue(events);
    return this.chain;
  }

  /** Write whatever is waiting. */
  flush(): Promise<void> {
    this.flushPending();
    return this.chain;
  }

  private flushPending(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const pieces = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    // One event for the pieces: the time of the last, all the text.
    const text =
      pieces.length === 1 ? (pieces[0] as EventOf<'answer.delta'>).text : pieces.map((p) => p.text).join('');
    this.enqueue([{ type: 'answer.delta', at: (pieces.at(-1) as EventOf<'answer.delta'>).at, text }]);
  }

  /** Queue events to write; `snapshot` is the stream after them (nothing recorded is left unqueued). */
  private enqueue(events: readonly StreamEvent[]): void {
    this.queue.push(...events);
    this.queuedAs = this.snapshot;
    // One link per enqueue: a link writes whatever is queued when it runs, so when the promise of a
    // record settles, its events were written by that link or an earlier one (or the writer failed).
    const link = this.chain.catch(() => undefined).then(() => this.writeQueued());
    // A link nobody awaits (a piece's) must not fail unseen: its failure reaches the owner through
    // `onFailed`, and every later record or flush rejects with it.
    link.catch(() => undefined);
    this.chain = link;
  }

  private async writeQueued(): Promise<void> {
    if (this.failed) throw this.failed;
    if (this.queue.length === 0) return;
    const events = this.queue;
    this.queue = [];
    // The stored snapshot must be the fold of exactly what is written, so that snapshot + tail stays
    // true: the stream after the queued events (pieces recorded since wait for the next write).
    const target = this.queuedAs;
    // Said on every append, even unchanged: the writer keeps the text projection.
    const text = textChange(this.written, target, events) ?? { append: '' };
    const version = this.version + events.length;
    const withSnapshot =
      'set' in text ||
      events.some((e) => e.type !== 'answer.delta') ||
      version - this.snapshotVersion >= SNAPSHOT_EVERY;
    const projection = this.options.projectionOf?.(target);
    const reply =
      projection && 'fromText' in projection && this.projected && 'fromText' in this.projected
        ? ('unchanged' as const)
        : projection;
    const written = { ...(withSnapshot ? { snapshot: persist(target) } : {}), reply, text };
    try {
      // An append cut off by the outage may have been written all the same: the retry then conflicts
      // with our own events, which count as written (nothing doubled, and no false "lost the stream").
      let uncertain = false;
      const appended = await whileStoreDown(
        async () => {
          try {
            return await this.store.append(this.streamId, events, {
              expectedVersion: this.version,
              ...written,
            });
          } catch (error) {
            const landed = uncertain && isConflict(error) ? await this.landed(events) : undefined;
            if (landed) return { version: landed };
            if (isUnavailable(error)) uncertain = true;
            throw error;
          }
        },
        {
          delays: this.options.retryDelays,
          forMs: this.options.retryForMs,
          now: this.now,
          onError: this.options.onStoreError,
          giveUp: () =>
            textBytes(events) + textBytes(this.queue) + this.pendingBytes >
            (this.options.maxPendingBytes ?? 4 << 20),
        },
      );
      this.version = appended.version;
      this.written = target;
      this.projected = projection;
      if (withSnapshot) this.snapshotVersion = appended.version;
      this.onAppended?.(events);
    } catch (error) {
      this.failed = error;
      this.dispose();
      this.onFailed?.(error);
      throw error;
    }
  }

  /** The stream's version when exactly `events` follow our version in the store; else undefined. */
  private async landed(events: StreamEvent[]): Promise<number | undefined> {
    const stored = await this.store.read(this.streamId);
    if (stored.length !== this.version + events.length) return undefined;
    const ours = events.map((e) => JSON.parse(JSON.stringify(e)) as unknown);
    const same = stored.slice(this.version).every((s, i) => isDeepStrictEqual(s.event, ours[i]));
    return same ? stored.length : undefined;
  }

  /** Stop the timer; pending pieces are dropped unless flushed first. */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Whether the writer gave up (the store stayed unreachable too long); its error. */
  get failure(): unknown {
    return this.failed;
  }
}

/**
 * How the answer's text changed from `before` to `after` (the snapshots around `events`): text added
 * at its end, or all of it anew (a replacement, a command's answer, a takeover's new answer). The
 * text projection is the fold's answer by construction; the usual case, deltas appended to an answer
 * that is not starting over, is told by lengths alone, without comparing the answer.
 */
export function textChange(
  before: StreamSnapshot,
  after: StreamSnapshot,
  events: readonly StreamEvent[],
): TextChange | undefined {
  const was = before.context.answer;
  const now = after.context.answer;
  if (was === now) return undefined;
  if (!before.context.restarting && events.every((e) => e.type === 'answer.delta')) {
    const added = events.map((e) => (e as { text: string }).text).join('');
    if (now.length === was.length + added.length) return { append: added };
  }
  if (now.length > was.length && now.startsWith(was)) return { append: now.slice(was.length) };
  return { set: now };
}

function textBytes(events: StreamEvent[]): number {
  let bytes = 0;
  for (const event of events) if (event.type === 'answer.delta') bytes += Buffer.byteLength(event.text);
  return bytes;
}
