// The owner's work on one stream (DESIGN.md "The shape"): hold its lease, authenticate the user, wait
// for the conversation's turn, ask Dify and write the answer, finish the bubble at the end of WeCom's
// polling window or when the answer outgrows it, and deliver through response_url what the bubble
// could not show. It ends when the stream is settled, handed over (drain) or lost to another node.
import { setTimeout as sleep } from 'node:timers/promises';
import { difyIdentity } from '../auth/identity.js';
import { type Authenticator, type AuthOutcome, isAuthError } from '../auth/types.js';
import type { Config } from '../config.js';
import { isDifyError } from '../dify/errors.js';
import type { Logger } from '../log.js';
import {
  closeBubble,
  cutUtf8,
  deliveryFor,
  isFinished,
  MAX_CONTENT_BYTES,
  overflows,
  type StreamContext,
  stateOf,
  type Texts,
  type UploadedFile,
} from '../machines/index.js';
import type { Metrics } from '../metrics.js';
import type { LeaseHolder, StreamStore } from '../store/port.js';
import { attachmentFailure, difyErrorCode, failureOf } from './failures.js';
import { LeaseKeeper } from './lease.js';
import { isConflict, isUnavailable, type Patience, whileStoreDown } from './patience.js';
import type { AnswerSource, Delivery, MediaSource } from './ports.js';
import type { StreamWriter } from './writer.js';

/**
 * Why an answer was cut short from outside: the user's /stop, a drain, the lease gone elsewhere, the
 * answer running past ANSWER_TIMEOUT_SECONDS, or the store no longer taking its events.
 */
export type AbortReason = 'stop' | 'drain' | 'lease_lost' | 'timeout' | 'unrecorded';

export interface OwnerDeps {
  store: StreamStore;
  answers: AnswerSource;
  auth: Authenticator;
  delivery: Delivery;
  /** Downloads what users send; without it an image or a file is answered as unsupported. */
  media?: MediaSource;
  config: Pick<Config, 'nodeId' | 'dify' | 'stream' | 'wecom' | 'limits'>;
  logger: Logger;
  metrics: Metrics;
  texts: Texts;
  now: () => number;
  /** Asks the runner to take over a stream whose owner is gone (the head of our line, say). */
  takeOver: (streamId: string) => void;
  /** How often the owner looks for a /stop and at the head of its line. */
  checkEveryMs?: number;
  /** How long, and how often, store operations are tried again during an outage (the writer's). */
  storePatience?: Pick<Patience, 'delays' | 'forMs'>;
}

/** Where a Dify conversation lives: the user in a single chat, the chat and the user in a group. */
export function conversationScope(m: Pick<StreamContext, 'chattype' | 'chatid' | 'userid'>): string {
  return m.chattype === 'group' && m.chatid ? `${m.chatid}:${m.userid}` : m.userid;
}

class Lost extends Error {
  override readonly name = 'Lost';
}

class TimedOut extends Error {
  override readonly name = 'TimedOut';
}

const timedOut = {
  code: 'answer_timeout',
  message: 'the answer ran past ANSWER_TIMEOUT_SECONDS',
} as const;

export class OwnerJob {
  readonly done: Promise<void>;
  readonly #d: OwnerDeps;
  readonly #w: StreamWriter;
  readonly #abort = new AbortController();
  readonly #log: Logger;
  readonly #lease: LeaseKeeper;
  readonly #checkEveryMs: number;
  #timers: NodeJS.Timeout[] = [];
  readonly #holder: LeaseHolder;
  #lost = false;
  #firstVisibleAt = 0;
  #answerBytes = 0;
  #conversation: Promise<void> = Promise.resolve();

  constructor(deps: OwnerDeps, writer: StreamWriter, holder: LeaseHolder) {
    this.#d = deps;
    this.#w = writer;
    this.#holder = holder;
    this.#checkEveryMs = deps.checkEveryMs ?? 500;
    const ctx = writer.snapshot.context;
    this.#log = deps.logger.child({ streamId: writer.streamId, msgid: ctx.msgid, userid: ctx.userid });
    // The store no longer takes this answer's events: it is stopped now, not read to its end.
    writer.onFailed = () => this.abort('unrecorded');
    this.#lease = new LeaseKeeper({
      store: deps.store,
      streamId: writer.streamId,
      holder,
      leaseMs: deps.config.stream.leaseMs,
      onLost: () => this.abort('lease_lost'),
      onError: (error) => {
        deps.metrics.storeErrors.inc({ op: 'lease' });
        this.#log.warn({ err: error }, 'lease renewal failed; the answer goes on');
      },
    });
    // Time to first visible text: when the first answer text is written, not when Dify sent it.
    writer.onAppended = (events) => {
      if (
        this.#firstVisibleAt ||
        !events.some((e) => e.type === 'answer.delta' || e.type === 'answer.replaced')
      )
        return;
      this.#firstVisibleAt = this.#now();
      deps.metrics.firstToken.observe((this.#firstVisibleAt - this.#ctx.openedAt) / 1000);
    };
    this.done = this.#run();
  }

  get streamId(): string {
    return this.#w.streamId;
  }

  abort(reason: AbortReason): void {
    if (!this.#abort.signal.aborted) this.#abort.abort(reason);
  }

  get #reason(): AbortReason | undefined {
    return this.#abort.signal.aborted ? (this.#abort.signal.reason as AbortReason) : undefined;
  }

  get #ctx(): StreamContext {
    return this.#w.snapshot.context;
  }

  async #run(): Promise<void> {
    const { metrics } = this.#d;
    metrics.inflight.inc();
    this.#startTimers();
    try {
      if (!this.#w.finished) await this.#answer();
    } catch (error) {
      if (this.#w.failure) {
        // #finish tells a takeover (another job holds the lease now) from a store that failed us.
        this.#log.warn({ err: this.#w.failure }, 'the answer could not be recorded; Dify was let go');
      } else if (error instanceof Lost || this.#reason === 'lease_lost' || isConflict(error)) {
        this.#lost = true;
        this.#log.warn(
          { err: error instanceof Lost ? undefined : error },
          'another node owns the stream now',
        );
      } else if (error instanceof TimedOut || this.#reason === 'timeout') {
        this.#log.warn('the answer ran out of time');
        await this.#emit({ type: 'answer.failed', at: this.#now(), ...timedOut }).catch(() => undefined);
      } else if (this.#reason !== 'drain') {
        this.#log.error({ err: error }, 'the answer could not be recorded');
        await this.#fail(error);
      }
    } finally {
      await this.#finish().catch((error: unknown) => this.#log.error({ err: error }, 'finishing failed'));
      metrics.inflight.dec();
    }
  }

  async #answer(): Promise<void> {
    const { auth, config } = this.#d;
    const ctx = this.#ctx;
    let outcome: AuthOutcome;
    try {
      // The token cache lives in the store's Redis: its outage is waited out like the store's.
      outcome = await this.#patiently(() => auth.authenticate({ userid: ctx.userid, bot: ctx.bot }), {
        transient: (e) => isAuthError(e) && e.code === 'cache_unavailable',
      });
    } catch (error) {
      this.#log.warn({ err: error }, 'authentication unavailable');
      await this.#fail(error);
      return;
    }
    this.#checkAbort();
    if (stateOf(this.#w.snapshot) === 'authenticating') {
      if (!outcome.granted) {
        await this.#emit({
          type: 'auth.denied',
          at: this.#now(),
          reason: outcome.reason,
          text: outcome.text,
        });
        return;
      }
      await this.#emit({ type: 'auth.granted', at: this.#now(), user: outcome.user });
    } else if (!outcome.granted) {
      // Taken over after the first grant, and the user lost access in between.
      await this.#emit({
        type: 'answer.failed',
        at: this.#now(),
        code: 'denied',
        message: outcome.reason,
        text: outcome.text,
      });
      return;
    }
    let identity: ReturnType<typeof difyIdentity>;
    try {
      identity = difyIdentity(outcome, config.dify, ctx.userid);
    } catch (error) {
      this.#log.warn({ err: error }, 'no identity to ask Dify with');
      await this.#fail(error);
      return;
    }
    // Before waiting in line: the download links of what the user sent last five minutes only.
    if (!(await this.#uploadAttachments(identity))) return;
    await this.#waitForTurn();
    await this.#ask(identity);
  }

  /**
   * The user's images and files, downloaded, decrypted and uploaded to Dify once; recorded as
   * `files.uploaded`, so that a takeover asks with the same files. False when the stream failed.
   */
  async #uploadAttachments(identity: ReturnType<typeof difyIdentity>): Promise<boolean> {
    const ctx = this.#ctx;
    if (!ctx.attachments?.length || ctx.files) return true;
    const { media, answers } = this.#d;
    const files: UploadedFile[] = [];
    try {
      if (!media || !answers.upload) throw new Error('this service takes no files');
      for (const attachment of ctx.attachments) {
        const got = await media.fetch(attachment.url, attachment.type);
        this.#checkAbort();
        const uploaded = await answers.upload(got, identity.user, {
          bearer: identity.bearer,
          signal: this.#abort.signal,
        });
        files.push({
          type: attachment.type === 'image' ? 'image' : 'document',
          id: uploaded.id,
          name: got.filename,
        });
      }
    } catch (error) {
      const reason = this.#reason;
      if (error instanceof Lost || error instanceof TimedOut || (reason && reason !== 'stop')) throw error;
      if (reason === 'stop') {
        await this.#stopped();
        return false;
      }
      const failure =
        media && answers.upload
          ? attachmentFailure(error)
          : { code: 'attachment_unsupported', message: String(error) };
      this.#log.warn({ err: error, code: failure.code }, 'the user’s attachment could not be passed on');
      await this.#emit({ type: 'answer.failed', at: this.#now(), ...failure });
      return false;
    }
    await this.#emit({ type: 'files.uploaded', at: this.#now(), files });
    return true;
  }

  /** Wait until this stream heads its conversation's line (reference: issue "order within a conversation"). */
  async #waitForTurn(): Promise<void> {
    const { store, takeOver } = this.#d;
    const { bot } = this.#ctx;
    const scope = conversationScope(this.#ctx);
    const id = this.streamId;
    let announced = stateOf(this.#w.snapshot) === 'queued';
    for (;;) {
      this.#checkAbort();
      let line: string[];
      try {
        line = await store.queue(bot, scope);
        if (!line.includes(id)) {
          // Its place was not kept (the join at accept failed, or the line expired): it takes one now,
          // at the end, rather than run beside the answer of this conversation that heads the line.
          await store.joinQueue(bot, scope, id);
          continue;
        }
        const head = line[0];
        if (head === id) break;
        const loaded = head ? await store.load(head, { withLease: true }) : undefined;
        if (!head || !loaded || isFinished(loaded.view)) {
          if (head) await store.leaveQueue(bot, scope, head);
          continue;
        }
        // The stream ahead has no live owner: it is taken over, so that the line moves on.
        if (!loaded.lease) takeOver(head);
        if (!announced) {
          await this.#emit({ type: 'stream.queued', at: this.#now(), behind: head });
          announced = true;
        }
      } catch (error) {
        if (!isUnavailable(error)) throw error;
        this.#log.warn({ err: error }, 'cannot see the line; waiting');
      }
      await this.#sleep(this.#checkEveryMs);
    }
    if (stateOf(this.#w.snapshot) === 'queued')
      await this.#emit({ type: 'stream.dequeued', at: this.#now() });
  }

  async #ask(identity: ReturnType<typeof difyIdentity>): Promise<void> {
    const { store, answers, metrics } = this.#d;
    const w = this.#w;
    const ctx = this.#ctx;
    const scope = conversationScope(ctx);
    // `/new <question>`: the new conversation starts with this question, once its turn has come.
    if (ctx.fresh && !ctx.conversationId)
      await this.#patiently(() => store.clearConversation(ctx.bot, scope));
    const stored = await this.#patiently(() => store.getConversation(ctx.bot, scope));
    try {
      for await (const event of answers.stream({
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
        signal: this.#abort.signal,
      })) {
        switch (event.type) {
          case 'conversation_reset':
            this.#log.info('the stored Dify conversation is gone; a new one starts');
            this.#remember(() => store.clearConversation(ctx.bot, scope));
            break;
          case 'started': {
            // Written even when unchanged: each use starts the conversation's 30 days again.
            const { conversationId } = event;
            if (conversationId) this.#remember(() => store.setConversation(ctx.bot, scope, conversationId));
            await this.#emit({
              type: 'dify.started',
              at: this.#now(),
              conversationId: event.conversationId,
              messageId: event.messageId,
              taskId: event.taskId,
              workflowRunId: event.workflowRunId,
            });
            break;
          }
          case 'delta': {
            const text = this.#withinLimit(event.text, this.#answerBytes);
            this.#answerBytes += Buffer.byteLength(text);
            w.delta(text);
            await this.#closeOnOverflow();
            if (text.length < event.text.length) return this.#cut();
            break;
          }
          case 'replace': {
            const text = this.#withinLimit(event.text, 0);
            this.#answerBytes = Buffer.byteLength(text);
            await this.#emit({ type: 'answer.replaced', at: this.#now(), text });
            await this.#closeOnOverflow();
            if (text.length < event.text.length) return this.#cut();
            break;
          }
          case 'end':
            await this.#emit({ type: 'answer.completed', at: this.#now(), usage: event.usage });
            break;
        }
      }
      // The source ended without a terminal event: never pass a partial answer off as complete.
      if (!w.finished)
        await this.#emit({
          type: 'answer.failed',
          at: this.#now(),
          code: 'dify_interrupted',
          message: 'stream ended early',
        });
    } catch (error) {
      // A drain, a lost lease and the answer timeout are #run's to record, as for the attachments.
      const reason = this.#reason;
      if (error instanceof Lost || isConflict(error) || (reason && reason !== 'stop')) throw error;
      if (reason === 'stop') {
        await this.#stopped();
        return;
      }
      const code = difyErrorCode(error);
      if (code) metrics.difyErrors.inc({ code });
      this.#log.warn({ err: error }, 'answer failed');
      // Dify refused the user's own token: the next message asks the token service for a new one.
      if (identity.bearer && isDifyError(error) && (error.status === 401 || error.code === 'unauthorized'))
        await this.#d.auth
          .tokenRejected?.(ctx.userid, identity.bearer)
          .catch((e: unknown) => this.#log.warn({ err: e }, 'could not forget the refused token'));
      await this.#fail(error);
    }
  }

  /**
   * The answer reached ANSWER_MAX_BYTES: it ends here, marked as cut. Leaving the loop lets go of
   * Dify's stream, and the client then tells Dify to stop the run.
   */
  async #cut(): Promise<void> {
    await this.#emit({ type: 'answer.completed', at: this.#now(), cut: true });
    this.#log.warn(
      { limit: this.#d.config.stream.answerMaxBytes },
      'the answer reached ANSWER_MAX_BYTES: cut',
    );
  }

  /**
   * What of Dify's `text` the answer keeps: all of it, usually; what fits the size limit after `used`
   * bytes; and never a lone surrogate (JSON can carry one, UTF-8 cannot: the answer's stored text is
   * UTF-8, and must stay the fold's answer).
   */
  #withinLimit(text: string, used: number): string {
    const room = this.#d.config.stream.answerMaxBytes - used;
    const whole = text.toWellFormed();
    return whole.length * 3 <= room ? whole : cutUtf8(whole, Math.max(0, room));
  }

  /** The answer outgrew the bubble: finish the bubble with its head now; the rest is delivered later. */
  async #closeOnOverflow(): Promise<void> {
    if (this.#ctx.bubble || this.#answerBytes <= MAX_CONTENT_BYTES) return;
    await this.#w.flush();
    if (!this.#ctx.bubble && overflows(this.#ctx.answer))
      await this.#emit(closeBubble(this.#w.snapshot, 'overflow', this.#now(), this.#d.texts));
  }

  #startTimers(): void {
    const { store, config } = this.#d;
    this.#lease.start();
    const check = setInterval(() => {
      store.isStopRequested(this.streamId).then(
        (stop) => {
          if (stop) this.abort('stop');
        },
        () => undefined,
      );
    }, this.#checkEveryMs);
    check.unref();
    // WeCom polls for a fixed window after the message (§9): close the bubble a margin before its end.
    const closeAt = this.#ctx.openedAt + config.stream.windowMs - config.stream.marginMs;
    const window = setTimeout(() => void this.#closeWindow(), Math.max(0, closeAt - this.#now()));
    window.unref();
    // No answer runs for ever, even on a Dify that keeps pinging: the user is told, and the slot freed.
    const endAt = this.#ctx.openedAt + config.stream.answerTimeoutMs;
    const deadline = setTimeout(() => this.abort('timeout'), Math.max(0, endAt - this.#now()));
    deadline.unref();
    this.#timers.push(check, window, deadline);
  }

  async #closeWindow(): Promise<void> {
    if (this.#w.finished || this.#ctx.bubble || this.#abort.signal.aborted) return;
    await this.#w.flush().catch(() => undefined);
    if (this.#w.finished || this.#ctx.bubble) return;
    this.#log.info({ answerLength: this.#ctx.answer.length }, 'window closing: the answer will be delivered');
    await this.#emit(closeBubble(this.#w.snapshot, 'window', this.#now(), this.#d.texts)).catch(
      (error: unknown) => this.#log.warn({ err: error }, 'could not close the bubble'),
    );
  }

  async #finish(): Promise<void> {
    const { store, config, metrics } = this.#d;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#lease.stop();
    await this.#w.flush().catch(() => undefined);
    await this.#conversation;
    const ctx = this.#ctx;
    if (this.#lost) return;
    if (this.#w.failure) {
      await this.#unrecorded();
      return;
    }
    if (this.#reason === 'drain' && !this.#w.finished) {
      await this.#w
        .emit({ type: 'stream.released', at: this.#now(), node: config.nodeId })
        .catch(() => undefined);
      await store.releaseLease(this.streamId, this.#holder).catch(() => undefined);
      this.#log.info({ answerLength: ctx.answer.length }, 'handed over: another node answers it');
      return;
    }
    if (this.#w.finished) {
      await this.#deliver();
      await store.leaveQueue(ctx.bot, conversationScope(ctx), this.streamId).catch(() => undefined);
    }
    await store.releaseLease(this.streamId, this.#holder).catch(() => undefined);
    // The context as it ends, the delivery recorded.
    const end = this.#ctx;
    const state = stateOf(this.#w.snapshot);
    const now = this.#now();
    if (this.#w.finished) {
      metrics.streamsFinished.inc({ state });
      if (state === 'completed') metrics.completion.observe((now - end.openedAt) / 1000);
    }
    this.#log.info(
      {
        state,
        durationMs: now - end.openedAt,
        firstTextMs: this.#firstVisibleAt ? this.#firstVisibleAt - end.openedAt : undefined,
        answerLength: end.answer.length,
        events: this.#w.version,
        takeovers: end.takeovers || undefined,
        code: end.error?.code ?? end.denied?.reason,
        delivery: end.delivery?.status,
      },
      'stream outcome',
    );
  }

  /**
   * The store stopped taking this answer's events. If another job holds the lease now, the stream was
   * taken over and is that job's to account for; otherwise the answer is counted and logged as not
   * recorded (never as completed), and its lease let go, so that a node takes it over once the store
   * answers again.
   */
  async #unrecorded(): Promise<void> {
    const { store, metrics } = this.#d;
    const lease = await store.getLease(this.streamId).catch(() => undefined);
    if (lease && lease.token !== this.#holder.token) {
      this.#log.warn('another node owns the stream now');
      return;
    }
    await store.releaseLease(this.streamId, this.#holder).catch(() => undefined);
    metrics.streamsFinished.inc({ state: 'unrecorded' });
    const ctx = this.#ctx;
    this.#log.warn(
      {
        state: 'unrecorded',
        durationMs: this.#now() - ctx.openedAt,
        answerLength: ctx.answer.length,
        events: this.#w.version,
        err: this.#w.failure,
      },
      'stream outcome',
    );
  }

  /** Send what the bubble could not show through response_url, once, and record how it went. */
  async #deliver(): Promise<void> {
    const { delivery, metrics, texts } = this.#d;
    const markdown = deliveryFor(this.#w.snapshot, texts);
    if (markdown === undefined) return;
    const url = this.#ctx.responseUrl;
    try {
      if (!url) throw new Error('the message came without a response_url');
      await delivery.deliver(url, markdown);
      metrics.deliveries.inc({ outcome: 'sent' });
      await this.#w.emit({ type: 'delivery.sent', at: this.#now(), bytes: Buffer.byteLength(markdown) });
    } catch (error) {
      metrics.deliveries.inc({ outcome: 'failed' });
      this.#log.warn({ err: error }, 'delivery through response_url failed');
      const message = error instanceof Error ? error.message : String(error);
      await this.#w
        .emit({ type: 'delivery.failed', at: this.#now(), message: message.slice(0, 300) })
        .catch(() => undefined);
    }
  }

  /** The user's /stop, recorded: what was shown stays, the stop is said after it. */
  #stopped(): Promise<void> {
    return this.#emit({
      type: 'answer.failed',
      at: this.#now(),
      code: 'stopped',
      message: 'stopped by the user',
    });
  }

  async #fail(error: unknown): Promise<void> {
    if (this.#w.finished || this.#w.failure) return;
    await this.#w
      .emit({ type: 'answer.failed', at: this.#now(), ...failureOf(error) })
      .catch((e: unknown) => this.#log.error({ err: e }, 'could not record the failure'));
  }

  async #emit(...events: Parameters<StreamWriter['emit']>): Promise<void> {
    if (this.#reason === 'lease_lost') throw new Lost('the lease is gone');
    await this.#w.emit(...events);
  }

  /** A store operation the answer needs, tried again while the store is unreachable (patience.ts). */
  #patiently<T>(op: () => Promise<T>, options: Pick<Patience, 'transient'> = {}): Promise<T> {
    return whileStoreDown(op, {
      ...this.#d.storePatience,
      ...options,
      now: this.#d.now,
      wait: (ms) => this.#sleep(ms),
      onError: (error) => {
        if ((options.transient ?? isUnavailable)(error))
          this.#log.warn({ err: error }, 'the store is unreachable; trying again');
      },
    });
  }

  /**
   * The conversation's id, kept for the next turn, in the background and in order: the answer streams
   * on while the store is unreachable, and the stream's end waits for it (#finish).
   */
  #remember(op: () => Promise<void>): void {
    this.#conversation = this.#conversation.then(() =>
      whileStoreDown(op, {
        ...this.#d.storePatience,
        now: this.#d.now,
        // A draining node does not hold its exit for it: the node taking over asks Dify again anyway.
        wait: (ms) => (this.#reason === 'drain' ? Promise.reject(new Error('draining')) : sleep(ms)),
      }).catch((error: unknown) => {
        this.#d.metrics.storeErrors.inc({ op: 'conversation' });
        this.#log.warn({ err: error }, 'the conversation id could not be kept; the next turn starts anew');
      }),
    );
  }

  #checkAbort(): void {
    const reason = this.#reason;
    if (reason === 'lease_lost') throw new Lost('the lease is gone');
    if (reason === 'drain') throw new Error('draining');
    if (reason === 'timeout') throw new TimedOut('the answer ran out of time');
  }

  async #sleep(ms: number): Promise<void> {
    // A /stop ends the Dify call; a wait before it just goes on (aborted, the signal wakes at once).
    if (this.#reason === 'stop') return void (await sleep(ms));
    try {
      await sleep(ms, undefined, { signal: this.#abort.signal });
    } catch {
      this.#checkAbort();
    }
  }

  #now(): number {
    return this.#d.now();
  }
}
