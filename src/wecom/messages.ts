// The decrypted callback JSON (docs/protocol/wecom.md §6), parsed once into a typed union keyed by
// `kind`. WeCom's own field names are kept (msgid, from.userid, response_url…), and so is every
// field this version does not know (looseObject), so a newer payload never breaks the parse.
import { z } from 'zod';
import { WecomError } from './errors.js';

const textBody = z.looseObject({ content: z.string() });
// A long-connection message's image or file also brings its own key (`aeskey`, §12).
const urlBody = z.looseObject({ url: z.string().min(1), aeskey: z.string().optional() });
const withKey = (aeskey: string | undefined) => (aeskey ? { aesKey: aeskey } : {});

/** An item of a `mixed` message: text or image today, anything else kept as is. */
const mixedItemSchema = z.looseObject({
  msgtype: z.string(),
  text: textBody.optional(),
  image: urlBody.optional(),
});

const mixedBody = z.looseObject({ msg_item: z.array(mixedItemSchema) });

/** A quoted message: one of text/image/mixed/voice/file in the same structure (§6.5). */
const quoteSchema = z.looseObject({
  msgtype: z.string(),
  text: textBody.optional(),
  image: urlBody.optional(),
  mixed: mixedBody.optional(),
  voice: textBody.optional(),
  file: urlBody.optional(),
});

const common = {
  msgid: z.string().min(1),
  aibotid: z.string().min(1),
  /** Only in group chats. */
  chatid: z.string().optional(),
  chattype: z.enum(['single', 'group']),
  /** `corpid` is not sent for enterprise-internal bots. */
  from: z.looseObject({ userid: z.string().min(1), corpid: z.string().optional() }),
  /** The once-only proactive reply URL (§8); absent on stream refreshes. */
  response_url: z.string().optional(),
  quote: quoteSchema.optional(),
  /** Events always carry it; message examples do not. */
  create_time: z.union([z.number(), z.string()]).optional(),
};

const envelopeSchema = z.looseObject({ ...common, msgtype: z.string().min(1) });

const schemas = {
  text: z.looseObject({ ...common, msgtype: z.literal('text'), text: textBody }),
  image: z.looseObject({ ...common, msgtype: z.literal('image'), image: urlBody }),
  mixed: z.looseObject({ ...common, msgtype: z.literal('mixed'), mixed: mixedBody }),
  voice: z.looseObject({ ...common, msgtype: z.literal('voice'), voice: textBody }),
  file: z.looseObject({ ...common, msgtype: z.literal('file'), file: urlBody }),
  stream: z.looseObject({
    ...common,
    msgtype: z.literal('stream'),
    stream: z.looseObject({ id: z.string().min(1) }),
  }),
};

const eventEnvelopeSchema = z.looseObject({
  ...common,
  msgtype: z.literal('event'),
  event: z.looseObject({ eventtype: z.string().min(1) }),
});

const eventSchemas = {
  enter_chat: z.looseObject({
    ...common,
    msgtype: z.literal('event'),
    event: z.looseObject({
      eventtype: z.literal('enter_chat'),
      enter_chat: z.looseObject({}).optional(),
    }),
  }),
  template_card_event: z.looseObject({
    ...common,
    msgtype: z.literal('event'),
    event: z.looseObject({
      eventtype: z.literal('template_card_event'),
      // The doc's table says cardtype/eventkey; its JSON and the SDK say card_type/event_key (§6.6).
      template_card_event: z.looseObject({
        card_type: z.string().optional(),
        event_key: z.string().optional(),
        task_id: z.string().optional(),
        selected_items: z.unknown().optional(),
      }),
    }),
  }),
  feedback_event: z.looseObject({
    ...common,
    msgtype: z.literal('event'),
    event: z.looseObject({
      eventtype: z.literal('feedback_event'),
      feedback_event: z.looseObject({
        id: z.string().min(1),
        /** 1 accurate, 2 inaccurate, 3 withdrawn. */
        type: z.number().int(),
        content: z.string().optional(),
        inaccurate_reason_list: z.array(z.union([z.number(), z.string()])).optional(),
      }),
    }),
  }),
};

/** A file the user sent; its URL returns encrypted bytes (§7) and lasts 5 minutes. */
export interface Attachment {
  type: 'image' | 'file';
  url: string;
  /** Long connection: the file's own key. */
  aesKey?: string;
}

/** What every user message carries besides WeCom's own fields. */
interface UserMessageExtras {
  /**
   * What the user asked, for Dify: text content, voice transcript, or the joined text items of a
   * mixed message, with the bot's @mention stripped in group chats. Empty for image and file.
   */
  query: string;
  attachments: Attachment[];
}

export type TextMessage = z.infer<(typeof schemas)['text']> & { kind: 'text' } & UserMessageExtras;
export type ImageMessage = z.infer<(typeof schemas)['image']> & { kind: 'image' } & UserMessageExtras;
export type MixedMessage = z.infer<(typeof schemas)['mixed']> & { kind: 'mixed' } & UserMessageExtras;
export type VoiceMessage = z.infer<(typeof schemas)['voice']> & { kind: 'voice' } & UserMessageExtras;
export type FileMessage = z.infer<(typeof schemas)['file']> & { kind: 'file' } & UserMessageExtras;
/** A stream refresh poll: answer with the snapshot of `stream.id`, a `stream` reply only (§5.2). */
export type StreamPoll = z.infer<(typeof schemas)['stream']> & { kind: 'stream' };
export type EnterChatEvent = z.infer<(typeof eventSchemas)['enter_chat']> & { kind: 'enter_chat' };
export type TemplateCardEvent = z.infer<(typeof eventSchemas)['template_card_event']> & {
  kind: 'template_card_event';
};
export type FeedbackEvent = z.infer<(typeof eventSchemas)['feedback_event']> & { kind: 'feedback_event' };
/** An event of an eventtype this version does not handle. */
export type UnknownEvent = z.infer<typeof eventEnvelopeSchema> & { kind: 'unknown-event' };
/** A msgtype this version does not know: kept whole, answered with an empty reply. */
export type UnknownMessage = z.infer<typeof envelopeSchema> & { kind: 'unknown' };

export type UserMessage = TextMessage | ImageMessage | MixedMessage | VoiceMessage | FileMessage;
export type EventMessage = EnterChatEvent | TemplateCardEvent | FeedbackEvent | UnknownEvent;
export type WecomMessage = UserMessage | StreamPoll | EventMessage | UnknownMessage;

// A mention is "@" and a run of non-space characters (the bot's name may be non-ASCII). WeCom
// separates it with a space or U+2005, both matched by \s.
const LEADING_MENTION = /^\s*@[^\s@]+(?:\s+|$)/u;
const TRAILING_MENTION = /@[^\s@]+\s*$/u;

/**
 * Removes the bot's @mention that WeCom leaves inside group text (§6.4): a leading
 * `@name`, or, when there is none, a trailing one (real sample: `"hello@项目开发管理助手 "`), then
 * trims. Only one end is stripped so that a message which starts with the mention keeps a trailing
 * e-mail address (`@Bot write to a@b.com`). Mentions in the middle are left alone.
 */
export function stripMention(text: string, botName?: string): string {
  // With the bot's display name known (WECOM_BOT_NAME), exactly that mention goes, wherever it
  // stands at either end: a name with spaces ("AI 助手") defeats the heuristic below.
  if (botName) {
    const mention = `@${botName}`;
    let t = text.trim();
    // Leading, only as a whole name: `@AIsha` is another member when the bot is `AI`.
    const next = t.charAt(mention.length);
    if (t.startsWith(mention) && (next === '' || /\s/u.test(next))) t = t.slice(mention.length);
    else if (t.endsWith(mention)) t = t.slice(0, -mention.length);
    return t.trim();
  }
  const leading = text.replace(LEADING_MENTION, '');
  if (leading !== text) return leading.trim();
  return text.replace(TRAILING_MENTION, '').trim();
}

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid message';
  const field = issue.path.length > 0 ? issue.path.join('.') : '(root)';
  // zod's messages never echo the input value, so no user content leaks into logs.
  return `${field}: ${issue.message}`;
}

function parseWith<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const field = result.error.issues[0]?.path.join('.') ?? '';
    throw new WecomError('bad_message', `bad message: ${describeIssue(result.error)}`, { field });
  }
  return result.data;
}

function userExtras(
  chattype: 'single' | 'group',
  text: string,
  attachments: Attachment[],
  options: ParseOptions,
): UserMessageExtras {
  return { query: chattype === 'group' ? stripMention(text, options.botName) : text.trim(), attachments };
}

export interface ParseOptions {
  /** The bot's display name in group mentions (WECOM_BOT_NAME); a heuristic strips it when unset. */
  botName?: string | undefined;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const optionalString = (value: unknown): boolean => value === undefined || typeof value === 'string';
const nonEmpty = (value: unknown): value is string => typeof value === 'string' && value !== '';

/**
 * A stream refresh poll that `schemas.stream` takes, as it would give it (the object, its unknown
 * fields kept), checked by hand; undefined for anything the schema should judge (it is then parsed).
 */
function pollOf(json: Record<string, unknown>): StreamPoll | undefined {
  const { from, stream, create_time: time } = json;
  if (
    nonEmpty(json.msgid) &&
    nonEmpty(json.aibotid) &&
    optionalString(json.chatid) &&
    (json.chattype === 'single' || json.chattype === 'group') &&
    isRecord(from) &&
    nonEmpty(from.userid) &&
    optionalString(from.corpid) &&
    optionalString(json.response_url) &&
    json.quote === undefined &&
    (time === undefined || typeof time === 'number' || typeof time === 'string') &&
    isRecord(stream) &&
    nonEmpty(stream.id)
  )
    return Object.assign(json, { kind: 'stream' as const }) as unknown as StreamPoll;
  return undefined;
}

/** Parses the plaintext of a decrypted callback. Throws WecomError `bad_json` or `bad_message`. */
export function parseMessage(plaintextJson: string, options: ParseOptions = {}): WecomMessage {
  let json: unknown;
  try {
    json = JSON.parse(plaintextJson);
  } catch {
    throw new WecomError('bad_json', 'decrypted callback is not JSON', { length: plaintextJson.length });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new WecomError('bad_message', 'bad message: (root): expected an object', { field: '' });
  }
  // One schema per message, chosen by its msgtype: the common fields are part of each (every poll
  // goes through here, so no second pass over an envelope first).
  const msgtype = (json as { msgtype?: unknown }).msgtype;
  switch (msgtype) {
    case 'stream':
      // Every poll comes here: a well-formed one is checked by hand; anything else goes through the
      // schema, for the same refusal and its precise reason.
      return (
        pollOf(json as Record<string, unknown>) ??
        Object.assign(parseWith(schemas.stream, json), { kind: 'stream' as const })
      );
    case 'text': {
      const m = parseWith(schemas.text, json);
      return { ...m, kind: 'text', ...userExtras(m.chattype, m.text.content, [], options) };
    }
    case 'image': {
      const m = parseWith(schemas.image, json);
      return {
        ...m,
        kind: 'image',
        query: '',
        attachments: [{ type: 'image', url: m.image.url, ...withKey(m.image.aeskey) }],
      };
    }
    case 'mixed': {
      const m = parseWith(schemas.mixed, json);
      const items = m.mixed.msg_item;
      const text = items.flatMap((item) => (item.msgtype === 'text' && item.text ? [item.text.content] : []));
      const images = items.flatMap((item): Attachment[] =>
        item.msgtype === 'image' && item.image
          ? [{ type: 'image', url: item.image.url, ...withKey(item.image.aeskey) }]
          : [],
      );
      return { ...m, kind: 'mixed', ...userExtras(m.chattype, text.join('\n'), images, options) };
    }
    case 'voice': {
      const m = parseWith(schemas.voice, json);
      return { ...m, kind: 'voice', ...userExtras(m.chattype, m.voice.content, [], options) };
    }
    case 'file': {
      const m = parseWith(schemas.file, json);
      return {
        ...m,
        kind: 'file',
        query: '',
        attachments: [{ type: 'file', url: m.file.url, ...withKey(m.file.aeskey) }],
      };
    }
    case 'event':
      return parseEvent(json);
    default:
      return { ...parseWith(envelopeSchema, json), kind: 'unknown' };
  }
}

function parseEvent(json: unknown): EventMessage {
  const envelope = parseWith(eventEnvelopeSchema, json);
  switch (envelope.event.eventtype) {
    case 'enter_chat':
      return { ...parseWith(eventSchemas.enter_chat, json), kind: 'enter_chat' };
    case 'template_card_event':
      return { ...parseWith(eventSchemas.template_card_event, json), kind: 'template_card_event' };
    case 'feedback_event':
      return { ...parseWith(eventSchemas.feedback_event, json), kind: 'feedback_event' };
    default:
      return { ...envelope, kind: 'unknown-event' };
  }
}
