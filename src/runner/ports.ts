// What the owner of a stream needs from the outside world, as narrow interfaces: the source of the
// answer (Dify), how the user sees the answer (the delivery: a poll reply kept with the events, or
// frames pushed over a connection), and the download of what users send. The adapters live in
// src/dify and src/wecom; tests may pass fakes. Nothing here imports an adapter.
import type { DifyIdentityConfig } from '../auth/identity.js';
import type { Authenticator } from '../auth/types.js';
import type { ReplyProjection, StreamView, Texts } from '../machines/index.js';

/** What the answer source streams, in order: its ids, the text, its end. */
export type AnswerEvent =
  /** The stored conversation was unknown to the source: the question was asked again without it. */
  | { type: 'conversation_reset' }
  | { type: 'started'; conversationId?: string; messageId?: string; taskId?: string; workflowRunId?: string }
  | { type: 'delta'; text: string }
  | { type: 'replace'; text: string }
  /** The answer's files (tool images, workflow outputs), before its `end`, each once, URLs absolute. */
  | { type: 'files'; files: AnswerFile[] }
  /** The run paused on a form a person answers (human input); its `end` follows. */
  | { type: 'paused'; form: AnswerForm; workflowRunId?: string }
  | { type: 'end'; usage?: Record<string, unknown> };

/** A file of an answer: `type` image, document, audio, video or custom. */
export interface AnswerFile {
  id?: string | undefined;
  type: string;
  url: string;
  name?: string | undefined;
}

/** A form a run paused on: what the user reads, the buttons, and the token that answers it. */
export interface AnswerForm {
  token?: string | undefined;
  title: string;
  content: string;
  actions: Array<{ id: string; title: string; style?: string | undefined }>;
  defaults: Record<string, string>;
  expiresAt?: number | undefined;
}

/** The answer of a form (the button chosen), and the paused run it resumes. */
export interface ResumeRequest {
  formToken: string;
  action: string;
  inputs?: Record<string, string> | undefined;
  workflowRunId: string;
  user: string;
  /** Answering again after a takeover: a form found answered already was answered by this answer. */
  again?: boolean | undefined;
  bearer?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** A file already uploaded to the source, as a question names it (docs/protocol/dify.md §2.5). */
export interface AnswerFileRef {
  type: 'image' | 'document';
  transfer_method: 'local_file';
  upload_file_id: string;
}

export interface AnswerRequest {
  query: string;
  user: string;
  conversationId?: string | undefined;
  inputs?: Record<string, string> | undefined;
  files?: AnswerFileRef[] | undefined;
  bearer?: string | undefined;
  /** Aborting it lets go of the answer: the source stops its run. */
  signal?: AbortSignal | undefined;
}

/**
 * How an answer source fails: every error it throws carries one of these kinds (the runner maps each
 * to a failure code the user reads), its own short code, and whether that code is one it knows (a
 * bounded metric label).
 */
export type AnswerFailureKind =
  | 'unreachable'
  | 'timeout'
  | 'rate_limited'
  | 'quota'
  | 'misconfigured'
  | 'not_found'
  | 'interrupted'
  | 'server'
  | 'aborted'
  | 'failed';

export interface AnswerFailure {
  kind: AnswerFailureKind;
  code: string;
  /** Whether `code` is one the source documents (else it counts as `other` in metrics). */
  known: boolean;
  status?: number | undefined;
}

export const isAnswerFailure = (error: unknown): error is Error & AnswerFailure =>
  error instanceof Error && typeof (error as Partial<AnswerFailure>).kind === 'string' && 'known' in error;

export interface AnswerSource {
  /**
   * Set where the source reads its answers in turns of this many ms at most (a Dify not behind a
   * proxy, src/dify/readPace.ts): what came meanwhile is handed on at once, so the owner tells it at
   * once rather than gathering pieces for another ~150 ms of its own.
   */
  readonly paceMs?: number | undefined;
  /**
   * Ask, and hand each event of the answer to `onEvent` as it comes: in order and synchronously (the
   * owner records it then and there, with no promise per piece of text). Resolves after the last
   * event; rejects with the failure. `onEvent` returning false lets go of the answer, as aborting the
   * request's signal does: the source reads no more and stops its run.
   */
  answer(request: AnswerRequest, onEvent: (event: AnswerEvent) => unknown): Promise<void>;
  /**
   * Answer a form the run paused on and read the rest of the run, handed on as `answer`'s events are;
   * absent where the source has no forms.
   */
  resume?(request: ResumeRequest, onEvent: (event: AnswerEvent) => unknown): Promise<void>;
  /**
   * The questions the source suggests asking after an answer (none where the app does not suggest);
   * absent where the source suggests none.
   */
  suggested?(
    messageId: string,
    user: string,
    options?: { bearer?: string | undefined; signal?: AbortSignal | undefined },
  ): Promise<string[]>;
  /** Rate an answer (`null` takes a rating back); absent where the source takes no ratings. */
  feedback?(
    messageId: string,
    rating: 'like' | 'dislike' | null,
    user: string,
    content?: string,
    options?: { bearer?: string | undefined },
  ): Promise<void>;
  /**
   * Download a file of an answer from the source (never another host), at most `maxBytes` (more is
   * an error with the code `too_large`); absent where answers have no files to show.
   */
  download?(
    url: string,
    options: { maxBytes: number; signal?: AbortSignal | undefined },
  ): Promise<{ data: Buffer; contentType?: string | undefined }>;
  /** Upload a file for a later request's `files`; absent where the source takes no files. */
  upload?(
    file: { data: Uint8Array; filename: string; contentType: string },
    user: string,
    options?: { bearer?: string | undefined; signal?: AbortSignal | undefined },
  ): Promise<{ id: string }>;
}

/**
 * How the user sees an answer: its transport. The owner records events; the delivery shows them.
 * Polled (WeCom asks for the answer about once a second): the reply a poll sends is kept with each
 * append, as a projection, and there is nothing to push. Pushed (frames over a connection): each
 * append is sent on. Either way what the bubble could not show goes as a separate message, once.
 */
export interface Delivery {
  /** What a poll answers after these events (in the bot's `texts`), kept with them; absent for a pushed transport. */
  projection?(view: StreamView, streamId: string, texts: Texts): ReplyProjection;
  /** Told after each append, with the stream as it now is (a pushed transport sends it on). */
  recorded?(streamId: string, view: StreamView): void;
  /**
   * Send, once, what the bubble could not show (the rest of a long or late answer, or why it
   * failed): resolves when the user's side took it, throws when it did not.
   */
  sendRest(view: StreamView, markdown: string): Promise<void>;
  /**
   * The bytes of the answer's images and files it shows or sends (each by the MD5 its
   * `answer.attached` names), before its end is recorded: the finishing reply carries them (WeCom's
   * `msg_item`; files for the long connection). Kept by this node until `forget`.
   */
  attach?(streamId: string, items: ReadonlyArray<{ md5: string; data: Buffer }>): void;
  /** Whether this stream's transport sends an answer's files as files (else they are links). */
  sendsFiles?(view: StreamView): boolean;
  /** The stream's owner let go of it: what was kept for it goes. */
  forget?(streamId: string): void;
}

/** Posts a markdown message to a WeCom response_url (docs/protocol/wecom.md §8). */
export interface ResponseUrlSender {
  deliver(responseUrl: string, markdown: string): Promise<void>;
}

/** Downloads and decrypts an image or file a user sent (docs/protocol/wecom.md §7). */
export interface MediaSource {
  /** `aesKey`: the file's own key (long connection); else the bot's. */
  fetch(
    url: string,
    kind: 'image' | 'file',
    aesKey?: string,
  ): Promise<{ data: Buffer; filename: string; contentType: string }>;
}

/**
 * One bot, as its answers need it: where its questions go, who may ask it, how its users' files are
 * fetched, what its users read, how a user's identity reaches its Dify app, and the secret its stream
 * ids are derived from. An answer takes its bot when it starts and keeps it: a bot changed or removed
 * meanwhile (the bots file read again) does not change an answer already running.
 */
export interface Bot {
  /** The bot's id (`default` for the one bot of the environment): it names the bot in keys and logs. */
  id: string;
  answers: AnswerSource;
  auth: Authenticator;
  media?: MediaSource | undefined;
  texts: Texts;
  identity: DifyIdentityConfig;
  /** A secret of the bot's that every node has and no user does: stream ids are derived from it. */
  secret: string;
}

/** The bots a node serves now. */
export interface Bots {
  bot(id: string): Bot | undefined;
}
