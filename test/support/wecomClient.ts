// A WeCom stand-in for end-to-end tests: it sends callbacks the way WeCom does (docs/protocol/wecom.md
// §3, §4, §6) and checks the replies the way WeCom would (§5.1). It is built on the official
// @wecom/crypto package, never on src/wecom, so that it is an independent oracle for our crypto.
import { randomBytes } from 'node:crypto';
import { decrypt, encrypt, getSignature } from '@wecom/crypto';

export interface WecomClientOptions {
  /** e.g. `http://127.0.0.1:8080` */
  baseUrl: string;
  token: string;
  encodingAESKey: string;
  /** The `aibotid` put in every callback. */
  botId?: string;
  path?: string;
  /** Per request. */
  timeoutMs?: number;
}

/** The decrypted plaintext of a passive reply (§5.3), loosely typed for assertions. */
export interface ReplyJson {
  msgtype?: string;
  stream?: {
    id: string;
    finish: boolean;
    content: string;
    feedback?: { id: string };
    msg_item?: unknown[];
  };
  text?: { content: string };
  template_card?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The encrypted reply envelope (§5.1) as the server sent it. */
export interface ReplyEnvelope {
  encrypt: string;
  msgsignature: string;
  timestamp: number | string;
  nonce: string;
}

export interface SendResult {
  status: number;
  /**
   * The decrypted reply (shaped like `ReplyJson`); absent when the body was empty or not an envelope
   * (e.g. `success`). Left untyped on purpose: tests assert on whatever shape the server sent.
   */
  // biome-ignore lint/suspicious/noExplicitAny: a test oracle's view of arbitrary server output
  reply?: any;
  envelope?: ReplyEnvelope;
  raw: string;
  headers: Headers;
  /** The plaintext callback that was sent. */
  sent: Record<string, unknown>;
}

export interface RawResult {
  status: number;
  body: string;
  headers: Headers;
}

export interface CallbackOptions {
  /** The `timestamp` the callback is signed with, in seconds; now when not given. */
  timestamp?: string;
}

export interface SenderOptions extends CallbackOptions {
  userid?: string;
  /** Set for a group chat (chattype group); absent for a single chat. */
  chatid?: string;
}

export interface TextOptions extends SenderOptions {
  msgid?: string;
  responseUrl?: string;
}

/** A reply known to be a stream reply. */
export type StreamReplyJson = ReplyJson & {
  /** `stream_with_template_card` when the finishing reply carries a card. */
  msgtype: 'stream' | 'stream_with_template_card';
  stream: NonNullable<ReplyJson['stream']>;
};

export interface PollUntilFinishedOptions extends SenderOptions {
  intervalMs?: number;
  timeoutMs?: number;
  onReply?: (reply: StreamReplyJson, poll: number) => void;
}

export interface PollOutcome {
  /** The `finish:true` reply. */
  reply: StreamReplyJson;
  /** The content of every stream reply, in order, one per poll (the final one included). */
  contents: string[];
  polls: number;
}

type Query = Record<string, string>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** WeCom msgids look like base64 (`CAIQ16HMjQYY/NGagIOAgAMgq4KM0AI=`). */
export const randomMsgid = (): string => randomBytes(18).toString('base64');
const randomNonce = (): string => String(Math.floor(Math.random() * 1e10));

export class WecomClient {
  readonly baseUrl: string;
  readonly token: string;
  readonly encodingAESKey: string;
  readonly botId: string;
  readonly path: string;
  readonly timeoutMs: number;

  constructor({
    baseUrl,
    token,
    encodingAESKey,
    botId = 'BOT',
    path = '/wecom/callback',
    timeoutMs = 10_000,
  }: WecomClientOptions) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.token = token;
    this.encodingAESKey = encodingAESKey;
    this.botId = botId;
    this.path = path;
    this.timeoutMs = timeoutMs;
  }

  /** Encrypts a plaintext with receiveid "" (§2.4). */
  encrypt(plaintext: string): string {
    return encrypt(this.encodingAESKey, plaintext, '');
  }

  /** The signed query for an encrypt value, as WeCom builds it (§2.5). */
  sign(encryptValue: string, timestamp: string = String(nowSeconds()), nonce: string = randomNonce()): Query {
    return { msg_signature: getSignature(this.token, timestamp, nonce, encryptValue), timestamp, nonce };
  }

  /** GET URL verification (§3); `expected` is the plaintext a correct server answers with. */
  async verifyUrl(
    echoPlain: string = String(BigInt(`0x${randomBytes(8).toString('hex')}`)),
    options: CallbackOptions = {},
  ): Promise<{ status: number; body: string; expected: string }> {
    const echostr = this.encrypt(echoPlain);
    const { status, body } = await this.getRaw({ ...this.sign(echostr, options.timestamp), echostr });
    return { status, body, expected: echoPlain };
  }

  /**
   * POSTs one callback (§4) and checks the reply as WeCom would: the envelope's signature over its
   * own encrypt, the echoed nonce, and the receiveid "". A reply that fails a check throws.
   */
  async send(plaintext: Record<string, unknown>, options: CallbackOptions = {}): Promise<SendResult> {
    const encryptValue = this.encrypt(JSON.stringify(plaintext));
    const query = this.sign(encryptValue, options.timestamp);
    const {
      status,
      body: raw,
      headers,
    } = await this.postRaw(query, JSON.stringify({ encrypt: encryptValue }), {
      'content-type': 'application/json',
    });
    const result: SendResult = { status, raw, headers, sent: plaintext };
    const envelope = parseEnvelope(raw);
    if (!envelope) return result;

    const expected = getSignature(this.token, envelope.timestamp, envelope.nonce, envelope.encrypt);
    if (envelope.msgsignature !== expected) {
      throw new Error(`reply msgsignature ${envelope.msgsignature} is not the signature ${expected}`);
    }
    if (envelope.nonce !== query.nonce) {
      throw new Error(`reply nonce ${envelope.nonce} does not echo the callback nonce ${query.nonce}`);
    }
    const { message, id } = decrypt(this.encodingAESKey, envelope.encrypt);
    if (id !== '') throw new Error(`reply receiveid is ${JSON.stringify(id)}, not "" (§2.4)`);
    let reply: unknown;
    try {
      reply = JSON.parse(message);
    } catch {
      throw new Error(`reply plaintext is not JSON: ${message.slice(0, 200)}`);
    }
    if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) {
      throw new Error(`reply plaintext is not a JSON object: ${message.slice(0, 200)}`);
    }
    return { ...result, envelope, reply: reply as ReplyJson };
  }

  /** A user's text message (§6.2): single chat unless `chatid` is given. */
  text(content: string, options: TextOptions = {}): Promise<SendResult & { msgid: string }> {
    return this.message({ msgtype: 'text', text: { content } }, options);
  }

  /**
   * Any user message (§6.2): `body` holds the msgtype's payload and anything else, e.g.
   * `{msgtype: 'image', image: {url}}` or a `quote`.
   */
  async message(
    body: Record<string, unknown>,
    options: TextOptions = {},
  ): Promise<SendResult & { msgid: string }> {
    const msgid = options.msgid ?? randomMsgid();
    const result = await this.send(
      {
        ...this.#common(msgid, options),
        response_url:
          options.responseUrl ??
          `https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=${randomBytes(12).toString('hex')}`,
        ...body,
      },
      options,
    );
    return { ...result, msgid };
  }

  /** A stream refresh poll (§6.3): no response_url. */
  poll(streamId: string, options: SenderOptions = {}): Promise<SendResult> {
    return this.send(
      {
        ...this.#common(randomMsgid(), options),
        msgtype: 'stream',
        stream: { id: streamId },
      },
      options,
    );
  }

  /** An event (§6.6): `{event: {eventtype, [eventtype]: payload}}`, with create_time. */
  event(
    eventtype: string,
    payload: Record<string, unknown> = {},
    options: SenderOptions & { responseUrl?: string } = {},
  ): Promise<SendResult> {
    return this.send(
      {
        ...this.#common(randomMsgid(), options),
        create_time: nowSeconds(),
        // template_card_event is the only event that carries a response_url (§8.1).
        ...(eventtype === 'template_card_event'
          ? {
              response_url:
                options.responseUrl ??
                `https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=${randomBytes(12).toString('hex')}`,
            }
          : {}),
        msgtype: 'event',
        event: { eventtype, [eventtype]: payload },
      },
      options,
    );
  }

  /** Polls like WeCom (about once a second, §9.2) until a `finish:true` stream reply, or times out. */
  async pollUntilFinished(streamId: string, options: PollUntilFinishedOptions = {}): Promise<PollOutcome> {
    const { intervalMs = 200, timeoutMs = 20_000, onReply, ...sender } = options;
    const deadline = Date.now() + timeoutMs;
    const contents: string[] = [];
    for (let polls = 1; ; polls++) {
      const { status, reply: json, raw } = await this.poll(streamId, sender);
      const reply = json as ReplyJson | undefined;
      const stream = reply?.stream;
      const streamy = reply?.msgtype === 'stream' || reply?.msgtype === 'stream_with_template_card';
      if (status !== 200 || !streamy || !stream) {
        throw new Error(
          `poll ${polls} of ${streamId}: status ${status}, not a stream reply: ${raw.slice(0, 200)}`,
        );
      }
      if (stream.id !== streamId)
        throw new Error(`poll ${polls}: reply is for stream ${stream.id}, not ${streamId}`);
      const streamReply = { ...reply, stream } as StreamReplyJson;
      contents.push(stream.content);
      onReply?.(streamReply, polls);
      if (stream.finish) return { reply: streamReply, contents, polls };
      if (Date.now() + intervalMs > deadline) {
        throw new Error(
          `stream ${streamId} not finished after ${polls} polls in ${timeoutMs} ms; last content: ${stream.content.slice(0, 200)}`,
        );
      }
      await sleep(intervalMs); // WeCom's pace between polls: part of the scene, not a wait
    }
  }

  /** A POST with whatever query and body, for hostile tests. */
  postRaw(
    query: Query | string,
    body: string | Buffer,
    headers: Record<string, string> = {},
  ): Promise<RawResult> {
    return this.#request('POST', query, body, headers);
  }

  /** A GET with whatever query, for hostile tests of URL verification. */
  getRaw(query: Query | string, headers: Record<string, string> = {}): Promise<RawResult> {
    return this.#request('GET', query, undefined, headers);
  }

  #common(msgid: string, { userid = 'zhangsan', chatid }: SenderOptions): Record<string, unknown> {
    return {
      msgid,
      aibotid: this.botId,
      ...(chatid ? { chatid } : {}),
      chattype: chatid ? 'group' : 'single',
      from: { userid },
    };
  }

  async #request(
    method: 'GET' | 'POST',
    query: Query | string,
    body: string | Buffer | undefined,
    headers: Record<string, string>,
  ): Promise<RawResult> {
    // URLSearchParams percent-encodes base64's + / =, as WeCom does (§3).
    const search =
      typeof query === 'string' ? query.replace(/^\?/, '') : new URLSearchParams(query).toString();
    const url = `${this.baseUrl}${this.path}${search ? `?${search}` : ''}`;
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? null : typeof body === 'string' ? body : new Uint8Array(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    return { status: response.status, body: await response.text(), headers: response.headers };
  }
}

function parseEnvelope(raw: string): ReplyEnvelope | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.encrypt !== 'string') return undefined;
  if (typeof v.msgsignature !== 'string' || typeof v.nonce !== 'string') {
    throw new Error(`reply envelope lacks msgsignature or nonce: ${raw.slice(0, 200)}`);
  }
  if (typeof v.timestamp !== 'number' && typeof v.timestamp !== 'string') {
    throw new Error(`reply envelope lacks a timestamp: ${raw.slice(0, 200)}`);
  }
  return { encrypt: v.encrypt, msgsignature: v.msgsignature, timestamp: v.timestamp, nonce: v.nonce };
}
