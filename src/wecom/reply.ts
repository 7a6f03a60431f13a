// The plaintexts of passive replies (docs/protocol/wecom.md §5.2–§5.6), before encryption.
// Which reply suits which callback is the caller's choice; the builders only shape the JSON.

export interface StreamReplyBody {
  msgtype: 'stream';
  stream: {
    /** Required on the first reply to a message; WeCom then polls with it. */
    id: string;
    finish: boolean;
    /** A full snapshot, never a delta; ≤ 20480 UTF-8 bytes (the caller fits it). */
    content: string;
    /** Set on the first reply to have user feedback come back as feedback_event. */
    feedback?: { id: string };
  };
}

/** Valid only as the answer to an enter_chat event (§5.2). */
export interface TextReplyBody {
  msgtype: 'text';
  text: { content: string };
}

/** The "empty packet" (§4.3): an encrypted `{}`, the form the official plugin sends. */
export type EmptyReplyBody = Record<string, never>;

export type ReplyBody = StreamReplyBody | TextReplyBody | EmptyReplyBody;

export function streamReply(
  id: string,
  content: string,
  finish: boolean,
  feedbackId?: string,
): StreamReplyBody {
  return {
    msgtype: 'stream',
    stream: { id, finish, content, ...(feedbackId ? { feedback: { id: feedbackId } } : {}) },
  };
}

export function textReply(content: string): TextReplyBody {
  return { msgtype: 'text', text: { content } };
}

export function emptyReply(): EmptyReplyBody {
  return {};
}
