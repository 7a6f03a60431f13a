// Folding events into the machine's snapshot, and the snapshot's persisted form.
import { initialTransition, type SnapshotFrom, transition } from 'xstate';
import { isKnown, type ReadEvent } from './events.js';
import { type StreamContext, type StreamStateValue, streamMachine } from './streamMachine.js';

export type StreamSnapshot = SnapshotFrom<typeof streamMachine>;

/** What a store keeps of a snapshot: the state's name and its context, plain JSON. */
export interface PersistedStream {
  value: StreamStateValue;
  context: StreamContext;
}

let initialSnapshot: StreamSnapshot | undefined;

/** The snapshot of a stream with no events. */
export function initialStream(): StreamSnapshot {
  initialSnapshot ??= initialTransition(streamMachine)[0];
  return initialSnapshot;
}

/** One step of the fold. An unknown event, or one the current state does not take, changes nothing. */
export function evolve(snapshot: StreamSnapshot, event: ReadEvent): StreamSnapshot {
  if (!isKnown(event)) return snapshot;
  return transition(streamMachine, snapshot, event)[0];
}

export function fold(events: Iterable<ReadEvent>, from: StreamSnapshot = initialStream()): StreamSnapshot {
  let snapshot = from;
  for (const event of events) snapshot = evolve(snapshot, event);
  return snapshot;
}

export function stateOf(snapshot: StreamSnapshot): StreamStateValue {
  return snapshot.value as StreamStateValue;
}

export const isFinished = (snapshot: StreamSnapshot): boolean => snapshot.hasTag('finished');
export const isRunning = (snapshot: StreamSnapshot): boolean => snapshot.hasTag('running');

export function persist(snapshot: StreamSnapshot): PersistedStream {
  return { value: stateOf(snapshot), context: snapshot.context };
}

export function restore(persisted: PersistedStream): StreamSnapshot {
  return streamMachine.resolveState({ value: persisted.value, context: persisted.context });
}
