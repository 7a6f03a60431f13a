// Specifications of a stream, Emmett style, for the specs of the machine, the decider and whatever
// else reasons about streams: builders of every event, `given(history).when(event)` for the fold
// (evolve), and `decider.given(history).when(command).then(events)` for `decide`, as Emmett's
// DeciderSpecification reads; and a seeded PRNG for the property specs. Plain assertions (node:assert), so any test runner can use them.
import assert from 'node:assert/strict';
import { type Command, type DecideSettings, decide, defaultDecideSettings } from './decide.js';
import type { EventOf, Form, GrantedUser, ReadEvent, StreamEvent } from './events.js';
import { parseEvent } from './events.js';
import { fold, persist, type StreamSnapshot, stateOf } from './fold.js';
import type { StreamContext, StreamStateValue } from './streamMachine.js';

/** mulberry32: a seeded PRNG, so that a failing random case can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The time every builder stamps unless `at(…)` says otherwise. */
export const T0 = 1_700_000_000_000;

/** The same event at another time: `at(T0 + 5, delta('a'))`. */
export const at = <E extends StreamEvent>(when: number, event: E): E => ({ ...event, at: when });

export const opened = (fields: Partial<EventOf<'stream.opened'>> = {}): EventOf<'stream.opened'> => ({
  type: 'stream.opened',
  at: T0,
  streamId: 'stream-1',
  msgid: 'msg-1',
  bot: 'bot-1',
  userid: 'zhangsan',
  chattype: 'single',
  query: '你好',
  ...fields,
});
export const commandHandled = (
  command = '/help',
  text = '可用命令：/new /help /stop',
): EventOf<'command.handled'> => ({
  type: 'command.handled',
  at: T0,
  command,
  text,
});
export const granted = (user: GrantedUser = { id: 'zhangsan' }): EventOf<'auth.granted'> => ({
  type: 'auth.granted',
  at: T0,
  user,
});
export const denied = (reason = 'not_in_directory', text?: string): EventOf<'auth.denied'> => ({
  type: 'auth.denied',
  at: T0,
  reason,
  ...(text === undefined ? {} : { text }),
});
export const queued = (behind = 'stream-0'): EventOf<'stream.queued'> => ({
  type: 'stream.queued',
  at: T0,
  behind,
});
export const dequeued = (): EventOf<'stream.dequeued'> => ({ type: 'stream.dequeued', at: T0 });
export const filesUploaded = (
  files: EventOf<'files.uploaded'>['files'] = [{ type: 'image', id: 'file-1', name: 'a.png' }],
): EventOf<'files.uploaded'> => ({ type: 'files.uploaded', at: T0, files });
export const feedbackGiven = (
  rating: 'like' | 'dislike' | null = 'like',
  forwarded = true,
): EventOf<'feedback.given'> => ({ type: 'feedback.given', at: T0, rating, by: 'zhangsan', forwarded });
export const difyStarted = (
  ids: Omit<EventOf<'dify.started'>, 'type' | 'at'> = {
    conversationId: 'conv-1',
    messageId: 'm-1',
    taskId: 't-1',
  },
): EventOf<'dify.started'> => ({ type: 'dify.started', at: T0, ...ids });
export const delta = (text: string): EventOf<'answer.delta'> => ({ type: 'answer.delta', at: T0, text });
export const replaced = (text: string): EventOf<'answer.replaced'> => ({
  type: 'answer.replaced',
  at: T0,
  text,
});
export const completed = (usage?: Record<string, unknown>): EventOf<'answer.completed'> => ({
  type: 'answer.completed',
  at: T0,
  ...(usage === undefined ? {} : { usage }),
});
export const failed = (
  code: EventOf<'answer.failed'>['code'] = 'dify_error',
  message = 'upstream 500',
  text?: string,
): EventOf<'answer.failed'> => ({
  type: 'answer.failed',
  at: T0,
  code,
  message,
  ...(text === undefined ? {} : { text }),
});
export const takenOver = (node = 'node-b', attempt = 1): EventOf<'stream.taken_over'> => ({
  type: 'stream.taken_over',
  at: T0,
  node,
  attempt,
  previousNode: 'node-a',
});
export const released = (node = 'node-a'): EventOf<'stream.released'> => ({
  type: 'stream.released',
  at: T0,
  node,
});
export const bubbleClosed = (
  reason: 'window' | 'overflow' = 'window',
  text = '…（回答仍在生成，完整内容稍后单独发送。）',
): EventOf<'bubble.closed'> => ({ type: 'bubble.closed', at: T0, reason, text });
export const deliverySent = (bytes = 42): EventOf<'delivery.sent'> => ({
  type: 'delivery.sent',
  at: T0,
  bytes,
});
export const deliveryFailed = (message = 'response_url expired'): EventOf<'delivery.failed'> => ({
  type: 'delivery.failed',
  at: T0,
  message,
});
/** An event as read from the store: what a newer version wrote reads as an `UnknownEvent`. */
/** One image the bubble shows and one file it names. */
export const attached = (
  files: EventOf<'answer.attached'>['files'] = [
    {
      type: 'image',
      url: 'https://dify.example/files/1.png?sign=a',
      shown: true,
      bytes: 68,
      md5: '0'.repeat(32),
    },
    { type: 'file', url: 'https://dify.example/files/r.pdf?sign=b', name: '报告.pdf', shown: false },
  ],
): EventOf<'answer.attached'> => ({ type: 'answer.attached', at: T0, files });
export const suggested = (questions = ['还有呢？', '举个例子']): EventOf<'answer.suggested'> => ({
  type: 'answer.suggested',
  at: T0,
  questions,
});
/** A form with two buttons, answerable until an hour after T0. */
export const sampleForm = (fields: Partial<Form> = {}): Form => ({
  token: 'form-token-1',
  title: '审批',
  content: '请审批这份报销单：**¥1,280**',
  actions: [
    { id: 'approve', title: '同意', style: 'primary' },
    { id: 'reject', title: '拒绝', style: 'accent' },
  ],
  defaults: { comment: '' },
  expiresAt: T0 + 3_600_000,
  workflowRunId: 'run-1',
  ...fields,
});
export const inputRequired = (form: Form = sampleForm()): EventOf<'input.required'> => ({
  type: 'input.required',
  at: T0,
  form,
});
export const inputGiven = (
  action = 'approve',
  actionText = '同意',
  by = 'lisi',
  answeredIn = 'stream-9',
): EventOf<'input.given'> => ({ type: 'input.given', at: T0, by, action, actionText, answeredIn });
export const inputExpired = (by?: string): EventOf<'input.expired'> => ({
  type: 'input.expired',
  at: T0,
  ...(by ? { by } : {}),
});
export const stored = (raw: unknown): ReadEvent => parseEvent(raw);

/** Some of an object's fields, nested objects included, for `toMatchObject`. */
export type Some<T> = { [K in keyof T]?: NonNullable<T[K]> extends object ? Some<NonNullable<T[K]>> : T[K] };

export interface Then {
  /** The snapshot before the `when` events. */
  readonly before: StreamSnapshot;
  /** The snapshot after them. */
  readonly snapshot: StreamSnapshot;
  readonly state: StreamStateValue;
  readonly context: StreamContext;
  thenState(state: StreamStateValue): Then;
  thenAnswer(answer: string): Then;
  thenContext(expected: Some<StreamContext>): Then;
  /** The `when` events changed neither the state nor the context. */
  thenNothingChanged(): Then;
}

function then(before: StreamSnapshot, snapshot: StreamSnapshot): Then {
  const result: Then = {
    before,
    snapshot,
    state: stateOf(snapshot),
    context: snapshot.context,
    thenState(state) {
      assert.deepStrictEqual(stateOf(snapshot), state);
      return result;
    },
    thenAnswer(answer) {
      assert.deepStrictEqual(snapshot.context.answer, answer);
      return result;
    },
    thenContext(expected) {
      assert.deepStrictEqual(pick(snapshot.context, expected), expected);
      return result;
    },
    thenNothingChanged() {
      assert.deepStrictEqual(persist(snapshot), persist(before));
      return result;
    },
  };
  return result;
}

export function given(history: readonly ReadEvent[]) {
  const before = fold(history);
  return {
    snapshot: before,
    when: (...events: ReadEvent[]): Then => then(before, fold(events, before)),
  };
}

/** The fields of `actual` that `expected` names, nested objects included: a `toMatchObject`. */
function pick(actual: unknown, expected: unknown): unknown {
  if (typeof expected !== 'object' || expected === null || typeof actual !== 'object' || actual === null)
    return actual;
  if (Array.isArray(expected)) return actual;
  return Object.fromEntries(
    Object.entries(expected).map(([key, value]) => [
      key,
      pick((actual as Record<string, unknown>)[key], value),
    ]),
  );
}

/** Given a history and a command, what `decide` records: Emmett's DeciderSpecification. */
export interface DecisionThen {
  /** The events recorded, exactly. */
  then(events: readonly StreamEvent[]): void;
  /** Nothing recorded. */
  thenNothing(): void;
  /** The command is refused: `decide` throws (an error of this class, when given). */
  thenThrows(error?: new (...args: never[]) => Error): void;
}

export const decider = {
  given(history: readonly ReadEvent[], settings: DecideSettings = defaultDecideSettings) {
    const state = fold(history);
    return {
      when(command: Command): DecisionThen {
        const decided = () => decide(command, state, settings);
        return {
          // biome-ignore lint/suspicious/noThenProperty: Emmett's DeciderSpecification reads given/when/then; never awaited.
          then(events) {
            assert.deepStrictEqual(decided(), events);
          },
          thenNothing() {
            assert.deepStrictEqual(decided(), []);
          },
          thenThrows(error) {
            if (error) assert.throws(decided, error);
            else assert.throws(decided);
          },
        };
      },
    };
  },
};
