// Riding out a store outage: an operation the answer cannot do without is tried
// again while the store is unreachable, backing off, for up to a minute; any other error, or a longer
// outage, is the caller's to handle.
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreError } from '../store/port.js';

export interface Patience {
  /** Delays between attempts (ms); the last one repeats. */
  delays?: number[] | undefined;
  /** How long to keep trying (ms). */
  forMs?: number | undefined;
  now?: (() => number) | undefined;
  /** Waits between attempts; may throw to give up (an abort). */
  wait?: ((ms: number) => Promise<unknown>) | undefined;
  /** Told of every failed attempt. */
  onError?: ((error: unknown) => void) | undefined;
  /** Checked after a failed attempt: true ends the trying at once (too much waits in memory, say). */
  giveUp?: (() => boolean) | undefined;
  /** Which errors mean the store is unreachable; `isUnavailable` by default. */
  transient?: ((error: unknown) => boolean) | undefined;
}

const STORE_RETRY_DELAYS = [100, 250, 500, 1000, 2000];
const STORE_RETRY_FOR_MS = 60_000;

export function isUnavailable(error: unknown): error is StoreError {
  return error instanceof StoreError && error.code === 'unavailable';
}

export function isConflict(error: unknown): error is StoreError {
  return error instanceof StoreError && error.code === 'version_conflict';
}

/** Runs `op` until it succeeds, fails for another reason than an unreachable store, or time is up. */
export async function whileStoreDown<T>(op: () => Promise<T>, patience: Patience = {}): Promise<T> {
  const delays = patience.delays ?? STORE_RETRY_DELAYS;
  const now = patience.now ?? Date.now;
  const wait = patience.wait ?? sleep;
  const deadline = now() + (patience.forMs ?? STORE_RETRY_FOR_MS);
  for (let attempt = 0; ; attempt++) {
    try {
      return await op();
    } catch (error) {
      patience.onError?.(error);
      const transient = patience.transient ?? isUnavailable;
      if (!transient(error) || patience.giveUp?.() || now() > deadline) throw error;
      await wait(delays[Math.min(attempt, delays.length - 1)] ?? 1000);
    }
  }
}
