// The conversation stream as an XState v5 machine. Pure data: every context change is an `assign`,
// there is no IO, clock or randomness (time comes in the events' `at`). Folded with `initialTransition`
// / `transition` (fold.ts), so any node can rebuild any stream from its events.
//
// The machine also names the effects its facts call for, as actions that are never run here:
// `authenticate`, `ask`, `keepConversation`, `handOver`, `finish`. `transition` returns them as data
// (fold.ts `step`); the owner of a stream (runner/actor.ts) runs them and reports their outcomes as
// commands to `decide` (decide.ts), which says which facts to record next. A fold ignores them.
import { assign, type SnapshotFrom, type StateValueFrom, setup } from 'xstate';
import type {
  AttachedFile,
  Attachment,
  EventOf,
  Form,
  GrantedUser,
  Resume,
  StreamEvent,
  UploadedFile,
} from './events.js';
import type { FailureCode } from './failures.js';

export interface StreamContext {
  streamId: string;
  msgid: string;
  bot: string;
  userid: string;
  chatid?: string | undefined;
  chattype: 'single' | 'group';
  query: string;
  responseUrl?: string | undefined;
  /** Long connection: the req_id the answer's frames carry. */
  replyTo?: string | undefined;
  /** The node that accepted the message, then the node that took it over. */
  node?: string | undefined;
  openedAt: number;
  lastEventAt: number;
  user?: GrantedUser | undefined;
  conversationId?: string | undefined;
  messageId?: string | undefined;
  taskId?: string | undefined;
  /** The answer so far, as WeCom should show it. */
  answer: string;
  /** The answer's length in UTF-8 bytes (kept, not counted: the size limit checks it on every piece). */
  answerBytes: number;
  /** After a takeover the old answer stays visible until the new one's first text replaces it. */
  restarting: boolean;
  takeovers: number;
  queuedBehind?: string | undefined;
  denied?: { reason: string; text?: string | undefined } | undefined;
  error?: { code: FailureCode; message: string; text?: string | undefined } | undefined;
  usage?: Record<string, unknown> | undefined;
  /** The answer was cut at the size limit (ANSWER_MAX_BYTES). */
  cut?: boolean | undefined;
  /** Set when the WeCom bubble was finished before the answer (6-minute window, or too long). */
  bubble?:
    | { reason: 'window' | 'overflow' | 'apart'; text: string; at: number; shown?: number | undefined }
    | undefined;
  /** `/new <question>`: a new Dify conversation starts with this question. */
  fresh?: boolean | undefined;
  attachments?: Attachment[] | undefined;
  /** The attachments as Dify knows them, once uploaded. */
  files?: UploadedFile[] | undefined;
  delivery?: { status: 'sent' | 'failed'; at: number; message?: string | undefined } | undefined;
  /** A click on a form's button: this answer resumes the run that paused on it. */
  resume?: Resume | undefined;
  /** The answer's files: the images the bubble shows, and those it names. */
  attached?: AttachedFile[] | undefined;
  /** The questions Dify suggests asking next, offered under the finished answer. */
  suggested?: string[] | undefined;
  /** The form the run paused on, and how it was answered. */
  input?:
    | {
        form: Form;
        at: number;
        outcome?:
          | { type: 'given'; at: number; by: string; action: string; actionText: string; answeredIn: string }
          | { type: 'expired'; at: number; by?: string | undefined }
          | undefined;
      }
    | undefined;
  /** The latest rating a user gave the answer in WeCom. */
  feedback?: { rating: 'like' | 'dislike' | null; at: number } | undefined;
}

export const emptyContext: StreamContext = {
  streamId: '',
  msgid: '',
  bot: '',
  userid: '',
  chattype: 'single',
  query: '',
  openedAt: 0,
  lastEventAt: 0,
  answer: '',
  answerBytes: 0,
  restarting: false,
  takeovers: 0,
};

const bytesOf = (text: string): number => Buffer.byteLength(text, 'utf8');

export const streamMachine = setup({
  types: { context: {} as StreamContext, events: {} as StreamEvent },
  actions: {
    open: assign((_, e: EventOf<'stream.opened'>) => ({
      streamId: e.streamId,
      msgid: e.msgid,
      bot: e.bot,
      userid: e.userid,
      chatid: e.chatid,
      chattype: e.chattype,
      query: e.query,
      responseUrl: e.responseUrl,
      replyTo: e.replyTo,
      node: e.node,
      fresh: e.fresh,
      attachments: e.attachments,
      resume: e.resume,
      openedAt: e.at,
      // An answer no bubble shows is sent whole once settled (delivery.ts), as one the window closed on.
      bubble: e.apart ? { reason: 'apart' as const, text: '', at: e.at, shown: 0 } : undefined,
    })),
    touch: assign(({ event }) => ({ lastEventAt: event.at })),
    grant: assign((_, e: EventOf<'auth.granted'>) => ({ user: e.user })),
    deny: assign((_, e: EventOf<'auth.denied'>) => ({ denied: { reason: e.reason, text: e.text } })),
    queue: assign((_, e: EventOf<'stream.queued'>) => ({ queuedBehind: e.behind })),
    dequeue: assign({ queuedBehind: undefined }),
    recordFiles: assign((_, e: EventOf<'files.uploaded'>) => ({ files: e.files })),
    recordDify: assign(({ context }, e: EventOf<'dify.started'>) => ({
      conversationId: e.conversationId ?? context.conversationId,
      messageId: e.messageId ?? context.messageId,
      taskId: e.taskId ?? context.taskId,
    })),
    appendText: assign(({ context }, e: EventOf<'answer.delta'>) =>
      context.restarting
        ? { answer: e.text, answerBytes: bytesOf(e.text), restarting: false }
        : { answer: context.answer + e.text, answerBytes: context.answerBytes + bytesOf(e.text) },
    ),
    replaceText: assign((_, e: { text: string }) => ({
      answer: e.text,
      answerBytes: bytesOf(e.text),
      restarting: false,
    })),
    // A takeover whose new answer came back empty still ends with what the user saw.
    complete: assign((_, e: EventOf<'answer.completed'>) => ({
      usage: e.usage,
      cut: e.cut,
      restarting: false,
    })),
    fail: assign((_, e: EventOf<'answer.failed'>) => ({
      error: { code: e.code, message: e.message, text: e.text },
    })),
    takeOver: assign((_, e: EventOf<'stream.taken_over'>) => ({
      node: e.node,
      takeovers: e.attempt,
      restarting: true,
      queuedBehind: undefined,
      // The new answer brings its own files and suggestions.
      attached: undefined,
      suggested: undefined,
    })),
    release: assign({ node: undefined }),
    closeBubble: assign((_, e: EventOf<'bubble.closed'>) => ({
      bubble: { reason: e.reason, text: e.text, at: e.at, shown: e.shown },
    })),
    suggest: assign((_, e: EventOf<'answer.suggested'>) => ({ suggested: e.questions })),
    attach: assign((_, e: EventOf<'answer.attached'>) => ({ attached: e.files })),
    requireInput: assign((_, e: EventOf<'input.required'>) => ({ input: { form: e.form, at: e.at } })),
    giveInput: assign(({ context }, e: EventOf<'input.given'>) => ({
      input: context.input && {
        ...context.input,
        outcome: {
          type: 'given' as const,
          at: e.at,
          by: e.by,
          action: e.action,
          actionText: e.actionText,
          answeredIn: e.answeredIn,
        },
      },
    })),
    expireInput: assign(({ context }, e: EventOf<'input.expired'>) => ({
      input: context.input && { ...context.input, outcome: { type: 'expired' as const, at: e.at, by: e.by } },
    })),
    rate: assign((_, e: EventOf<'feedback.given'>) => ({ feedback: { rating: e.rating, at: e.at } })),
    delivered: assign((_, e: EventOf<'delivery.sent'>) => ({
      delivery: { status: 'sent' as const, at: e.at },
    })),
    deliveryFailed: assign((_, e: EventOf<'delivery.failed'>) => ({
      delivery: { status: 'failed' as const, at: e.at, message: e.message },
    })),
    // Effects, named for the owner to run (runner/actor.ts); never run by a fold.
    /** Ask the authenticator who the user is. */
    authenticate: () => {},
    /** Bring the user's files to Dify, wait for the conversation's turn, and ask Dify. */
    ask: () => {},
    /** Keep Dify's conversation id for the next turn of this conversation. */
    keepConversation: (_, _params: { conversationId: string }) => {},
    /** Give the stream back (shutdown): another node takes it over at once. */
    handOver: () => {},
    /** The answer is settled: stop asking, deliver what the bubble could not show, let go of the stream. */
    finish: () => {},
  },
}).createMachine({
  id: 'stream',
  context: emptyContext,
  initial: 'idle',
  states: {
    idle: {
      on: {
        'stream.opened': {
          target: 'running',
          actions: [{ type: 'open', params: ({ event }) => event }, 'touch'],
        },
      },
    },
    // Facts that may arrive whatever the answer is doing, held once here for every running state.
    running: {
      tags: ['running'],
      initial: 'authenticating',
      on: {
        'answer.failed': {
          target: 'error',
          actions: [{ type: 'fail', params: ({ event }) => event }, 'touch'],
        },
        // The new owner starts over, from who is asking: the old answer stays shown meanwhile.
        'stream.taken_over': {
          target: '.authenticating',
          reenter: true,
          actions: [{ type: 'takeOver', params: ({ event }) => event }, 'touch'],
        },
        'stream.released': { actions: ['release', 'touch', 'handOver'] },
        'bubble.closed': { actions: [{ type: 'closeBubble', params: ({ event }) => event }, 'touch'] },
        'answer.suggested': { actions: [{ type: 'suggest', params: ({ event }) => event }, 'touch'] },
        'answer.attached': { actions: [{ type: 'attach', params: ({ event }) => event }, 'touch'] },
      },
      states: {
        authenticating: {
          entry: 'authenticate',
          on: {
            'auth.granted': {
              target: 'thinking',
              actions: [{ type: 'grant', params: ({ event }) => event }, 'touch', 'ask'],
            },
            'command.handled': {
              target: '#stream.completed',
              actions: [{ type: 'replaceText', params: ({ event }) => event }, 'touch'],
            },
            'auth.denied': {
              target: '#stream.error',
              actions: [{ type: 'deny', params: ({ event }) => event }, 'touch'],
            },
          },
        },
        queued: {
          on: {
            'stream.dequeued': { target: 'thinking', actions: ['dequeue', 'touch'] },
          },
        },
        thinking: {
          on: {
            'stream.queued': {
              target: 'queued',
              actions: [{ type: 'queue', params: ({ event }) => event }, 'touch'],
            },
            'files.uploaded': { actions: [{ type: 'recordFiles', params: ({ event }) => event }, 'touch'] },
            'dify.started': {
              actions: [
                { type: 'recordDify', params: ({ event }) => event },
                'touch',
                {
                  type: 'keepConversation',
                  params: ({ event }) => ({ conversationId: event.conversationId ?? '' }),
                },
              ],
            },
            'answer.delta': {
              target: 'streaming',
              actions: [{ type: 'appendText', params: ({ event }) => event }, 'touch'],
            },
            'answer.replaced': {
              target: 'streaming',
              actions: [{ type: 'replaceText', params: ({ event }) => event }, 'touch'],
            },
            'answer.completed': {
              target: '#stream.completed',
              actions: [{ type: 'complete', params: ({ event }) => event }, 'touch'],
            },
            'input.required': {
              target: '#stream.waiting',
              actions: [{ type: 'requireInput', params: ({ event }) => event }, 'touch'],
            },
          },
        },
        streaming: {
          on: {
            'dify.started': {
              actions: [
                { type: 'recordDify', params: ({ event }) => event },
                'touch',
                {
                  type: 'keepConversation',
                  params: ({ event }) => ({ conversationId: event.conversationId ?? '' }),
                },
              ],
            },
            'answer.delta': { actions: [{ type: 'appendText', params: ({ event }) => event }, 'touch'] },
            'answer.replaced': { actions: [{ type: 'replaceText', params: ({ event }) => event }, 'touch'] },
            'answer.completed': {
              target: '#stream.completed',
              actions: [{ type: 'complete', params: ({ event }) => event }, 'touch'],
            },
            'input.required': {
              target: '#stream.waiting',
              actions: [{ type: 'requireInput', params: ({ event }) => event }, 'touch'],
            },
          },
        },
      },
    },
    // The run paused on a form and waits for a person: the answer so far is settled (the bubble
    // finishes with the form's buttons), and the first click resumes the run in a stream of its own.
    waiting: {
      tags: ['finished'],
      entry: 'finish',
      on: {
        'input.given': {
          target: 'completed',
          actions: [{ type: 'giveInput', params: ({ event }) => event }, 'touch'],
        },
        'input.expired': {
          target: 'completed',
          actions: [{ type: 'expireInput', params: ({ event }) => event }, 'touch'],
        },
        'bubble.closed': { actions: [{ type: 'closeBubble', params: ({ event }) => event }, 'touch'] },
        'delivery.sent': { actions: [{ type: 'delivered', params: ({ event }) => event }, 'touch'] },
        'delivery.failed': { actions: [{ type: 'deliveryFailed', params: ({ event }) => event }, 'touch'] },
      },
    },
    // The answer's facts are settled; only its delivery past the bubble (and a rating) may follow.
    completed: {
      tags: ['finished'],
      entry: 'finish',
      on: {
        'answer.suggested': { actions: [{ type: 'suggest', params: ({ event }) => event }, 'touch'] },
        'bubble.closed': { actions: [{ type: 'closeBubble', params: ({ event }) => event }, 'touch'] },
        'delivery.sent': { actions: [{ type: 'delivered', params: ({ event }) => event }, 'touch'] },
        'delivery.failed': { actions: [{ type: 'deliveryFailed', params: ({ event }) => event }, 'touch'] },
        'feedback.given': { actions: [{ type: 'rate', params: ({ event }) => event }, 'touch'] },
      },
    },
    error: {
      tags: ['finished'],
      entry: 'finish',
      on: {
        'delivery.sent': { actions: [{ type: 'delivered', params: ({ event }) => event }, 'touch'] },
        'delivery.failed': { actions: [{ type: 'deliveryFailed', params: ({ event }) => event }, 'touch'] },
      },
    },
  },
});

export type StreamSnapshot = SnapshotFrom<typeof streamMachine>;

/** The machine's state value, nested (`{ running: 'streaming' }`), as XState has it. */
export type StreamStateTree = StateValueFrom<typeof streamMachine>;

/** The innermost state of a value: what a state is called everywhere outside the machine. */
type Leaf<V> = V extends string ? V : V extends Record<string, infer Child> ? Leaf<Child> : never;

/** The name of a state (`'streaming'`), derived from the machine: its innermost states, no parent. */
export type StreamStateValue = Exclude<Leaf<StreamStateTree>, keyof Extract<StreamStateTree, object>>;
