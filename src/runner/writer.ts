// Writes one stream's events: each append atomic, with what the events change of the stream's
// projections (the answer's text, the poll reply, now and then the snapshot). Events are written as
// they are recorded (the owner already told the pieces of an answer together: runner/pieces.ts);
// appends are serialized, and what is recorded during one is written by the next, pieces of the
// answer that follow each other merged into one event. While the store is unreachable the events wait
// in memory (bounded) and are written, in order, when it is back.
//
// What one append costs does not grow with the answer: a piece is written as itself, with the text it
// adds to the answer's text; the snapshot (which leaves the answer out) is written when something else
// changes, and every SNAPSHOT_EVERY events, so that a reader folds a short tail.
import { isDeepStrictEqual } from 'node:util';
import {
  advance,
  isFinished,
  persist,
  type ReplyProjection,
  type StreamEvent,
  type StreamView,
} from '../machines/index.js';
import type { AppendOptions, EventStore, TextChange } from '../store/port.js';
import { isConflict, isUnavailable, whileStoreDown } from './patience.js';

/** A snapshot at least this often (in events), so that a reader folds a short tail. */
const SNAPSHOT_EVERY = 32;

/** What `flush` gives while nothing is being written. */
const written: Promise<void> = Promise.resolve();

export interface WriterOptions {
  /** How much unwritten text may wait in memory during a store outage before the answer is cut. */
  maxPendingBytes?: number | undefined;
  /** Retry delays while the store is unreachable (ms); the last one repeats. */
  retryDelays?: number[] | undefined;
  /** How long to keep retrying before giving up (ms). */
  retryForMs?: number | undefined;
  now?: (() => number) | undefined;
  onStoreError?: ((error: unknown) => void) | undefined;
  /** How polls show a snapshot (AppendOptions.reply). Without it, no projection is kept. */
  projectionOf?: (snapshot: StreamView) => ReplyProjection;
}

export class StreamWriter {
  private queue: StreamEvent[] = [];
  /** The appends under way, while there are: settles when the queue is written, or the writer failed. */
  private writing: Promise<void> | undefined;
  /** The stream after the queued events: what to write with them. */
  private queuedAs: StreamView;
  private failed: unknown;
  /** Rejected with `failed` (and seen), once the writer gave up: what every later wait gets. */
  private failure$: Promise<void> | undefined;
  private readonly now: () => number;
  /** The projection the store holds now, as far as this writer knows. */
  private projected: ReplyProjection | undefined;
  /** The version of the snapshot the store holds, as far as this writer knows. */
  private snapshotVersion = -1;
  /** The snapshot at `version`: what the store holds. */
  private written: StreamView;
  /** Told after each successful append, with what it wrote: when text became visible to polls. */
  onAppended?: (events: StreamEvent[]) => void;
  /** Told once when the writer gives up (the store refused or stayed away): nothing more is written. */
  onFailed?: (error: unknown) => void;

  constructor(
    private readonly store: EventStore,
    readonly streamId: string,
    /** The stream after every event handed to this writer, written or not. */
    public snapshot: StreamView,
    /** The version of the stream in the store, as far as this writer knows. */
    public version: number,
    private readonly options: WriterOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.written = snapshot;
    this.queuedAs = snapshot;
  }

  get finished(): boolean {
    return isFinished(this.snapshot);
  }

  /**
   * Record events the caller folded into `after` (the stream after them): written now, or by the next
   * append when one is under way. Resolves when they are written; a caller that does not wait for
   * that need not catch (the writer's failure reaches its owner through `onFailed`).
   */
  record(events: readonly StreamEvent[], after: StreamView): Promise<void> {
    this.snapshot = after;
    if (events.length > 0 && !this.failed) this.enqueue(events);
    return this.flush();
  }

  /** Record events now, folding them here (for whoever does not hold the stream's state itself). */
  emit(...events: StreamEvent[]): Promise<void> {
    let after = this.snapshot;
    for (const event of events) [after] = advance(after, event);
    return this.record(events, after);
  }

  /** Resolves when everything recorded is written; rejects when the writer gave up. */
  flush(): Promise<void> {
    return this.failure$ ?? this.writing ?? written;
  }

  /** Queue events to write; `snapshot` is the stream after them (nothing recorded is left unqueued). */
  private enqueue(events: readonly StreamEvent[]): void {
    for (const event of events) this.queue.push(event);
    this.queuedAs = this.snapshot;
    if (this.writing) return;
    const writing = this.pump();
    // Nobody may wait for it (a piece's record): its failure must not go unseen as a rejection.
    writing.catch(() => undefined);
    this.writing = writing;
  }

  /** Write what is queued, append after append, until nothing is. */
  private async pump(): Promise<void> {
    // What is recorded in this same turn goes with the first append.
    await undefined;
    try {
      while (this.queue.length > 0) await this.writeQueued();
    } finally {
      this.writing = undefined;
    }
  }

  private async writeQueued(): Promise<void> {
    const events = mergePieces(this.queue);
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
    const options: AppendOptions = withSnapshot
      ? { expectedVersion: this.version, snapshot: persist(target), reply, text }
      : { expectedVersion: this.version, reply, text };
    let appended: { version: number };
    try {
      appended = await this.store.append(this.streamId, events, options);
    } catch (error) {
      try {
        appended = await this.appendPatiently(events, options, error);
      } catch (failure) {
        this.failed = failure;
        this.failure$ = Promise.reject(failure);
        this.failure$.catch(() => undefined);
        this.queue = [];
        this.onFailed?.(failure);
        throw failure;
      }
    }
    this.version = appended.version;
    this.written = target;
    this.projected = projection;
    if (withSnapshot) this.snapshotVersion = appended.version;
    this.onAppended?.(events);
  }

  /** The append failed with `error`: tried again while the store is unreachable (patience.ts). */
  private appendPatiently(
    events: StreamEvent[],
    options: AppendOptions,
    error: unknown,
  ): Promise<{ version: number }> {
    // An append cut off by the outage may have been written all the same: the retry then conflicts
    // with our own events, which count as written (nothing doubled, and no false "lost the stream").
    let uncertain = false;
    let first = true;
    return whileStoreDown(
      async () => {
        try {
          if (first) {
            first = false;
            throw error;
          }
          return await this.store.append(this.streamId, events, options);
        } catch (failed) {
          const landed = uncertain && isConflict(failed) ? await this.landed(events) : undefined;
          if (landed) return { version: landed };
          if (isUnavailable(failed)) uncertain = true;
          throw failed;
        }
      },
      {
        delays: this.options.retryDelays,
        forMs: this.options.retryForMs,
        now: this.now,
        onError: this.options.onStoreError,
        giveUp: () => textBytes(events) + textBytes(this.queue) > (this.options.maxPendingBytes ?? 4 << 20),
      },
    );
  }

  /** The stream's version when exactly `events` follow our version in the store; else undefined. */
  private async landed(events: StreamEvent[]): Promise<number | undefined> {
    const stored = await this.store.read(this.streamId);
    if (stored.length !== this.version + events.length) return undefined;
    const ours = events.map((e) => JSON.parse(JSON.stringify(e)) as unknown);
    const same = stored.slice(this.version).every((s, i) => isDeepStrictEqual(s.event, ours[i]));
    return same ? stored.length : undefined;
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
  before: StreamView,
  after: StreamView,
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

/** Pieces of the answer that follow each other as one: the time of the last, all the text. */
function mergePieces(events: StreamEvent[]): StreamEvent[] {
  if (events.length < 2) return events;
  const merged: StreamEvent[] = [];
  for (const event of events) {
    const last = merged.at(-1);
    if (event.type === 'answer.delta' && last?.type === 'answer.delta')
      merged[merged.length - 1] = { type: 'answer.delta', at: event.at, text: last.text + event.text };
    else merged.push(event);
  }
  return merged;
}

function textBytes(events: StreamEvent[]): number {
  let bytes = 0;
  for (const event of events) if (event.type === 'answer.delta') bytes += Buffer.byteLength(event.text);
  return bytes;
}
