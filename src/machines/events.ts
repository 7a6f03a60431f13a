// The facts of a conversation stream: one schema per event type, parsed on every read.
// An event of a type this version does not know is kept as `UnknownEvent`: it is shown by
// replay and ignored by the fold, so a newer node's events never break an older node's polls.
import { z } from 'zod';
import { isFailureCode } from './failures.js';

const at = z.number().int().nonnegative();

/** The user info a granted authentication carries. Never a secret. */
export const grantedUserSchema = z.looseObject({
  /** The stable id Dify sees as `user`. */
  id: z.string().min(1),
  name: z.string().optional(),
  department: z.string().optional(),
});
export type GrantedUser = z.infer<typeof grantedUserSchema>;

export const attachmentSchema = z.looseObject({
  type: z.enum(['image', 'file']),
  url: z.string().min(1),
  /** Long connection: the file's own key (base64), where callbacks use the bot's EncodingAESKey. */
  aesKey: z.string().optional(),
});
export type Attachment = z.infer<typeof attachmentSchema>;

/** A file uploaded to Dify for the question (POST /files/upload), by its Dify id. */
export const uploadedFileSchema = z.looseObject({
  type: z.enum(['image', 'document']),
  id: z.string().min(1),
  name: z.string().optional(),
});
export type UploadedFile = z.infer<typeof uploadedFileSchema>;

/**
 * A form a Dify run paused on, waiting for a person (human input): what the user is shown, the buttons
 * they may choose, and what answering it takes (the form's token, the run to resume).
 */
export const formSchema = z.looseObject({
  token: z.string().min(1),
  title: z.string(),
  content: z.string(),
  actions: z.array(z.looseObject({ id: z.string().min(1), title: z.string(), style: z.string().optional() })),
  /** What a click submits for the form's fields (a button fills none). */
  defaults: z.record(z.string(), z.string()).optional(),
  /** When the form stops taking answers (ms since the epoch). */
  expiresAt: z.number().optional(),
  workflowRunId: z.string().optional(),
});
export type Form = z.infer<typeof formSchema>;

/** A file of an answer, and whether the bubble shows it (an image) or names it with its link. */
export const attachedFileSchema = z.looseObject({
  type: z.enum(['image', 'file']),
  url: z.string().min(1),
  name: z.string().optional(),
  shown: z.boolean(),
  bytes: z.number().int().nonnegative().optional(),
  md5: z.string().optional(),
  /**
   * Why an image is named rather than shown: too large, not a PNG or JPEG, not fetched, past WeCom's
   * ten, not on the Dify server, or no bubble left to show it.
   */
  reason: z.enum(['too_large', 'format', 'failed', 'too_many', 'foreign', 'no_bubble']).optional(),
});
export type AttachedFile = z.infer<typeof attachedFileSchema>;

/** The answer of a form, given in a stream of its own that resumes the paused run. */
export const resumeSchema = z.looseObject({
  /** The stream whose run paused on the form. */
  of: z.string().min(1),
  formToken: z.string().min(1),
  action: z.string().min(1),
  actionText: z.string(),
  workflowRunId: z.string().min(1),
  inputs: z.record(z.string(), z.string()).optional(),
  /** Who clicked (the answer runs as the user who asked: Dify resumes a run for its own user). */
  by: z.string().optional(),
});
export type Resume = z.infer<typeof resumeSchema>;

export const eventSchemas = {
  'stream.opened': z.looseObject({
    type: z.literal('stream.opened'),
    at,
    streamId: z.string().min(1),
    msgid: z.string().min(1),
    bot: z.string(),
    userid: z.string().min(1),
    chatid: z.string().optional(),
    chattype: z.enum(['single', 'group']),
    query: z.string(),
    responseUrl: z.string().optional(),
    /** Long connection: the req_id of the frame that brought the message; the answer's frames carry it. */
    replyTo: z.string().optional(),
    /** The node that accepted the message. */
    node: z.string().optional(),
    /** `/new <question>`: the question starts a new Dify conversation when its turn comes. */
    fresh: z.boolean().optional(),
    /** Images and files the user sent: encrypted downloads, valid for 5 minutes (docs/protocol/wecom.md §7). */
    attachments: z.array(attachmentSchema).optional(),
    /** A click on a form's button: this stream answers the form and reads the rest of the paused run. */
    resume: resumeSchema.optional(),
    /** No bubble shows this answer (no message of the user's opened one): it goes as a message of its own. */
    apart: z.boolean().optional(),
  }),
  'stream.queued': z.looseObject({
    type: z.literal('stream.queued'),
    at,
    /** The stream of the same conversation this one waits for. */
    behind: z.string(),
  }),
  'stream.dequeued': z.looseObject({ type: z.literal('stream.dequeued'), at }),
  /** A command (/new, /help, /stop) answered at once, without Dify. */
  'command.handled': z.looseObject({
    type: z.literal('command.handled'),
    at,
    command: z.string(),
    text: z.string(),
  }),
  'auth.granted': z.looseObject({ type: z.literal('auth.granted'), at, user: grantedUserSchema }),
  'auth.denied': z.looseObject({
    type: z.literal('auth.denied'),
    at,
    reason: z.string(),
    /** The user-facing text, decided by the owner from its settings, so every node renders the same. */
    text: z.string().optional(),
  }),
  /** The user's attachments, downloaded, decrypted and uploaded to Dify: a takeover reuses them. */
  'files.uploaded': z.looseObject({
    type: z.literal('files.uploaded'),
    at,
    files: z.array(uploadedFileSchema),
  }),
  'dify.started': z.looseObject({
    type: z.literal('dify.started'),
    at,
    conversationId: z.string().optional(),
    messageId: z.string().optional(),
    taskId: z.string().optional(),
    workflowRunId: z.string().optional(),
  }),
  'answer.delta': z.looseObject({ type: z.literal('answer.delta'), at, text: z.string() }),
  'answer.replaced': z.looseObject({ type: z.literal('answer.replaced'), at, text: z.string() }),
  'answer.completed': z.looseObject({
    type: z.literal('answer.completed'),
    at,
    usage: z.record(z.string(), z.unknown()).optional(),
    /** The answer reached ANSWER_MAX_BYTES: what Dify said past it was not kept, and Dify was stopped. */
    cut: z.boolean().optional(),
  }),
  'answer.failed': z
    .looseObject({
      type: z.literal('answer.failed'),
      at,
      code: z.string(),
      message: z.string(),
      /** The user-facing text when the owner chose one; otherwise render maps `code`. */
      text: z.string().optional(),
    })
    // A code this version does not know (a newer node's) reads as `internal`, its own name kept in
    // the message: the stream still settles in error here, with the default text.
    .transform((e) =>
      isFailureCode(e.code)
        ? { ...e, code: e.code }
        : { ...e, code: 'internal' as const, message: `${e.code}: ${e.message}` },
    ),
  /** Another node claimed the stream after its owner's lease ran out, and answers again from the start. */
  'stream.taken_over': z.looseObject({
    type: z.literal('stream.taken_over'),
    at,
    node: z.string(),
    attempt: z.number().int().positive(),
    previousNode: z.string().optional(),
  }),
  /** The owner handed its lease back (graceful shutdown); the next poll takes it over at once. */
  'stream.released': z.looseObject({ type: z.literal('stream.released'), at, node: z.string() }),
  /** The WeCom bubble was closed before the answer ended (6-minute window); the rest goes by response_url. */
  'bubble.closed': z.looseObject({
    type: z.literal('bubble.closed'),
    at,
    reason: z.enum(['window', 'overflow']),
    /** The content the bubble was finished with. */
    text: z.string(),
    /** How many characters of the answer the bubble shows; the delivery sends what follows them. */
    shown: z.number().int().nonnegative().optional(),
  }),
  /** A user rated the answer in WeCom (feedback_event); `forwarded` when Dify took the rating too. */
  'feedback.given': z.looseObject({
    type: z.literal('feedback.given'),
    at,
    rating: z.enum(['like', 'dislike']).nullable(),
    /** The WeCom user who rated: in a group, not always the one who asked. */
    by: z.string(),
    content: z.string().optional(),
    forwarded: z.boolean(),
    problem: z.string().optional(),
  }),
  /** The answer's files: the images its bubble shows, and what it names with a link. */
  'answer.attached': z.looseObject({
    type: z.literal('answer.attached'),
    at,
    files: z.array(attachedFileSchema).max(100),
  }),
  /** The questions Dify suggests the user ask next: the finished answer offers them as buttons. */
  'answer.suggested': z.looseObject({
    type: z.literal('answer.suggested'),
    at,
    questions: z.array(z.string().min(1)).max(10),
  }),
  /** The run paused on a form: the user gets its buttons, and the stream waits for a person to choose. */
  'input.required': z.looseObject({ type: z.literal('input.required'), at, form: formSchema }),
  /** Somebody chose a button of the form; `answeredIn` is the stream that resumes the run. */
  'input.given': z.looseObject({
    type: z.literal('input.given'),
    at,
    by: z.string().min(1),
    action: z.string().min(1),
    actionText: z.string(),
    answeredIn: z.string().min(1),
  }),
  /** The form's deadline passed before anybody chose (found when somebody clicked too late). */
  'input.expired': z.looseObject({ type: z.literal('input.expired'), at, by: z.string().optional() }),
  'delivery.sent': z.looseObject({ type: z.literal('delivery.sent'), at, bytes: z.number().int() }),
  'delivery.failed': z.looseObject({ type: z.literal('delivery.failed'), at, message: z.string() }),
} as const;

export type EventType = keyof typeof eventSchemas;
export const eventTypes = Object.keys(eventSchemas) as EventType[];

export type StreamEvent = { [K in EventType]: z.infer<(typeof eventSchemas)[K]> }[EventType];
export type EventOf<K extends EventType> = Extract<StreamEvent, { type: K }>;

/** An event this version cannot read: a newer type, or a known type whose payload does not parse. */
export interface UnknownEvent {
  type: string;
  at?: number | undefined;
  unknown: true;
  /** Why it could not be read. */
  problem: string;
  raw: unknown;
}

export type ReadEvent = StreamEvent | UnknownEvent;

export const isKnown = (e: ReadEvent): e is StreamEvent => !('unknown' in e && e.unknown === true);

/** Parse one stored event. Never throws: what cannot be read becomes an `UnknownEvent`. */
export function parseEvent(raw: unknown): ReadEvent {
  const type =
    typeof raw === 'object' && raw !== null && typeof (raw as { type?: unknown }).type === 'string'
      ? (raw as { type: string }).type
      : '(none)';
  const rawAt = typeof raw === 'object' && raw !== null ? (raw as { at?: unknown }).at : undefined;
  const atValue = typeof rawAt === 'number' ? rawAt : undefined;
  // Own properties only: a stored type such as "constructor" must not find Object's prototype.
  const schema = Object.hasOwn(eventSchemas, type)
    ? (eventSchemas as Record<string, z.ZodType<StreamEvent>>)[type]
    : undefined;
  if (!schema) return { type, at: atValue, unknown: true, problem: `unknown event type "${type}"`, raw };
  const parsed = schema.safeParse(raw);
  if (parsed.success) {
    // `unknown` marks what could not be read; a newer version's extra field of that name must not.
    if ('unknown' in parsed.data) delete (parsed.data as { unknown?: unknown }).unknown;
    return parsed.data;
  }
  const issue = parsed.error.issues[0];
  const problem = `invalid ${type}: ${issue ? `${issue.path.join('.') || '(root)'} ${issue.message}` : 'bad payload'}`;
  return { type, at: atValue, unknown: true, problem, raw };
}

/** Parse a JSON string as stored in Redis. */
export function parseEventJson(json: string): ReadEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return { type: '(unparseable)', unknown: true, problem: 'not JSON', raw: json };
  }
  return parseEvent(raw);
}
