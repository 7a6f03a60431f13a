// A WeCom stand-in for people: it sends the encrypted callbacks WeCom sends (docs/protocol/wecom.md
// §4, §6) to any running instance and checks each reply as WeCom would (§5.1: the signature over the
// reply's own encrypt, the echoed nonce, receiveid ""). Built on our own crypto (src/wecom), so it
// needs nothing beyond the package's dependencies.
import { randomBytes, randomInt } from 'node:crypto';
import { request } from 'undici';
import { z } from 'zod';
import { verifySignature, WecomCrypto } from '../wecom/index.js';
import { deadEndResponseUrl } from './deliveries.js';

export interface SimulatorOptions {
  /** The instance, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  token: string;
  encodingAESKey: string;
  /** The `aibotid` of every callback. */
  botId: string;
  path?: string;
  /** Per request. Default 10 s. */
  timeoutMs?: number;
}

/** Who speaks: a user in a single chat, or a member of a group chat. */
export interface Sender {
  userid: string;
  chatid?: string;
}

export type SimulatorErrorCode =
  | 'unreachable'
  | 'timeout'
  | 'http_status'
  | 'bad_envelope'
  | 'bad_signature'
  | 'bad_reply';

export class SimulatorError extends Error {
  override readonly name = 'SimulatorError';
  constructor(
    readonly code: SimulatorErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The passive reply envelope (§5.1); `timestamp` comes as a number or a string (both are in use). */
const envelopeSchema = z.object({
  encrypt: z.string().min(1),
  msgsignature: z.string(),
  timestamp: z.union([z.number(), z.string()]),
  nonce: z.string(),
});

/**
 * A `stream` reply (§5.3): the whole content so far, and `finish` once; the finishing one may carry a
 * card (`stream_with_template_card`) and images (`msg_item`).
 */
const streamReplySchema = z.object({
  msgtype: z.enum(['stream', 'stream_with_template_card']),
  stream: z.object({
    id: z.string().min(1),
    finish: z.boolean(),
    content: z.string().default(''),
    msg_item: z.array(z.unknown()).optional(),
  }),
  template_card: z.unknown().optional(),
});

export type StreamReply = z.infer<typeof streamReplySchema>;

export class WecomSimulator {
  readonly #url: string;
  readonly #crypto: WecomCrypto;
  readonly #token: string;
  readonly #botId: string;
  readonly #timeoutMs: number;

  constructor(options: SimulatorOptions) {
    this.#url = `${options.baseUrl.replace(/\/+$/, '')}${options.path ?? '/wecom/callback'}`;
    this.#crypto = new WecomCrypto({ token: options.token, encodingAESKey: options.encodingAESKey });
    this.#token = options.token;
    this.#botId = options.botId;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  get url(): string {
    return this.#url;
  }

  /**
   * A user's text message (§6.2). In a group, WeCom keeps the @mention inside the content.
   * `responseUrl` is where what the bubble cannot show goes (§8); never WeCom's real host.
   */
  async sendText(
    content: string,
    sender: Sender,
    signal?: AbortSignal,
    responseUrl: string = deadEndResponseUrl(),
  ): Promise<StreamReply> {
    const plaintext = {
      ...this.#common(sender),
      response_url: responseUrl,
      msgtype: 'text',
      text: { content },
    };
    return this.#streamReply(await this.send(plaintext, signal));
  }

  /**
   * A click on a card's button (`template_card_event`, §6.6): returns the decrypted reply (the card's
   * new look, `update_template_card`, or the empty reply). `responseUrl` is where what the click asks
   * for is sent.
   */
  async click(
    card: { taskId: string; key: string },
    sender: Sender,
    responseUrl: string = deadEndResponseUrl(),
    signal?: AbortSignal,
  ): Promise<unknown> {
    return this.send(
      {
        ...this.#common(sender),
        create_time: Math.floor(Date.now() / 1000),
        response_url: responseUrl,
        msgtype: 'event',
        event: {
          eventtype: 'template_card_event',
          template_card_event: { card_type: 'button_interaction', event_key: card.key, task_id: card.taskId },
        },
      },
      signal,
    );
  }

  /** The refresh poll WeCom sends about once a second until `finish:true` (§6.3). */
  async poll(streamId: string, sender: Sender, signal?: AbortSignal): Promise<StreamReply> {
    const reply = this.#streamReply(
      await this.send({ ...this.#common(sender), msgtype: 'stream', stream: { id: streamId } }, signal),
    );
    if (reply.stream.id !== streamId)
      throw new SimulatorError(
        'bad_reply',
        `a poll of ${streamId} was answered for stream ${reply.stream.id}`,
      );
    return reply;
  }

  /** POSTs one encrypted callback (§4) and returns the verified, decrypted reply JSON. */
  async send(plaintext: Record<string, unknown>, signal?: AbortSignal): Promise<unknown> {
    const encrypt = this.#crypto.encrypt(JSON.stringify(plaintext));
    const timestamp = String(Math.floor(Date.now() / 1000));
    const nonce = String(randomInt(1e9, 1e10));
    const query = new URLSearchParams({
      msg_signature: this.#crypto.sign(timestamp, nonce, encrypt),
      timestamp,
      nonce,
    });
    const raw = await this.#post(`${this.#url}?${query}`, JSON.stringify({ encrypt }), signal);
    return this.#open(raw, nonce);
  }

  #common({ userid, chatid }: Sender): Record<string, unknown> {
    return {
      // WeCom's msgids look like base64 (§6.2).
      msgid: randomBytes(18).toString('base64'),
      aibotid: this.#botId,
      ...(chatid ? { chatid } : {}),
      chattype: chatid ? 'group' : 'single',
      from: { userid },
    };
  }

  async #post(url: string, body: string, signal?: AbortSignal): Promise<string> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    let status: number;
    let text: string;
    try {
      // undici rather than fetch: fetch refuses some ports outright ("bad port"), an instance may use any.
      const response = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      status = response.statusCode;
      text = await response.body.text();
    } catch (error) {
      if (signal?.aborted) throw error;
      if (timeout.aborted)
        throw new SimulatorError('timeout', `no answer from ${this.#url} within ${this.#timeoutMs} ms`);
      const code = (error as { code?: string }).code;
      const why = code === 'ECONNREFUSED' ? 'connection refused' : (error as Error).message;
      throw new SimulatorError('unreachable', `cannot reach ${this.#url}: ${why}`, { cause: error });
    }
    if (status !== 200) {
      throw new SimulatorError(
        'http_status',
        `${this.#url} answered HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`,
      );
    }
    return text;
  }

  /** Checks the envelope as WeCom does (§5.1) before trusting a byte of it. */
  #open(raw: string, nonce: string): unknown {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      throw new SimulatorError(
        'bad_envelope',
        `the reply is not an encrypted envelope: ${raw.slice(0, 200)}`,
      );
    }
    const parsed = envelopeSchema.safeParse(json);
    if (!parsed.success)
      throw new SimulatorError(
        'bad_envelope',
        `the reply is not an encrypted envelope: ${raw.slice(0, 200)}`,
      );
    const envelope = parsed.data;
    if (
      !verifySignature(
        this.#token,
        envelope.timestamp,
        envelope.nonce,
        envelope.encrypt,
        envelope.msgsignature,
      )
    ) {
      throw new SimulatorError(
        'bad_signature',
        'the reply\u2019s msgsignature does not match its content: a different Token, or not a wecom-dify reply',
      );
    }
    if (envelope.nonce !== nonce)
      throw new SimulatorError(
        'bad_envelope',
        `the reply nonce ${envelope.nonce} does not echo ours (${nonce})`,
      );
    let message: string;
    try {
      const decrypted = this.#crypto.decrypt(envelope.encrypt);
      if (decrypted.receiveId !== '')
        throw new SimulatorError(
          'bad_envelope',
          `the reply's receiveid is ${JSON.stringify(decrypted.receiveId)}, not ""`,
        );
      message = decrypted.message;
    } catch (error) {
      if (error instanceof SimulatorError) throw error;
      throw new SimulatorError(
        'bad_envelope',
        `the reply cannot be decrypted (a different EncodingAESKey?): ${(error as Error).message}`,
        { cause: error },
      );
    }
    try {
      return JSON.parse(message);
    } catch {
      throw new SimulatorError('bad_reply', `the decrypted reply is not JSON: ${message.slice(0, 200)}`);
    }
  }

  #streamReply(reply: unknown): StreamReply {
    const parsed = streamReplySchema.safeParse(reply);
    if (!parsed.success) {
      const type = (reply as { msgtype?: unknown } | null)?.msgtype;
      throw new SimulatorError(
        'bad_reply',
        `expected a stream reply, got ${typeof type === 'string' ? `msgtype ${type}` : JSON.stringify(reply).slice(0, 200)}`,
      );
    }
    return parsed.data;
  }
}
