// A loaded stream as both adapters return it. Rebuilding the machine's snapshot from a stored one
// (`resolveState`) is the dearest part of a poll that found no events after the snapshot, and a poll
// only renders: so the snapshot is rebuilt when someone asks for it, not before.
import {
  fold,
  isStateName,
  type PersistedStream,
  persist,
  type ReadEvent,
  type StreamSnapshot,
} from '../machines/index.js';
import type { Lease, LoadedStream } from './port.js';

class Loaded implements LoadedStream {
  #snapshot: StreamSnapshot | undefined;
  lease?: Lease;

  constructor(
    readonly view: PersistedStream,
    readonly version: number,
    readonly tail: number,
    snapshot: StreamSnapshot | undefined,
    readonly restoreBase: (stored: PersistedStream) => StreamSnapshot,
  ) {
    this.#snapshot = snapshot;
  }

  get snapshot(): StreamSnapshot {
    this.#snapshot ??= this.restoreBase(this.view);
    return this.#snapshot;
  }
}

/**
 * The stored snapshot (`base`, as read: undefined when none was written) with `tail` folded on top.
 * `restoreBase` turns the stored form into a snapshot, and reports a corrupt one.
 */
export function loadedStream(
  base: PersistedStream | undefined,
  tail: ReadEvent[],
  version: number,
  restoreBase: (stored: PersistedStream) => StreamSnapshot,
): LoadedStream {
  // The shape is checked now, so that a corrupt snapshot is reported by the load, not by a later use.
  if (
    base &&
    tail.length === 0 &&
    isStateName(base.value) &&
    typeof base.context === 'object' &&
    base.context
  )
    return new Loaded(base, version, 0, undefined, restoreBase);
  const snapshot = fold(tail, base ? restoreBase(base) : undefined);
  return new Loaded(persist(snapshot), version, tail.length, snapshot, restoreBase);
}
