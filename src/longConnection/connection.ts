// One long-connection bot on one node. The node that takes the bot's lease in Redis dials WeCom
// (the official SDK: connection, subscribe, heartbeat, reconnect with back-off 1 s → 30 s, the reply
// queue that sends one frame per req_id at a time and waits for its ack), renews the lease while it
// lives, and gives it up on shutdown; every other node keeps trying to take it, so that when the
// holder dies another subscribes within LEASE_SECONDS and a few seconds. Messages that arrive become
// streams as callbacks do; their answers are pushed (pusher.ts). A connection kicked by another
// subscribe (`disconnected_event`) is not subscribed again at once, which would kick the other one
// back in a loop: it waits, longer each time.
import { randomBytes } from 'node:crypto';
import type { WSClient, WSClientOptions, WsFrame } from '@wecom/aibot-node-sdk';
import type { Logger } from '../log.js';
import { type Metrics, msgtypeLabel } from '../metrics.js';
import { clickOf, feedbackOf, incomingOf } from '../runner/incoming.js';
import type { Runner } from '../runner/runner.js';
import { parseMessage, type WecomMessage } from '../wecom/index.js';
import { Pusher, type PusherSettings } from './pusher.js';
import type { ConnectionState, ConnectionStatus, Holder, OutgoingMessage } from './state.js';

/** A long-connection bot, as its connection needs it. */
export interface ConnectionBot {
  id: string;
  name?: string | undefined;
  aibotid?: string | undefined;
  /** The reply to `enter_chat` (a text, or a card), ready within WeCom's 5 s. */
  welcome(): Promise<object>;
  longConnection: { botId: string; secret: string; url: string };
}

export interface ConnectionTuning {
  /** WeCom's heartbeat (the SDK's `ping`). Default 30 s. */
  heartbeatMs?: number;
  /** The first wait after a kick; doubles up to 16 times as long. Default 30 s. */
  kickedWaitMs?: number;
  /** How often the outbox of messages from other nodes is looked at. Default 200 ms. */
  outboxEveryMs?: number;
  /** The reconnect back-off's cap, for readiness: the SDK's is 30 s. */
  backoffCapMs?: number;
}

export interface BotConnectionDeps {
  bot: ConnectionBot;
  runner: Pick<Runner, 'accept' | 'poll' | 'feedback' | 'click'>;
  state: ConnectionState;
  node: string;
  leaseMs: number;
  push: PusherSettings;
  logger: Logger;
  metrics: Metrics;
  tuning?: ConnectionTuning | undefined;
  /** Who asked, and where the answer's frames go: from the stream's events. */
  streamOf: (streamId: string) => Promise<StreamTarget | undefined>;
  /** The SDK's client, made for these settings (tests may give another). */
  makeClient: (options: WSClientOptions) => WSClient;
}

export interface StreamTarget {
  replyTo?: string | undefined;
  userid: string;
  chatid?: string | undefined;
  chattype: 'single' | 'group';
}

/** How long a once-only send is remembered: past any answer's life. */
const ONCE_TTL_MS = 24 * 3600_000;

/** Where a message apart from the bubble goes: the group it came from, or the user (WeCom's chat_type 2 / 1). */
export function conversationOf(c: StreamTarget): Pick<OutgoingMessage, 'chatid' | 'chatType'> {
  return c.chattype === 'group' && c.chatid
    ? { chatid: c.chatid, chatType: 2 }
    : { chatid: c.userid, chatType: 1 };
}

export class BotConnection {
  readonly #d: BotConnectionDeps;
  readonly #log: Logger;
  readonly #holder: Holder;
  #client: WSClient | undefined;
  #holding = false;
  #connected = false;
  #since = 0;
  #lastConnectedAt: number | undefined;
  #problem: string | undefined;
  #kicks = 0;
  #kickTimer: NodeJS.Timeout | undefined;
  #leaseTimer: NodeJS.Timeout | undefined;
  #outboxTimer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #pushers = new Map<string, Pusher>();
  readonly #pushing = new Set<Promise<unknown>>();

  constructor(deps: BotConnectionDeps) {
    this.#d = deps;
    this.#log = deps.logger.child({ bot: deps.bot.id, mode: 'long-connection' });
    this.#holder = { node: deps.node, token: randomBytes(9).toString('base64url') };
  }

  get bot(): ConnectionBot {
    return this.#d.bot;
  }

  /** Whether this node holds the bot's connection now. */
  get holding(): boolean {
    return this.#holding;
  }

  get connected(): boolean {
    return this.#holding && this.#connected;
  }

  start(): void {
    // From the start, at 0: an alert on the series sees a bot that never connects.
    this.#d.metrics.connectionUp.set({ bot: this.#d.bot.id }, 0);
    void this.#tick();
    const every = Math.max(200, Math.floor(this.#d.leaseMs / 3));
    this.#leaseTimer = setInterval(() => void this.#tick(), every);
    this.#leaseTimer.unref();
    this.#outboxTimer = setInterval(() => void this.#drainOutbox(), this.#d.tuning?.outboxEveryMs ?? 200);
    this.#outboxTimer.unref();
  }

  /** The answer of a stream this node pushes changed: push it now (rather than at the next tick). */
  nudge(streamId: string): void {
    this.#pushers.get(streamId)?.nudge();
  }

  /**
   * Stop: let the answers being pushed finish for up to `graceMs`, then stop them (the next holder
   * carries on), close the connection and give the lease up.
   */
  async close(graceMs = 3000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#leaseTimer);
    clearInterval(this.#outboxTimer);
    clearTimeout(this.#kickTimer);
    if (this.#pushing.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.#pushing]),
        new Promise((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
    }
    for (const pusher of this.#pushers.values()) pusher.stop();
    await this.#letGo('the node is stopping');
  }

  /** Send a message over this connection, at most once per `onceKey`; the holder only. */
  async send(message: OutgoingMessage): Promise<void> {
    const client = this.#client;
    if (!this.#holding || !client) throw new Error('this node does not hold the connection');
    if (!(await this.#d.state.claim(message.onceKey, ONCE_TTL_MS))) {
      this.#log.info({ onceKey: message.onceKey }, 'already sent: not sent again');
      return;
    }
    await client.sendMessage(message.chatid, {
      msgtype: 'markdown',
      chat_type: message.chatType,
      markdown: { content: message.markdown },
    } as never);
  }

  async #tick(): Promise<void> {
    if (this.#closed) return;
    const { state, bot, leaseMs } = this.#d;
    let held: boolean;
    try {
      held = await state.acquire(bot.id, this.#holder, leaseMs);
    } catch (error) {
      this.#log.warn({ err: error }, 'the connection lease could not be checked');
      return;
    }
    if (this.#closed) {
      if (held) await state.release(bot.id, this.#holder).catch(() => undefined);
      return;
    }
    if (held && !this.#holding) this.#take();
    else if (!held && this.#holding) {
      this.#log.warn('lost the connection lease: another node holds the connection now');
      await this.#letGo('another node holds it');
    }
  }

  #take(): void {
    this.#holding = true;
    this.#since = Date.now();
    this.#log.info({ url: this.#d.bot.longConnection.url }, 'holding the connection: subscribing');
    this.#connect();
    // The last connection of any node counts for readiness: a failover is not an outage.
    void this.#d.state
      .status(this.#d.bot.id)
      .then((previous) => {
        this.#lastConnectedAt ??= previous?.lastConnectedAt;
      })
      .catch(() => undefined)
      .then(() => this.#report());
  }

  #connect(): void {
    const { bot, tuning } = this.#d;
    const sdkLog = this.#log.child({ sdk: 'aibot' });
    const client = this.#d.makeClient({
      botId: bot.longConnection.botId,
      secret: bot.longConnection.secret,
      wsUrl: bot.longConnection.url,
      // Forever, with the SDK's back-off (1 s doubling to 30 s): a refused secret is said in the
      // logs and in /readyz, and tried again, never in a tight loop.
      maxReconnectAttempts: -1,
      maxAuthFailureAttempts: -1,
      heartbeatInterval: tuning?.heartbeatMs ?? 30_000,
      logger: {
        debug: () => undefined,
        info: (message: string) => sdkLog.debug(message),
        warn: (message: string) => sdkLog.info(message),
        error: (message: string, ...args: unknown[]) =>
          sdkLog.warn({ detail: args.map(String).join(' ') }, message),
      },
    });
    this.#client = client;
    client.on('authenticated', () => {
      this.#connected = true;
      this.#kicks = 0;
      this.#problem = undefined;
      this.#lastConnectedAt = Date.now();
      this.#d.metrics.connectionUp.set({ bot: bot.id }, 1);
      this.#log.info('subscribed: WeCom sends this bot’s messages here');
      void this.#report();
      void this.#resume();
    });
    client.on('disconnected', (reason: string) => {
      if (this.#client !== client) return;
      this.#connected = false;
      this.#d.metrics.connectionUp.set({ bot: bot.id }, 0);
      this.#log.warn({ reason }, 'the connection closed');
      void this.#report();
    });
    client.on('error', (error: Error) => {
      if (this.#client !== client) return;
      const message = error?.message ?? String(error);
      if (/auth/i.test(message)) {
        this.#problem = `WeCom refused the subscription (check the BotID and Secret): ${message}`;
        this.#log.error({ err: error }, 'WeCom refused the subscription: tried again with back-off');
      } else this.#log.warn({ err: error }, 'connection error');
      void this.#report();
    });
    client.on('message', (frame: WsFrame) => void this.#onMessage(frame));
    client.on('event', (frame: WsFrame) => void this.#onEvent(client, frame));
    client.connect();
  }

  /** Close the connection and hand the lease over (or let it run out). */
  async #letGo(why: string): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    const was = this.#holding;
    this.#holding = false;
    this.#connected = false;
    this.#d.metrics.connectionUp.set({ bot: this.#d.bot.id }, 0);
    try {
      client?.disconnect();
    } catch {
      // Already closed.
    }
    client?.removeAllListeners();
    if (was) {
      this.#log.info({ why }, 'gave the connection up');
      await this.#d.state.release(this.#d.bot.id, this.#holder).catch(() => undefined);
    }
  }

  #resubscribe(): void {
    const client = this.#client;
    if (!client || !this.#holding) return;
    try {
      client.disconnect();
    } catch {
      // Closed already.
    }
    client.connect();
  }

  /** Another connection subscribed with this bot's id: wait, longer each time, before taking it back. */
  #kicked(): void {
    this.#kicks++;
    const first = this.#d.tuning?.kickedWaitMs ?? 30_000;
    const wait = first * 2 ** Math.min(4, this.#kicks - 1);
    this.#problem = `kicked: another connection subscribed with this bot's id (subscribing again in ${Math.round(wait / 1000)} s)`;
    this.#log.warn(
      { waitMs: wait, kicks: this.#kicks },
      'kicked by another connection with the same bot id: waiting before subscribing again',
    );
    void this.#report();
    clearTimeout(this.#kickTimer);
    this.#kickTimer = setTimeout(() => {
      if (this.#closed || !this.#holding || this.#connected) return;
      this.#log.info('subscribing again after a kick');
      this.#client?.connect();
    }, wait);
    this.#kickTimer.unref();
  }

  async #report(): Promise<void> {
    if (!this.#holding) return;
    const status: ConnectionStatus = {
      holder: this.#d.node,
      connected: this.#connected,
      since: this.#since,
      ...(this.#lastConnectedAt ? { lastConnectedAt: this.#lastConnectedAt } : {}),
      ...(this.#problem ? { problem: this.#problem } : {}),
    };
    await this.#d.state.setStatus(this.#d.bot.id, status).catch((error: unknown) => {
      this.#log.warn({ err: error }, 'the connection status could not be written');
    });
  }

  /** The answers the previous holder was pushing, carried on here. */
  async #resume(): Promise<void> {
    const ids = await this.#d.state.active(this.#d.bot.id).catch(() => [] as string[]);
    for (const streamId of ids) if (!this.#pushers.has(streamId)) this.#push(streamId, undefined);
  }

  async #onMessage(frame: WsFrame): Promise<void> {
    const reqId = frame.headers?.req_id ?? '';
    const { bot, runner } = this.#d;
    let message: WecomMessage | undefined;
    let outcome = 'error';
    let streamId: string | undefined;
    try {
      message = parseMessage(JSON.stringify(frame.body ?? {}), { botName: bot.name });
      if (bot.aibotid && message.aibotid !== bot.aibotid) {
        outcome = 'wrong_bot';
        return;
      }
      if (
        message.kind !== 'text' &&
        message.kind !== 'voice' &&
        message.kind !== 'mixed' &&
        message.kind !== 'image' &&
        message.kind !== 'file'
      ) {
        outcome = 'ignored';
        return;
      }
      const accepted = await runner.accept(incomingOf(message, bot.id, reqId));
      streamId = accepted.streamId;
      outcome = accepted.duplicate ? 'duplicate' : 'accepted';
      if (!accepted.duplicate) {
        await this.#d.state.addActive(bot.id, accepted.streamId);
        this.#push(accepted.streamId, reqId);
      }
    } catch (error) {
      this.#log.warn({ err: error, reqId }, 'a message frame could not be handled');
    } finally {
      this.#d.metrics.countCallback(bot.id, msgtypeLabel(message?.msgtype), outcome);
      this.#log.info(
        {
          reqId,
          streamId,
          msgid: message?.msgid,
          msgtype: message?.msgtype,
          userid: message?.from?.userid,
          outcome,
        },
        'frame',
      );
    }
  }

  async #onEvent(client: WSClient, frame: WsFrame): Promise<void> {
    const reqId = frame.headers?.req_id ?? '';
    const { bot, runner } = this.#d;
    let outcome = 'ignored';
    let message: WecomMessage | undefined;
    try {
      const body = frame.body as { event?: { eventtype?: string } } | undefined;
      if (body?.event?.eventtype === 'disconnected_event') {
        outcome = 'kicked';
        this.#connected = false;
        this.#kicked();
        return;
      }
      message = parseMessage(JSON.stringify(frame.body ?? {}), { botName: bot.name });
      if (message.kind === 'enter_chat') {
        // WeCom takes the welcome for 5 s only.
        await client.replyWelcome(frame, (await bot.welcome()) as never);
        outcome = 'welcomed';
      } else if (message.kind === 'template_card_event') {
        // The card's new look goes back on the event's req_id, within WeCom's 5 s.
        const card = await runner.click(clickOf(message, reqId), bot.id);
        if (card) await client.updateTemplateCard(frame, card as never);
        outcome = card ? 'clicked' : 'event';
      } else if (message.kind === 'feedback_event') {
        await runner.feedback(feedbackOf(message), bot.id);
        outcome = 'event';
      }
    } catch (error) {
      outcome = 'error';
      this.#log.warn({ err: error, reqId }, 'an event frame could not be handled');
    } finally {
      this.#d.metrics.countCallback(bot.id, 'event', outcome);
      this.#log.info({ reqId, msgtype: 'event', userid: message?.from?.userid, outcome }, 'frame');
    }
  }

  /** Push a stream's answer; `reqId` undefined: read it from the stream (a holder carrying on). */
  #push(streamId: string, reqId: string | undefined): void {
    const { bot, runner, state } = this.#d;
    const log = this.#log.child({ streamId });
    let replyTo = reqId;
    /** An image or a file of the answer: uploaded, then sent on the message's req_id. */
    const sendMedia = async (type: 'image' | 'file', data: Buffer, filename: string): Promise<void> => {
      const client = this.#client;
      if (!client || !this.#holding) throw new Error('this node does not hold the connection');
      replyTo ??= await this.#replyToOf(streamId);
      if (!replyTo) throw new Error('the stream names no req_id');
      const { media_id } = await client.uploadMedia(data, { type, filename });
      await client.reply(
        { headers: { req_id: replyTo } } as WsFrame,
        { msgtype: type, [type]: { media_id } } as never,
      );
      this.#d.metrics.frames.inc({ bot: bot.id, outcome: 'sent' });
    };
    const pusher = new Pusher(
      {
        streamId,
        poll: async () => {
          const json = await runner.poll(streamId, bot.id);
          return json;
        },
        respond: async (body) => {
          const client = this.#client;
          if (!client || !this.#holding) throw new Error('this node does not hold the connection');
          replyTo ??= await this.#replyToOf(streamId);
          if (!replyTo) throw Object.assign(new Error('the stream names no req_id'), { errcode: 846605 });
          await client.reply({ headers: { req_id: replyTo } } as WsFrame, body as never);
          this.#d.metrics.frames.inc({ bot: bot.id, outcome: 'sent' });
        },
        sendImage: (data) => sendMedia('image', data, `image.${data[0] === 0xff ? 'jpg' : 'png'}`),
        sendFile: (data, name) => sendMedia('file', data, name),
        sendRest: async (markdown) => {
          const context = await this.#d.streamOf(streamId);
          if (!context) return;
          await this.send({
            id: streamId,
            onceKey: `rest:${streamId}`,
            ...conversationOf(context),
            markdown,
          });
        },
        shown: { get: () => state.shown(streamId), set: (content) => state.setShown(streamId, content) },
        holding: () => this.#holding && !this.#closed,
        resubscribe: () => this.#resubscribe(),
        logger: log,
      },
      this.#d.push,
    );
    this.#pushers.set(streamId, pusher);
    const run = pusher
      .run()
      .then(async (outcome) => {
        log.info({ outcome }, 'answer pushed');
        if (outcome === 'finished' || outcome === 'sent-apart') await state.removeActive(bot.id, streamId);
      })
      .catch((error: unknown) => {
        this.#d.metrics.frames.inc({ bot: bot.id, outcome: 'failed' });
        log.warn({ err: error }, 'the answer could not be pushed; the next holder tries again');
      })
      .finally(() => {
        this.#pushers.delete(streamId);
        this.#pushing.delete(run);
      });
    this.#pushing.add(run);
  }

  /** The req_id a stream's frames carry, from its events (a holder carrying on another's). */
  async #replyToOf(streamId: string): Promise<string | undefined> {
    return (await this.#d.streamOf(streamId))?.replyTo;
  }

  /** Messages other nodes asked this holder to send (the rest of their answers). */
  async #drainOutbox(): Promise<void> {
    if (!this.#holding || !this.#connected || this.#closed) return;
    const { state, bot } = this.#d;
    for (let i = 0; i < 20; i++) {
      const message = await state.dequeue(bot.id).catch(() => undefined);
      if (!message) return;
      try {
        await this.send(message);
        await state.setResult(message.id, 'sent');
      } catch (error) {
        const code = (error as { errcode?: number }).errcode;
        await state
          .setResult(message.id, `failed: ${code ?? (error as Error)?.message ?? 'unknown'}`)
          .catch(() => undefined);
      }
    }
  }
}
