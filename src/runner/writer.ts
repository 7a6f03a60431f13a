// The owner's side of one stream's event log: it folds every event into the snapshot it holds, writes
// events and snapshot in one atomic append, and coalesces answer deltas (at most every ~150 ms or
// ~1 KB) so a long answer is tens of events, not thousands. Appends are serialized; while the store is
// unreachable the events wait in memory (bounded) and are written, in order, when it is back.
import { isDeepStrictEqual } from 'node:util';
import { fold, isFinished, persist, type StreamEvent, type StreamSnapshot } from '../machines/index.js';
import type { StreamStore } from '../store/port.js';
import { isConflict, isUnavailable, whileStoreDown } from './patience.js';

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
  /** What a poll answers for a snapshot, stored with it (AppendOptions.reply). */
  replyOf?: (snapshot: StreamSnapshot) => string;
}

export class StreamWriter {
  private pendingText = '';
  private pendingSince = 0;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private queue: StreamEvent[] = [];
  private failed: unknown;
  private readonly flushMs: number;
  private readonly flushBytes: number;
  private readonly now: () => number;
  /** Told after each successful append, with what it wrote: when text became visible to polls. */
  onAppended?: (events: StreamEvent[]) => void;

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
  }

  get finished(): boolean {
    return isFinished(this.snapshot);
  }

  /** Buffer answer text; it becomes one `answer.delta` event when the buffer is old or big enough. */
  delta(text: string): void {
    if (!text) return;
    if (!this.pendingText) this.pendingSince = this.now();
    this.pendingText += text;
    if (Buffer.byteLength(this.pendingText) >= this.flushBytes) this.flushText();
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

  /** The time the oldest unwritten text arrived, for latency metrics. */
  get oldestPendingAt(): number {
    return this.pendingText ? this.pendingSince : 0;
  }

  private flushText(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.pendingText) return;
    const text = this.pendingText;
    this.pendingText = '';
    this.enqueue([{ type: 'answer.delta', at: this.now(), text }]);
  }

  private enqueue(events: StreamEvent[]): void {
    this.snapshot = fold(events, this.snapshot);
    this.queue.push(...events);
    // One link per enqueue: a link writes whatever is queued when it runs, so when the promise of an
    // emit settles, its events were written by that link or an earlier one (or the writer failed).
    this.chain = this.chain.catch(() => undefined).then(() => this.writeQueued());
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
    const written = { snapshot: persist(target), reply: this.options.replyOf?.(target) };
    try {
      // An append cut off by the outage may have been written all the same: the retry then conflicts
      // with our own events, which count as written (nothing doubled, and no false "lost the stream").
      let uncertain = false;
      const { version } = await whileStoreDown(
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
      this.version = version;
      this.onAppended?.(events);
    } catch (error) {
      this.failed = error;
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

function textBytes(events: StreamEvent[]): number {
  let bytes = 0;
  for (const event of events) if (event.type === 'answer.delta') bytes += Buffer.byteLength(event.text);
  return bytes;
}
