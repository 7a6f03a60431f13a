// A user's message as WeCom delivered it (a callback, or a frame of the long connection), turned into
// what the runner accepts: the same for both transports.
import type { IncomingMessage } from '../machines/index.js';
import type { FeedbackEvent, TemplateCardEvent, UserMessage } from '../wecom/index.js';
import type { Click, Feedback } from './runner.js';

/**
 * `bot`: the id of the bot it came to; `replyTo`: on the long connection, the req_id of its frame,
 * which the answer's frames carry.
 */
export function incomingOf(m: UserMessage, bot: string, replyTo?: string): IncomingMessage {
  const quoted = quotedText(m);
  return {
    msgid: m.msgid,
    bot,
    userid: m.from.userid,
    ...(m.chatid === undefined ? {} : { chatid: m.chatid }),
    chattype: m.chattype,
    text: m.query,
    ...(quoted === undefined ? {} : { quoted }),
    attachments: m.attachments.map(({ type, url, aesKey }) => ({ type, url, ...(aesKey ? { aesKey } : {}) })),
    ...(m.response_url === undefined ? {} : { responseUrl: m.response_url }),
    ...(replyTo === undefined ? {} : { replyTo }),
  };
}

/** The text of a quoted message (docs/protocol/wecom.md §6.5 `quote`): text, voice transcript, or the text items of a mixed one. */
function quotedText(m: UserMessage): string | undefined {
  const q = m.quote;
  if (!q) return undefined;
  const text =
    q.text?.content ??
    q.voice?.content ??
    q.mixed?.msg_item.flatMap((item) => (item.text ? [item.text.content] : [])).join('\n');
  return text?.trim() || undefined;
}

/** A click on a card's button (template_card_event); `replyTo`: on the long connection, its frame's req_id. */
export function clickOf(m: TemplateCardEvent, replyTo?: string): Click {
  const e = m.event.template_card_event;
  return {
    taskId: e.task_id ?? '',
    key: e.event_key ?? '',
    msgid: m.msgid,
    userid: m.from.userid,
    ...(m.chatid === undefined ? {} : { chatid: m.chatid }),
    chattype: m.chattype,
    ...(m.response_url === undefined ? {} : { responseUrl: m.response_url }),
    ...(replyTo === undefined ? {} : { replyTo }),
  };
}

/** A rating (feedback_event), as the runner takes it: the same from a callback and a frame. */
export function feedbackOf(m: FeedbackEvent): Feedback {
  const f = m.event.feedback_event;
  return {
    id: f.id,
    type: f.type,
    ...(f.content === undefined ? {} : { content: f.content }),
    ...(f.inaccurate_reason_list === undefined ? {} : { reasons: f.inaccurate_reason_list }),
    userid: m.from.userid,
  };
}
