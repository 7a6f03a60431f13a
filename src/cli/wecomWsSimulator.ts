// WeCom's long-connection server for people (docs/protocol/wecom.md §11), on 127.0.0.1: what
// `wecom-dify chat --ws` and `wecom-dify demo --long-connection` play, so that a service in
// WECOM_MODE=long-connection can be tried with no WeCom at all. It takes the subscribe of one bot and
// refuses any other as WeCom does (§11.2), acks pings and every frame (the SDK gives up on a frame left
// unacked for 5 s, §11.7), pushes a user's message or enter_chat, and hands back the answer's frames as
// they come and what follows them as a message of its own (§11.6).
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';
import { bubbleSaysMoreFollows } from '../machines/index.js';
import { describeCard } from './cards.js';
import type { Sender } from './simulator.js';

export interface WsSimulatorOptions {
  /** The BotID and Secret a service must subscribe with. */
  botId: string;
  secret: string;
  /** The `aibotid` of every message; the BotID unless said otherwise. */
  aibotid?: string;
  /** 0 (the default): any free port. */
  port?: number;
  /** How to point a service at the simulator, for the error when none has subscribed. */
  startHint?: (url: string) => string;
  /** Told when a service subscribes, is refused, is replaced by another, or goes away. */
  onEvent?: (event: SimulatorEvent) => void;
  /** How long an answer waits for a service whose connection closed to subscribe again. Default 35 s. */
  reconnectWithinMs?: number;
}

export type SimulatorEvent =
  /** `again`: after the connection before it closed. */
  | { kind: 'subscribed'; again: boolean }
  | { kind: 'refused'; botId: string }
  /** A newer subscribe took the bot's connection; the older one was told and closed (§11.4). */
  | { kind: 'replaced' }
  | { kind: 'closed' };

export type WsSimulatorErrorCode = 'not_subscribed' | 'disconnected' | 'timeout' | 'closed';

export class WsSimulatorError extends Error {
  override readonly name = 'WsSimulatorError';
  constructor(
    readonly code: WsSimulatorErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** What a question brings back: each frame of its bubble, then any message of its own that follows. */
export type AnswerFrame =
  | { kind: 'stream'; id: string; content: string; finish: boolean }
  | { kind: 'message'; markdown: string };

export interface AskOptions {
  signal?: AbortSignal | undefined;
  /** Give up when the bubble has not finished by then. Default 6 minutes, as WeCom ends a stream (§11.7). */
  timeoutMs?: number | undefined;
  /** How long a bubble that says the rest follows waits for it. Default 30 s. */
  restWithinMs?: number | undefined;
}

/** The answers WeCom gives (§11.8), with its errmsg. */
const ACK = {
  ok: { errcode: 0, errmsg: 'ok' },
  refused: { errcode: 40058, errmsg: 'invalid bot_id or secret' },
  invalid: { errcode: 40058, errmsg: 'invalid parameter' },
  badReqId: { errcode: 846605, errmsg: 'invalid req_id' },
  notSubscribed: { errcode: 846609, errmsg: 'aibot websocket not subscribed' },
} as const;
type Ack = (typeof ACK)[keyof typeof ACK];

const ANSWER_WITHIN_MS = 360_000;
const REST_WITHIN_MS = 30_000;
/** The SDK's reconnect back-off tops out at 30 s (§11.3): a little more than that. */
const RECONNECT_WITHIN_MS = 35_000;
/** WeCom takes a welcome within 5 s of enter_chat only (§11.6). */
const WELCOME_WITHIN_MS = 5_000;

const envelopeSchema = z.object({
  cmd: z.string().optional(),
  headers: z.object({ req_id: z.string().min(1) }),
  body: z.unknown().optional(),
});
const subscribeSchema = z.object({ bot_id: z.string(), secret: z.string() });
const streamSchema = z.object({
  msgtype: z.literal('stream'),
  stream: z.object({
    id: z.string().min(1),
    finish: z.boolean().default(false),
    content: z.string().default(''),
  }),
});
const welcomeSchema = z.union([
  z.object({ msgtype: z.literal('text'), text: z.object({ content: z.string() }) }),
  z.object({ msgtype: z.string() }),
]);
const sendSchema = z.object({
  chatid: z.string().min(1),
  msgtype: z.string(),
  markdown: z.object({ content: z.string() }).optional(),
});

/** A frame from the service, parsed once; a frame with no req_id cannot be answered and is dropped. */
type Inbound = { reqId: string } & (
  | { kind: 'subscribe'; botId: string; secret: string }
  | { kind: 'ping' }
  /** `stream` undefined: a reply of another msgtype, taken but not shown. */
  | { kind: 'respond'; stream: { id: string; finish: boolean; content: string } | undefined }
  | { kind: 'welcome'; text: string }
  | { kind: 'send'; chatid: string; markdown: string }
  | { kind: 'invalid' }
  | { kind: 'other' }
);

function parseInbound(text: string): Inbound | undefined {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const envelope = envelopeSchema.safeParse(json);
  if (!envelope.success) return undefined;
  const { cmd, headers, body } = envelope.data;
  const reqId = headers.req_id;
  switch (cmd) {
    case 'aibot_subscribe': {
      const parsed = subscribeSchema.safeParse(body);
      return parsed.success
        ? { reqId, kind: 'subscribe', botId: parsed.data.bot_id, secret: parsed.data.secret }
        : { reqId, kind: 'invalid' };
    }
    case 'ping':
      return { reqId, kind: 'ping' };
    case 'aibot_respond_msg': {
      const msgtype = (body as { msgtype?: unknown } | undefined)?.msgtype;
      if (msgtype !== 'stream') return { reqId, kind: 'respond', stream: undefined };
      const parsed = streamSchema.safeParse(body);
      return parsed.success
        ? { reqId, kind: 'respond', stream: parsed.data.stream }
        : { reqId, kind: 'invalid' };
    }
    case 'aibot_respond_welcome_msg': {
      const parsed = welcomeSchema.safeParse(body);
      if (!parsed.success) return { reqId, kind: 'invalid' };
      const welcome = parsed.data;
      const text =
        'text' in welcome
          ? welcome.text.content
          : (describeCard((body as { template_card?: unknown }).template_card) ??
            `(a ${welcome.msgtype} welcome)`);
      return { reqId, kind: 'welcome', text };
    }
    case 'aibot_send_msg': {
      const parsed = sendSchema.safeParse(body);
      if (!parsed.success) return { reqId, kind: 'invalid' };
      const { chatid, msgtype, markdown } = parsed.data;
      return { reqId, kind: 'send', chatid, markdown: markdown?.content ?? `(a ${msgtype} message)` };
    }
    default:
      return { reqId, kind: 'other' };
  }
}

/** A question in flight: the frames of its bubble and the messages to its chat, as they come. */
interface Pending {
  readonly reqId: string;
  /** Where a message of its own goes: the userid in a single chat, the chatid in a group. */
  readonly chat: string;
  readonly frames: { id: string; content: string; finish: boolean }[];
  readonly messages: string[];
  finished: boolean;
}

/** A callback pushed, which the service may answer with its req_id. */
type Pushed = { kind: 'message' } | { kind: 'enter_chat'; at: number };

/** As the SDK builds them (§11.1): `<cmd>_<ms>_<8 hex>`. */
const reqIdOf = (cmd: string) => `${cmd}_${Date.now()}_${randomBytes(4).toString('hex')}`;
const msgidOf = () => randomBytes(18).toString('base64');

export class WecomWsSimulator {
  readonly url: string;
  readonly port: number;
  readonly #server: WebSocketServer;
  readonly #o: WsSimulatorOptions;
  #subscriber: WebSocket | undefined;
  /** When the subscribed connection closed, while none has subscribed since. */
  #lostAt: number | undefined;
  #everSubscribed = false;
  #closed = false;
  readonly #pushed = new Map<string, Pushed>();
  readonly #asks = new Map<string, Pending>();
  readonly #welcomes = new Map<string, { text?: string }>();
  readonly #waiters = new Set<() => void>();

  private constructor(server: WebSocketServer, options: WsSimulatorOptions) {
    this.#server = server;
    this.#o = options;
    this.port = (server.address() as AddressInfo).port;
    this.url = `ws://127.0.0.1:${this.port}`;
    server.on('connection', (socket) => this.#accept(socket));
  }

  /** Listens on 127.0.0.1; rejects with the listen error (`EADDRINUSE`: the port is taken). */
  static async listen(options: WsSimulatorOptions): Promise<WecomWsSimulator> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: options.port ?? 0 });
    await once(server, 'listening');
    return new WecomWsSimulator(server, options);
  }

  get subscribed(): boolean {
    return this.#subscriber !== undefined;
  }

  /** Resolves once a service has subscribed; false when none did within `timeoutMs`. */
  async waitForSubscriber(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<boolean> {
    return this.#until(() => this.#subscriber !== undefined, {
      deadline: Date.now() + (options.timeoutMs ?? Number.POSITIVE_INFINITY),
      signal: options.signal,
    });
  }

  /**
   * Sends the user's text as `aibot_msg_callback` (§11.5) and yields the frames of its bubble, each the
   * whole answer so far, up to the one with `finish:true`; then the messages the service sent to the
   * same chat meanwhile, waiting for one when the bubble says the rest follows.
   */
  ask(text: string, sender: Sender, options: AskOptions = {}): AsyncIterable<AnswerFrame> {
    const socket = this.#subscriberOrThrow();
    const reqId = reqIdOf('aibot_msg_callback');
    const pending: Pending = {
      reqId,
      chat: sender.chatid ?? sender.userid,
      frames: [],
      messages: [],
      finished: false,
    };
    this.#pushed.set(reqId, { kind: 'message' });
    this.#asks.set(reqId, pending);
    send(socket, {
      cmd: 'aibot_msg_callback',
      headers: { req_id: reqId },
      body: { ...this.#common(sender), msgtype: 'text', text: { content: text } },
    });
    return this.#answer(pending, options);
  }

  /** Sends `enter_chat` (§6.6) and returns the welcome the service answers with, within WeCom's 5 s. */
  async welcome(userid: string, options: { signal?: AbortSignal } = {}): Promise<string> {
    const socket = this.#subscriberOrThrow();
    const reqId = reqIdOf('aibot_event_callback');
    const slot: { text?: string } = {};
    this.#pushed.set(reqId, { kind: 'enter_chat', at: Date.now() });
    this.#welcomes.set(reqId, slot);
    send(socket, {
      cmd: 'aibot_event_callback',
      headers: { req_id: reqId },
      body: { ...this.#common({ userid }), msgtype: 'event', event: { eventtype: 'enter_chat' } },
    });
    try {
      const came = await this.#until(() => slot.text !== undefined, {
        deadline: Date.now() + WELCOME_WITHIN_MS,
        signal: options.signal,
      });
      if (!came || slot.text === undefined)
        throw new WsSimulatorError(
          'timeout',
          `no welcome within ${WELCOME_WITHIN_MS / 1000} s of enter_chat: WeCom shows none after that`,
        );
      return slot.text;
    } finally {
      this.#welcomes.delete(reqId);
    }
  }

  /** Closes every connection and stops listening; a question in flight fails with `closed`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const socket of this.#server.clients) socket.terminate();
    this.#changed();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async *#answer(p: Pending, o: AskOptions): AsyncGenerator<AnswerFrame> {
    const timeoutMs = o.timeoutMs ?? ANSWER_WITHIN_MS;
    const deadline = Date.now() + timeoutMs;
    try {
      let next = 0;
      let last: Pending['frames'][number] | undefined;
      while (!last?.finish) {
        const came = await this.#until(() => p.frames.length > next, {
          deadline,
          signal: o.signal,
          fail: () => this.#broken(),
        });
        if (!came)
          throw new WsSimulatorError(
            'timeout',
            `the answer did not finish within ${Math.round(timeoutMs / 1000)} s (${next} frames): WeCom ends a stream 6 minutes after its first frame`,
          );
        while (next < p.frames.length && !last?.finish) {
          last = p.frames[next++]!;
          yield { kind: 'stream', ...last };
        }
      }
      if (p.messages.length === 0 && bubbleSaysMoreFollows(last.content)) {
        await this.#until(() => p.messages.length > 0, {
          deadline: Date.now() + (o.restWithinMs ?? REST_WITHIN_MS),
          signal: o.signal,
          fail: () => this.#broken(),
        });
      }
      for (const markdown of p.messages) yield { kind: 'message', markdown };
    } finally {
      this.#asks.delete(p.reqId);
    }
  }

  #accept(socket: WebSocket): void {
    socket.on('message', (data) => {
      const frame = parseInbound(data.toString());
      if (!frame) return;
      const ack = this.#handle(socket, frame);
      send(socket, { headers: { req_id: frame.reqId }, ...ack });
      this.#changed();
    });
    socket.on('close', () => {
      if (this.#subscriber === socket) {
        this.#subscriber = undefined;
        this.#lostAt = Date.now();
        if (!this.#closed) this.#o.onEvent?.({ kind: 'closed' });
      }
      this.#changed();
    });
    // A service that goes away resets its socket: an ordinary event here.
    socket.on('error', () => undefined);
  }

  #handle(socket: WebSocket, frame: Inbound): Ack {
    if (frame.kind === 'subscribe') return this.#subscribe(socket, frame.botId, frame.secret);
    if (socket !== this.#subscriber) return ACK.notSubscribed;
    switch (frame.kind) {
      case 'ping':
      case 'other':
        return ACK.ok;
      case 'invalid':
        return ACK.invalid;
      case 'respond': {
        if (this.#pushed.get(frame.reqId)?.kind !== 'message') return ACK.badReqId;
        const p = this.#asks.get(frame.reqId);
        if (p && frame.stream && !p.finished) {
          p.frames.push(frame.stream);
          p.finished = frame.stream.finish;
        }
        return ACK.ok;
      }
      case 'welcome': {
        const pushed = this.#pushed.get(frame.reqId);
        if (pushed?.kind !== 'enter_chat' || Date.now() - pushed.at > WELCOME_WITHIN_MS) return ACK.badReqId;
        const slot = this.#welcomes.get(frame.reqId);
        if (slot) slot.text = frame.text;
        return ACK.ok;
      }
      case 'send':
        for (const p of this.#asks.values()) if (p.chat === frame.chatid) p.messages.push(frame.markdown);
        return ACK.ok;
    }
  }

  #subscribe(socket: WebSocket, botId: string, secret: string): Ack {
    if (botId !== this.#o.botId || secret !== this.#o.secret) {
      this.#o.onEvent?.({ kind: 'refused', botId });
      return ACK.refused;
    }
    const older = this.#subscriber;
    if (older === socket) return ACK.ok;
    // One connection per bot: the older one is told, then closed (§11.4).
    if (older) {
      send(older, {
        cmd: 'aibot_event_callback',
        headers: { req_id: reqIdOf('aibot_event_callback') },
        body: {
          ...this.#common({ userid: 'wecom' }),
          msgtype: 'event',
          event: { eventtype: 'disconnected_event' },
        },
      });
      older.close();
    }
    const again = this.#everSubscribed && !older;
    this.#subscriber = socket;
    this.#lostAt = undefined;
    this.#everSubscribed = true;
    this.#o.onEvent?.(older ? { kind: 'replaced' } : { kind: 'subscribed', again });
    return ACK.ok;
  }

  #common({ userid, chatid }: Sender): Record<string, unknown> {
    return {
      msgid: msgidOf(),
      create_time: Math.floor(Date.now() / 1000),
      aibotid: this.#o.aibotid ?? this.#o.botId,
      ...(chatid ? { chatid } : {}),
      chattype: chatid ? 'group' : 'single',
      from: { userid },
    };
  }

  #subscriberOrThrow(): WebSocket {
    if (this.#closed) throw new WsSimulatorError('closed', 'the WeCom simulator is closed');
    if (this.#subscriber) return this.#subscriber;
    if (this.#lostAt !== undefined)
      throw new WsSimulatorError(
        'disconnected',
        'the service\u2019s connection is closed: if it still runs, it subscribes again by itself within 30 s',
      );
    const hint =
      this.#o.startHint?.(this.url) ??
      `WECOM_MODE=long-connection WECOM_BOT_ID=${this.#o.botId} WECOM_BOT_SECRET=${this.#o.secret} WECOM_WS_URL=${this.url}`;
    throw new WsSimulatorError('not_subscribed', `no service has subscribed yet: start it with ${hint}`);
  }

  /** Why a question in flight cannot be answered any more, if it cannot. */
  #broken(): WsSimulatorError | undefined {
    if (this.#closed) return new WsSimulatorError('closed', 'the WeCom simulator is closed');
    const within = this.#o.reconnectWithinMs ?? RECONNECT_WITHIN_MS;
    if (this.#subscriber === undefined && this.#lostAt !== undefined && Date.now() - this.#lostAt > within)
      return new WsSimulatorError(
        'disconnected',
        `the service\u2019s connection closed while it answered, and it did not subscribe again within ${Math.round(within / 1000)} s`,
      );
    return undefined;
  }

  /**
   * Resolves true once `holds()`, looking again at every frame and connection change (and every
   * second, for `fail`); false at the deadline; throws what `fail` returns, or the signal's reason.
   */
  async #until(
    holds: () => boolean,
    o: { deadline: number; signal?: AbortSignal | undefined; fail?: () => Error | undefined },
  ): Promise<boolean> {
    for (;;) {
      o.signal?.throwIfAborted();
      if (holds()) return true;
      const failure = o.fail?.();
      if (failure) throw failure;
      const left = o.deadline - Date.now();
      if (left <= 0) return false;
      await this.#change(Math.min(left, 1000), o.signal);
    }
  }

  /** The next frame or connection change, or `ms`, or the signal: whichever comes first. */
  #change(ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  #changed(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}

function send(socket: WebSocket, frame: object): void {
  if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(frame));
}
