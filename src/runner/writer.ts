// The owner's side of one stream's event log: it folds every event into the snapshot it holds, writes
// events in one atomic append with what they change of the stream's projections, and coalesces answer
// deltas (at most every ~150 ms or ~1 KB) so a long answer is tens of events, not thousands. Appends
// are serialized; while the store is unreachable the events wait in memory (bounded) and are written,
// in order, when it is back.
//
// What one append costs does not grow with the answer: a delta is written as itself, with the text it
// adds to the answer's text projection; the snapshot (which leaves the answer out) is written when
// something else changes, and every SNAPSHOT_EVERY events, so that a reader folds a short tail.
import { isDeepStrictEqual } from 'node:util';
import {
  fold,
  isFinished,
  persist,
  type ReplyProjection,
  type StreamEvent,
  type StreamSnapshot,
} from '../machines/index.js';
import type { StreamStore, TextChange } from '../store/port.js';
import { isConflict, isUnavailable, whileStoreDown } from './patience.js';

/** A snapshot at least this often (in events), so that a reader folds a short tail. */
const SNAPSHOT_EVERY = 32;

export interface WriterOptions {
  flushMs?: number;
  flushBytes?: number;
  /** How much unwritten text may wait in memory during a store outage before the answer is cut. */
  maxPendingBytes?: number;
  /** Retry delays while the store is unreachable (ms); the last one repeats. */
  retryDelays?: number[];
  /** How long to keep retrying before giving up (ms). */
  retryForMs?: number;
  now?: () => number;
  onStoreError?: (error: unknown) => void;
  /** How polls show a snapshot (AppendOptions.reply). Without it, no projection is kept. */
  projectionOf?: (snapshot: StreamSnapshot) => ReplyProjection;
}

export class StreamWriter {
  private pendingText = '';
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private queue: StreamEvent[] = [];
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
    private readonly store: StreamStore,
    readonly streamId: string,
    /** The snapshot including every event handed to this writer, written or not. */
    public snapshot: StreamSnapshot,
    /** The version of the stream in the store, as far as this writer knows. */
    public version: number,
    private readonly options: WriterOptions = {},
  ) {
    this.flushMs = options.flushMs ?? 150;
    this.flushBytes = options.flushBytes ?? 1024;
    this.now = options.now ?? Date.now;
    this.written = snapshot;
  }

  get finished(): boolean {
    return isFinished(this.snapshot);
  }

  /** Buffer answer text; it becomes one `answer.delta` event when the buffer is old or big enough. */
  delta(text: string): void {
    if (!text || this.failed) return;
    this.pendingText += text;
    this.pendingBytes += Buffer.byteLength(text);
    if (this.pendingBytes >= this.flushBytes) this.flushText();
    else this.timer ??= setTimeout(() => this.flushText(), this.flushMs);
  }

  /** Record events now, after any buffered text. Resolves when they are written. */
  emit(...events: StreamEvent[]): Promise<void> {
    this.flushText();
    this.enqueue(events);
    return this.chain;
  }

  /** Write whatever is buffered. */
  flush(): Promise<void> {
    this.flushText();
    return this.chain;
  }

  private flushText(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.pendingText) return;
    const text = this.pendingText;
    this.pendingText = '';
    this.pendingBytes = 0;
    this.enqueue([{ type: 'answer.delta', at: this.now(), text }]);
  }

  private enqueue(events: StreamEvent[]): void {
    this.snapshot = fold(events, this.snapshot);
    this.queue.push(...events);
    // One link per enqueue: a link writes whatever is queued when it runs, so when the promise of an
    // emit settles, its events were written by that link or an earlier one (or the writer failed).
    const link = this.chain.catch(() => undefined).then(() => this.writeQueued());
    // A link nobody awaits (a delta's) must not fail unseen: its failure reaches the owner through
    // `onFailed`, and every later emit or flush rejects with it.
    link.catch(() => undefined);
    this.chain = link;
  }

  private async writeQueued(): Promise<void> {
    if (this.failed) throw this.failed;
    if (this.queue.length === 0) return;
    const events = this.queue;
    this.queue = [];
    // The stored snapshot must be the fold of exactly what is written, so that snapshot + tail stays
    // true. Every queued event is taken here and `snapshot` has folded each as it was queued, so it is
    // that fold already (the events are not folded twice).
    const target = this.snapshot;
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
          giveUp: () => textBytes(events) + textBytes(this.queue) > (this.options.maxPendingBytes ?? 4 << 20),
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

  /** Stop the timer; buffered text is dropped unless flushed first. */
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
