import { describe, expect, it } from 'vitest';
import { type EventType, isKnown, parseEventJson, type ReadEvent, type StreamEvent } from './events.js';
import { fold, isFinished, isRunning, persist, restore, stateOf } from './fold.js';
import {
  at,
  attached,
  bubbleClosed,
  commandHandled,
  completed,
  deliveryFailed,
  deliverySent,
  delta,
  denied,
  dequeued,
  difyStarted,
  failed,
  feedbackGiven,
  filesUploaded,
  given,
  granted,
  inputExpired,
  inputGiven,
  inputRequired,
  opened,
  queued,
  released,
  replaced,
  stored,
  suggested,
  T0,
  takenOver,
} from './specification.js';
import type { StreamStateValue } from './streamMachine.js';

/** One sample of every event type, stamped later than any history below. */
const LATER = T0 + 1000;
const sample: { [K in EventType]: StreamEvent & { type: K } } = {
  'stream.opened': at(LATER, opened({ streamId: 'stream-2', msgid: 'msg-2' })),
  'stream.queued': at(LATER, queued()),
  'stream.dequeued': at(LATER, dequeued()),
  'command.handled': at(LATER, commandHandled()),
  'auth.granted': at(LATER, granted({ id: 'lisi' })),
  'auth.denied': at(LATER, denied()),
  'files.uploaded': at(LATER, filesUploaded()),
  'dify.started': at(LATER, difyStarted()),
  'answer.delta': at(LATER, delta(' more')),
  'answer.replaced': at(LATER, replaced('replaced')),
  'answer.completed': at(LATER, completed()),
  'answer.failed': at(LATER, failed()),
  'stream.taken_over': at(LATER, takenOver()),
  'stream.released': at(LATER, released()),
  'bubble.closed': at(LATER, bubbleClosed()),
  'feedback.given': at(LATER, feedbackGiven()),
  'delivery.sent': at(LATER, deliverySent()),
  'delivery.failed': at(LATER, deliveryFailed()),
  'answer.suggested': at(LATER, suggested()),
  'answer.attached': at(LATER, attached()),
  'input.required': at(LATER, inputRequired()),
  'input.given': at(LATER, inputGiven()),
  'input.expired': at(LATER, inputExpired()),
};

/** A history that ends in each state. */
const histories: Record<StreamStateValue, ReadEvent[]> = {
  idle: [],
  authenticating: [opened()],
  queued: [opened(), granted(), queued()],
  thinking: [opened(), granted()],
  streaming: [opened(), granted(), delta('he')],
  completed: [opened(), granted(), delta('he'), completed()],
  error: [opened(), granted(), delta('he'), failed()],
  waiting: [opened(), granted(), delta('he'), inputRequired()],
};

/** What each state does with each event: the state it moves to (or stays in), or `ignored`. */
type Outcome = StreamStateValue | 'ignored';
const transitions: Record<StreamStateValue, Partial<Record<EventType, Outcome>>> = {
  idle: { 'stream.opened': 'authenticating' },
  authenticating: {
    'auth.granted': 'thinking',
    'command.handled': 'completed',
    'auth.denied': 'error',
    'answer.failed': 'error',
    'stream.taken_over': 'authenticating',
    'stream.released': 'authenticating',
    'bubble.closed': 'authenticating',
    'answer.suggested': 'authenticating',
    'answer.attached': 'authenticating',
  },
  queued: {
    'stream.dequeued': 'thinking',
    'answer.failed': 'error',
    'stream.taken_over': 'authenticating',
    'stream.released': 'queued',
    'bubble.closed': 'queued',
    'answer.suggested': 'queued',
    'answer.attached': 'queued',
  },
  thinking: {
    'stream.queued': 'queued',
    'files.uploaded': 'thinking',
    'dify.started': 'thinking',
    'answer.delta': 'streaming',
    'answer.replaced': 'streaming',
    'answer.completed': 'completed',
    'answer.failed': 'error',
    'stream.taken_over': 'authenticating',
    'stream.released': 'thinking',
    'bubble.closed': 'thinking',
    'answer.suggested': 'thinking',
    'answer.attached': 'thinking',
    'input.required': 'waiting',
  },
  streaming: {
    'dify.started': 'streaming',
    'answer.delta': 'streaming',
    'answer.replaced': 'streaming',
    'answer.completed': 'completed',
    'answer.failed': 'error',
    'stream.taken_over': 'authenticating',
    'stream.released': 'streaming',
    'bubble.closed': 'streaming',
    'answer.suggested': 'streaming',
    'answer.attached': 'streaming',
    'input.required': 'waiting',
  },
  completed: {
    'bubble.closed': 'completed',
    'delivery.sent': 'completed',
    'delivery.failed': 'completed',
    'feedback.given': 'completed',
    'answer.suggested': 'completed',
  },
  waiting: {
    'input.given': 'completed',
    'input.expired': 'completed',
    'bubble.closed': 'waiting',
    'delivery.sent': 'waiting',
    'delivery.failed': 'waiting',
  },
  error: {
    'delivery.sent': 'error',
    'delivery.failed': 'error',
  },
};

const states = Object.keys(histories) as StreamStateValue[];
const types = Object.keys(sample) as EventType[];

describe('the stream machine', () => {
  describe('every state against every event', () => {
    it('each history reaches the state it is named for', () => {
      for (const state of states) expect(stateOf(fold(histories[state]))).toBe(state);
    });

    for (const state of states) {
      for (const type of types) {
        const outcome: Outcome = transitions[state][type] ?? 'ignored';
        if (outcome === 'ignored') {
          it(`in ${state}, ${type} changes nothing`, () => {
            given(histories[state]).when(sample[type]).thenState(state).thenNothingChanged();
          });
        } else {
          const how = outcome === state ? `is recorded and stays in ${state}` : `moves to ${outcome}`;
          it(`in ${state}, ${type} ${how}`, () => {
            given(histories[state]).when(sample[type]).thenState(outcome).thenContext({ lastEventAt: LATER });
          });
        }
      }
    }
  });

  describe('opening', () => {
    it('a stream with no events is idle, neither running nor finished', () => {
      const snapshot = fold([]);
      expect(stateOf(snapshot)).toBe('idle');
      expect(isRunning(snapshot)).toBe(false);
      expect(isFinished(snapshot)).toBe(false);
    });

    it('stream.opened records who asked what, and starts authenticating', () => {
      const then = given([])
        .when(
          opened({ chatid: 'chat-1', chattype: 'group', responseUrl: 'https://example/r', node: 'node-a' }),
        )
        .thenState('authenticating')
        .thenContext({
          streamId: 'stream-1',
          msgid: 'msg-1',
          bot: 'bot-1',
          userid: 'zhangsan',
          chatid: 'chat-1',
          chattype: 'group',
          query: '你好',
          responseUrl: 'https://example/r',
          node: 'node-a',
          openedAt: T0,
          lastEventAt: T0,
          answer: '',
          restarting: false,
          takeovers: 0,
        });
      expect(isRunning(then.snapshot)).toBe(true);
    });

    it('a second stream.opened does not reopen a stream', () => {
      given([opened()])
        .when(opened({ streamId: 'other', query: 'again' }))
        .thenNothingChanged();
    });
  });

  describe('authentication', () => {
    it('auth.granted records the user and starts thinking', () => {
      given([opened()])
        .when(granted({ id: 'zhangsan', name: '张三', department: '研发' }))
        .thenState('thinking')
        .thenContext({ user: { id: 'zhangsan', name: '张三', department: '研发' } });
    });

    it('auth.denied records the reason and the owner’s text, and ends in error', () => {
      const then = given([opened()])
        .when(denied('not_in_directory', '请先在通讯录里登记'))
        .thenState('error')
        .thenContext({ denied: { reason: 'not_in_directory', text: '请先在通讯录里登记' } });
      expect(isFinished(then.snapshot)).toBe(true);
      expect(then.context.user).toBeUndefined();
    });

    it('answer.failed while authenticating ends in error with its code', () => {
      given([opened()])
        .when(failed('auth_unavailable', 'directory down'))
        .thenState('error')
        .thenContext({ error: { code: 'auth_unavailable', message: 'directory down' } });
    });

    it('command.handled answers at once, without Dify, and completes', () => {
      const then = given([opened({ query: '/help' })])
        .when(commandHandled('/help', '可用命令：/new /help /stop'))
        .thenState('completed')
        .thenAnswer('可用命令：/new /help /stop');
      expect(isFinished(then.snapshot)).toBe(true);
      expect(then.context.user).toBeUndefined();
    });

    it('command.handled once the user is granted changes nothing', () => {
      given([opened(), granted()]).when(commandHandled()).thenState('thinking').thenNothingChanged();
    });

    it('an answer.delta while authenticating changes nothing', () => {
      given([opened()])
        .when(delta('too early'))
        .thenState('authenticating')
        .thenAnswer('')
        .thenNothingChanged();
    });
  });

  describe('the queue', () => {
    it('stream.queued records the stream it waits behind', () => {
      given([opened(), granted()]).when(queued('stream-0')).thenState('queued').thenContext({
        queuedBehind: 'stream-0',
      });
    });

    it('stream.dequeued forgets it and starts thinking', () => {
      const then = given([opened(), granted(), queued('stream-0')])
        .when(dequeued())
        .thenState('thinking');
      expect(then.context.queuedBehind).toBeUndefined();
    });

    it('a delta while queued changes nothing', () => {
      given([opened(), granted(), queued()]).when(delta('x')).thenNothingChanged();
    });

    it('a queued stream can fail', () => {
      given([opened(), granted(), queued()])
        .when(failed('answer_timeout', 'waited too long'))
        .thenState('error');
    });
  });

  describe('the answer', () => {
    it('dify.started records the Dify ids without showing anything', () => {
      given([opened(), granted()])
        .when(difyStarted({ conversationId: 'c-1', messageId: 'm-1', taskId: 't-1' }))
        .thenState('thinking')
        .thenAnswer('')
        .thenContext({ conversationId: 'c-1', messageId: 'm-1', taskId: 't-1' });
    });

    it('a later dify.started keeps the ids it does not carry', () => {
      given([opened(), granted(), difyStarted({ conversationId: 'c-1', messageId: 'm-1', taskId: 't-1' })])
        .when(difyStarted({ taskId: 't-2' }))
        .thenContext({ conversationId: 'c-1', messageId: 'm-1', taskId: 't-2' });
    });

    it('the first delta starts streaming with its text', () => {
      given([opened(), granted()]).when(delta('he')).thenState('streaming').thenAnswer('he');
    });

    it('deltas append in order', () => {
      given([opened(), granted(), delta('he')])
        .when(delta('llo'), delta('，'), delta('世界'))
        .thenState('streaming')
        .thenAnswer('hello，世界');
    });

    it('answer.replaced replaces the whole answer so far', () => {
      given([opened(), granted(), delta('draft one'), delta(' and more')])
        .when(replaced('final text'))
        .thenState('streaming')
        .thenAnswer('final text');
    });

    it('deltas after answer.replaced append to the replacement', () => {
      given([opened(), granted(), delta('draft')])
        .when(replaced('final'), delta('!'))
        .thenAnswer('final!');
    });

    it('answer.replaced before any delta starts streaming with it', () => {
      given([opened(), granted()])
        .when(replaced('whole answer'))
        .thenState('streaming')
        .thenAnswer('whole answer');
    });

    it('answer.completed keeps the answer and records the usage', () => {
      const then = given([opened(), granted(), delta('hello')])
        .when(completed({ total_tokens: 12 }))
        .thenState('completed')
        .thenAnswer('hello')
        .thenContext({ usage: { total_tokens: 12 } });
      expect(isFinished(then.snapshot)).toBe(true);
      expect(isRunning(then.snapshot)).toBe(false);
    });

    it('answer.completed with no delta completes with an empty answer', () => {
      given([opened(), granted()]).when(completed()).thenState('completed').thenAnswer('');
    });

    it('answer.failed after a partial answer keeps what was shown and records the error', () => {
      given([opened(), granted(), delta('half an ans')])
        .when(failed('dify_interrupted', 'stream cut', '中断了'))
        .thenState('error')
        .thenAnswer('half an ans')
        .thenContext({ error: { code: 'dify_interrupted', message: 'stream cut', text: '中断了' } });
    });
  });

  describe('after a final state', () => {
    const late: StreamEvent[] = [
      delta(' late'),
      replaced('rewritten'),
      completed({ total_tokens: 99 }),
      failed('internal', 'late failure'),
      takenOver('node-c', 2),
      released('node-a'),
      granted({ id: 'someone-else' }),
      denied('late'),
      queued(),
      dequeued(),
      difyStarted({ conversationId: 'c-late' }),
      opened({ streamId: 'stream-9' }),
      commandHandled(),
    ];

    it('a delta after completion changes nothing', () => {
      given([opened(), granted(), delta('done'), completed()])
        .when(delta(' more'))
        .thenAnswer('done')
        .thenNothingChanged();
    });

    it('no answer, auth, queue or takeover event changes a completed stream', () => {
      given([opened(), granted(), delta('done'), completed()])
        .when(...late)
        .thenState('completed')
        .thenNothingChanged();
    });

    it('no answer, auth, queue, takeover or bubble event changes a failed stream', () => {
      given([opened(), granted(), delta('half'), failed()])
        .when(...late, bubbleClosed())
        .thenState('error')
        .thenNothingChanged();
    });

    it('no later event changes a denied stream but its delivery', () => {
      given([opened(), denied()])
        .when(...late)
        .thenState('error')
        .thenNothingChanged();
    });

    it('delivery.sent is recorded after completion', () => {
      given([opened(), granted(), delta('done'), completed()])
        .when(at(T0 + 7, deliverySent(120)))
        .thenState('completed')
        .thenAnswer('done')
        .thenContext({ delivery: { status: 'sent', at: T0 + 7 }, lastEventAt: T0 + 7 });
    });

    it('delivery.failed is recorded after completion', () => {
      given([opened(), granted(), delta('done'), completed()])
        .when(at(T0 + 7, deliveryFailed('response_url expired')))
        .thenState('completed')
        .thenContext({ delivery: { status: 'failed', at: T0 + 7, message: 'response_url expired' } });
    });

    it('delivery.sent and delivery.failed are recorded after an error, the last one winning', () => {
      given([opened(), denied()])
        .when(at(T0 + 1, deliveryFailed('timeout')), at(T0 + 2, deliverySent()))
        .thenState('error')
        .thenContext({ delivery: { status: 'sent', at: T0 + 2 }, lastEventAt: T0 + 2 });
    });

    it('a delivery before the answer is settled changes nothing', () => {
      given([opened(), granted(), delta('he')])
        .when(deliverySent())
        .thenNothingChanged();
    });
  });

  describe('takeover', () => {
    // The new owner starts over from who is asking; what the user saw stays until new text replaces it.
    it('stream.taken_over while streaming goes back to authenticating and keeps the old answer visible', () => {
      given([opened({ node: 'node-a' }), granted(), delta('old answer')])
        .when(takenOver('node-b', 1))
        .thenState('authenticating')
        .thenAnswer('old answer')
        .thenContext({ node: 'node-b', takeovers: 1, restarting: true });
    });

    it('granted again, the new answer’s first delta replaces the old answer', () => {
      given([opened(), granted(), delta('old answer'), takenOver('node-b', 1), granted()])
        .when(delta('new'))
        .thenState('streaming')
        .thenAnswer('new')
        .thenContext({ restarting: false, answerBytes: 3 });
    });

    it('the new answer’s later deltas append again', () => {
      given([opened(), granted(), delta('old answer'), takenOver('node-b', 1), granted()])
        .when(delta('new'), delta(' answer'))
        .thenAnswer('new answer');
    });

    it('answer.replaced after a takeover replaces the old answer too', () => {
      given([opened(), granted(), delta('old answer'), takenOver(), granted()])
        .when(replaced('new'), delta('!'))
        .thenAnswer('new!')
        .thenContext({ restarting: false });
    });

    it('a takeover whose new answer comes back empty completes with what the user saw', () => {
      given([opened(), granted(), delta('old answer'), takenOver(), granted()])
        .when(completed())
        .thenState('completed')
        .thenAnswer('old answer')
        .thenContext({ restarting: false });
    });

    it('a second takeover counts its attempt', () => {
      given([opened(), granted(), delta('a'), takenOver('node-b', 1), granted(), delta('b')])
        .when(takenOver('node-c', 2))
        .thenState('authenticating')
        .thenAnswer('b')
        .thenContext({ node: 'node-c', takeovers: 2, restarting: true });
    });

    it('a takeover while thinking starts over from authenticating', () => {
      given([opened(), granted()]).when(takenOver('node-b', 1)).thenState('authenticating').thenContext({
        node: 'node-b',
        takeovers: 1,
      });
    });

    it('a takeover while authenticating stays authenticating', () => {
      given([opened()])
        .when(takenOver('node-b', 1))
        .thenState('authenticating')
        .thenContext({ node: 'node-b' });
    });

    it('a takeover while queued starts over: the new owner takes its own place in the line', () => {
      const then = given([opened(), granted(), queued('stream-0')])
        .when(takenOver('node-b', 1))
        .thenState('authenticating')
        .thenContext({ node: 'node-b' });
      expect(then.context.queuedBehind).toBeUndefined();
    });

    it('stream.released forgets the owner node and keeps the state', () => {
      const then = given([opened({ node: 'node-a' }), granted(), delta('he')])
        .when(released('node-a'))
        .thenState('streaming')
        .thenAnswer('he');
      expect(then.context.node).toBeUndefined();
    });
  });

  describe('the bubble', () => {
    it('bubble.closed while streaming records its text and the answer keeps growing', () => {
      given([opened(), granted(), delta('he')])
        .when(at(T0 + 360_000, bubbleClosed('window', 'he…')), delta('llo'))
        .thenState('streaming')
        .thenAnswer('hello')
        .thenContext({ bubble: { reason: 'window', text: 'he…', at: T0 + 360_000 } });
    });

    it('bubble.closed while thinking is recorded', () => {
      given([opened(), granted()])
        .when(bubbleClosed('window', 'still thinking…'))
        .thenState('thinking')
        .thenContext({ bubble: { reason: 'window', text: 'still thinking…' } });
    });

    it('bubble.closed after completion is recorded (the answer was too long for the bubble)', () => {
      given([opened(), granted(), delta('long'), completed()])
        .when(bubbleClosed('overflow', 'long…'))
        .thenState('completed')
        .thenContext({ bubble: { reason: 'overflow', text: 'long…' } });
    });
  });

  describe('lastEventAt', () => {
    it('follows the time of every event the stream takes', () => {
      given([at(T0, opened())])
        .when(at(T0 + 10, granted()))
        .thenContext({ openedAt: T0, lastEventAt: T0 + 10 });
      given([at(T0, opened()), at(T0 + 10, granted())])
        .when(at(T0 + 20, difyStarted()), at(T0 + 30, delta('a')), at(T0 + 40, delta('b')))
        .thenContext({ openedAt: T0, lastEventAt: T0 + 40 });
      given([at(T0, opened()), at(T0 + 10, granted()), at(T0 + 30, delta('a'))])
        .when(at(T0 + 50, completed()))
        .thenContext({ lastEventAt: T0 + 50 });
    });

    it('does not move for an event the state ignores', () => {
      given([at(T0, opened()), at(T0 + 10, granted()), at(T0 + 20, delta('a')), at(T0 + 30, completed())])
        .when(at(T0 + 99, delta('late')))
        .thenContext({ lastEventAt: T0 + 30 });
    });

    it('does not move for an unknown event', () => {
      given([at(T0, opened())])
        .when(stored({ type: 'future.event', at: T0 + 99 }))
        .thenContext({ lastEventAt: T0 });
    });
  });

  describe('events this version cannot read', () => {
    it('an event of an unknown type is kept as an UnknownEvent', () => {
      const event = stored({ type: 'future.event', at: T0 + 5, payload: { x: 1 } });
      expect(isKnown(event)).toBe(false);
      expect(event).toMatchObject({ type: 'future.event', at: T0 + 5, unknown: true });
      expect(event).toHaveProperty('raw', { type: 'future.event', at: T0 + 5, payload: { x: 1 } });
    });

    it('an unknown event in the middle of a stream does not break the fold', () => {
      const history = [opened(), granted(), delta('he')];
      given(history)
        .when(stored({ type: 'future.event', at: T0 + 5 }))
        .thenNothingChanged();
      expect(persist(fold([...history, stored({ type: 'future.event', at: T0 + 5 }), delta('llo')]))).toEqual(
        persist(fold([...history, delta('llo')])),
      );
    });

    it('a known event with extra fields from a newer version is read and folded', () => {
      const event = stored({ type: 'answer.delta', at: T0, text: 'he', lang: 'zh', index: 3 });
      expect(isKnown(event)).toBe(true);
      expect(event).toMatchObject({ type: 'answer.delta', text: 'he', lang: 'zh', index: 3 });
      given([opened(), granted()]).when(event).thenState('streaming').thenAnswer('he');
    });

    it('an answer.delta without text becomes an UnknownEvent that the fold ignores', () => {
      const event = stored({ type: 'answer.delta', at: T0 + 5 });
      expect(isKnown(event)).toBe(false);
      expect(event).toMatchObject({ type: 'answer.delta', unknown: true });
      given([opened(), granted(), delta('he')])
        .when(event)
        .thenState('streaming')
        .thenAnswer('he')
        .thenNothingChanged();
    });

    it('a stored line that is not JSON does not break the fold', () => {
      given([opened(), granted()]).when(parseEventJson('{not json')).thenNothingChanged();
    });
  });

  describe('persist and restore', () => {
    const histories: ReadEvent[][] = [
      [],
      [opened()],
      [opened(), granted(), queued()],
      [opened(), granted(), difyStarted(), delta('你好'), delta('，世界 🌏')],
      [opened(), granted(), delta('old'), takenOver('node-b', 1)],
      [opened(), granted(), delta('done'), completed({ total_tokens: 3 }), deliverySent()],
      [opened(), denied('nope', '不行')],
      [opened(), granted(), delta('half'), bubbleClosed(), failed('dify_timeout', 'slow')],
    ];

    it('a persisted snapshot survives JSON and restores to the same state and context', () => {
      for (const history of histories) {
        const snapshot = fold(history);
        const restored = restore(JSON.parse(JSON.stringify(persist(snapshot))));
        expect(persist(restored)).toEqual(JSON.parse(JSON.stringify(persist(snapshot))));
        expect(isFinished(restored)).toBe(isFinished(snapshot));
        expect(isRunning(restored)).toBe(isRunning(snapshot));
      }
    });

    it('folding more events onto a restored snapshot equals folding the whole history', () => {
      const all: ReadEvent[] = [
        at(T0, opened({ node: 'node-a' })),
        at(T0 + 1, granted({ id: 'zhangsan', name: '张三' })),
        at(T0 + 2, difyStarted()),
        at(T0 + 3, delta('你好')),
        stored({ type: 'future.event', at: T0 + 4 }),
        at(T0 + 5, takenOver('node-b', 1)),
        at(T0 + 6, delta('新的')),
        at(T0 + 7, replaced('新的回答')),
        at(T0 + 8, completed({ total_tokens: 8 })),
        at(T0 + 9, delta('ignored')),
        at(T0 + 10, deliverySent(30)),
      ];
      const whole = JSON.parse(JSON.stringify(persist(fold(all))));
      for (let split = 0; split <= all.length; split++) {
        const saved = JSON.parse(JSON.stringify(persist(fold(all.slice(0, split)))));
        const resumed = fold(all.slice(split), restore(saved));
        expect(JSON.parse(JSON.stringify(persist(resumed))), `split at ${split}`).toEqual(whole);
      }
    });
  });
});
