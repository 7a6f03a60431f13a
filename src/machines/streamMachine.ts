// The conversation stream as an XState v5 machine. Pure data: every action is an `assign`, there is
// no IO, clock or randomness; time comes in the events' `at`. Folded with `initialTransition` /
// `transition` (see fold.ts), so any node can rebuild any stream from its events.
import { assertEvent, assign, setup } from 'xstate';
import type { Attachment, GrantedUser, StreamEvent, UploadedFile } from './events.js';

export interface StreamContext {
  streamId: string;
  msgid: string;
  bot: string;
  userid: string;
  chatid?: string;
  chattype: 'single' | 'group';
  query: string;
  responseUrl?: string;
  /** The node that accepted the message, then the node that took it over. */
  node?: string;
  openedAt: number;
  lastEventAt: number;
  user?: GrantedUser;
  conversationId?: string;
  messageId?: string;
  taskId?: string;
  /** The answer so far, as WeCom should show it. */
  answer: string;
  /** After a takeover the old answer stays visible until the new one's first text replaces it. */
  restarting: boolean;
  takeovers: number;
  queuedBehind?: string;
  denied?: { reason: string; text?: string };
  error?: { code: string; message: string; text?: string };
  usage?: Record<string, unknown>;
  /** The answer was cut at the size limit (ANSWER_MAX_BYTES). */
  cut?: boolean;
  /** Set when the WeCom bubble was finished before the answer (6-minute window, or too long). */
  bubble?: { reason: 'window' | 'overflow'; text: string; at: number; shown?: number };
  /** `/new <question>`: a new Dify conversation starts with this question. */
  fresh?: boolean;
  attachments?: Attachment[];
  /** The attachments as Dify knows them, once uploaded. */
  files?: UploadedFile[];
  delivery?: { status: 'sent' | 'failed'; at: number; message?: string };
  /** The latest rating a user gave the answer in WeCom. */
  feedback?: { rating: 'like' | 'dislike' | null; at: number };
}

const emptyContext: StreamContext = {
  streamId: '',
  msgid: '',
  bot: '',
  userid: '',
  chattype: 'single',
  query: '',
  openedAt: 0,
  lastEventAt: 0,
  answer: '',
  restarting: false,
  takeovers: 0,
};

export const streamMachine = setup({
  types: { context: {} as StreamContext, events: {} as StreamEvent },
  actions: {
    open: assign(({ event }) => {
      assertEvent(event, 'stream.opened');
      return {
        streamId: event.streamId,
        msgid: event.msgid,
        bot: event.bot,
        userid: event.userid,
        chatid: event.chatid,
        chattype: event.chattype,
        query: event.query,
        responseUrl: event.responseUrl,
        node: event.node,
        fresh: event.fresh,
        attachments: event.attachments,
        openedAt: event.at,
        lastEventAt: event.at,
      };
    }),
    touch: assign(({ event }) => ({ lastEventAt: event.at })),
    grant: assign(({ event }) => {
      assertEvent(event, 'auth.granted');
      return { user: event.user };
    }),
    deny: assign(({ event }) => {
      assertEvent(event, 'auth.denied');
      return { denied: { reason: event.reason, text: event.text } };
    }),
    queue: assign(({ event }) => {
      assertEvent(event, 'stream.queued');
      return { queuedBehind: event.behind };
    }),
    dequeue: assign({ queuedBehind: undefined }),
    recordFiles: assign(({ event }) => {
      assertEvent(event, 'files.uploaded');
      return { files: event.files };
    }),
    recordDify: assign(({ context, event }) => {
      assertEvent(event, 'dify.started');
      return {
        conversationId: event.conversationId ?? context.conversationId,
        messageId: event.messageId ?? context.messageId,
        taskId: event.taskId ?? context.taskId,
      };
    }),
    appendText: assign(({ context, event }) => {
      assertEvent(event, 'answer.delta');
      return {
        answer: context.restarting ? event.text : context.answer + event.text,
        restarting: false,
      };
    }),
    replaceText: assign(({ event }) => {
      assertEvent(event, 'answer.replaced');
      return { answer: event.text, restarting: false };
    }),
    complete: assign(({ context, event }) => {
      assertEvent(event, 'answer.completed');
      return {
        usage: event.usage,
        cut: event.cut,
        // A takeover whose new answer came back empty still ends with what the user saw.
        restarting: false,
        answer: context.answer,
      };
    }),
    fail: assign(({ event }) => {
      assertEvent(event, 'answer.failed');
      return {
        error: { code: event.code, message: event.message, text: event.text },
      };
    }),
    takeOver: assign(({ event }) => {
      assertEvent(event, 'stream.taken_over');
      return {
        node: event.node,
        takeovers: event.attempt,
        restarting: true,
      };
    }),
    release: assign({ node: undefined }),
    answerCommand: assign(({ event }) => {
      assertEvent(event, 'command.handled');
      return { answer: event.text };
    }),
    closeBubble: assign(({ event }) => {
      assertEvent(event, 'bubble.closed');
      return {
        bubble: { reason: event.reason, text: event.text, at: event.at, shown: event.shown },
      };
    }),
    rate: assign(({ event }) => {
      assertEvent(event, 'feedback.given');
      return { feedback: { rating: event.rating, at: event.at } };
    }),
    delivered: assign(({ event }) => {
      assertEvent(event, 'delivery.sent');
      return { delivery: { status: 'sent' as const, at: event.at } };
    }),
    deliveryFailed: assign(({ event }) => {
      assertEvent(event, 'delivery.failed');
      return {
        delivery: { status: 'failed' as const, at: event.at, message: event.message },
      };
    }),
  },
}).createMachine({
  id: 'stream',
  context: emptyContext,
  initial: 'idle',
  // Facts that may arrive in any running state.
  on: {},
  states: {
    idle: {
      on: { 'stream.opened': { target: 'authenticating', actions: 'open' } },
    },
    authenticating: {
      tags: ['running'],
      on: {
        'auth.granted': { target: 'thinking', actions: ['grant', 'touch'] },
        'command.handled': { target: 'completed', actions: ['answerCommand', 'touch'] },
        'bubble.closed': { actions: ['closeBubble', 'touch'] },
        'auth.denied': { target: 'error', actions: ['deny', 'touch'] },
        'answer.failed': { target: 'error', actions: ['fail', 'touch'] },
        'stream.taken_over': { actions: ['takeOver', 'touch'] },
        'stream.released': { actions: ['release', 'touch'] },
      },
    },
    queued: {
      tags: ['running'],
      on: {
        'stream.dequeued': { target: 'thinking', actions: ['dequeue', 'touch'] },
        'bubble.closed': { actions: ['closeBubble', 'touch'] },
        'answer.failed': { target: 'error', actions: ['fail', 'touch'] },
        'stream.taken_over': { actions: ['takeOver', 'touch'] },
        'stream.released': { actions: ['release', 'touch'] },
      },
    },
    thinking: {
      tags: ['running'],
      on: {
        'stream.queued': { target: 'queued', actions: ['queue', 'touch'] },
        'files.uploaded': { actions: ['recordFiles', 'touch'] },
        'dify.started': { actions: ['recordDify', 'touch'] },
        'answer.delta': { target: 'streaming', actions: ['appendText', 'touch'] },
        'answer.replaced': { target: 'streaming', actions: ['replaceText', 'touch'] },
        'answer.completed': { target: 'completed', actions: ['complete', 'touch'] },
        'answer.failed': { target: 'error', actions: ['fail', 'touch'] },
        'stream.taken_over': { actions: ['takeOver', 'touch'] },
        'stream.released': { actions: ['release', 'touch'] },
        'bubble.closed': { actions: ['closeBubble', 'touch'] },
      },
    },
    streaming: {
      tags: ['running'],
      on: {
        'dify.started': { actions: ['recordDify', 'touch'] },
        'answer.delta': { actions: ['appendText', 'touch'] },
        'answer.replaced': { actions: ['replaceText', 'touch'] },
        'answer.completed': { target: 'completed', actions: ['complete', 'touch'] },
        'answer.failed': { target: 'error', actions: ['fail', 'touch'] },
        'stream.taken_over': { target: 'thinking', actions: ['takeOver', 'touch'] },
        'stream.released': { actions: ['release', 'touch'] },
        'bubble.closed': { actions: ['closeBubble', 'touch'] },
      },
    },
    // The answer's facts are settled; only its delivery past the bubble may still be recorded.
    completed: {
      tags: ['finished'],
      on: {
        'bubble.closed': { actions: ['closeBubble', 'touch'] },
        'delivery.sent': { actions: ['delivered', 'touch'] },
        'delivery.failed': { actions: ['deliveryFailed', 'touch'] },
        'feedback.given': { actions: ['rate', 'touch'] },
      },
    },
    error: {
      tags: ['finished'],
      on: {
        'delivery.sent': { actions: ['delivered', 'touch'] },
        'delivery.failed': { actions: ['deliveryFailed', 'touch'] },
      },
    },
  },
});

export type StreamStateValue =
  | 'idle'
  | 'authenticating'
  | 'queued'
  | 'thinking'
  | 'streaming'
  | 'completed'
  | 'error';
