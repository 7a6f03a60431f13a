// What goes past the WeCom bubble (docs/protocol/wecom.md §8, §9.2): the bubble finishes early at the
// end of WeCom's polling window, or when the answer outgrows its 20480 bytes, and the answer then
// follows as one markdown message through the message's response_url (valid once, for an hour).
// Pure: the owner asks these functions what to record and what to send.
import type { EventOf } from './events.js';
import { isFinished, type StreamView, stateOf } from './fold.js';
import { cutUtf8, failureReason, finishedContent, MAX_CONTENT_BYTES, utf8Length, visible } from './render.js';
import { defaultTexts, type Texts } from './texts.js';

/** The `bubble.closed` event that finishes the bubble now, with what it shows. */
export function closeBubble(
  snapshot: StreamView,
  reason: 'window' | 'overflow',
  at: number,
  texts: Texts = defaultTexts,
): EventOf<'bubble.closed'> {
  const { answer } = snapshot.context;
  if (reason === 'window' && answer.trim() === '') {
    return { type: 'bubble.closed', at, reason, text: texts.windowPending, shown: 0 };
  }
  const note = reason === 'window' ? texts.windowClosed : texts.truncated;
  // The note goes after the text whether or not it was cut: the user must learn that more follows.
  const { content, shown } = finishedContent(answer, '', note);
  return { type: 'bubble.closed', at, reason, text: content, shown };
}

/** Whether a finished bubble tells the user that the rest comes as a separate message. */
export function bubbleSaysMoreFollows(content: string, texts: Texts = defaultTexts): boolean {
  return (
    content === texts.windowPending ||
    content.endsWith(texts.windowClosed) ||
    content.endsWith(texts.truncated)
  );
}

/** Whether the answer has outgrown the bubble. */
export const overflows = (answer: string): boolean =>
  answer.length * 3 > MAX_CONTENT_BYTES && utf8Length(answer) > MAX_CONTENT_BYTES;

/**
 * The markdown owed through response_url, or undefined when nothing is owed: the stream is settled,
 * nothing was delivered yet, and the bubble could not show the whole outcome (it was closed early,
 * or the answer did not fit). At most MAX_CONTENT_BYTES, which is also WeCom's cap on a markdown
 * message (§8.2).
 */
export function deliveryFor(snapshot: StreamView, texts: Texts = defaultTexts): string | undefined {
  const ctx = snapshot.context;
  if (!isFinished(snapshot) || ctx.delivery) return undefined;
  const state = stateOf(snapshot);
  if (state === 'error') {
    if (!ctx.bubble) return undefined;
    return texts.deliveryFailed + failureReason(ctx, texts);
  }
  const answer = ctx.answer;
  const tooLong = overflows(answer);
  if (!ctx.bubble && !tooLong) return undefined;
  const capped = ctx.cut ? texts.answerCapped : '';
  // No bubble showed any of it (a form's answer, a suggested question's): all of it goes.
  if (ctx.bubble?.reason === 'apart') return fitDelivery(visible(answer, texts.emptyAnswer), capped, texts);
  if (!tooLong) return fitDelivery(visible(answer, texts.emptyAnswer), capped, texts);
  // What the bubble showed stays there; the rest follows. The bubble's own count when it recorded one
  // and its text is still the start of the answer (a replaced answer starts over).
  const shownByBubble = ctx.bubble?.shown;
  const shown =
    shownByBubble !== undefined && shownByBubble > 0
      ? shownByBubble
      : finishedContent(answer, texts.truncated).shown;
  return fitDelivery(texts.continued + answer.slice(shown), capped, texts);
}

/** A delivery's body within WeCom's cap: the body and its ending, or its head and "the rest is lost". */
function fitDelivery(body: string, ending: string, texts: Texts): string {
  if (utf8Length(body) + utf8Length(ending) <= MAX_CONTENT_BYTES) return body + ending;
  return cutUtf8(body, MAX_CONTENT_BYTES - utf8Length(texts.deliveryTruncated)) + texts.deliveryTruncated;
}
