// The plaintexts of passive replies (reference/wecom-aibot.md §5.2, §5.3), before encryption, but a
// stream's (src/machines/render.ts renders those). Which reply suits which callback is the caller's
// choice; the builders only shape the JSON.

/** Valid only as the answer to an enter_chat event (§5.2). */
export interface TextReplyBody {
  msgtype: 'text';
  text: { content: string };
}

/** The "empty packet" (§4): an encrypted `{}`, the form the official plugin sends. */
export type EmptyReplyBody = Record<string, never>;

export function textReply(content: string): TextReplyBody {
  return { msgtype: 'text', text: { content } };
}

export function emptyReply(): EmptyReplyBody {
  return {};
}
