// The owner's hold on a stream (docs/design-notes.md, "A stream per message"): renewed every third of its length while the
// answer runs. Renewal takes the lease back when it ran out unclaimed (a Redis outage outlived it);
// only another node holding it means the stream is lost, and then the owner stops writing at once.
import type { LeaseHolder, Leases } from '../store/port.js';

export interface LeaseKeeperOptions {
  store: Leases;
  streamId: string;
  holder: LeaseHolder;
  leaseMs: number;
  /** Another node holds the lease now. */
  onLost: () => void;
  /** Renewal failed (the store is unreachable); the lease may still be ours. */
  onError: (error: unknown) => void;
}

export class LeaseKeeper {
  readonly #o: LeaseKeeperOptions;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: LeaseKeeperOptions) {
    this.#o = options;
  }

  start(): void {
    const every = Math.max(200, Math.floor(this.#o.leaseMs / 3));
    this.#timer = setInterval(() => void this.renew(), every);
    this.#timer.unref();
  }

  async renew(): Promise<void> {
    const { store, streamId, holder, leaseMs } = this.#o;
    try {
      if (!(await store.acquireLease(streamId, holder, leaseMs))) {
        this.stop();
        this.#o.onLost();
      }
    } catch (error) {
      this.#o.onError(error);
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
