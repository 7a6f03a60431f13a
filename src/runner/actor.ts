// The owner of one stream while its answer runs: an actor. It holds the stream's state and lease,
// and runs the effects the machine names for each recorded fact (authenticate, ask, keep the
// conversation, hand over, finish); each effect's outcome comes back as a command, which `decide`
// (machines/decide.ts) turns into the next facts, recorded through the writer, which name the next
// effects. Commands are handled one at a time, in the order they arrive. What happens from outside
// (the user's /stop, WeCom's window closing, the answer's deadline, a drain) is a command too.
//
// How the user sees the answer is not the actor's business: the delivery port shows what the writer
// records (a poll reply kept with the events, or frames pushed).
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DifyIdentity, type DifyIdentityConfig, difyIdentity } from '../auth/identity.js';
import { type Authenticator, type AuthOutcome, isAuthError } from '../auth/types.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import {
  type AttachedFile,
  advance,
  type Command,
  type DecideSettings,
  decide,
  deliveryFor,
  type Effect,
  type Form,
  IllegalCommand,
  isFinished,
  MAX_IMAGES,
  type StreamContext,
  type StreamEvent,
  type StreamView,
  stateOf,
  type UploadedFile,
} from '../machines/index.js';
import type { Metrics } from '../metrics.js';
import type { Conversations, EventStore, LeaseHolder, Leases, StopRequests } from '../store/port.js';
import { answerErrorLabel, attachmentFailure, failureOf } from './failures.js';
import { LeaseKeeper } from './lease.js';
import { isUnavailable, type Patience, whileStoreDown } from './patience.js';
import { type PieceOptions, Pieces } from './pieces.js';
import {
  type AnswerEvent,
  type AnswerFile,
  type AnswerSource,
  type Delivery,
  isAnswerFailure,
  type MediaSource,
} from './ports.js';
import type { StreamWriter } from './writer.js';

export interface ActorDeps {
  store: EventStore & Leases & Conversations & StopRequests;
  answers: AnswerSource;
  auth: Authenticator;
  delivery: Delivery;
  /** Downloads what users send; without it an image or a file is answered as unsupported. */
  media?: MediaSource;
  config: Pick<Config, 'nodeId' | 'stream'>;
  /** How a user's identity reaches the bot's Dify app (its inputs, its bearer). */
  identity: DifyIdentityConfig;
  settings: DecideSettings;
  logger: Logger;
  metrics: Metrics;
  now: () => number;
  /** Asks the runner to take over a stream whose owner is gone (the head of our line, say). */
  takeOver: (streamId: string) => void;
  /** How often the actor looks at the head of its line (and, at least every third of a lease, for a /stop). */
  checkEveryMs?: number;
  /** How long, and how often, store operations are tried again during an outage (the writer's). */
  storePatience?: Pick<Patience, 'delays' | 'forMs'>;
  /** How the pieces of an answer are told together. */
  pieces?: PieceOptions;
}

/** How long an answer's end waits for one of its images or files, and for all of them. */
const IMAGE_WAIT_MS = 10_000;
const FILES_WAIT_MS = 20_000;
/** The most files of an answer looked at (an `answer.attached` holds at most 100). */
const MAX_FILES = 100;
/** The most image bytes one finished bubble carries (they travel base64 in its reply, twice over). */
const IMAGES_MAX_TOTAL = 10 << 20;

const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');

/** A file's name from its URL's last segment (Dify's file URLs end in the name), or `file`. */
function nameOf(url: string): string {
  try {
    const last = decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
    return last.replace(/[^\p{L}\p{N}._ -]/gu, '').slice(0, 100) || 'file';
  } catch {
    return 'file';
  }
}

/** WeCom's bubble shows PNG and JPEG images (by their first bytes, not by what the server said). */
export function isPngOrJpeg(data: Uint8Array): boolean {
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (data.length >= 8 && png.every((b, i) => data[i] === b)) return true;
  return data.length >= 3 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff;
}

/** How long an answer's end waits for the questions Dify suggests after it. */
const SUGGESTIONS_WAIT_MS = 3_000;

/**
 * Why an actor's asking is let go when the actor ends (every answer does): one reason for all, not an
 * AbortError made (its stack captured) for each.
 */
const actorEnded = new DOMException('the answer’s owner ended', 'AbortError');

/**
 * `run` given a signal that aborts with `signal` or after `ms`, whichever comes first. The timer is
 * cleared once `run` settles (an `AbortSignal.timeout` would fire later anyway, for nothing).
 */
async function within<T>(
  signal: AbortSignal,
  ms: number,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const late = new AbortController();
  const timer = setTimeout(() => late.abort(new DOMException('the wait timed out', 'TimeoutError')), ms);
  try {
    return await run(AbortSignal.any([signal, late.signal]));
  } finally {
    clearTimeout(timer);
  }
}

/** How an actor's work on its stream ended. */
export type Ending =
  /** The answer is settled (completed or failed), what the bubble could not show delivered. */
  | { type: 'settled' }
  /** Given back on shutdown (`stream.released`): another node takes it over. */
  | { type: 'handedOver' }
  /** Another job holds the stream's lease now: it is that job's. */
  | { type: 'lost' }
  /** The store no longer took the answer's events: Dify was let go, nothing more is written. */
  | { type: 'unrecorded'; error: unknown };

/** Where a Dify conversation lives: the user in a single chat, the chat and the user in a group. */
export function conversationScope(m: Pick<StreamContext, 'chattype' | 'chatid' | 'userid'>): string {
  return m.chattype === 'group' && m.chatid ? `${m.chatid}:${m.userid}` : m.userid;
}

export class StreamActor {
  readonly done: Promise<Ending>;
  readonly #d: ActorDeps;
  readonly #w: StreamWriter;
  readonly #holder: LeaseHolder;
  readonly #log: Logger;
  readonly #lease: LeaseKeeper;
  readonly #checkEveryMs: number;
  #state: StreamView;
  /** Whether `#state` is settled (a finished state is final): asked for every piece of the answer. */
  #finished: boolean;
  #inbox: Promise<void> = Promise.resolve();
  /** Commands told and not yet handled; while one is being handled, `#handling`. */
  #queued = 0;
  #handling = false;
  /** The pieces of the answer not yet told. */
  readonly #pieces: Pieces;
  #ending: Ending | undefined;
  #end!: (ending: Ending) => void;
  /** Aborted when the actor stops asking: the answer settled, or the actor ended. */
  readonly #asking = new AbortController();
  /** Whether the ask effect is still at work (uploading, waiting in line, reading Dify). */
  #askRunning = false;
  #authentication: Promise<AuthOutcome> | undefined;
  #conversation: Promise<void> = Promise.resolve();
  #timers: NodeJS.Timeout[] = [];
  #firstVisibleAt = 0;

  /** `effects`: what the events that brought the stream here named (its opening, a takeover). */
  constructor(deps: ActorDeps, writer: StreamWriter, holder: LeaseHolder, effects: readonly Effect[]) {
    this.#d = deps;
    this.#w = writer;
    this.#holder = holder;
    this.#state = writer.snapshot;
    this.#finished = isFinished(this.#state);
    this.#checkEveryMs = deps.checkEveryMs ?? 500;
    // A source read in turns hands on together what came meanwhile: told at once, it is seen as soon
    // as pieces gathered here for ~150 ms would be.
    const pieces = deps.pieces ?? (deps.answers.paceMs ? { flushMs: 0 } : undefined);
    this.#pieces = new Pieces((text, at) => this.#tellNow({ type: 'add', at, text }), pieces);
    const ctx = this.#state.context;
    this.#log = deps.logger.child({
      streamId: writer.streamId,
      msgid: ctx.msgid,
      userid: ctx.userid,
      bot: ctx.bot,
    });
    this.done = new Promise((resolve) => {
      this.#end = resolve;
    });
    writer.onFailed = (error) => void this.#stop({ type: 'unrecorded', error });
    // Time to first visible text: when the first answer text is written, not when Dify sent it.
    writer.onAppended = (events) => {
      deps.delivery.recorded?.(writer.streamId, this.#state);
      if (
        this.#firstVisibleAt ||
        !events.some((e) => e.type === 'answer.delta' || e.type === 'answer.replaced')
      )
        return;
      this.#firstVisibleAt = deps.now();
      deps.metrics.firstToken.observe({ bot: ctx.bot }, (this.#firstVisibleAt - ctx.openedAt) / 1000);
    };
    this.#lease = new LeaseKeeper({
      store: deps.store,
      streamId: writer.streamId,
      holder,
      leaseMs: deps.config.stream.leaseMs,
      onLost: () => void this.#stop({ type: 'lost' }),
      onError: (error) => {
        deps.metrics.storeErrors.inc({ op: 'lease' });
        this.#log.warn({ err: error }, 'lease renewal failed; the answer goes on');
      },
    });
    deps.metrics.inflight.inc({ bot: this.#ctx.bot });
    this.#startTimers();
    for (const effect of effects) this.#run(effect);
  }

  get streamId(): string {
    return this.#w.streamId;
  }

  /** Tell the actor what happened: decided, recorded, and its effects started, in arrival order. */
  tell(command: Command): Promise<void> {
    // The pieces of the answer that came before it are told before it.
    if (command.type !== 'add') this.#pieces.flush();
    this.#queued++;
    const handled = this.#inbox.then(() => {
      this.#queued--;
      this.#handleNow(command);
    });
    this.#inbox = handled.catch(() => undefined);
    return handled;
  }

  /**
   * Tell from a caller that does not wait (the answer's source, a timer): handled at once when nothing
   * told before it waits, else after it, in order. A failure is logged and ends the actor, like an
   * effect's.
   */
  #tellNow(command: Command): void {
    const failed = (error: unknown): void => {
      this.#log.error({ err: error, command: command.type }, 'a command failed unexpectedly');
      void this.#stop({ type: 'unrecorded', error });
    };
    if (command.type !== 'add') this.#pieces.flush();
    if (this.#queued > 0 || this.#handling) {
      this.tell(command).catch(failed);
      return;
    }
    try {
      this.#handleNow(command);
    } catch (error) {
      failed(error);
    }
  }

  #handleNow(command: Command): void {
    this.#handling = true;
    try {
      this.#handle(command);
    } finally {
      this.#handling = false;
    }
  }

  /** Give the stream back (shutdown): recorded as `stream.released`, then the lease is let go. */
  release(): Promise<void> {
    return this.tell({ type: 'release', at: this.#d.now(), node: this.#d.config.nodeId });
  }

  #handle(command: Command): void {
    if (this.#ending) return;
    let events: StreamEvent[];
    try {
      events = decide(command, this.#state, this.#d.settings);
    } catch (error) {
      if (!(error instanceof IllegalCommand)) throw error;
      this.#log.debug({ err: error }, 'command refused');
      return;
    }
    if (events.length === 0) return;
    const effects: Effect[] = [];
    for (const event of events) {
      const [next, named] = advance(this.#state, event);
      this.#state = next;
      this.#finished ||= isFinished(next);
      effects.push(...named);
    }
    // A failed write reaches the actor through the writer's `onFailed`; the promise is not needed.
    void this.#w.record(events, this.#state);
    // Stopped from outside (the user, the deadline): Dify is let go at once, not at its next word.
    if ((command.type === 'stop' || command.type === 'timeOut') && isFinished(this.#state))
      this.#asking.abort();
    for (const effect of effects) this.#run(effect);
  }

  /** Start an effect; its outcome comes back as a command. Never throws: a failure is an outcome. */
  #run(effect: Effect): void {
    const running = (async () => {
      switch (effect.type) {
        case 'authenticate':
          return this.#authenticate();
        case 'ask':
          this.#askRunning = true;
          return this.#ask().finally(() => {
            this.#askRunning = false;
          });
        case 'keepConversation':
          if (effect.conversationId) this.#keepConversation(effect.conversationId);
          return;
        case 'handOver':
          return this.#handOver();
        case 'finish':
          return this.#finish();
      }
    })();
    running.catch((error: unknown) => {
      this.#log.error({ err: error, effect: effect.type }, 'an effect failed unexpectedly');
      void this.#stop({ type: 'unrecorded', error });
    });
  }

  // ---- effects -------------------------------------------------------------------------------

  async #authenticate(): Promise<void> {
    try {
      const outcome = await this.#authenticated();
      await this.tell({ type: 'admit', at: this.#d.now(), outcome });
    } catch (error) {
      this.#log.warn({ err: error }, 'authentication unavailable');
      await this.tell({ type: 'fail', at: this.#d.now(), failure: failureOf(error) });
    }
  }

  /** Who asks: asked once per actor (the effects that need it share the answer). */
  #authenticated(): Promise<AuthOutcome> {
    const { userid, bot } = this.#ctx;
    // The token cache lives in the store's Redis: its outage is waited out like the store's.
    this.#authentication ??= this.#patiently(() => this.#d.auth.authenticate({ userid, bot }), {
      transient: (e) => isAuthError(e) && e.code === 'cache_unavailable',
    });
    return this.#authentication;
  }

  /** Bring the user's files to Dify, wait for the conversation's turn, ask Dify and tell what it says. */
  async #ask(): Promise<void> {
    let identity: DifyIdentity;
    try {
      const outcome = await this.#authenticated();
      if (!outcome.granted) return; // recorded by the authenticate effect
      identity = difyIdentity(outcome, this.#d.identity, this.#ctx.userid);
    } catch (error) {
      this.#log.warn({ err: error }, 'no identity to ask Dify with');
      return this.tell({ type: 'fail', at: this.#d.now(), failure: failureOf(error) });
    }
    if (!(await this.#uploadAttachments(identity))) return;
    if (!(await this.#waitForTurn())) return;
    await this.#askDify(identity);
  }

  /**
   * The user's images and files, downloaded, decrypted and uploaded to Dify once; recorded as
   * `files.uploaded`, so that a takeover asks with the same files. False when the answer cannot go on.
   */
  async #uploadAttachments(identity: DifyIdentity): Promise<boolean> {
    const ctx = this.#ctx;
    if (!ctx.attachments?.length || ctx.files) return true;
    const { media, answers } = this.#d;
    const signal = this.#asking.signal;
    const files: UploadedFile[] = [];
    try {
      if (!media || !answers.upload) throw new Error('this service takes no files');
      for (const attachment of ctx.attachments) {
        const got = await media.fetch(attachment.url, attachment.type, attachment.aesKey);
        if (signal.aborted) return false;
        const uploaded = await answers.upload(got, identity.user, { bearer: identity.bearer, signal });
        files.push({
          type: attachment.type === 'image' ? 'image' : 'document',
          id: uploaded.id,
          name: got.filename,
        });
      }
    } catch (error) {
      if (signal.aborted) return false;
      const failure =
        media && answers.upload
          ? attachmentFailure(error)
          : { code: 'attachment_unsupported' as const, message: String(error) };
      this.#log.warn({ err: error, code: failure.code }, 'the user’s attachment could not be passed on');
      await this.tell({ type: 'fail', at: this.#d.now(), failure });
      return false;
    }
    await this.tell({ type: 'attachFiles', at: this.#d.now(), files });
    return !isFinished(this.#state);
  }

  /** Wait until this stream heads its conversation's line. False when the answer cannot go on. */
  async #waitForTurn(): Promise<boolean> {
    const { store, takeOver } = this.#d;
    const { bot } = this.#ctx;
    const scope = conversationScope(this.#ctx);
    const id = this.streamId;
    const signal = this.#asking.signal;
    for (;;) {
      if (signal.aborted) return false;
      try {
        const line = await store.line(bot, scope);
        if (!line.includes(id)) {
          // Its place was not kept (the join at accept failed, or the line expired): it takes one now,
          // at the end, rather than run beside the answer of this conversation that heads the line.
          await store.joinLine(bot, scope, id);
          continue;
        }
        const head = line[0];
        if (head === id) break;
        const ahead = head ? await store.load(head, { withLease: true }) : undefined;
        if (!head || !ahead || isFinished(ahead.view)) {
          if (head) await store.leaveLine(bot, scope, head);
          continue;
        }
        // The stream ahead has no live owner: it is taken over, so that the line moves on.
        if (!ahead.lease) takeOver(head);
        await this.tell({ type: 'wait', at: this.#d.now(), behind: head });
      } catch (error) {
        if (!isUnavailable(error)) throw error;
        this.#log.warn({ err: error }, 'cannot see the line; waiting');
      }
      await sleep(this.#checkEveryMs, undefined, { signal }).catch(() => undefined);
    }
    await this.tell({ type: 'proceed', at: this.#d.now() });
    return !signal.aborted && !isFinished(this.#state);
  }

  async #askDify(identity: DifyIdentity): Promise<void> {
    const { store, answers, metrics, auth } = this.#d;
    const ctx = this.#ctx;
    const scope = conversationScope(ctx);
    const signal = this.#asking.signal;
    const now = () => this.#d.now();
    try {
      // `/new <question>`: the new conversation starts with this question, once its turn has come.
      if (ctx.fresh && !ctx.conversationId)
        await this.#patiently(() => store.clearConversation(ctx.bot, scope));
      const stored = await this.#patiently(() => store.getConversation(ctx.bot, scope));
      // What the source says is told as it comes, in the source's own call: no promise per piece (and
      // pieces of text together, a few times a second).
      const request = {
        query: ctx.query,
        user: identity.user,
        conversationId: stored,
        inputs: identity.inputs,
        files: ctx.files?.map((f) => ({
          type: f.type,
          transfer_method: 'local_file' as const,
          upload_file_id: f.id,
        })),
        bearer: identity.bearer,
        signal,
      };
      let ended: Promise<void> | undefined;
      let files: AnswerFile[] = [];
      let paused: Form | undefined;
      const onEvent = (event: AnswerEvent): boolean => {
        switch (event.type) {
          case 'conversation_reset':
            this.#log.info('the stored Dify conversation is gone; a new one starts');
            this.#remember(() => store.clearConversation(ctx.bot, scope));
            break;
          case 'started': {
            const { type: _, ...ids } = event;
            this.#tellNow({ type: 'start', at: now(), ids });
            break;
          }
          case 'delta':
            this.#pieces.add(event.text, now());
            break;
          case 'replace':
            this.#tellNow({ type: 'replace', at: now(), text: event.text });
            break;
          case 'paused': {
            const { token, ...form } = event.form;
            const workflowRunId = event.workflowRunId ?? ctx.resume?.workflowRunId;
            // Told at the end, after the answer's files: the stream stops taking them once it waits.
            if (token && workflowRunId) paused = { ...form, token, workflowRunId };
            else
              this.#tellNow({ type: 'add', at: now(), text: `\n\n${this.#d.settings.texts.inputElsewhere}` });
            // The run waits for a person: it is not stopped, only no longer read.
            return true;
          }
          case 'files':
            files = event.files;
            break;
          case 'end': {
            const usage = event.usage ? { usage: event.usage } : {};
            const form = paused;
            // The images and the questions Dify suggests go with the finishing reply: fetched first.
            ended = Promise.all([form ? [] : this.#suggestions(identity), this.#fetchFiles(files)]).then(
              async ([suggested, attached]) => {
                if (attached.length) await this.tell({ type: 'attach', at: now(), files: attached });
                if (form) await this.tell({ type: 'pause', at: now(), form });
                else
                  await this.tell({
                    type: 'end',
                    at: now(),
                    ...usage,
                    ...(suggested.length ? { suggested } : {}),
                  });
              },
            );
            break;
          }
        }
        // Settled on our side (cut at the size limit, stopped, timed out): letting go of the answer
        // makes the source stop Dify's run.
        return !signal.aborted && (event.type === 'end' || !this.#finished);
      };
      const resume = ctx.resume;
      if (resume) {
        if (!answers.resume) throw new Error('this answer source takes no forms');
        await answers.resume(
          {
            formToken: resume.formToken,
            action: resume.action,
            inputs: resume.inputs,
            workflowRunId: resume.workflowRunId,
            user: identity.user,
            again: ctx.takeovers > 0,
            bearer: identity.bearer,
            signal,
          },
          onEvent,
        );
      } else await answers.answer(request, onEvent);
      await ended;
      if (signal.aborted) return;
      // The source ended without a terminal event: never pass a partial answer off as complete. (After
      // its end, or once let go, the stream is settled and this decides nothing.)
      await this.tell({ type: 'endEarly', at: now() });
    } catch (error) {
      if (signal.aborted) return;
      const label = answerErrorLabel(error);
      if (label) metrics.difyErrors.inc({ bot: this.#ctx.bot, code: label });
      this.#log.warn({ err: error }, 'answer failed');
      // Dify refused the user's own token: the next message asks the token service for a new one.
      if (
        identity.bearer &&
        isAnswerFailure(error) &&
        (error.status === 401 || error.code === 'unauthorized')
      )
        await auth
          .tokenRejected?.(ctx.userid, identity.bearer)
          .catch((e: unknown) => this.#log.warn({ err: e }, 'could not forget the refused token'));
      await this.tell({ type: 'fail', at: now(), failure: failureOf(error) });
    }
  }

  /**
   * The answer's files, and which images the bubble can show: each fetched from Dify (never another
   * host), within ANSWER_IMAGE_MAX_BYTES and a few seconds, a PNG or a JPEG; handed to the delivery by
   * its bytes, so that the finishing reply carries them. What cannot be shown is named, with why.
   */
  async #fetchFiles(files: readonly AnswerFile[]): Promise<AttachedFile[]> {
    const { answers, config, delivery } = this.#d;
    const maxBytes = config.stream.imageMaxBytes;
    const usable = !!answers.download && maxBytes > 0 && !this.#ctx.bubble;
    // Files go as files where the transport sends them (the long connection); else as links.
    const sendsFiles = usable && (delivery.sendsFiles?.(this.#state) ?? false);
    /** The bytes the reply carries, by the MD5 their `answer.attached` entry names. */
    const kept: Array<{ md5: string; data: Buffer }> = [];
    let images = 0;
    let sent = 0;
    let total = 0;
    const out: AttachedFile[] = [];
    // All of them within one deadline: the answer's end waits for them.
    const deadline = this.#d.now() + FILES_WAIT_MS;
    for (const file of files.slice(0, MAX_FILES)) {
      const base = { url: file.url, ...(file.name ? { name: file.name } : {}) };
      if (file.type !== 'image') {
        const got =
          sendsFiles && total < IMAGES_MAX_TOTAL && sent < MAX_IMAGES
            ? await this.#fetchOne(file.url, maxBytes, total, deadline)
            : undefined;
        if (got && 'data' in got) {
          const hash = md5(got.data);
          sent++;
          total += got.data.length;
          kept.push({ md5: hash, data: got.data });
          const name = file.name ?? nameOf(file.url);
          out.push({ type: 'file', ...base, name, shown: true, bytes: got.data.length, md5: hash });
        } else out.push({ type: 'file', ...base, shown: false });
        continue;
      }
      const named = (reason?: AttachedFile['reason']): void =>
        void out.push({ type: 'image', ...base, shown: false, ...(reason ? { reason } : {}) });
      if (!usable) {
        // No bubble left; or no images shown here (ANSWER_IMAGE_MAX_BYTES=0): a plain link.
        named(this.#ctx.bubble ? 'no_bubble' : undefined);
        continue;
      }
      if (images >= MAX_IMAGES || total >= IMAGES_MAX_TOTAL) {
        named('too_many');
        continue;
      }
      const got = await this.#fetchOne(file.url, maxBytes, total, deadline);
      if ('reason' in got) {
        named(got.reason);
        continue;
      }
      if (!isPngOrJpeg(got.data)) {
        named('format');
        continue;
      }
      const hash = md5(got.data);
      images++;
      total += got.data.length;
      kept.push({ md5: hash, data: got.data });
      out.push({ type: 'image', ...base, shown: true, bytes: got.data.length, md5: hash });
    }
    // An actor that ended meanwhile has let go of its shelf: nothing is kept for it any more.
    if (kept.length && !this.#ending && !this.#asking.signal.aborted) delivery.attach?.(this.streamId, kept);
    return out;
  }

  /** One file of the answer from Dify, within its bytes and a few seconds; or why not. */
  async #fetchOne(
    url: string,
    maxBytes: number,
    total: number,
    deadline: number,
  ): Promise<{ data: Buffer } | { reason: 'too_large' | 'foreign' | 'failed' }> {
    const download = this.#d.answers.download?.bind(this.#d.answers);
    const left = Math.min(IMAGE_WAIT_MS, deadline - this.#d.now());
    if (!download || left <= 0) return { reason: 'failed' };
    try {
      const { data } = await within(this.#asking.signal, left, (signal) =>
        download(url, { maxBytes: Math.min(maxBytes, IMAGES_MAX_TOTAL - total), signal }),
      );
      return { data };
    } catch (error) {
      const code = (error as { code?: unknown })?.code;
      this.#log.info({ err: error, url: url.split('?')[0] }, 'a file of the answer is named, not sent');
      return { reason: code === 'too_large' ? 'too_large' : code === 'foreign' ? 'foreign' : 'failed' };
    }
  }

  /**
   * The questions the app suggests after this answer, asked for a short while at most (Dify writes them
   * with a model): none when it suggests none, or does not answer in time.
   */
  async #suggestions(identity: DifyIdentity): Promise<string[]> {
    const { answers } = this.#d;
    const ctx = this.#ctx;
    if (!answers.suggested || !ctx.messageId || ctx.bubble || ctx.resume) return [];
    try {
      const suggested = answers.suggested.bind(answers);
      const messageId = ctx.messageId;
      return await within(this.#asking.signal, SUGGESTIONS_WAIT_MS, (signal) =>
        suggested(messageId, identity.user, { bearer: identity.bearer, signal }),
      );
    } catch (error) {
      this.#log.info({ err: error }, 'no suggested questions: the answer ends without them');
      return [];
    }
  }

  /**
   * Dify's conversation id, kept for the next turn, in the background and in order: the answer streams
   * on while the store is unreachable, and the stream's end waits for it (#finish).
   */
  #keepConversation(conversationId: string): void {
    const { bot } = this.#ctx;
    const scope = conversationScope(this.#ctx);
    // Written even when unchanged: each use starts the conversation's 30 days again.
    this.#remember(() => this.#d.store.setConversation(bot, scope, conversationId));
  }

  #remember(op: () => Promise<void>): void {
    this.#conversation = this.#conversation.then(() =>
      whileStoreDown(op, {
        ...this.#d.storePatience,
        now: this.#d.now,
        // A node giving the stream back does not hold its exit for it: the next owner asks Dify again.
        wait: (ms) => (this.#ending ? Promise.reject(new Error('the actor ended')) : sleep(ms)),
      }).catch((error: unknown) => {
        this.#d.metrics.storeErrors.inc({ op: 'conversation' });
        this.#log.warn({ err: error }, 'the conversation id could not be kept; the next turn starts anew');
      }),
    );
  }

  async #handOver(): Promise<void> {
    this.#asking.abort();
    await this.#w.flush().catch(() => undefined);
    await this.#d.store.releaseLease(this.streamId, this.#holder).catch(() => undefined);
    this.#log.info({ answerLength: this.#ctx.answer.length }, 'handed over: another node answers it');
    this.#close({ type: 'handedOver' });
  }

  /** The answer is settled: stop asking, deliver what the bubble could not show, let go of the stream. */
  async #finish(): Promise<void> {
    const { store, metrics } = this.#d;
    await this.#w.flush().catch(() => undefined);
    // An answer Dify ended has let go of Dify by itself (its stream is read to the end and its
    // connection kept); one that ended otherwise (a failure of ours) is let go now.
    if (this.#askRunning) this.#asking.abort();
    if (this.#ending) return;
    await this.#conversation;
    await this.#deliverRest();
    await this.#inbox;
    await this.#w.flush().catch(() => undefined);
    if (this.#ending) return;
    const ctx = this.#ctx;
    await store.leaveLine(ctx.bot, conversationScope(ctx), this.streamId).catch(() => undefined);
    await store.releaseLease(this.streamId, this.#holder).catch(() => undefined);
    const state = stateOf(this.#state);
    const now = this.#d.now();
    metrics.streamsFinished.inc({ bot: ctx.bot, state });
    if (state === 'completed') metrics.completion.observe({ bot: ctx.bot }, (now - ctx.openedAt) / 1000);
    this.#log.info(
      {
        state,
        durationMs: now - ctx.openedAt,
        firstTextMs: this.#firstVisibleAt ? this.#firstVisibleAt - ctx.openedAt : undefined,
        answerLength: ctx.answer.length,
        events: this.#w.version,
        takeovers: ctx.takeovers || undefined,
        code: ctx.error?.code ?? ctx.denied?.reason,
        delivery: ctx.delivery?.status,
      },
      'stream outcome',
    );
    this.#close({ type: 'settled' });
  }

  /** Send what the bubble could not show (response_url), once, and record how it went. */
  async #deliverRest(): Promise<void> {
    const { delivery, metrics, settings } = this.#d;
    const markdown = deliveryFor(this.#state, settings.texts);
    if (markdown === undefined) return;
    let outcome: { sent: number } | { failed: string };
    try {
      await delivery.sendRest(this.#state, markdown);
      metrics.deliveries.inc({ bot: this.#ctx.bot, outcome: 'sent' });
      outcome = { sent: Buffer.byteLength(markdown) };
    } catch (error) {
      metrics.deliveries.inc({ bot: this.#ctx.bot, outcome: 'failed' });
      this.#log.warn({ err: error }, 'delivery through response_url failed');
      outcome = { failed: error instanceof Error ? error.message : String(error) };
    }
    await this.tell({ type: 'recordDelivery', at: this.#d.now(), outcome });
  }

  // ---- from outside --------------------------------------------------------------------------

  #startTimers(): void {
    const { store, config } = this.#d;
    this.#lease.start();
    // A /stop reaches the runner at once (StopRequests.onStopRequested); the flag is looked at now
    // and then too, for a request this node missed (its listening connection was down).
    const check = setInterval(
      () => {
        store.isStopRequested(this.streamId).then(
          (stop) => {
            if (stop) void this.tell({ type: 'stop', at: this.#d.now() });
          },
          () => undefined,
        );
      },
      Math.max(this.#checkEveryMs, config.stream.leaseMs / 3),
    );
    check.unref();
    // WeCom polls for a fixed window after the message (docs/protocol/wecom.md §9.2): close the bubble
    // a margin before its end.
    const openedAt = this.#ctx.openedAt;
    const closeAt = openedAt + config.stream.windowMs - config.stream.marginMs;
    const window = setTimeout(
      () => void this.tell({ type: 'closeWindow', at: this.#d.now() }),
      Math.max(0, closeAt - this.#d.now()),
    );
    window.unref();
    // No answer runs for ever, even on a Dify that keeps pinging: the user is told, and the slot freed.
    const deadline = setTimeout(
      () => void this.tell({ type: 'timeOut', at: this.#d.now() }),
      Math.max(0, openedAt + config.stream.answerTimeoutMs - this.#d.now()),
    );
    deadline.unref();
    this.#timers.push(check, window, deadline);
  }

  /**
   * The stream is no longer this actor's to write: another job holds its lease, or the store stopped
   * taking its events. In the second case the answer is counted and logged as not recorded (never as
   * completed) and its lease let go, so that a node takes it over once the store answers again; if
   * another job holds the lease meanwhile, it is that job's to account for.
   */
  async #stop(ending: Extract<Ending, { type: 'lost' | 'unrecorded' }>): Promise<void> {
    if (this.#ending) return;
    this.#close(ending);
    if (ending.type === 'lost') {
      this.#log.warn('another node owns the stream now');
      return;
    }
    const { store, metrics } = this.#d;
    const lease = await store.getLease(this.streamId).catch(() => undefined);
    if (lease && lease.token !== this.#holder.token) {
      this.#log.warn('another node owns the stream now');
      return;
    }
    await store.releaseLease(this.streamId, this.#holder).catch(() => undefined);
    metrics.streamsFinished.inc({ bot: this.#ctx.bot, state: 'unrecorded' });
    const ctx = this.#ctx;
    this.#log.warn(
      {
        state: 'unrecorded',
        durationMs: this.#d.now() - ctx.openedAt,
        answerLength: ctx.answer.length,
        events: this.#w.version,
        err: ending.error,
      },
      'stream outcome',
    );
  }

  /** The actor ends: nothing more runs, nothing more is written. */
  #close(ending: Ending): void {
    if (this.#ending) return;
    this.#ending = ending;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#lease.stop();
    this.#asking.abort(actorEnded);
    this.#pieces.dispose();
    this.#d.delivery.forget?.(this.streamId);
    this.#d.metrics.inflight.dec({ bot: this.#ctx.bot });
    this.#end(ending);
  }

  // ---- helpers -------------------------------------------------------------------------------

  get #ctx(): StreamContext {
    return this.#state.context;
  }

  /** A store operation the answer needs, tried again while the store is unreachable (patience.ts). */
  #patiently<T>(op: () => Promise<T>, options: Pick<Patience, 'transient'> = {}): Promise<T> {
    return whileStoreDown(op, {
      ...this.#d.storePatience,
      ...options,
      now: this.#d.now,
      wait: (ms) => sleep(ms, undefined, { signal: this.#asking.signal }),
      onError: (error) => {
        if ((options.transient ?? isUnavailable)(error))
          this.#log.warn({ err: error }, 'the store is unreachable; trying again');
      },
    });
  }
}
