// How far a signed callback's `timestamp` may be from this node's clock. The signature proves that
// WeCom sent a request, not when: without this a captured callback could be sent again once its
// msgid's dedup key had expired, and be answered (and Dify asked) again. The tolerance is at most the
// dedup window (config.ts), so a replay is refused here or answered from the stream it started. Every
// accepted skew goes to a gauge, and a warning is logged well before a drifting clock refuses real
// traffic.
import type { Logger } from '../log.js';
import { HttpError } from './errors.js';

/** How often, at most, the drift warning is logged. */
const WARN_EVERY_MS = 60_000;

export interface CallbackClockOptions {
  maxSkewSeconds: number;
  /** Where each accepted skew goes (the gauge). */
  record: (seconds: number) => void;
  now?: () => number;
}

export class CallbackClock {
  readonly #maxSkew: number;
  readonly #record: (seconds: number) => void;
  readonly #now: () => number;
  #warnedAt = Number.NEGATIVE_INFINITY;

  constructor(options: CallbackClockOptions) {
    this.#maxSkew = options.maxSkewSeconds;
    this.#record = options.record;
    this.#now = options.now ?? Date.now;
  }

  /**
   * For a callback whose signature has been verified (an unsigned request learns nothing of our
   * clock): throws `stale_timestamp` when `timestamp` is further than the tolerance from now, else
   * records how far it is.
   */
  check(timestamp: string, log: () => Logger): void {
    const now = this.#now();
    const given = Number(timestamp);
    const skew = Number.isSafeInteger(given) && given >= 0 ? now / 1000 - given : Number.NaN;
    if (!(Math.abs(skew) <= this.#maxSkew)) {
      throw new HttpError(
        'stale_timestamp',
        Number.isNaN(skew)
          ? `timestamp ${timestamp} is not a time in seconds`
          : `timestamp ${timestamp} is ${describe(skew)} (tolerance ${this.#maxSkew} s): a replayed callback, or a clock is off`,
        Number.isNaN(skew) ? undefined : { skewSeconds: Math.round(skew) },
      );
    }
    this.#record(skew);
    if (Math.abs(skew) > this.#maxSkew / 2 && now - this.#warnedAt >= WARN_EVERY_MS) {
      this.#warnedAt = now;
      log().warn(
        { skewSeconds: Math.round(skew * 10) / 10, maxSkewSeconds: this.#maxSkew },
        `callback clock skew: a signed callback came ${describe(skew)}; past ${this.#maxSkew} s callbacks are refused. Check the clock (NTP) of this node`,
      );
    }
  }
}

/** `N s in the past` / `N s in the future`, as seen from this node's clock. */
function describe(skew: number): string {
  return `${Math.round(Math.abs(skew))} s in the ${skew >= 0 ? 'past' : 'future'}`;
}
