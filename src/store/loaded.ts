// A loaded stream as both adapters return it. Rebuilding the machine's snapshot from a stored one
// (`resolveState`) is the dearest part of a poll that found no events after the snapshot, and a poll
// only renders: so the snapshot is rebuilt when someone asks for it, not before.
import {
  fold,
  isStateName,
  type PersistedStream,
  persist,
  type ReadEvent,
  restore,
  type StreamSnapshot,
} from '../machines/index.js';
import { type Lease, type LoadedStream, StoreError } from './port.js';

class Loaded implements LoadedStream {
  #snapshot: StreamSnapshot | undefined;
  lease?: Lease;

  constructor(
    readonly streamId: string,
    readonly view: PersistedStream,
    readonly version: number,
    readonly tail: number,
    snapshot: StreamSnapshot | undefined,
  ) {
    this.#snapshot = snapshot;
  }

  get snapshot(): StreamSnapshot {
    this.#snapshot ??= restoreStored(this.streamId, this.view);
    return this.#snapshot;
  }
}

/**
 * The stored snapshot (`baseJson`, as read: undefined when none was written) with `tail` folded on
 * top. `answer` is the snapshot's answer when the store keeps it apart (in its text projection)
 * rather than in the snapshot. A snapshot that does not parse or restore is a StoreError "corrupt"
 * of this stream.
 */
export function loadedStream(
  streamId: string,
  baseJson: string | undefined,
  tail: ReadEvent[],
  version: number,
  answer?: string,
): LoadedStream {
  const base = baseJson === undefined ? undefined : parseStored(streamId, baseJson);
  if (base && answer !== undefined && typeof base.context === 'object' && base.context)
    base.context.answer = answer;
  // The shape is checked now, so that a corrupt snapshot is reported by the load, not by a later use.
  if (
    base &&
    tail.length === 0 &&
    isStateName(base.value) &&
    typeof base.context === 'object' &&
    base.context
  )
    return new Loaded(streamId, base, version, 0, undefined);
  const snapshot = fold(tail, base ? restoreStored(streamId, base) : undefined);
  return new Loaded(streamId, persist(snapshot), version, tail.length, snapshot);
}

function parseStored(streamId: string, json: string): PersistedStream {
  try {
    return JSON.parse(json) as PersistedStream;
  } catch (cause) {
    throw corrupt(streamId, cause);
  }
}

function restoreStored(streamId: string, stored: PersistedStream): StreamSnapshot {
  try {
    return restore(stored);
  } catch (cause) {
    throw corrupt(streamId, cause);
  }
}

const corrupt = (streamId: string, cause: unknown): StoreError =>
  new StoreError('corrupt', `the snapshot of stream ${streamId} cannot be restored`, { streamId }, { cause });
