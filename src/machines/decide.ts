// What to record next: the decider of a stream (Emmett's `decide`, beside the machine's `evolve`).
// `decide(command, state, settings)` is pure: given what just happened (a message arrived, the
// authenticator answered, Dify sent a piece of text, the user typed /stop, the window is closing…)
// and the stream as its events built it, it returns the events to record, or none, or throws when the
// command makes no sense for the stream. Every choice about what becomes a fact is made here; the
// owner of a stream only runs effects and reports their outcomes as commands (runner/actor.ts).
import { fill, MAX_BUTTONS } from './cards.js';
import { closeBubble } from './delivery.js';
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
import type { Failure } from './failures.js';
import { advance, isFinished, isRunning, type StreamView, stateOf } from './fold.js';
import { cutUtf8, MAX_CONTENT_BYTES } from './render.js';
import { defaultTexts, type Texts } from './texts.js';

export interface DecideSettings {
  texts: Texts;
  /** The most of an answer that is kept (ANSWER_MAX_BYTES). */
  answerMaxBytes: number;
  /** How many times a stream may be taken over before it ends with an error. */
  maxTakeovers: number;
}

export const defaultDecideSettings: DecideSettings = {
  texts: defaultTexts,
  answerMaxBytes: 128 << 10,
  maxTakeovers: 2,
};

/** A user's message, as WeCom gives it (the mention taken off). */
export interface IncomingMessage {
  msgid: string;
  bot: string;
  userid: string;
  chatid?: string;
  chattype: 'single' | 'group';
  /** What the user wrote: the text, a voice message's transcript, a mixed message's text items. */
  text: string;
  /** The text of a message the user quoted, given to Dify before the question. */
  quoted?: string;
  attachments?: Attachment[];
  responseUrl?: string;
  /** Long connection: the req_id of the frame that brought it, which its answer's frames carry. */
  replyTo?: string;
  /** A click on a form's button: the message answers the form, resuming the run that paused on it. */
  resume?: Resume;
  /** No bubble shows the answer (a click opened no bubble): it is sent as a message once settled. */
  apart?: boolean;
}

/** A command a user may type instead of a question. */
export type UserCommand =
  | { kind: 'help' }
  | { kind: 'new'; question?: string }
  | { kind: 'stop' }
  | { kind: 'ask'; question: string };

export type Command =
  /**
   * A new message opens its stream. What needed IO was done before: a rate limiter's refusal, an
   * immediate grant (everyone may ask), whether `/stop` found an answer to stop.
   */
  | {
      type: 'open';
      at: number;
      streamId: string;
      node: string;
      message: IncomingMessage;
      grant?: GrantedUser;
      refused?: { text: string; message: string };
      stopped?: boolean;
    }
  /** The authenticator's answer. */
  | {
      type: 'admit';
      at: number;
      outcome: { granted: true; user: GrantedUser } | { granted: false; reason: string; text: string };
    }
  /** Something the answer needed failed (the authenticator, the files, Dify, the store). */
  | { type: 'fail'; at: number; failure: Failure; text?: string }
  | { type: 'attachFiles'; at: number; files: UploadedFile[] }
  /** Another answer of the same conversation is ahead in its line. */
  | { type: 'wait'; at: number; behind: string }
  /** This stream heads its conversation's line. */
  | { type: 'proceed'; at: number }
  | {
      type: 'start';
      at: number;
      ids: { conversationId?: string; messageId?: string; taskId?: string; workflowRunId?: string };
    }
  | { type: 'add'; at: number; text: string }
  | { type: 'replace'; at: number; text: string }
  | { type: 'end'; at: number; usage?: Record<string, unknown>; suggested?: string[] }
  /** The answer's files: the images fetched for the bubble, and the rest. */
  | { type: 'attach'; at: number; files: AttachedFile[] }
  /** The run paused on a form that waits for a person. */
  | { type: 'pause'; at: number; form: Form }
  /** Somebody chose a button of the form; the stream `answeredIn` resumes the run. */
  | { type: 'choose'; at: number; by: string; action: string; answeredIn: string }
  /** Somebody clicked a form whose deadline had passed. */
  | { type: 'expire'; at: number; by?: string }
  /** Dify's stream ended without saying the answer was done. */
  | { type: 'endEarly'; at: number }
  /** The user asked to stop (`/stop`). */
  | { type: 'stop'; at: number }
  /** WeCom's polling window is about to end. */
  | { type: 'closeWindow'; at: number }
  /** The answer ran past ANSWER_TIMEOUT_SECONDS. */
  | { type: 'timeOut'; at: number }
  /** The owner is shutting down and gives the stream back. */
  | { type: 'release'; at: number; node: string }
  /** A node takes over a stream whose owner is gone. */
  | { type: 'takeOver'; at: number; node: string; grant?: GrantedUser }
  | { type: 'recordDelivery'; at: number; outcome: { sent: number } | { failed: string } }
  /** A user's 👍/👎, and whether Dify took it. */
  | {
      type: 'rate';
      at: number;
      rating: 'like' | 'dislike' | null;
      by: string;
      forwarded: boolean;
      content?: string;
      problem?: string;
    };

export type CommandType = Command['type'];

/** A command that makes no sense for the stream as it is (a programming error, or a race lost). */
export class IllegalCommand extends Error {
  override readonly name = 'IllegalCommand';
  constructor(
    readonly command: CommandType,
    readonly state: string,
  ) {
    super(`${command} makes no sense for a stream that is ${state}`);
  }
}

type CommandOf<K extends CommandType> = Extract<Command, { type: K }>;

export function decide(
  command: Command,
  state: StreamView,
  settings: DecideSettings = defaultDecideSettings,
): StreamEvent[] {
  switch (command.type) {
    case 'open':
      return open(command, state, settings);
    case 'admit':
      return admit(command, state);
    case 'fail':
      return isRunning(state) ? [failed(command.at, command.failure, command.text)] : [];
    case 'attachFiles':
      return stateOf(state) === 'thinking' && !state.context.files
        ? [{ type: 'files.uploaded', at: command.at, files: command.files }]
        : [];
    case 'wait':
      return stateOf(state) === 'thinking'
        ? [{ type: 'stream.queued', at: command.at, behind: command.behind }]
        : [];
    case 'proceed':
      return stateOf(state) === 'queued' ? [{ type: 'stream.dequeued', at: command.at }] : [];
    case 'start':
      return answering(state) ? [{ type: 'dify.started', at: command.at, ...command.ids }] : [];
    case 'add':
      return answering(state) ? addText(command, state, settings) : [];
    case 'replace':
      return answering(state) ? replaceText(command, state, settings) : [];
    case 'end': {
      if (!answering(state)) return [];
      const completed: StreamEvent = {
        type: 'answer.completed',
        at: command.at,
        ...(command.usage ? { usage: command.usage } : {}),
      };
      // The questions Dify suggests are offered by the finishing reply: recorded before it.
      // Cut on characters, never inside one.
      const questions = (command.suggested ?? [])
        .map((q) => Array.from(q.toWellFormed()).slice(0, 200).join(''))
        .filter((q) => q !== '');
      return questions.length && !state.context.bubble
        ? [{ type: 'answer.suggested', at: command.at, questions: questions.slice(0, 10) }, completed]
        : [completed];
    }
    case 'attach':
      return answering(state) && !state.context.attached ? attach(command, state, settings) : [];
    case 'pause':
      return answering(state) ? pause(command, state, settings) : [];
    case 'choose': {
      const form = state.context.input?.form;
      const action = form?.actions.find((a) => a.id === command.action);
      if (stateOf(state) !== 'waiting' || !action) return [];
      return [
        {
          type: 'input.given',
          at: command.at,
          by: command.by,
          action: action.id,
          actionText: action.title,
          answeredIn: command.answeredIn,
        },
      ];
    }
    case 'expire':
      return stateOf(state) === 'waiting'
        ? [{ type: 'input.expired', at: command.at, ...(command.by ? { by: command.by } : {}) }]
        : [];
    case 'endEarly':
      return isRunning(state)
        ? [failed(command.at, { code: 'dify_interrupted', message: 'stream ended early' })]
        : [];
    case 'stop':
      return isRunning(state)
        ? [failed(command.at, { code: 'stopped', message: 'stopped by the user' })]
        : [];
    case 'closeWindow':
      return isRunning(state) && !state.context.bubble
        ? [closeBubble(state, 'window', command.at, settings.texts)]
        : [];
    case 'timeOut':
      return isRunning(state)
        ? [
            failed(command.at, {
              code: 'answer_timeout',
              message: 'the answer ran past ANSWER_TIMEOUT_SECONDS',
            }),
          ]
        : [];
    case 'release':
      return isRunning(state) ? [{ type: 'stream.released', at: command.at, node: command.node }] : [];
    case 'takeOver':
      return takeOver(command, state, settings);
    case 'recordDelivery':
      if (!isFinished(state) || state.context.delivery) return [];
      return 'sent' in command.outcome
        ? [{ type: 'delivery.sent', at: command.at, bytes: command.outcome.sent }]
        : [{ type: 'delivery.failed', at: command.at, message: command.outcome.failed.slice(0, 300) }];
    case 'rate':
      if (stateOf(state) !== 'completed') return [];
      return [
        {
          type: 'feedback.given',
          at: command.at,
          rating: command.rating,
          by: command.by,
          forwarded: command.forwarded,
          ...(command.content ? { content: command.content } : {}),
          ...(command.problem ? { problem: command.problem.slice(0, 300) } : {}),
        },
      ];
  }
}

/** Parse what a user typed: a command (`/help`, `/new …`, `/stop`) or a question. */
export function parseCommand(text: string): UserCommand {
  const trimmed = text.trim();
  const [head = '', ...rest] = trimmed.split(/\s+/);
  const kind = commandNames[head.toLowerCase()];
  if (!kind) return { kind: 'ask', question: trimmed };
  if (kind === 'new') {
    const question = trimmed.slice(head.length).trim();
    return question ? { kind: 'new', question } : { kind: 'new' };
  }
  if (rest.length > 0) return { kind: 'ask', question: trimmed };
  return { kind };
}

/** What a message's text asks for: a command only when it comes without files. */
export const commandOf = (m: IncomingMessage): UserCommand =>
  parseCommand(m.attachments?.length ? '' : m.text);

const commandNames: Record<string, 'help' | 'new' | 'stop'> = {
  '/help': 'help',
  帮助: 'help',
  '/new': 'new',
  '/reset': 'new',
  新对话: 'new',
  '/stop': 'stop',
  停止: 'stop',
};

function open(c: CommandOf<'open'>, state: StreamView, { texts }: DecideSettings): StreamEvent[] {
  if (stateOf(state) !== 'idle') throw new IllegalCommand(c.type, stateOf(state));
  const m = c.message;
  const opened: EventOf<'stream.opened'> = {
    type: 'stream.opened',
    at: c.at,
    streamId: c.streamId,
    msgid: m.msgid,
    bot: m.bot,
    userid: m.userid,
    chatid: m.chatid,
    chattype: m.chattype,
    query: m.text,
    responseUrl: m.responseUrl,
    node: c.node,
  };
  if (m.replyTo) opened.replyTo = m.replyTo;
  if (m.attachments?.length) opened.attachments = m.attachments;
  if (m.resume) opened.resume = m.resume;
  if (m.apart) opened.apart = true;
  // A form's answer is no question: no command, no quote, no rate limit of the user's messages.
  if (m.resume) return c.grant ? [opened, { type: 'auth.granted', at: c.at, user: c.grant }] : [opened];
  if (c.refused)
    return [opened, failed(c.at, { code: 'rate_limited', message: c.refused.message }, c.refused.text)];
  const handled = (command: string, text: string): StreamEvent[] => [
    opened,
    { type: 'command.handled', at: c.at, command, text },
  ];
  const asking = (event: EventOf<'stream.opened'>): StreamEvent[] =>
    c.grant ? [event, { type: 'auth.granted', at: c.at, user: c.grant }] : [event];
  const command = commandOf(m);
  switch (command.kind) {
    case 'help':
      return handled('help', texts.help);
    case 'new':
      if (command.question)
        return asking({ ...opened, query: question(m, command.question, texts), fresh: true });
      return handled('new', texts.newConversation);
    case 'stop':
      return handled('stop', c.stopped ? texts.stopped : texts.nothingToStop);
    case 'ask': {
      const asked = question(m, m.attachments?.length ? m.text : command.question, texts);
      if (asked === '') return handled('empty', texts.emptyQuestion);
      return asking({ ...opened, query: asked });
    }
  }
}

/** The question Dify gets: what was asked (or a stand-in for a file sent alone), after any quote. */
function question(m: IncomingMessage, text: string, texts: Texts): string {
  const attachments = m.attachments ?? [];
  const asked =
    text ||
    (attachments.length === 0
      ? ''
      : attachments.every((a) => a.type === 'image')
        ? texts.imageQuestion
        : texts.fileQuestion);
  return m.quoted && asked ? `${quote(m.quoted)}\n\n${asked}` : asked;
}

/** A quoted message as a markdown quote, shortened: context, not the question. */
function quote(text: string): string {
  const short = text.length > 500 ? `${text.slice(0, 500)}…` : text;
  return short
    .split('\n')
    .map((line) => `> ${line}`)
    .join('\n');
}

function admit(c: CommandOf<'admit'>, state: StreamView): StreamEvent[] {
  const { outcome } = c;
  if (stateOf(state) === 'authenticating')
    return outcome.granted
      ? [{ type: 'auth.granted', at: c.at, user: outcome.user }]
      : [{ type: 'auth.denied', at: c.at, reason: outcome.reason, text: outcome.text }];
  // Granted before (everyone may ask): nothing to record; refused now: the answer ends.
  if (outcome.granted || !isRunning(state)) return [];
  return [failed(c.at, { code: 'denied', message: outcome.reason }, outcome.text)];
}

/** Whether the stream is waiting for, or receiving, Dify's answer. */
const answering = (state: StreamView): boolean => {
  const s = stateOf(state);
  return s === 'thinking' || s === 'streaming';
};

/**
 * A piece of Dify's answer: kept whole, or what of it fits ANSWER_MAX_BYTES (and then the answer ends
 * there, cut); the bubble is closed the moment the answer outgrows WeCom's 20480 bytes.
 */
function addText(c: CommandOf<'add'>, state: StreamView, settings: DecideSettings): StreamEvent[] {
  // JSON can carry a lone surrogate, UTF-8 cannot: the answer stays well-formed.
  const text = c.text.toWellFormed();
  const ctx = state.context;
  const used = ctx.restarting ? 0 : ctx.answerBytes;
  const kept = within(text, settings.answerMaxBytes - used);
  const events: StreamEvent[] = [];
  if (kept) events.push({ type: 'answer.delta', at: c.at, text: kept });
  return settle(events, used + Buffer.byteLength(kept), kept.length < text.length, c.at, state, settings);
}

function replaceText(c: CommandOf<'replace'>, state: StreamView, settings: DecideSettings): StreamEvent[] {
  const text = c.text.toWellFormed();
  const kept = within(text, settings.answerMaxBytes);
  const events: StreamEvent[] = [{ type: 'answer.replaced', at: c.at, text: kept }];
  return settle(events, Buffer.byteLength(kept), kept.length < text.length, c.at, state, settings);
}

/**
 * The bubble closed if the answer (`bytes` long after `events`) outgrew it, and the answer ended if
 * it was cut at its limit.
 */
function settle(
  events: StreamEvent[],
  bytes: number,
  cut: boolean,
  at: number,
  state: StreamView,
  settings: DecideSettings,
): StreamEvent[] {
  if (events.length > 0 && !state.context.bubble && bytes > MAX_CONTENT_BYTES) {
    let after = state;
    for (const event of events) [after] = advance(after, event);
    events.push(closeBubble(after, 'overflow', at, settings.texts));
  }
  if (cut) events.push({ type: 'answer.completed', at, cut: true });
  return events;
}

/** What of `text` fits `room` bytes of UTF-8: all of it, usually. */
function within(text: string, room: number): string {
  return text.length * 3 <= room ? text : cutUtf8(text, Math.max(0, room));
}

/** At most this many images go with a finished bubble (WeCom's `msg_item` cap). */
export const MAX_IMAGES = 10;

/**
 * The answer's files: the images the bubble can carry are shown by it (with no bubble left, none is);
 * every other file is named under the answer with its link, an image with why it is not shown.
 */
function attach(c: CommandOf<'attach'>, state: StreamView, settings: DecideSettings): StreamEvent[] {
  let images = 0;
  const files = c.files.map((f): AttachedFile => {
    if (!f.shown) return f;
    if (state.context.bubble) return { ...f, shown: false, reason: 'no_bubble' };
    if (f.type === 'image' && ++images > MAX_IMAGES) return { ...f, shown: false, reason: 'too_many' };
    return f;
  });
  const events: StreamEvent[] = [{ type: 'answer.attached', at: c.at, files }];
  const named = files.filter((f) => !f.shown);
  if (named.length === 0) return events;
  const before = state.context.restarting ? '' : state.context.answer;
  const text = `${before.trim() === '' ? '' : '\n\n'}${named.map((f) => fileLine(f, settings.texts)).join('\n')}`;
  return [...events, ...addText({ type: 'add', at: c.at, text }, state, settings)];
}

/** A file named under the answer: its kind, its name as a link, and why an image is not shown. */
function fileLine(f: AttachedFile, texts: Texts): string {
  const name = (f.name ?? (f.type === 'image' ? texts.imageName : texts.fileName)).replace(/[[\]]/g, '');
  const why = f.type === 'image' && f.reason ? texts.imageNotShown[f.reason] : '';
  return `${f.type === 'image' ? '🖼' : '📎'} [${name}](${f.url})${why}`;
}

/**
 * The run paused on a form: the form's text joins the answer, and the stream waits for a person, whose
 * buttons the bubble's last reply carries. With no bubble left to carry them (its window closed, or the
 * answer goes apart), the user is told the step cannot be taken here and the answer ends.
 */
function pause(c: CommandOf<'pause'>, state: StreamView, settings: DecideSettings): StreamEvent[] {
  const ctx = state.context;
  const before = ctx.restarting ? '' : ctx.answer;
  // A card holds six buttons: the form's other actions are named, never dropped unsaid.
  const extra = c.form.actions.slice(MAX_BUTTONS).map((a) => a.title);
  const content =
    `${c.form.content.trim()}${extra.length ? `\n\n${fill(settings.texts.inputMoreActions, { actions: extra.join('、') })}` : ''}`.trim();
  const separator = before.trim() === '' ? '' : '\n\n';
  if (ctx.bubble) {
    const text = `${separator}${content ? `${content}\n\n` : ''}${settings.texts.inputElsewhere}`;
    return [
      ...addText({ type: 'add', at: c.at, text }, state, settings),
      { type: 'answer.completed', at: c.at },
    ];
  }
  const events = content
    ? addText({ type: 'add', at: c.at, text: `${separator}${content}` }, state, settings)
    : [];
  // The form's text reached the answer's limit: the answer ended there, with no card.
  if (events.some((e) => e.type === 'answer.completed')) return events;
  // The form's text outgrew the bubble, which closed: no bubble is left to carry the buttons.
  if (events.some((e) => e.type === 'bubble.closed')) {
    let after = state;
    for (const event of events) [after] = advance(after, event);
    const note = addText(
      { type: 'add', at: c.at, text: `\n\n${settings.texts.inputElsewhere}` },
      after,
      settings,
    );
    return [...events, ...note, { type: 'answer.completed', at: c.at }];
  }
  return [...events, { type: 'input.required', at: c.at, form: c.form }];
}

function takeOver(c: CommandOf<'takeOver'>, state: StreamView, settings: DecideSettings): StreamEvent[] {
  if (!isRunning(state)) throw new IllegalCommand(c.type, stateOf(state));
  const ctx = state.context;
  const attempt = ctx.takeovers + 1;
  const taken: StreamEvent = {
    type: 'stream.taken_over',
    at: c.at,
    node: c.node,
    attempt,
    ...(ctx.node ? { previousNode: ctx.node } : {}),
  };
  if (attempt > settings.maxTakeovers)
    return [
      taken,
      failed(c.at, { code: 'takeover_exhausted', message: `the stream lost its owner ${attempt} times` }),
    ];
  return c.grant ? [taken, { type: 'auth.granted', at: c.at, user: c.grant }] : [taken];
}

function failed(at: number, failure: Failure, text?: string): EventOf<'answer.failed'> {
  return {
    type: 'answer.failed',
    at,
    code: failure.code,
    message: failure.message.slice(0, 500),
    ...(text === undefined ? {} : { text }),
  };
}
