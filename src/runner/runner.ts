// The node's side of the design: a new WeCom message becomes a stream that this node owns and answers
// (owner.ts); a poll, on any node, is a `load` + `render`. The callback never waits for Dify: `accept`
// returns the placeholder at once. A stream whose owner is gone (its lease ran out, or it was handed
// back on shutdown) is taken over by the node that notices: a poll, a stream waiting behind it, or
// the periodic sweep.
import { randomBytes } from 'node:crypto';
import { difyIdentity } from '../auth/identity.js';
import { messageLimits, type RateLimiter, rateLimitedTexts } from '../limits/index.js';
import type { Logger } from '../log.js';
import {
  defaultTexts,
  type EventOf,
  fold,
  initialStream,
  isFinished,
  isRunning,
  isRunningState,
  persist,
  render,
  renderText,
  replyProjection,
  type StreamEvent,
  type StreamReply,
  type StreamSnapshot,
  type StreamView,
  stateOf,
  type Texts,
} from '../machines/index.js';
import { isStreamId } from '../store/keys.js';
import { type LeaseHolder, StoreError } from '../store/port.js';
import { helpText, newConversationText, nothingToStopText, parseCommand, stoppedText } from './commands.js';
import { conversationScope, type OwnerDeps, OwnerJob } from './owner.js';
import { isConflict } from './patience.js';
import { streamIdFor } from './streamId.js';
import { StreamWriter, textChange, type WriterOptions } from './writer.js';

/** A user message, as the WeCom layer hands it over (mention already stripped). */
export interface UserMessage {
  msgid: string;
  bot: string;
  userid: string;
  chatid?: string;
  chattype: 'single' | 'group';
  query: string;
  /** The text of a message the user quoted, given to Dify before the question. */
  quoted?: string;
  attachments?: Array<{ type: 'image' | 'file'; url: string }>;
  responseUrl?: string;
}

/** What a node's runner is given; its owner jobs get the same, with the defaults filled in. */
export interface RunnerDeps extends Omit<OwnerDeps, 'texts' | 'now' | 'takeOver'> {
  texts?: Texts;
  now?: () => number;
  writer?: WriterOptions;
  /** How many times a stream may be taken over before it ends with an error. Default 2. */
  maxTakeovers?: number;
  /** Per-user and per-conversation limits on new messages; none without it. */
  limiter?: RateLimiter;
}

export interface Accepted {
  streamId: string;
  duplicate: boolean;
  reply: StreamReply;
}

/**
 * The first reply to a message carries `feedback.id` (the stream id), so that a rating comes back as
 * feedback_event (reference/wecom-aibot.md §5.3, §6).
 */
function withFeedback(reply: StreamReply): StreamReply {
  return { ...reply, stream: { ...reply.stream, feedback: { id: reply.stream.id } } };
}

/** WeCom's reasons for "inaccurate" (§6 feedback_event), as Dify's feedback content. */
const inaccurateReasons: Record<string, string> = {
  '1': '与问题无关',
  '2': '回答不完整',
  '3': '回答有错误',
  '4': '数据分析有误',
};

export interface Feedback {
  /** The `feedback.id` the first reply carried: the stream id. */
  id: string;
  /** 1 accurate, 2 inaccurate, 3 withdrawn. */
  type: number;
  content?: string;
  reasons?: Array<string | number>;
  /** Who rated. */
  userid: string;
}

/** A quoted message as a markdown quote, shortened: context, not the question. */
function quote(text: string): string {
  const short = text.length > 500 ? `${text.slice(0, 500)}…` : text;
  return short
    .split('\n')
    .map((line) => `> ${line}`)
    .join('\n');
}

/** A lease token: which owner job of this node holds a stream (a node may hold many). */
const newToken = (): string => randomBytes(9).toString('base64url');

export class Runner {
  readonly #d: RunnerDeps;
  readonly #jobs = new Map<string, OwnerJob>();
  /** Takeovers this node is attempting, so that many polls of one stream start one. */
  readonly #taking = new Set<string>();
  readonly #texts: Texts;
  readonly #now: () => number;
  readonly #log: Logger;
  #draining = false;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(deps: RunnerDeps) {
    this.#d = deps;
    this.#texts = deps.texts ?? defaultTexts;
    this.#now = deps.now ?? Date.now;
    this.#log = deps.logger;
  }

  /** How many answers this node is running now. */
  get inflight(): number {
    return this.#jobs.size;
  }

  /**
   * Accept a user message: open its stream (the first copy of a message to reach the store does; the
   * others, on any node, find it and start nothing), with this node's lease in the same atomic step,
   * start answering in the background, and return the first reply. A store failure is thrown: the
   * edge answers 503 and WeCom retries.
   */
  async accept(m: UserMessage): Promise<Accepted> {
    try {
      return await this.#accept(m);
    } catch (error) {
      if (error instanceof StoreError) this.#d.metrics.storeErrors.inc({ op: 'accept' });
      throw error;
    }
  }

  async #accept(m: UserMessage): Promise<Accepted> {
    const { store, metrics, config } = this.#d;
    const streamId = streamIdFor(config.wecom.encodingAESKey, m.bot, m.msgid);
    // A retried callback finds its stream, and is answered from it. (Checked before the opening
    // events are made: a late copy of `/new` must not start the conversation over again.)
    const existing = await store.load(streamId);
    if (existing) return this.#duplicate(streamId, existing.view);
    // A message past a rate limit is answered at once, not asked; its stream records why, so that a
    // retry of it gets the same answer and counts against no limit again.
    const limited = await this.#limited(m);
    const events = limited ? [this.#opened(m, streamId), limited] : await this.#openingEvents(m, streamId);
    const snapshot = fold(events);
    const finished = isFinished(snapshot);
    const holder = this.#holder();
    try {
      await store.append(streamId, events, {
        expectedVersion: 0,
        snapshot: persist(snapshot),
        reply: replyProjection(snapshot, streamId, this.#texts),
        text: textChange(initialStream(), snapshot, events) ?? { append: '' },
        // The lease comes with the opening, so that no poll ever sees an open stream without an owner.
        ...(finished ? {} : { lease: { holder, ttlMs: config.stream.leaseMs } }),
      });
    } catch (error) {
      if (!isConflict(error)) throw error;
      // Another copy of this message opened the stream first.
      const loaded = await store.load(streamId);
      return this.#duplicate(streamId, loaded?.view ?? snapshot);
    }
    metrics.streamsOpened.inc();
    if (finished) {
      metrics.streamsFinished.inc({ state: stateOf(snapshot) });
    } else {
      // Arrival order is the conversation's order; the owner joins the line itself if this fails.
      await store.joinQueue(m.bot, conversationScope(m), streamId).catch((error: unknown) => {
        this.#log.warn({ streamId, err: error }, 'could not join the conversation line');
      });
      this.#launch(this.#writer(streamId, snapshot, events.length), holder);
    }
    return { streamId, duplicate: false, reply: withFeedback(render(snapshot, streamId, this.#texts)) };
  }

  /** The `answer.failed` of a message past one of its rate limits, or undefined when it may go on. */
  async #limited(m: UserMessage): Promise<StreamEvent | undefined> {
    const { limiter, config, metrics } = this.#d;
    if (!limiter) return undefined;
    const verdict = await limiter.hit(messageLimits(config.limits, m));
    if (verdict.allowed) return undefined;
    metrics.rateLimited.inc({ scope: verdict.scope });
    this.#log.info(
      {
        msgid: m.msgid,
        userid: m.userid,
        aibotid: m.bot,
        scope: verdict.scope,
        retryAfterMs: verdict.retryAfterMs,
      },
      'message past a rate limit: not asked',
    );
    return {
      type: 'answer.failed',
      at: this.#now(),
      code: 'rate_limited',
      message: `the ${verdict.scope} rate limit is full for ${Math.ceil(verdict.retryAfterMs / 1000)} s`,
      text: rateLimitedTexts[verdict.scope],
    };
  }

  #duplicate(streamId: string, view: StreamView): Accepted {
    this.#d.metrics.dedupHits.inc();
    return { streamId, duplicate: true, reply: withFeedback(render(view, streamId, this.#texts)) };
  }

  #holder(): LeaseHolder {
    return { node: this.#d.config.nodeId, token: newToken() };
  }

  /**
   * A WeCom refresh poll, as the reply's JSON text: from the stream's reply projection (a fixed reply,
   * or the answer's text as it grows), or the snapshot + tail rendered here, in one store round trip.
   * A poll never changes the stream; when it finds a running stream with no live owner it starts a
   * takeover in the background.
   */
  async poll(streamId: string): Promise<string> {
    // An id no stream can have (WeCom only polls ids we gave it) is answered like one that expired.
    if (!isStreamId(streamId)) return this.#replyOf(initialStream(), streamId);
    const polled = await this.#d.store.poll(streamId).catch((error: unknown) => {
      this.#d.metrics.storeErrors.inc({ op: 'load' });
      throw error;
    });
    if (!polled) return this.#replyOf(initialStream(), streamId);
    if (!polled.lease && isRunningState(polled.state)) this.takeOver(streamId);
    if (polled.reply !== undefined) return polled.reply;
    if (polled.text !== undefined) return renderText(polled.text, streamId, this.#texts);
    return this.#replyOf(polled.loaded?.view ?? initialStream(), streamId);
  }

  /** The reply JSON for a stream, rendered here. */
  #replyOf(view: StreamView, streamId: string): string {
    return JSON.stringify(render(view, streamId, this.#texts));
  }

  /**
   * Take over a running stream whose owner's lease is gone: claim the lease (only one node wins),
   * record `stream.taken_over`, and answer again from the start. After `maxTakeovers` the stream
   * ends with an error instead. Runs in the background; safe to call often.
   */
  takeOver(streamId: string): void {
    if (this.#draining || this.#jobs.has(streamId) || this.#taking.has(streamId)) return;
    this.#taking.add(streamId);
    this.#takeOver(streamId)
      .catch((error: unknown) => this.#log.warn({ streamId, err: error }, 'takeover failed'))
      .finally(() => this.#taking.delete(streamId));
  }

  async #takeOver(streamId: string): Promise<void> {
    const { store, config, metrics } = this.#d;
    const holder = this.#holder();
    if (!(await store.acquireLease(streamId, holder, config.stream.leaseMs))) return;
    const loaded = await store.load(streamId);
    if (!loaded || !isRunning(loaded.snapshot) || this.#draining) {
      await store.releaseLease(streamId, holder);
      return;
    }
    const ctx = loaded.snapshot.context;
    const attempt = ctx.takeovers + 1;
    const events: StreamEvent[] = [
      { type: 'stream.taken_over', at: this.#now(), node: config.nodeId, attempt, previousNode: ctx.node },
    ];
    const max = this.#d.maxTakeovers ?? 2;
    if (attempt > max) {
      events.push({
        type: 'answer.failed',
        at: this.#now(),
        code: 'takeover_exhausted',
        message: `the stream lost its owner ${attempt} times`,
      });
    }
    const writer = this.#writer(streamId, loaded.snapshot, loaded.version);
    try {
      await writer.emit(...events);
    } catch (error) {
      writer.dispose();
      await store.releaseLease(streamId, holder).catch(() => undefined);
      // A version conflict: the owner wrote after all, and keeps the stream.
      if (isConflict(error)) return;
      throw error;
    }
    metrics.takeovers.inc();
    this.#log.info(
      { streamId, msgid: ctx.msgid, userid: ctx.userid, attempt, previousNode: ctx.node },
      attempt > max ? 'stream lost its owner too often: ended' : 'took over a stream whose owner is gone',
    );
    // An exhausted stream is settled already; the job still delivers what the bubble promised.
    this.#launch(writer, holder);
  }

  /**
   * A rating from WeCom (feedback_event): passed on to Dify as the message's feedback (like, dislike
   * with the reasons, or taken back) and recorded as `feedback.given`. A stream that is gone, or has
   * no Dify message, is recorded or logged and left alone.
   */
  async feedback(f: Feedback): Promise<void> {
    const { store, answers, auth, config } = this.#d;
    const log = this.#log.child({ streamId: f.id, userid: f.userid });
    if (!isStreamId(f.id)) return;
    const loaded = await store.load(f.id);
    if (!loaded || stateOf(loaded.snapshot) !== 'completed') {
      log.info({ type: f.type }, 'feedback for a stream that is gone or not completed: ignored');
      return;
    }
    const ctx = loaded.snapshot.context;
    const rating = f.type === 1 ? 'like' : f.type === 2 ? 'dislike' : null;
    const reasons = (f.reasons ?? []).map((r) => inaccurateReasons[String(r)] ?? String(r));
    const content =
      [reasons.length ? `[${reasons.join('、')}]` : '', f.content ?? ''].join(' ').trim() || undefined;
    let forwarded = false;
    let problem: string | undefined;
    try {
      if (!ctx.messageId || !answers.feedback) throw new Error('no Dify message to rate');
      // Dify keeps a message's feedback under the user who asked, whoever rated it in the group.
      const outcome = await auth.authenticate({ userid: ctx.userid, bot: ctx.bot });
      if (!outcome.granted) throw new Error(`the asker is no longer let in (${outcome.reason})`);
      const identity = difyIdentity(outcome, config.dify, ctx.userid);
      await answers.feedback(ctx.messageId, rating, identity.user, content, { bearer: identity.bearer });
      forwarded = true;
    } catch (error) {
      problem = (error instanceof Error ? error.message : String(error)).slice(0, 300);
      log.warn({ err: error }, 'feedback not passed on to Dify');
    }
    const event: StreamEvent = {
      type: 'feedback.given',
      at: this.#now(),
      rating,
      by: f.userid,
      forwarded,
      ...(content ? { content } : {}),
      ...(problem ? { problem } : {}),
    };
    // Nobody owns a completed stream; a delivery record may race this one, so read again once.
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = attempt === 0 ? loaded : await store.load(f.id);
      if (!current) return;
      try {
        const after = fold([event], current.snapshot);
        await store.append(f.id, [event], {
          expectedVersion: current.version,
          snapshot: persist(after),
          reply: replyProjection(after, f.id, this.#texts),
          text: { append: '' },
        });
        log.info({ rating, forwarded }, 'feedback recorded');
        return;
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
    }
  }

  /** Every so often, take over the running streams whose owner is gone, even if nobody polls them. */
  startSweeping(everyMs = this.#d.config.stream.leaseMs): void {
    if (this.#sweeper) return;
    const tick = () => {
      this.#sweeper = setTimeout(
        () => {
          void this.sweep().finally(() => {
            if (this.#sweeper) tick();
          });
        },
        everyMs * (0.75 + Math.random() / 2),
      );
      this.#sweeper.unref();
    };
    tick();
  }

  /** One sweep: unfinished streams with no live lease, not touched for a lease's length, are taken over. */
  async sweep(): Promise<number> {
    if (this.#draining) return 0;
    const quiet = this.#d.config.stream.leaseMs;
    let started = 0;
    try {
      const streams = await this.#d.store.listStreams({ unfinishedOnly: true, limit: 200 });
      for (const s of streams) {
        if (s.lease || this.#jobs.has(s.streamId) || this.#now() - s.lastEventAt < quiet) continue;
        this.takeOver(s.streamId);
        started++;
      }
    } catch (error) {
      this.#log.warn({ err: error }, 'sweep for orphaned streams failed');
    }
    return started;
  }

  /**
   * Graceful shutdown: take nothing new, let running answers finish for at most `deadlineMs`, then
   * hand the rest back (`stream.released`, lease dropped) so that another node takes them over at once.
   */
  async drain(deadlineMs: number): Promise<{ finished: number; handedOver: number }> {
    this.#draining = true;
    clearTimeout(this.#sweeper);
    this.#sweeper = undefined;
    const jobs = [...this.#jobs.values()];
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(jobs.map((j) => j.done)),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, deadlineMs);
      }),
    ]);
    clearTimeout(timer);
    const remaining = [...this.#jobs.values()];
    for (const job of remaining) job.abort('drain');
    await Promise.allSettled(remaining.map((j) => j.done));
    return { finished: jobs.length - remaining.length, handedOver: remaining.length };
  }

  #opened(m: UserMessage, streamId: string): EventOf<'stream.opened'> {
    const opened: EventOf<'stream.opened'> = {
      type: 'stream.opened',
      at: this.#now(),
      streamId,
      msgid: m.msgid,
      bot: m.bot,
      userid: m.userid,
      chatid: m.chatid,
      chattype: m.chattype,
      query: m.query,
      responseUrl: m.responseUrl,
      node: this.#d.config.nodeId,
    };
    if (m.attachments?.length) opened.attachments = m.attachments;
    return opened;
  }

  /** The events that open a stream for this message; commands are answered here, without Dify. */
  async #openingEvents(m: UserMessage, streamId: string): Promise<StreamEvent[]> {
    const opened = this.#opened(m, streamId);
    const at = opened.at;
    const attachments = m.attachments ?? [];
    // An image or a file alone still asks something; a quoted message is context for the question.
    const question = (text: string): string => {
      const asked =
        text ||
        (attachments.length === 0
          ? ''
          : attachments.every((a) => a.type === 'image')
            ? this.#texts.imageQuestion
            : this.#texts.fileQuestion);
      return m.quoted && asked ? `${quote(m.quoted)}\n\n${asked}` : asked;
    };
    const command = parseCommand(attachments.length > 0 ? '' : m.query);
    const handled = (name: string, text: string): StreamEvent[] => [
      opened,
      { type: 'command.handled', at, command: name, text },
    ];
    // Where everyone may ask, the grant is known now: the first reply says the bot is thinking.
    const granted = this.#d.auth.immediate?.({ userid: m.userid, bot: m.bot });
    const asking = (event: EventOf<'stream.opened'>): StreamEvent[] =>
      granted ? [event, { type: 'auth.granted', at, user: granted.user }] : [event];
    switch (command.kind) {
      case 'help':
        return handled('help', helpText);
      case 'new':
        if (command.question) return asking({ ...opened, query: question(command.question), fresh: true });
        await this.#d.store.clearConversation(m.bot, conversationScope(m));
        return handled('new', newConversationText);
      case 'stop':
        return handled('stop', (await this.#stopRunning(m)) ? stoppedText : nothingToStopText);
      case 'ask': {
        const asked = question(attachments.length > 0 ? m.query : command.question);
        if (asked === '') return handled('empty', this.#texts.emptyQuestion);
        return asking({ ...opened, query: asked });
      }
    }
  }

  /** /stop: the answer being written in this conversation (the head of its line) is asked to stop. */
  async #stopRunning(m: UserMessage): Promise<boolean> {
    const { store } = this.#d;
    const [head] = await store.queue(m.bot, conversationScope(m));
    if (!head) return false;
    const loaded = await store.load(head);
    if (!loaded || isFinished(loaded.view)) return false;
    await store.requestStop(head);
    // This node may own it: stop at once rather than at the owner's next look.
    this.#jobs.get(head)?.abort('stop');
    return true;
  }

  #writer(streamId: string, snapshot: StreamSnapshot, version: number): StreamWriter {
    return new StreamWriter(this.#d.store, streamId, snapshot, version, {
      now: this.#now,
      projectionOf: (s) => replyProjection(s, streamId, this.#texts),
      ...this.#d.writer,
      onStoreError: (error) => {
        this.#d.metrics.storeErrors.inc({ op: 'append' });
        this.#log.warn({ streamId, err: error }, 'store append failed');
      },
    });
  }

  #launch(writer: StreamWriter, holder: LeaseHolder): void {
    const job = new OwnerJob(
      {
        ...this.#d,
        texts: this.#texts,
        now: this.#now,
        takeOver: (id) => this.takeOver(id),
        storePatience: { delays: this.#d.writer?.retryDelays, forMs: this.#d.writer?.retryForMs },
      },
      writer,
      holder,
    );
    this.#jobs.set(writer.streamId, job);
    void job.done.finally(() => {
      writer.dispose();
      this.#jobs.delete(writer.streamId);
    });
  }
}
