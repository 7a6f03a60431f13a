// A stand-in for WeCom's long-connection WebSocket server (docs/protocol/wecom.md §11) on a random local
// port. It keeps WeCom's rules: subscribe first, one connection per bot (a newer subscribe kicks the
// older), acks by req_id, replies only to callbacks pushed on the same connection, streams that expire
// and end. It records every frame it gets, pushes callbacks on request, and misbehaves on request
// (injected errcodes, drops, kicks, unanswered pings, text that is not JSON).
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';

/** The body fields the fake reads; everything else a frame carries is kept as sent. */
export interface WsBody {
  [key: string]: unknown;
  msgtype?: string | undefined;
  chatid?: string | undefined;
  bot_id?: string | undefined;
  secret?: string | undefined;
  stream?: { [key: string]: unknown; id?: string | undefined; finish?: boolean | undefined } | undefined;
  event?: { [key: string]: unknown; eventtype?: string | undefined } | undefined;
}

export interface WsFrame {
  cmd?: string | undefined;
  headers?: { req_id?: string | undefined } | undefined;
  body?: WsBody | undefined;
  errcode?: number | undefined;
  errmsg?: string | undefined;
}

export interface WsAck {
  errcode: number;
  errmsg: string;
  body?: Record<string, unknown>;
}

/** A file uploaded over the connection (aibot_upload_media_init → chunks → finish). */
export interface UploadedMedia {
  mediaId: string;
  type: string;
  filename: string;
  data: Buffer;
}

export interface ReceivedFrame {
  at: number;
  connection: number;
  /** The bot the connection was subscribed for when the frame arrived. */
  botId?: string;
  /** What could be read of the frame; for text that is not a frame, only what was readable. */
  frame: WsFrame;
  /** The text as received, kept only when it was not a valid frame. */
  raw?: string;
  /** The ack the fake answered with; absent while unanswered and for frames it leaves unanswered. */
  ack?: WsAck;
}

export interface FakeWecomWsOptions {
  /** bot_id → secret the fake accepts; a subscribe with anything else is refused. */
  bots: Record<string, string>;
  /** How long after the first frame of a stream.id its updates are accepted (WeCom: 6 minutes). Default 360_000. */
  streamExpiryMs?: number;
  /** How long after an enter_chat event its welcome is accepted (WeCom: 5 s). Default 5_000. */
  welcomeWithinMs?: number;
  /** How long after a template_card_event its card update is accepted (WeCom: 5 s). Default 5_000. */
  updateWithinMs?: number;
}

export interface FailNextOptions {
  /** How many frames to fail; default 1. */
  count?: number;
  errmsg?: string;
  /** Fail only the frames this accepts; others of the cmd are handled as usual. */
  match?: (frame: WsFrame) => boolean;
}

export interface FakeWecomWs {
  /** ws://127.0.0.1:<port> */
  url: string;
  /** Every frame any connection sent to the fake, in order (pings included). */
  received: ReceivedFrame[];
  /** Every subscribe attempt: bot id, whether accepted, when, which connection number. */
  subscribes: Array<{ at: number; connection: number; botId: string; accepted: boolean }>;
  /** The number of the connection now subscribed for a bot, or undefined. */
  subscribed(botId: string): number | undefined;
  /** How many sockets are open now (subscribed or not). */
  openSockets(): number;
  /**
   * Pushes aibot_msg_callback with a fresh req_id to the bot's subscribed connection and returns the
   * req_id; throws if none. Defaults under `body`: msgid (random), aibotid (the bot), chattype
   * 'single', from.userid 'zhangsan', create_time, and a text message when `body` names no msgtype.
   */
  message(botId: string, body?: Record<string, unknown>): string;
  /** Pushes aibot_event_callback (msgtype 'event', event: { eventtype, [eventtype]: payload }) and returns its req_id. */
  event(
    botId: string,
    eventtype: string,
    payload?: Record<string, unknown>,
    extra?: Record<string, unknown>,
  ): string;
  /** Frames the service sent with this req_id (aibot_respond_msg / _welcome_msg / _update_msg), in order, failed ones too. */
  repliesTo(reqId: string): WsFrame[];
  /** aibot_send_msg frames the service sent, in order, failed ones too. */
  sent(): WsFrame[];
  /** The files uploaded, in the order their upload finished. */
  media(): UploadedMedia[];
  /** Answer the next `count` (default 1) frames of `cmd` (optionally only those `match` accepts) with this errcode instead of handling them. */
  failNext(cmd: string, errcode: number, options?: FailNextOptions): void;
  /** Close the bot's connection abruptly (socket terminate, as a network drop). */
  drop(botId: string): void;
  /** As WeCom does when another connection subscribes: send disconnected_event to the bot's connection, then close it. */
  kick(botId: string): void;
  /** Stop (or resume) acking pings on the bot's current connection, as a WeCom that stopped answering; a new connection is answered again. */
  silence(botId: string, silent?: boolean): void;
  /** Send raw text (e.g. not JSON) to the bot's connection. */
  sendRaw(botId: string, text: string): void;
  /** Resolves when `check()` holds, checking on every frame received and every 20 ms; rejects after timeoutMs (default 5000) naming `what`. */
  waitFor(what: string, check: () => boolean, timeoutMs?: number): Promise<void>;
  /** Terminates every socket, closes the server and fails any waitFor still pending. */
  stop(): Promise<void>;
}

// The errcodes of docs/protocol/wecom.md §11.8, with the errmsg WeCom gives them.
const ERRMSG: Record<number, string> = {
  0: 'ok',
  6000: 'command conflict',
  40058: 'invalid parameter',
  846605: 'invalid req_id',
  846608: 'stream message update expired',
  846609: 'aibot websocket not subscribed',
};

const ok: WsAck = { errcode: 0, errmsg: 'ok' };
const ack = (errcode: number, errmsg = ERRMSG[errcode] ?? `error ${errcode}`): WsAck => ({ errcode, errmsg });

const optionalString = z.string().optional();
const frameSchema: z.ZodType<WsFrame> = z.looseObject({
  cmd: optionalString,
  headers: z.looseObject({ req_id: optionalString }).optional(),
  body: z
    .looseObject({
      msgtype: optionalString,
      chatid: optionalString,
      bot_id: optionalString,
      secret: optionalString,
      stream: z.looseObject({ id: optionalString, finish: z.boolean().optional() }).optional(),
      event: z.looseObject({ eventtype: optionalString }).optional(),
    })
    .optional(),
  errcode: z.number().optional(),
  errmsg: optionalString,
});
// Of a frame that fails frameSchema, what can still be read to answer it.
const envelopeSchema = z.looseObject({
  cmd: z.string().optional().catch(undefined),
  headers: z
    .looseObject({ req_id: z.string().optional().catch(undefined) })
    .optional()
    .catch(undefined),
});

type Parsed = { valid: true; frame: WsFrame } | { valid: false; frame: WsFrame; raw: string };

function parseFrame(text: string): Parsed {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { valid: false, frame: {}, raw: text };
  }
  const frame = frameSchema.safeParse(json);
  if (frame.success) return { valid: true, frame: frame.data };
  const envelope = envelopeSchema.safeParse(json);
  return { valid: false, frame: envelope.success ? envelope.data : {}, raw: text };
}

/** A callback the fake pushed; only the connection it went out on may answer it (§11.8, 846605). */
type Pushed = { kind: 'message'; at: number } | { kind: 'event'; eventtype: string; at: number };

interface Connection {
  readonly number: number;
  readonly socket: WebSocket;
  botId: string | undefined;
  silent: boolean;
  readonly pushed: Map<string, Pushed>;
}

interface FailRule {
  cmd: string;
  errcode: number;
  errmsg: string | undefined;
  remaining: number;
  match: ((frame: WsFrame) => boolean) | undefined;
}

interface Waiter {
  test(): void;
  fail(error: Error): void;
}

const REPLY_CMDS = new Set(['aibot_respond_msg', 'aibot_respond_welcome_msg', 'aibot_respond_update_msg']);

const freshId = (): string => randomBytes(16).toString('hex');

export async function startFakeWecomWs(options: FakeWecomWsOptions): Promise<FakeWecomWs> {
  const streamExpiryMs = options.streamExpiryMs ?? 360_000;
  const welcomeWithinMs = options.welcomeWithinMs ?? 5_000;
  const updateWithinMs = options.updateWithinMs ?? 5_000;

  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  const received: ReceivedFrame[] = [];
  const subscribes: FakeWecomWs['subscribes'] = [];
  const connections = new Set<Connection>();
  const byBot = new Map<string, Connection>();
  // Keyed by bot and stream.id: the clock starts at the first accepted frame (§11.7).
  const streams = new Map<string, { firstAt: number; finished: boolean }>();
  const failRules: FailRule[] = [];
  const waiters = new Set<Waiter>();
  let connectionCount = 0;
  let stopped = false;

  const notify = (): void => {
    for (const waiter of [...waiters]) waiter.test();
  };

  const send = (conn: Connection, frame: WsFrame): void => {
    if (conn.socket.readyState === conn.socket.OPEN) conn.socket.send(JSON.stringify(frame));
  };

  const connectionOf = (botId: string): Connection => {
    const conn = byBot.get(botId);
    if (!conn) throw new Error(`fake WeCom: no connection is subscribed for bot ${botId}`);
    return conn;
  };

  const release = (conn: Connection): void => {
    if (conn.botId !== undefined && byBot.get(conn.botId) === conn) byBot.delete(conn.botId);
    conn.botId = undefined;
  };

  const push = (botId: string, cmd: string, body: Record<string, unknown>, pushed?: Pushed): string => {
    const conn = connectionOf(botId);
    const reqId = freshId();
    if (pushed) conn.pushed.set(reqId, pushed);
    send(conn, { cmd, headers: { req_id: reqId }, body });
    return reqId;
  };

  const eventBody = (botId: string, event: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    msgid: freshId(),
    create_time: Math.floor(Date.now() / 1000),
    aibotid: botId,
    chattype: 'single',
    from: { userid: 'zhangsan' },
    msgtype: 'event',
    event,
    ...extra,
  });

  // What WeCom does to the older connection when a newer one subscribes for its bot (§11.4).
  const kickConnection = (conn: Connection): void => {
    const botId = conn.botId;
    release(conn);
    if (botId !== undefined) {
      send(conn, {
        cmd: 'aibot_event_callback',
        headers: { req_id: freshId() },
        body: eventBody(botId, { eventtype: 'disconnected_event' }),
      });
    }
    conn.socket.close();
  };

  const subscribe = (conn: Connection, body: WsBody | undefined): WsAck => {
    const botId = body?.bot_id ?? '';
    const accepted = Object.hasOwn(options.bots, botId) && options.bots[botId] === body?.secret;
    subscribes.push({ at: Date.now(), connection: conn.number, botId, accepted });
    // A refused subscribe leaves the socket open: the SDK terminates it itself and retries (§11.2).
    if (!accepted) return ack(40058, 'invalid secret');
    if (conn.botId !== botId) release(conn);
    const older = byBot.get(botId);
    if (older && older !== conn) kickConnection(older);
    byBot.set(botId, conn);
    conn.botId = botId;
    return ok;
  };

  const within = (pushed: Pushed | undefined, eventtype: string, ms: number): boolean =>
    pushed?.kind === 'event' && pushed.eventtype === eventtype && Date.now() - pushed.at <= ms;

  const respond = (conn: Connection, reqId: string, body: WsBody | undefined): WsAck => {
    // An event's req_id is no good here either: events are answered by aibot_send_msg (§11.6).
    if (conn.pushed.get(reqId)?.kind !== 'message') return ack(846605);
    if (body?.msgtype !== 'stream') return ok;
    const id = body.stream?.id;
    if (!id) return ack(40058, 'stream.id missing');
    const key = `${conn.botId}\n${id}`;
    const stream = streams.get(key);
    const finish = body.stream?.finish === true;
    if (!stream) {
      streams.set(key, { firstAt: Date.now(), finished: finish });
      return ok;
    }
    if (stream.finished || Date.now() - stream.firstAt > streamExpiryMs) return ack(846608);
    stream.finished = finish;
    return ok;
  };

  // The answer to a frame, or undefined to leave it unanswered.
  const uploads = new Map<string, { type: string; filename: string; chunks: Buffer[] }>();
  const uploaded: UploadedMedia[] = [];
  const handle = (conn: Connection, frame: WsFrame): WsAck | undefined => {
    const cmd = frame.cmd ?? '';
    const rule = failRules.find((r) => r.cmd === cmd && (!r.match || r.match(frame)));
    if (rule) {
      rule.remaining -= 1;
      if (rule.remaining <= 0) failRules.splice(failRules.indexOf(rule), 1);
      if (cmd === 'aibot_subscribe') {
        subscribes.push({
          at: Date.now(),
          connection: conn.number,
          botId: frame.body?.bot_id ?? '',
          accepted: false,
        });
      }
      return ack(rule.errcode, rule.errmsg);
    }
    if (cmd === 'aibot_subscribe') return subscribe(conn, frame.body);
    if (conn.botId === undefined) return ack(846609);
    const reqId = frame.headers?.req_id ?? '';
    switch (cmd) {
      case 'ping':
        return conn.silent ? undefined : ok;
      case 'aibot_respond_msg':
        return respond(conn, reqId, frame.body);
      case 'aibot_respond_welcome_msg':
        return within(conn.pushed.get(reqId), 'enter_chat', welcomeWithinMs) ? ok : ack(846605);
      case 'aibot_respond_update_msg':
        return within(conn.pushed.get(reqId), 'template_card_event', updateWithinMs) ? ok : ack(846605);
      case 'aibot_send_msg':
        return frame.body?.chatid ? ok : ack(40058, 'chatid missing');
      case 'aibot_upload_media_init': {
        const b = frame.body ?? {};
        const uploadId = `upload_${uploads.size + 1}_${Date.now()}`;
        uploads.set(uploadId, {
          type: String(b.type ?? ''),
          filename: String(b.filename ?? ''),
          chunks: [],
        });
        return { ...ok, body: { upload_id: uploadId } };
      }
      case 'aibot_upload_media_chunk': {
        const b = frame.body ?? {};
        const upload = uploads.get(String(b.upload_id));
        if (!upload || typeof b.base64_data !== 'string') return ack(40001, 'no such upload');
        upload.chunks[Number(b.chunk_index)] = Buffer.from(b.base64_data, 'base64');
        return ok;
      }
      case 'aibot_upload_media_finish': {
        const upload = uploads.get(String(frame.body?.upload_id));
        if (!upload) return ack(40001, 'no such upload');
        const mediaId = `media_${uploaded.length + 1}`;
        uploaded.push({
          mediaId,
          type: upload.type,
          filename: upload.filename,
          data: Buffer.concat(upload.chunks),
        });
        return {
          ...ok,
          body: { type: upload.type, media_id: mediaId, created_at: Math.floor(Date.now() / 1000) },
        };
      }
      default:
        return ack(40001, `unknown cmd ${cmd}`);
    }
  };

  const onText = (conn: Connection, text: string): void => {
    const parsed = parseFrame(text);
    const record: ReceivedFrame = {
      at: Date.now(),
      connection: conn.number,
      ...(conn.botId !== undefined && { botId: conn.botId }),
      frame: parsed.frame,
      ...(!parsed.valid && { raw: parsed.raw }),
    };
    received.push(record);
    const reqId = parsed.frame.headers?.req_id;
    const answer = parsed.valid
      ? handle(conn, parsed.frame)
      : reqId
        ? ack(40058, 'invalid frame')
        : undefined;
    if (answer) {
      record.ack = answer;
      send(conn, { headers: { req_id: reqId ?? '' }, ...answer });
    }
    notify();
  };

  server.on('connection', (socket) => {
    connectionCount += 1;
    const conn: Connection = {
      number: connectionCount,
      socket,
      botId: undefined,
      silent: false,
      pushed: new Map(),
    };
    connections.add(conn);
    socket.on('message', (data: RawData) => onText(conn, data.toString()));
    socket.on('close', () => {
      release(conn);
      connections.delete(conn);
      notify();
    });
    // A reset from the client is an ordinary event for this fake, not a crash.
    socket.on('error', () => {});
  });

  const replies = (predicate: (frame: WsFrame) => boolean): WsFrame[] =>
    received.filter((r) => predicate(r.frame)).map((r) => r.frame);

  return {
    url: `ws://127.0.0.1:${port}`,
    received,
    subscribes,
    subscribed: (botId) => byBot.get(botId)?.number,
    openSockets: () => [...connections].filter((c) => c.socket.readyState === c.socket.OPEN).length,

    message(botId, body = {}) {
      const content = body.msgtype === undefined ? { msgtype: 'text', text: { content: 'hello' } } : {};
      return push(
        botId,
        'aibot_msg_callback',
        {
          msgid: freshId(),
          aibotid: botId,
          chattype: 'single',
          from: { userid: 'zhangsan' },
          create_time: Math.floor(Date.now() / 1000),
          ...content,
          ...body,
        },
        { kind: 'message', at: Date.now() },
      );
    },

    event(botId, eventtype, payload, extra) {
      const event = { eventtype, ...(payload && { [eventtype]: payload }) };
      return push(botId, 'aibot_event_callback', eventBody(botId, event, extra), {
        kind: 'event',
        eventtype,
        at: Date.now(),
      });
    },

    repliesTo: (reqId) => replies((f) => REPLY_CMDS.has(f.cmd ?? '') && f.headers?.req_id === reqId),
    sent: () => replies((f) => f.cmd === 'aibot_send_msg'),
    media: () => [...uploaded],

    failNext(cmd, errcode, { count = 1, errmsg, match } = {}) {
      failRules.push({ cmd, errcode, errmsg, remaining: count, match });
    },

    drop(botId) {
      const conn = connectionOf(botId);
      release(conn);
      conn.socket.terminate();
    },

    kick(botId) {
      kickConnection(connectionOf(botId));
    },

    silence(botId, silent = true) {
      connectionOf(botId).silent = silent;
    },

    sendRaw(botId, text) {
      connectionOf(botId).socket.send(text);
    },

    waitFor(what, check, timeoutMs = 5_000) {
      return new Promise<void>((resolve, reject) => {
        const done = (): void => {
          clearInterval(poll);
          clearTimeout(deadline);
          waiters.delete(waiter);
        };
        const waiter: Waiter = {
          test() {
            let holds: boolean;
            try {
              holds = check();
            } catch (error) {
              done();
              reject(error);
              return;
            }
            if (holds) {
              done();
              resolve();
            }
          },
          fail(error) {
            done();
            reject(error);
          },
        };
        const poll = setInterval(() => waiter.test(), 20);
        const deadline = setTimeout(
          () => waiter.fail(new Error(`fake WeCom: not within ${timeoutMs} ms: ${what}`)),
          timeoutMs,
        );
        waiters.add(waiter);
        waiter.test();
      });
    },

    async stop() {
      if (stopped) return;
      stopped = true;
      for (const waiter of [...waiters]) waiter.fail(new Error('fake WeCom stopped'));
      for (const conn of connections) conn.socket.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
