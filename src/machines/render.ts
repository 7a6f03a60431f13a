// The WeCom `stream` reply body for a snapshot (docs/protocol/wecom.md §5.3, §5.4): content is the whole
// answer so far, never a delta, at most 20480 UTF-8 bytes, and `finish:true` only once settled.

import { inputCard, suggestedCard, type TemplateCard } from './cards.js';
import { type StreamView, stateOf } from './fold.js';
import type { StreamContext } from './streamMachine.js';
import { defaultTexts, failureText, type Texts } from './texts.js';

/** WeCom's cap on `stream.content`, in UTF-8 bytes (§5.3). */
export const MAX_CONTENT_BYTES = 20480;

export interface StreamReply {
  /** `stream_with_template_card` when the finishing reply carries a card (a form's buttons, say). */
  msgtype: 'stream' | 'stream_with_template_card';
  /** `feedback.id` is set on the first reply to a message, so that WeCom's rating comes back (§5.5). */
  stream: { id: string; finish: boolean; content: string; feedback?: { id: string } };
  template_card?: TemplateCard;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Counted without encoding: every poll measures its answer, and a copy of it each time is waste. */
export const utf8Length = (text: string): number => Buffer.byteLength(text, 'utf8');

/** The longest prefix of `text` that fits `maxBytes` of UTF-8, cut on a character boundary. */
export function cutUtf8(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes) return text;
  const bytes = encoder.encode(text);
  if (bytes.length <= maxBytes) return text;
  let end = Math.max(0, maxBytes);
  // Back off continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return decoder.decode(bytes.subarray(0, end));
}

/**
 * `text + suffix` within the cap; when it does not fit, the head of `text`, then `note`, then
 * `suffix`, together within the cap.
 */
export function fitContent(
  text: string,
  note: string,
  suffix = '',
  maxBytes = MAX_CONTENT_BYTES,
): { content: string; cut: boolean } {
  if (utf8Length(text) + utf8Length(suffix) <= maxBytes) return { content: text + suffix, cut: false };
  return {
    content: cutUtf8(text, maxBytes - utf8Length(note) - utf8Length(suffix)) + note + suffix,
    cut: true,
  };
}

/** An unclosed `<think>` leaves WeCom's "thinking" animation running (§10.2): close it when finishing. */
function closeThink(text: string): string {
  const open = text.lastIndexOf('<think>');
  return open >= 0 && text.indexOf('</think>', open) < 0 ? `${text}</think>` : text;
}

/** Whitespace-only content does not clear WeCom's spinner (§10.2), so a visible text stands in. */
/** The text, or `fallback` when it shows nothing. */
export const visible = (text: string, fallback: string): string => (text.trim() === '' ? fallback : text);

/**
 * A finished bubble must show something outside its thinking block, or WeCom's thinking animation
 * keeps running (§10.2): `fallback` after the block when the model only thought.
 */
const visibleAfterThinking = (text: string, fallback: string): string =>
  text.includes('<think>') && text.replace(/<think>[\s\S]*?(<\/think>|$)/g, '').trim() === ''
    ? `${text}\n${fallback}`
    : visible(text, fallback);

/** Why a stream ended in error, as the user reads it: the denial, the failure's own text, or its code's. */
export function failureReason(ctx: StreamContext, texts: Texts = defaultTexts): string {
  return ctx.denied
    ? (ctx.denied.text ?? texts.denied)
    : (ctx.error?.text ?? failureText(ctx.error?.code ?? 'internal', texts));
}

export function renderContent(
  snapshot: StreamView,
  texts: Texts = defaultTexts,
): { finish: boolean; content: string } {
  const ctx = snapshot.context;
  if (ctx.bubble) return { finish: true, content: ctx.bubble.text };
  switch (stateOf(snapshot)) {
    case 'idle':
      return { finish: true, content: texts.expired };
    case 'authenticating':
      return {
        finish: false,
        content: showsText(snapshot) ? textContent(ctx.answer, texts) : texts.authenticating,
      };
    case 'queued':
      return { finish: false, content: texts.queued };
    case 'thinking':
      return {
        finish: false,
        content: showsText(snapshot) ? textContent(ctx.answer, texts) : texts.thinking,
      };
    case 'streaming':
      return { finish: false, content: textContent(ctx.answer, texts) };
    case 'waiting':
    case 'completed': {
      const capped = ctx.cut ? texts.answerCapped : '';
      return {
        finish: true,
        content: visibleAfterThinking(fitFinished(ctx.answer, texts.truncated, capped), texts.emptyAnswer),
      };
    }
    case 'error': {
      const reason = failureReason(ctx, texts);
      if (!ctx.answer.trim() || ctx.denied) return { finish: true, content: reason };
      // What was already shown stays; the reason follows it.
      return { finish: true, content: fitFinished(ctx.answer, texts.truncated, `\n\n---\n${reason}`) };
    }
  }
}

const THINK_END = '</think>';

/**
 * A finished answer within the cap, with any open `<think>` closed after the cut, not before it.
 * `shown` is how many characters of `answer` the content holds (all of them unless it was cut).
 */
export function finishedContent(
  answer: string,
  note: string,
  suffix = '',
): { content: string; shown: number; cut: boolean } {
  const closed = closeThink(answer);
  if (utf8Length(closed) + utf8Length(suffix) <= MAX_CONTENT_BYTES)
    return { content: closed + suffix, shown: answer.length, cut: false };
  const reserve = closed === answer ? 0 : utf8Length(THINK_END);
  const room = MAX_CONTENT_BYTES - reserve - utf8Length(note) - utf8Length(suffix);
  const head = cutUtf8(answer, room);
  return { content: closeThink(head) + note + suffix, shown: head.length, cut: true };
}

function fitFinished(answer: string, note: string, suffix = ''): string {
  return finishedContent(answer, note, suffix).content;
}

function fitAnswer(answer: string, texts: Texts): string {
  return fitContent(answer, texts.truncated).content;
}

export function render(snapshot: StreamView, streamId: string, texts: Texts = defaultTexts): StreamReply {
  const { finish, content } = renderContent(snapshot, texts);
  const card = replyCard(snapshot, texts);
  const stream = { id: streamId, finish, content };
  return card
    ? { msgtype: 'stream_with_template_card', stream, template_card: card }
    : { msgtype: 'stream', stream };
}

/**
 * The card the bubble's finishing reply carries: the buttons of the form the stream waits on, or of
 * the questions Dify suggests after the answer.
 */
export function replyCard(view: StreamView, texts: Texts = defaultTexts): TemplateCard | undefined {
  if (view.context.bubble) return undefined;
  const state = stateOf(view);
  if (state === 'waiting') return inputCard(view.context, texts);
  return state === 'completed' && !view.context.input ? suggestedCard(view.context, texts) : undefined;
}

/**
 * Whether a poll shows the answer's text as it grows: streaming, or answering again after a takeover
 * with the old answer still shown. Such a reply depends on nothing but the text (`renderText`).
 */
function showsText(view: StreamView): boolean {
  const ctx = view.context;
  if (ctx.bubble) return false;
  const state = stateOf(view);
  return (
    state === 'streaming' ||
    ((state === 'thinking' || state === 'authenticating') && ctx.restarting && ctx.answer !== '')
  );
}

/** The bubble's content while the answer grows: the text within the cap, never blank. */
function textContent(text: string, texts: Texts): string {
  return visible(fitAnswer(text, texts), texts.thinking);
}

/**
 * How polls show a stream after its latest events: a reply fixed in full (JSON text), or "the
 * answer's text as it grows", which a polling node renders from the stored text (`renderText`). The
 * second is what lets an answer grow by a delta at the cost of the delta: nothing else changes.
 */
export type ReplyProjection = { fixed: string } | { fromText: true };

export function replyProjection(
  view: StreamView,
  streamId: string,
  texts: Texts = defaultTexts,
): ReplyProjection {
  return showsText(view) ? { fromText: true } : { fixed: JSON.stringify(render(view, streamId, texts)) };
}

/**
 * The reply, as JSON text, of a stream whose projection is its text: `text` is the answer, or its
 * first bytes (one past the cap is enough to know it overflows; a character cut there is dropped by
 * the fitting, which cuts lower).
 */
export function renderText(text: string, streamId: string, texts: Texts = defaultTexts): string {
  const reply: StreamReply = {
    msgtype: 'stream',
    stream: { id: streamId, finish: false, content: textContent(text, texts) },
  };
  return JSON.stringify(reply);
}
