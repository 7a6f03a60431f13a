// A node's side of the design. A new WeCom message opens a stream that this node owns and answers
// (actor.ts); a poll, on any node, is answered from the stream's reply projection. The callback never
// waits for Dify: `accept` returns the first reply at once. A stream whose owner is gone (its lease ran
// out, or it was given back on shutdown) is taken over by the node that notices: a poll, a stream
// waiting behind it, or the periodic sweep. What to record is always `decide`'s to say.
import { randomBytes } from 'node:crypto';
import { difyIdentity } from '../auth/identity.js';
import type { Config } from '../config.js';
import { messageLimits, type RateLimiter, rateLimitedTexts } from '../limits/index.js';
import type { Logger } from '../log.js';
import {
  actionOfKey,
  advance,
  type Command,
  cardOfTask,
  commandOf,
  type DecideSettings,
  decide,
  defaultTexts,
  type Effect,
  IllegalCommand,
  type IncomingMessage,
  initialStream,
  inputCard,
  isFinished,
  isRunningState,
  persist,
  render,
  renderText,
  replyProjection,
  type StreamEvent,
  type StreamReply,
  type StreamView,
  stateOf,
  suggestedCard,
  suggestionOfKey,
  type TemplateCard,
  type Texts,
  welcomeQuestionOfKey,
} from '../machines/index.js';
import type { Metrics } from '../metrics.js';
import { isStreamId } from '../store/keys.js';
import { type LeaseHolder, StoreError, type StreamStore } from '../store/port.js';
import { type ActorDeps, conversationScope, StreamActor } from './actor.js';
import { isConflict } from './patience.js';
import type { PieceOptions } from './pieces.js';
import type { Bot, Bots, Delivery } from './ports.js';
import { streamIdFor } from './streamId.js';
import { StreamWriter, textChange, type WriterOptions } from './writer.js';

/** What a node's runner is given; its actors get the same, with the defaults filled in. */
export interface RunnerDeps {
  store: StreamStore;
  /** The bots this node serves now: each stream is one bot's, and answers with what that bot has. */
  bots: Bots;
  delivery: Delivery;
  config: Pick<Config, 'nodeId' | 'stream' | 'limits'>;
  logger: Logger;
  metrics: Metrics;
  now?: () => number;
  writer?: WriterOptions;
  /** How the pieces of an answer are told together (and so written: about every 150 ms). */
  pieces?: PieceOptions;
  /** How many times a stream may be taken over before it ends with an error. Default 2. */
  maxTakeovers?: number;
  /** Per-user and per-conversation limits on new messages; none without it. */
  limiter?: RateLimiter;
  /** How often an owner looks for a /stop and at the head of its line. */
  checkEveryMs?: number;
}

export interface Accepted {
  streamId: string;
  duplicate: boolean;
  reply: StreamReply;
}

/**
 * The first reply to a message carries `feedback.id` (the stream id), so that a rating comes back as
 * feedback_event (docs/protocol/wecom.md §5.5, §6.7).
 */
function withFeedback(reply: StreamReply): StreamReply {
  return { ...reply, stream: { ...reply.stream, feedback: { id: reply.stream.id } } };
}

/** WeCom's reasons for "inaccurate" (docs/protocol/wecom.md §6.7), as Dify's feedback content. */
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

/** A click on a button of one of our cards (template_card_event). */
export interface Click {
  taskId: string;
  /** The button's key. */
  key: string;
  /** The event's own msgid (a suggested question's click is asked as a message of that id). */
  msgid: string;
  /** Who clicked. */
  userid: string;
  chatid?: string | undefined;
  chattype: 'single' | 'group';
  /** Where a click's answer goes in callback mode (once, within an hour). */
  responseUrl?: string | undefined;
  /** Long connection: the event frame's req_id (the answer goes over the connection). */
  replyTo?: string | undefined;
}

/** A lease token: which owner job of this node holds a stream (a node may hold many). */
const newToken = (): string => randomBytes(9).toString('base64url');

/** The stream after `events`, and the effects they name. */
function stepAll(from: StreamView, events: readonly StreamEvent[]): [StreamView, Effect[]] {
  let snapshot = from;
  const effects: Effect[] = [];
  for (const event of events) {
    const [next, named] = advance(snapshot, event);
    snapshot = next;
    effects.push(...named);
  }
  return [snapshot, effects];
}

export class Runner {
  readonly #d: RunnerDeps;
  readonly #actors = new Map<string, StreamActor>();
  /** Takeovers this node is attempting, so that many polls of one stream start one. */
  readonly #taking = new Set<string>();
  /** What `decide` is given for each bot (its texts), made once per bot as loaded. */
  readonly #settings = new WeakMap<Bot, DecideSettings>();
  readonly #now: () => number;
  readonly #log: Logger;
  #draining = false;
  #sweeper: NodeJS.Timeout | undefined;
  readonly #unlisten: () => void;

  constructor(deps: RunnerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
    this.#log = deps.logger;
    // A user's /stop, made on any node, reaches the answer's owner at once.
    this.#unlisten = deps.store.onStopRequested((streamId) => {
      void this.#actors.get(streamId)?.tell({ type: 'stop', at: this.#now() });
    });
  }

  /** How many answers this node is running now. */
  get inflight(): number {
    return this.#actors.size;
  }

  /**
   * Accept a user message: open its stream (the first copy of a message to reach the store does; the
   * others, on any node, find it and start nothing), with this node's lease in the same atomic step,
   * start answering in the background, and return the first reply. A store failure is thrown: the
   * edge answers 503 and WeCom retries.
   */
  async accept(m: IncomingMessage): Promise<Accepted> {
    try {
      return await this.#accept(m);
    } catch (error) {
      if (error instanceof StoreError) this.#d.metrics.storeErrors.inc({ op: 'accept' });
      throw error;
    }
  }

  async #accept(m: IncomingMessage): Promise<Accepted> {
    const { store, metrics, config } = this.#d;
    const bot = this.#d.bots.bot(m.bot);
    if (!bot) throw new Error(`no bot ${m.bot} on this node`);
    const { auth, texts } = bot;
    const streamId = streamIdFor(bot.secret, m.bot, m.msgid);
    // A retried callback finds its stream, and is answered from it. (Checked before anything else: a
    // late copy of `/new` must not start the conversation over again, nor count against a limit.)
    const existing = await store.load(streamId);
    if (existing) return this.#duplicate(streamId, existing.view, texts);
    const command: Command = {
      type: 'open',
      at: this.#now(),
      streamId,
      node: config.nodeId,
      message: m,
      // A form's answer is the run's, not a new question: no command, no rate limit.
      ...(m.resume ? {} : await this.#beforeOpening(m)),
    };
    const grant = auth.immediate?.({ userid: m.userid, bot: m.bot });
    if (grant && !command.refused) command.grant = grant.user;
    const events = decide(command, initialStream(), this.#settingsOf(bot));
    const [snapshot, effects] = stepAll(initialStream(), events);
    const finished = isFinished(snapshot);
    const holder = this.#holder();
    try {
      await store.append(streamId, events, {
        expectedVersion: 0,
        snapshot: persist(snapshot),
        reply: replyProjection(snapshot, streamId, texts),
        text: textChange(initialStream(), snapshot, events) ?? { append: '' },
        // The lease comes with the opening, so that no poll ever sees an open stream without an owner.
        ...(finished ? {} : { lease: { holder, ttlMs: config.stream.leaseMs } }),
      });
    } catch (error) {
      if (!isConflict(error)) throw error;
      // Another copy of this message opened the stream first.
      const loaded = await store.load(streamId);
      return this.#duplicate(streamId, loaded?.view ?? snapshot, texts);
    }
    metrics.streamsOpened.inc({ bot: bot.id });
    if (finished) {
      metrics.streamsFinished.inc({ bot: bot.id, state: stateOf(snapshot) });
    } else {
      // Arrival order is the conversation's order; the owner joins the line itself if this fails.
      await store.joinLine(m.bot, conversationScope(m), streamId).catch((error: unknown) => {
        this.#log.warn({ streamId, bot: bot.id, err: error }, 'could not join the conversation line');
      });
      this.#launch(this.#writer(streamId, snapshot, events.length, bot), holder, effects, bot);
    }
    return { streamId, duplicate: false, reply: withFeedback(render(snapshot, streamId, texts)) };
  }

  /**
   * What opening a message needs done first, in the world: a rate limit's verdict; for `/new`, the
   * conversation forgotten; for `/stop`, the answer being written in this conversation asked to stop.
   */
  async #beforeOpening(
    m: IncomingMessage,
  ): Promise<Pick<Extract<Command, { type: 'open' }>, 'refused' | 'stopped'>> {
    const refused = await this.#limited(m);
    if (refused) return { refused };
    const command = commandOf(m);
    if (command.kind === 'new' && !command.question)
      await this.#d.store.clearConversation(m.bot, conversationScope(m));
    if (command.kind === 'stop') return { stopped: await this.#stopRunning(m) };
    return {};
  }

  /** Why a message past one of its rate limits is not asked, or undefined when it may go on. */
  async #limited(m: IncomingMessage): Promise<{ text: string; message: string } | undefined> {
    const { limiter, config, metrics } = this.#d;
    if (!limiter) return undefined;
    const verdict = await limiter.hit(messageLimits(config.limits, m));
    if (verdict.allowed) return undefined;
    metrics.rateLimited.inc({ bot: m.bot, scope: verdict.scope });
    this.#log.info(
      {
        msgid: m.msgid,
        userid: m.userid,
        bot: m.bot,
        scope: verdict.scope,
        retryAfterMs: verdict.retryAfterMs,
      },
      'message past a rate limit: not asked',
    );
    return {
      text: rateLimitedTexts[verdict.scope],
      message: `the ${verdict.scope} rate limit is full for ${Math.ceil(verdict.retryAfterMs / 1000)} s`,
    };
  }

  /** /stop: the answer being written in this conversation (the head of its line) is asked to stop. */
  async #stopRunning(m: IncomingMessage): Promise<boolean> {
    const { store } = this.#d;
    const [head] = await store.line(m.bot, conversationScope(m));
    if (!head) return false;
    const loaded = await store.load(head);
    if (!loaded || isFinished(loaded.view)) return false;
    await store.requestStop(head);
    // This node may own it: stop at once rather than at the owner's next look.
    void this.#actors.get(head)?.tell({ type: 'stop', at: this.#now() });
    return true;
  }

  #duplicate(streamId: string, view: StreamView, texts: Texts): Accepted {
    this.#d.metrics.dedupHits.inc({ bot: view.context.bot });
    return { streamId, duplicate: true, reply: withFeedback(render(view, streamId, texts)) };
  }

  #settingsOf(bot: Bot): DecideSettings {
    let settings = this.#settings.get(bot);
    if (!settings) {
      settings = {
        texts: bot.texts,
        answerMaxBytes: this.#d.config.stream.answerMaxBytes,
        maxTakeovers: this.#d.maxTakeovers ?? 2,
      };
      this.#settings.set(bot, settings);
    }
    return settings;
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
  async poll(streamId: string, botId: string): Promise<string> {
    const texts = this.#d.bots.bot(botId)?.texts ?? defaultTexts;
    // An id no stream can have (WeCom only polls ids we gave it) is answered like one that expired.
    if (!isStreamId(streamId)) return this.#replyOf(initialStream(), streamId, texts);
    const polled = await this.#d.store.poll(streamId).catch((error: unknown) => {
      this.#d.metrics.storeErrors.inc({ op: 'load' });
      throw error;
    });
    if (!polled) return this.#replyOf(initialStream(), streamId, texts);
    if (!polled.lease && isRunningState(polled.state)) this.takeOver(streamId);
    if (polled.reply !== undefined) return polled.reply;
    if (polled.text !== undefined) return renderText(polled.text, streamId, texts);
    return this.#replyOf(polled.loaded?.view ?? initialStream(), streamId, texts);
  }

  /** The reply JSON for a stream, rendered here. */
  #replyOf(view: StreamView, streamId: string, texts: Texts): string {
    return JSON.stringify(render(view, streamId, texts));
  }

  /**
   * Take over a running stream whose owner's lease is gone: claim the lease (only one node wins),
   * record what `decide` says (`stream.taken_over`, and the error past the takeovers allowed), and
   * answer again from the start. Runs in the background; safe to call often.
   */
  takeOver(streamId: string): void {
    if (this.#draining || this.#actors.has(streamId) || this.#taking.has(streamId)) return;
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
    const botId = loaded?.snapshot.context.bot ?? '';
    const bot = this.#d.bots.bot(botId);
    if (loaded && !bot)
      this.#log.warn(
        { streamId, bot: botId },
        'a stream of a bot this node does not serve: left to a node that does',
      );
    let events: StreamEvent[] = [];
    if (loaded && bot && !this.#draining) {
      const ctx = loaded.snapshot.context;
      const grant = bot.auth.immediate?.({ userid: ctx.userid, bot: ctx.bot });
      try {
        events = decide(
          { type: 'takeOver', at: this.#now(), node: config.nodeId, ...(grant ? { grant: grant.user } : {}) },
          loaded.snapshot,
          this.#settingsOf(bot),
        );
      } catch (error) {
        if (!(error instanceof IllegalCommand)) throw error;
      }
    }
    if (!loaded || !bot || events.length === 0) {
      await store.releaseLease(streamId, holder);
      return;
    }
    const [, effects] = stepAll(loaded.snapshot, events);
    const writer = this.#writer(streamId, loaded.snapshot, loaded.version, bot);
    try {
      await writer.emit(...events);
    } catch (error) {
      await store.releaseLease(streamId, holder).catch(() => undefined);
      // A version conflict: the owner wrote after all, and keeps the stream.
      if (isConflict(error)) return;
      throw error;
    }
    metrics.takeovers.inc({ bot: bot.id });
    const ctx = loaded.snapshot.context;
    this.#log.info(
      {
        streamId,
        bot: bot.id,
        msgid: ctx.msgid,
        userid: ctx.userid,
        attempt: ctx.takeovers + 1,
        previousNode: ctx.node,
      },
      isFinished(writer.snapshot)
        ? 'stream lost its owner too often: ended'
        : 'took over a stream whose owner is gone',
    );
    // An exhausted stream is settled already; its actor still delivers what the bubble promised.
    this.#launch(writer, holder, effects, bot);
  }

  /**
   * A rating from WeCom (feedback_event): passed on to Dify as the message's feedback (like, dislike
   * with the reasons, or taken back) and recorded as `feedback.given`. A stream that is gone, or has
   * no Dify message, is recorded or logged and left alone.
   */
  async feedback(f: Feedback, botId: string): Promise<void> {
    const { store } = this.#d;
    const log = this.#log.child({ streamId: f.id, userid: f.userid, bot: botId });
    const bot = this.#d.bots.bot(botId);
    if (!isStreamId(f.id) || !bot) return;
    const { answers, auth } = bot;
    const loaded = await store.load(f.id);
    if (!loaded || loaded.view.context.bot !== botId || stateOf(loaded.view) !== 'completed') {
      log.info({ type: f.type }, 'feedback for a stream that is gone or not completed: ignored');
      return;
    }
    const ctx = loaded.view.context;
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
      const identity = difyIdentity(outcome, bot.identity, ctx.userid);
      await answers.feedback(ctx.messageId, rating, identity.user, content, { bearer: identity.bearer });
      forwarded = true;
    } catch (error) {
      problem = error instanceof Error ? error.message : String(error);
      log.warn({ err: error }, 'feedback not passed on to Dify');
    }
    const command: Command = {
      type: 'rate',
      at: this.#now(),
      rating,
      by: f.userid,
      forwarded,
      ...(content ? { content } : {}),
      ...(problem ? { problem } : {}),
    };
    // Nobody owns a completed stream; a delivery record may race this one, so read again once.
    if (await this.#record(f.id, command, bot, loaded)) log.info({ rating, forwarded }, 'feedback recorded');
  }

  /**
   * Record what `command` decides for a stream nobody owns (settled, or waiting for a person), from
   * any node: read again and decided again when another write came first. The stream as it is after,
   * or undefined when it is gone or the command decided nothing.
   */
  async #record(
    streamId: string,
    command: Command,
    bot: Bot,
    first?: { snapshot: StreamView; version: number },
  ): Promise<StreamView | undefined> {
    const { store } = this.#d;
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = attempt === 0 && first ? first : await store.load(streamId);
      if (!current) return undefined;
      const events = decide(command, current.snapshot, this.#settingsOf(bot));
      if (events.length === 0) return undefined;
      const [after] = stepAll(current.snapshot, events);
      try {
        await store.append(streamId, events, {
          expectedVersion: current.version,
          snapshot: persist(after),
          reply: replyProjection(after, streamId, bot.texts),
          text: { append: '' },
        });
        return after;
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
    }
    return undefined;
  }

  /**
   * A click on a card of ours (template_card_event), answered with the card as it should now look
   * (WeCom's `update_template_card`, within its 5 s), or undefined to leave it. A form's button answers
   * the form the stream waits on: the first click wins, in a stream of its own that resumes the run
   * (its answer sent as a message once settled); a later one, or one past the form's deadline, is
   * shown what happened. A suggested question's button asks it, as the one who clicked.
   */
  async click(c: Click, botId: string): Promise<TemplateCard | undefined> {
    const card = cardOfTask(c.taskId);
    const bot = this.#d.bots.bot(botId);
    if (!card || !bot) return undefined;
    const log = this.#log.child({ streamId: card.streamId, bot: botId, userid: c.userid });
    if (card.kind === 'welcome') {
      // The card is left as it was (nothing of it is kept here); the answer comes as a message.
      const question = welcomeQuestionOfKey(c.key);
      if (question) await this.#askApart(c, question, bot, log);
      return undefined;
    }
    if (!isStreamId(card.streamId)) return undefined;
    const loaded = await this.#d.store.load(card.streamId);
    if (!loaded || loaded.view.context.bot !== botId) return undefined;
    if (card.kind === 'suggested') {
      const question = suggestionOfKey(loaded.view.context, c.key);
      if (question === undefined) return undefined;
      await this.#askApart(c, question, bot, log);
      return suggestedCard(loaded.view.context, bot.texts, question);
    }
    const ctx = loaded.view.context;
    const form = ctx.input?.form;
    const action = form?.actions.find((a) => a.id === actionOfKey(c.key));
    if (!form?.workflowRunId || !action || stateOf(loaded.view) !== 'waiting')
      return inputCard(ctx, bot.texts);
    if (form.expiresAt !== undefined && this.#now() > form.expiresAt) {
      const after = await this.#record(
        card.streamId,
        { type: 'expire', at: this.#now(), by: c.userid },
        bot,
        loaded,
      );
      log.info({ action: action.id }, 'a form was answered past its deadline: told so');
      return inputCard((after ?? loaded.view).context, bot.texts);
    }
    // The answer opens first (once per form, whoever clicks: its id is derived from the form's stream),
    // then the choice is recorded on the form's stream.
    const accepted = await this.accept({
      msgid: `${ctx.msgid}#input`,
      bot: botId,
      // Dify resumes a run for the user who started it.
      userid: ctx.userid,
      ...(ctx.chatid === undefined ? {} : { chatid: ctx.chatid }),
      chattype: ctx.chattype,
      text: action.title,
      ...(c.responseUrl ? { responseUrl: c.responseUrl } : {}),
      ...(c.replyTo ? { replyTo: c.replyTo } : {}),
      apart: true,
      resume: {
        of: card.streamId,
        formToken: form.token,
        action: action.id,
        actionText: action.title,
        workflowRunId: form.workflowRunId,
        ...(form.defaults && Object.keys(form.defaults).length ? { inputs: form.defaults } : {}),
        by: c.userid,
      },
    });
    // A click that came second (here or on another node) records the first one's choice: the one
    // Dify is given, by the one who made it.
    const first = accepted.duplicate
      ? (await this.#d.store.load(accepted.streamId))?.view.context.resume
      : undefined;
    const after = await this.#record(
      card.streamId,
      {
        type: 'choose',
        at: this.#now(),
        by: first?.by ?? c.userid,
        action: first?.action ?? action.id,
        answeredIn: accepted.streamId,
      },
      bot,
      loaded,
    ).catch((error: unknown) => {
      // The next click on the card records it: the answer runs meanwhile.
      log.warn({ err: error }, 'the choice could not be recorded on the form’s stream');
      return undefined;
    });
    log.info(
      { action: action.id, answeredIn: accepted.streamId, duplicate: accepted.duplicate },
      accepted.duplicate ? 'a form was clicked again' : 'a form was answered: the run resumes',
    );
    return inputCard(
      (after ?? (await this.#d.store.load(card.streamId))?.view ?? loaded.view).context,
      bot.texts,
    );
  }

  /** A question a button asks: asked as the one who clicked, its answer sent as a message. */
  async #askApart(c: Click, question: string, bot: Bot, log: Logger): Promise<void> {
    const accepted = await this.accept({
      msgid: c.msgid,
      bot: bot.id,
      userid: c.userid,
      ...(c.chatid === undefined ? {} : { chatid: c.chatid }),
      chattype: c.chattype,
      text: question,
      ...(c.responseUrl ? { responseUrl: c.responseUrl } : {}),
      ...(c.replyTo ? { replyTo: c.replyTo } : {}),
      apart: true,
    });
    log.info(
      { answeredIn: accepted.streamId, duplicate: accepted.duplicate },
      'a question was asked by a button',
    );
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
      // Only the streams nothing happened to for a lease's length are read (the store's clock is
      // this node's: a clock skewed between nodes only delays a takeover by the skew).
      const orphans = await this.#d.store.listStreams({ orphanedBefore: this.#now() - quiet, limit: 200 });
      for (const s of orphans) {
        if (this.#actors.has(s.streamId)) continue;
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
   * give the rest back (`stream.released`, lease dropped) so that another node takes them over at once.
   */
  async drain(deadlineMs: number): Promise<{ finished: number; handedOver: number }> {
    this.#draining = true;
    clearTimeout(this.#sweeper);
    this.#sweeper = undefined;
    const actors = [...this.#actors.values()];
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(actors.map((a) => a.done)),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, deadlineMs);
      }),
    ]);
    clearTimeout(timer);
    const remaining = [...this.#actors.values()];
    await Promise.allSettled(remaining.map((a) => a.release()));
    await Promise.allSettled(remaining.map((a) => a.done));
    this.#unlisten();
    return { finished: actors.length - remaining.length, handedOver: remaining.length };
  }

  #writer(streamId: string, snapshot: StreamView, version: number, bot: Bot): StreamWriter {
    const { delivery } = this.#d;
    return new StreamWriter(this.#d.store, streamId, snapshot, version, {
      now: this.#now,
      ...(delivery.projection ? { projectionOf: (s) => delivery.projection!(s, streamId, bot.texts) } : {}),
      ...this.#d.writer,
      onStoreError: (error) => {
        this.#d.metrics.storeErrors.inc({ op: 'append' });
        this.#log.warn({ streamId, bot: bot.id, err: error }, 'store append failed');
      },
    });
  }

  #launch(writer: StreamWriter, holder: LeaseHolder, effects: readonly Effect[], bot: Bot): void {
    const deps: ActorDeps = {
      ...this.#d,
      answers: bot.answers,
      auth: bot.auth,
      ...(bot.media ? { media: bot.media } : {}),
      identity: bot.identity,
      settings: this.#settingsOf(bot),
      now: this.#now,
      takeOver: (id) => this.takeOver(id),
      storePatience: { delays: this.#d.writer?.retryDelays, forMs: this.#d.writer?.retryForMs },
    };
    const actor = new StreamActor(deps, writer, holder, effects);
    this.#actors.set(writer.streamId, actor);
    void actor.done.finally(() => {
      this.#actors.delete(writer.streamId);
    });
  }
}
