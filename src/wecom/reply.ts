// The plaintexts of passive replies (docs/protocol/wecom.md §5.2–§5.6), before encryption, but a
// stream's (src/machines/render.ts renders those). Which reply suits which callback is the caller's
// choice; the builders only shape the JSON.

/** Valid only as the answer to an enter_chat event (§5.2). */
export interface TextReplyBody {
  msgtype: 'text';
  text: { content: string };
}

/** The "empty packet" (§4.3): an encrypted `{}`, the form the official plugin sends. */
export type EmptyReplyBody = Record<string, never>;

export function textReply(content: string): TextReplyBody {
  return { msgtype: 'text', text: { content } };
}

export function emptyReply(): EmptyReplyBody {
  return {};
}

/** The answer to a template_card_event (§5.2): the clicked card as it should now look, for everyone. */
export interface UpdateCardReplyBody {
  response_type: 'update_template_card';
  template_card: object;
}

export function updateCardReply(card: object): UpdateCardReplyBody {
  return { response_type: 'update_template_card', template_card: card };
}
