// Folding events into the machine's snapshot, and the snapshot's persisted form.
import { initialTransition, type SnapshotFrom, transition } from 'xstate';
import { isKnown, type ReadEvent } from './events.js';
import { type StreamContext, type StreamStateValue, streamMachine } from './streamMachine.js';

export type StreamSnapshot = SnapshotFrom<typeof streamMachine>;

/**
 * What rendering and the simple questions need of a stream: its state and its context. A snapshot is
 * one, and so is a stored snapshot as read, which a poll renders without rebuilding the machine.
 */
export interface StreamView {
  value: unknown;
  context: StreamContext;
}

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

export function stateOf(view: StreamView): StreamStateValue {
  return view.value as StreamStateValue;
}

/** Each state's tags, from the machine's own definition. */
const tags = new Map<string, readonly string[]>(
  Object.entries(streamMachine.states).map(([name, node]) => [name, node.tags]),
);
/** Whether `value` names a state of the machine (a stored snapshot's, say). */
export const isStateName = (value: unknown): value is StreamStateValue =>
  typeof value === 'string' && tags.has(value);

const tagged = (view: StreamView, tag: string): boolean =>
  tags.get(String(view.value))?.includes(tag) ?? false;

export const isFinished = (view: StreamView): boolean => tagged(view, 'finished');
export const isRunning = (view: StreamView): boolean => tagged(view, 'running');
/** Whether the state named so (a stored snapshot's, say) is one of a running stream. */
export const isRunningState = (state: string): boolean => tags.get(state)?.includes('running') ?? false;

export function persist(snapshot: StreamSnapshot): PersistedStream {
  return { value: stateOf(snapshot), context: snapshot.context };
}

export function restore(persisted: PersistedStream): StreamSnapshot {
  return streamMachine.resolveState({ value: persisted.value, context: persisted.context });
}
