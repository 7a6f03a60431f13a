// Folding events into the machine's snapshot, one step at a time, and the snapshot's persisted form.
// A step also gives the effects the machine names for it (streamMachine.ts): the owner of a stream
// runs them; a fold drops them.
import { type AnyActorScope, createActor, type ExecutableActionObject, initialTransition } from 'xstate';
import { isKnown, type ReadEvent, type StreamEvent } from './events.js';
import {
  type StreamContext,
  type StreamSnapshot,
  type StreamStateTree,
  type StreamStateValue,
  streamMachine,
} from './streamMachine.js';

export type { StreamSnapshot };

/**
 * What rendering and the simple questions need of a stream: its state and its context. A snapshot is
 * one (its `value` nested, `{ running: 'streaming' }`), and so is a stored snapshot as read (its
 * `value` the state's name, `'streaming'`), which a poll renders without rebuilding the machine.
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

/** An effect the machine names for a step (streamMachine.ts), with its parameters. */
export type Effect =
  | { type: 'authenticate' }
  | { type: 'ask' }
  | { type: 'keepConversation'; conversationId: string }
  | { type: 'handOver' }
  | { type: 'finish' };

const effectTypes: ReadonlySet<string> = new Set([
  'authenticate',
  'ask',
  'keepConversation',
  'handOver',
  'finish',
]);

let initialSnapshot: StreamSnapshot | undefined;

/** The snapshot of a stream with no events. */
export function initialStream(): StreamSnapshot {
  initialSnapshot ??= initialTransition(streamMachine)[0];
  return initialSnapshot;
}

/** The actions a transition names, as the scope below collects them. */
let named: ExecutableActionObject[] = [];
let scope: AnyActorScope | undefined;

/**
 * What the machine's `transition` runs in: an inert scope (nothing runs, actions are collected), made
 * once. XState's own `transition()` helper builds a fresh one per call, starting an actor that computes
 * the machine's initial state each time; the machine spawns nothing and keeps no system, so one scope
 * serves every step.
 */
function inertScope(): AnyActorScope {
  if (!scope) {
    const self = createActor(streamMachine);
    scope = {
      self,
      id: '',
      sessionId: '',
      logger: () => {},
      defer: () => {},
      emit: () => {},
      system: self.system,
      stopChild: () => {},
      actionExecutor: (action) => void named.push(action),
    };
  }
  return scope;
}

/** One transition of the machine: the snapshot after `event`, and the actions it names. */
function transition(
  snapshot: StreamSnapshot,
  event: StreamEvent,
): [StreamSnapshot, ExecutableActionObject[]] {
  named = [];
  const next = streamMachine.transition(snapshot, event, inertScope());
  const actions = named;
  named = [];
  return [next, actions];
}

/**
 * One step: the snapshot after `event`, and the effects the machine names for it. An unknown event,
 * or one the current state does not take, changes nothing and names nothing.
 */
export function step(snapshot: StreamSnapshot, event: ReadEvent): [StreamSnapshot, Effect[]] {
  if (!isKnown(event)) return [snapshot, []];
  const [next, actions] = transition(snapshot, event);
  const effects: Effect[] = [];
  for (const action of actions) {
    if (!effectTypes.has(action.type)) continue;
    const params = (action.params ?? {}) as Record<string, unknown>;
    effects.push({ ...params, type: action.type } as Effect);
  }
  return [next, effects];
}

/**
 * One step, as `step` takes it, from a stream's state as its owner holds it (a view: a snapshot, or
 * what this function made of one). A piece of an answer that is streaming (the one event a long
 * answer repeats, twenty times a second) is folded without a transition: what the machine's
 * `appendText` and `touch` do to the context, and nothing else (no state change, no effect; a spec
 * holds this equal to the machine's own transition). Anything else goes through the machine.
 */
export function advance(state: StreamView, event: ReadEvent): [StreamView, Effect[]] {
  if (
    isKnown(event) &&
    event.type === 'answer.delta' &&
    !state.context.restarting &&
    stateOf(state) === 'streaming'
  ) {
    const ctx = state.context;
    const context: StreamContext = {
      ...ctx,
      answer: ctx.answer + event.text,
      answerBytes: ctx.answerBytes + Buffer.byteLength(event.text, 'utf8'),
      lastEventAt: event.at,
    };
    return [{ value: state.value, context }, []];
  }
  return step(snapshotOf(state), event);
}

/** The machine's snapshot of a view: itself when it is one, else rebuilt (the state named, the context). */
export function snapshotOf(view: StreamView): StreamSnapshot {
  if ((view as Partial<StreamSnapshot>).machine === streamMachine) return view as StreamSnapshot;
  const value = typeof view.value === 'string' ? leaves.get(view.value)?.tree : view.value;
  return streamMachine.resolveState({ value: value as StreamStateTree, context: view.context });
}

/** One step of the fold: its effects dropped. */
export function evolve(snapshot: StreamSnapshot, event: ReadEvent): StreamSnapshot {
  if (!isKnown(event)) return snapshot;
  return transition(snapshot, event)[0];
}

export function fold(events: Iterable<ReadEvent>, from: StreamSnapshot = initialStream()): StreamSnapshot {
  let snapshot = from;
  for (const event of events) snapshot = evolve(snapshot, event);
  return snapshot;
}

// ---- state names -----------------------------------------------------------------------------

interface StateNodeLike {
  key: string;
  tags: readonly string[];
  states: Record<string, StateNodeLike>;
}

/** Each innermost state's name, its nested value and its tags (its own and its parents'). */
const leaves = new Map<string, { tree: StreamStateTree; tags: readonly string[] }>();
(function walk(node: StateNodeLike, path: string[], tags: readonly string[]) {
  for (const [name, child] of Object.entries(node.states)) {
    const childTags = [...tags, ...child.tags];
    if (Object.keys(child.states).length > 0) walk(child, [...path, name], childTags);
    else {
      const tree = path.reduceRight<unknown>((inner, parent) => ({ [parent]: inner }), name);
      leaves.set(name, { tree: tree as StreamStateTree, tags: childTags });
    }
  }
})(streamMachine.root as unknown as StateNodeLike, [], []);

/** The name of a view's state, whether its value is nested (a snapshot) or a name (a stored one). */
export function stateOf(view: StreamView): StreamStateValue {
  let value = view.value;
  while (typeof value === 'object' && value !== null) value = Object.values(value)[0];
  return value as StreamStateValue;
}

/** Whether `value` names a state of the machine (a stored snapshot's, say). */
export const isStateName = (value: unknown): value is StreamStateValue =>
  typeof value === 'string' && leaves.has(value);

const tagged = (view: StreamView, tag: string): boolean =>
  leaves.get(stateOf(view))?.tags.includes(tag) ?? false;

export const isFinished = (view: StreamView): boolean => tagged(view, 'finished');
export const isRunning = (view: StreamView): boolean => tagged(view, 'running');
/** Whether the state named so (a stored snapshot's, say) is one of a running stream. */
export const isRunningState = (state: string): boolean =>
  leaves.get(state)?.tags.includes('running') ?? false;

export function persist(view: StreamView): PersistedStream {
  return { value: stateOf(view), context: view.context };
}

export function restore(persisted: PersistedStream): StreamSnapshot {
  const tree = leaves.get(persisted.value)?.tree;
  if (!tree) throw new RangeError(`no state named ${JSON.stringify(persisted.value)}`);
  // A snapshot an older version wrote has no byte count of its answer: it is counted once here.
  const context =
    typeof persisted.context.answerBytes === 'number'
      ? persisted.context
      : { ...persisted.context, answerBytes: Buffer.byteLength(persisted.context.answer ?? '') };
  return streamMachine.resolveState({ value: tree, context });
}
