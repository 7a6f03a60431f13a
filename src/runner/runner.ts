// The owner side of the design: a new WeCom message becomes a stream whose events this node writes
// (auth → Dify → deltas → completion) while holding the stream's lease; a poll on any node is a
// `load` + `render`. The callback never waits for Dify: `accept` returns the placeholder at once.
import { randomBytes } from 'node:crypto';
import type { AuthOutcome, Authenticator } from '../auth/types.js';
import { difyIdentity } from '../auth/identity.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import {
  defaultTexts,
  fold,
  initialStream,
  isFinished,
  render,
  type StreamEvent,
  type StreamReply,
  type StreamSnapshot,
  stateOf,
  type Texts,
} from '../machines/index.js';
import type { Metrics } from '../metrics.js';
import type { StreamStore } from '../store/port.js';
import { helpText, newConversationText, nothingToStopText, parseCommand, stoppedText } from './commands.js';
import { difyErrorCode, failureOf } from './failures.js';
import type { AnswerSource } from './ports.js';
import { StreamWriter, type WriterOptions } from './writer.js';

/** A user message, as the WeCom layer hands it over (mention already stripped). */
export interface UserMessage {
  msgid: string;
  bot: string;
  userid: string;
  chatid?: string;
  chattype: 'single' | 'group';
  query: string;
  responseUrl?: string;
}

export interface RunnerDeps {
  store: StreamStore;
  answers: AnswerSource;
  auth: Authenticator;
  config: Pick<Config, 'nodeId' | 'dify' | 'stream'>;
  logger: Logger;
  metrics: Metrics;
  texts?: Texts;
  now?: () => number;
  writer?: WriterOptions;
}

interface Running {
  abort: AbortController;
  done: Promise<void>;
  writer: StreamWriter;
}

/** Where a Dify conversation lives: the user in a single chat, the chat and the user in a group. */
export function conversationScope(m: Pick<UserMessage, 'chattype' | 'chatid' | 'userid'>): string {
  return m.chattype === 'group' && m.chatid ? `${m.chatid}:${m.userid}` : m.userid;
}

/** Stream ids: 22 url-safe characters, unguessable (they name a user's answer in every poll). */
export function newStreamId(): string {
  return randomBytes(16).toString('base64url');
}

export class Runner {
  private readonly running = new Map<string, Running>();
  private readonly texts: Texts;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly deps: RunnerDeps) {
    this.texts = deps.texts ?? defaultTexts;
    this.now = deps.now ?? Date.now;
    this.log = deps.logger;
  }

  /** How many answers this node is running now. */
  get inflight(): number {
    return this.running.size;
  }

  /**
   * Accept a user message: claim its msgid (a retried callback gets the first stream and starts
   * nothing), record `stream.opened`, start answering in the background, and return the first reply.
   */
  async accept(m: UserMessage): Promise<{ streamId: string; duplicate: boolean; reply: StreamReply }> {
    const { store, metrics } = this.deps;
    const candidate = newStreamId();
    const claim = await store.claimMessage(m.msgid, candidate);
    if (!claim.claimed) {
      metrics.dedupHits.inc();
      return { streamId: claim.streamId, duplicate: true, reply: await this.poll(claim.streamId) };
    }
    const streamId = candidate;
    const opened: StreamEvent = {
      type: 'stream.opened',
      at: this.now(),
      streamId,
      msgid: m.msgid,
      bot: m.bot,
      userid: m.userid,
      chatid: m.chatid,
      chattype: m.chattype,
      query: m.query,
      responseUrl: m.responseUrl,
      node: this.deps.config.nodeId,
    };
    const command = parseCommand(m.query);
    const events: StreamEvent[] = [opened];
    const scope = conversationScope(m);
    if (command.kind === 'help') events.push(this.commandEvent('help', helpText));
    if (command.kind === 'new') {
      await store.clearConversation(m.bot, scope);
      if (!command.question) events.push(this.commandEvent('new', newConversationText));
      else opened.query = command.question;
    }
    if (command.kind === 'stop') {
      const stopped = await this.requestStop(m.bot, scope);
      events.push(this.commandEvent('stop', stopped ? stoppedText : nothingToStopText));
    }
    const snapshot = fold(events);
    const writer = this.writer(streamId, initialStream(), 0);
    await writer.emit(...events);
    metrics.streamsOpened.inc();
    if (isFinished(snapshot)) {
      metrics.streamsFinished.inc({ state: stateOf(snapshot) });
    } else {
      await store.setActive(m.bot, scope, streamId);
      this.start(writer, { ...m, query: opened.query });
    }
    return { streamId, duplicate: false, reply: render(writer.snapshot, streamId, this.texts) };
  }

  /** A WeCom refresh poll: snapshot + tail, rendered. Never changes the stream. */
  async poll(streamId: string): Promise<StreamReply> {
    const end = this.deps.metrics.pollDuration.startTimer();
    try {
      const local = this.running.get(streamId);
      const loaded = await this.deps.store.load(streamId);
      if (!loaded) return render(initialStream(), streamId, this.texts);
      void local;
      return render(loaded.snapshot, streamId, this.texts);
    } finally {
      end();
    }
  }

  /** Stop accepting work and wait for running answers, at most `deadlineMs`; abort what remains. */
  async drain(deadlineMs: number): Promise<{ finished: number; abandoned: number }> {
    const all = [...this.running.values()];
    const settled = Promise.allSettled(all.map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      settled.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), deadlineMs);
      }),
    ]);
    clearTimeout(timer);
    const abandoned = timedOut ? this.running.size : 0;
    return { finished: all.length - abandoned, abandoned };
  }

  private commandEvent(command: string, text: string): StreamEvent {
    return { type: 'command.handled', at: this.now(), command, text };
  }

  private async requestStop(bot: string, scope: string): Promise<boolean> {
    const active = await this.deps.store.getActive(bot, scope);
    if (!active) return false;
    const loaded = await this.deps.store.load(active);
    if (!loaded || isFinished(loaded.snapshot)) return false;
    await this.deps.store.requestStop(active);
    // This node may own it: abort at once instead of waiting for the owner's next check.
    this.running.get(active)?.abort.abort(new Error('stopped by the user'));
    return true;
  }

  private writer(streamId: string, snapshot: StreamSnapshot, version: number): StreamWriter {
    return new StreamWriter(this.deps.store, streamId, snapshot, version, {
      now: this.now,
      ...this.deps.writer,
      onStoreError: (error) => {
        this.deps.metrics.storeErrors.inc({ op: 'append' });
        this.log.warn({ streamId, err: error }, 'store append failed');
      },
    });
  }

  private start(writer: StreamWriter, m: UserMessage): void {
    const abort = new AbortController();
    const done = this.answer(writer, m, abort.signal).finally(() => this.running.delete(writer.streamId));
    this.running.set(writer.streamId, { abort, done, writer });
  }

  private async answer(w: StreamWriter, m: UserMessage, signal: AbortSignal): Promise<void> {
    const { store, answers, auth, config, metrics } = this.deps;
    const streamId = w.streamId;
    const log = this.log.child({ streamId, msgid: m.msgid, userid: m.userid });
    const openedAt = w.snapshot.context.openedAt;
    const leaseMs = config.stream.leaseMs;
    metrics.inflight.inc();
    let firstText = true;
    let stopCheck: NodeJS.Timeout | undefined;
    let leaseTimer: NodeJS.Timeout | undefined;
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await store.acquireLease(streamId, config.nodeId, leaseMs);
      leaseTimer = setInterval(() => {
        store.renewLease(streamId, config.nodeId, leaseMs).catch((error) => {
          log.warn({ err: error }, 'lease renewal failed');
        });
      }, Math.max(500, Math.floor(leaseMs / 3)));

      let outcome: AuthOutcome;
      try {
        outcome = await auth.authenticate({ userid: m.userid, bot: m.bot });
      } catch (error) {
        log.warn({ err: error }, 'authentication unavailable');
        await w.emit({ type: 'answer.failed', at: this.now(), ...failureOf(error) });
        return;
      }
      if (!outcome.granted) {
        await w.emit({ type: 'auth.denied', at: this.now(), reason: outcome.reason, text: outcome.text });
        return;
      }
      await w.emit({ type: 'auth.granted', at: this.now(), user: outcome.user });

      const scope = conversationScope(m);
      const conversationId = await store.getConversation(m.bot, scope);
      const identity = difyIdentity(outcome, config.dify, m.userid);
      stopCheck = setInterval(() => {
        store.isStopRequested(streamId).then(
          (stop) => stop && controller.abort(new Error('stopped by the user')),
          () => undefined,
        );
      }, 500);
      let taskId: string | undefined;
      try {
        for await (const event of answers.stream({
          query: m.query,
          user: identity.user,
          conversationId,
          inputs: identity.inputs,
          bearer: identity.bearer,
          signal: controller.signal,
        })) {
          switch (event.type) {
            case 'conversation_reset':
              await store.clearConversation(m.bot, scope);
              break;
            case 'started':
              taskId = event.taskId ?? taskId;
              if (event.conversationId && event.conversationId !== conversationId)
                await store.setConversation(m.bot, scope, event.conversationId);
              await w.emit({
                type: 'dify.started',
                at: this.now(),
                conversationId: event.conversationId,
                messageId: event.messageId,
                taskId: event.taskId,
                workflowRunId: event.workflowRunId,
              });
              break;
            case 'delta':
              if (firstText) {
                firstText = false;
                metrics.firstToken.observe((this.now() - openedAt) / 1000);
              }
              w.delta(event.text);
              break;
            case 'replace':
              await w.emit({ type: 'answer.replaced', at: this.now(), text: event.text });
              break;
            case 'end':
              await w.emit({ type: 'answer.completed', at: this.now(), usage: event.usage });
              break;
          }
        }
        if (!w.finished) {
          // The source ended without a terminal event: never pass a partial answer off as complete.
          await w.emit({ type: 'answer.failed', at: this.now(), code: 'dify_interrupted', message: 'stream ended early' });
        }
      } catch (error) {
        if (controller.signal.aborted) {
          if (taskId) answers.stop(taskId, identity.user, { bearer: identity.bearer }).catch(() => undefined);
          await w.emit({ type: 'answer.failed', at: this.now(), code: 'stopped', message: 'stopped by the user' });
        } else {
          const code = difyErrorCode(error);
          if (code) metrics.difyErrors.inc({ code });
          log.warn({ err: error }, 'answer failed');
          await w.emit({ type: 'answer.failed', at: this.now(), ...failureOf(error) });
        }
      }
    } catch (error) {
      log.error({ err: error }, 'answer could not be recorded');
      if (!w.failure) await w.emit({ type: 'answer.failed', at: this.now(), ...failureOf(error) }).catch(() => undefined);
    } finally {
      signal.removeEventListener('abort', onAbort);
      clearInterval(stopCheck);
      clearInterval(leaseTimer);
      await w.flush().catch(() => undefined);
      w.dispose();
      await store.releaseLease(streamId, config.nodeId).catch(() => undefined);
      metrics.inflight.dec();
      const state = stateOf(w.snapshot);
      if (isFinished(w.snapshot)) {
        metrics.streamsFinished.inc({ state });
        if (state === 'completed') metrics.completion.observe((this.now() - openedAt) / 1000);
      }
      log.info(
        {
          state,
          durationMs: this.now() - openedAt,
          answerLength: w.snapshot.context.answer.length,
          version: w.version,
          code: w.snapshot.context.error?.code ?? w.snapshot.context.denied?.reason,
        },
        'stream outcome',
      );
    }
  }
}
