// The proactive reply through a message's response_url (docs/protocol/wecom.md §8): a plain JSON
// POST of a markdown message, allowed once per URL and for one hour. What the bubble could not show
// (a late or too long answer) goes this way. Sent at most once: only a refused connection, which
// cannot have reached WeCom, is tried again.
import { setTimeout as sleep } from 'node:timers/promises';
import { type Dispatcher, request } from 'undici';
import { BodyTooLargeError, outboundAgent, type ProxySettings, readBounded } from '../outbound.js';

/** WeCom answers `{"errcode":0,"errmsg":"ok"}`; anything much longer is not its answer. */
const ANSWER_BYTES = 64 * 1024;

export class DeliveryError extends Error {
  override readonly name = 'DeliveryError';
  constructor(
    readonly code: 'unreachable' | 'timeout' | 'refused' | 'http_error',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface ResponseUrlClientOptions {
  /** The whole exchange must end within this. Default 10 s. */
  timeoutMs?: number;
  /** Attempts when the connection is refused (nothing reached WeCom). Default 3. */
  attempts?: number;
  proxy?: ProxySettings;
}

export class ResponseUrlClient {
  readonly #agent: Dispatcher;
  readonly #timeoutMs: number;
  readonly #attempts: number;

  constructor(options: ResponseUrlClientOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#attempts = options.attempts ?? 3;
    this.#agent = outboundAgent(options.proxy, {
      connect: { timeout: this.#timeoutMs },
      keepAliveTimeout: 4_000,
    });
  }

  /** POST `{msgtype: markdown}`; resolves when WeCom took it (2xx and errcode 0 or none). */
  async deliver(responseUrl: string, markdown: string): Promise<void> {
    const body = JSON.stringify({ msgtype: 'markdown', markdown: { content: markdown } });
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#post(responseUrl, body);
      } catch (error) {
        if (!(error instanceof DeliveryError) || error.code !== 'refused' || attempt >= this.#attempts)
          throw error;
        await sleep(200 * attempt);
      }
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  async #post(url: string, body: string): Promise<void> {
    let status: number;
    let text: string;
    try {
      const res = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        dispatcher: this.#agent,
        signal: AbortSignal.timeout(this.#timeoutMs),
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
      status = res.statusCode;
      text = (await readBounded(res.body, ANSWER_BYTES, 'response_url')).toString('utf8');
    } catch (error) {
      if (error instanceof BodyTooLargeError)
        throw new DeliveryError('http_error', error.message, { cause: error });
      const code =
        (error as { code?: unknown }).code ?? (error as { cause?: { code?: unknown } }).cause?.code;
      if (code === 'ECONNREFUSED')
        throw new DeliveryError('refused', 'response_url refused the connection', { cause: error });
      const timedOut = (error as Error).name === 'TimeoutError' || String(code).includes('TIMEOUT');
      throw new DeliveryError(
        timedOut ? 'timeout' : 'unreachable',
        timedOut
          ? 'response_url did not answer in time'
          : `response_url unreachable (${String(code ?? error)})`,
        { cause: error },
      );
    }
    if (status < 200 || status >= 300)
      throw new DeliveryError('http_error', `response_url answered HTTP ${status}`);
    let errcode: unknown;
    try {
      errcode = (JSON.parse(text) as { errcode?: unknown }).errcode;
    } catch {
      errcode = undefined;
    }
    if (errcode !== undefined && errcode !== 0) {
      throw new DeliveryError(
        'http_error',
        `response_url answered errcode ${String(errcode)}: ${text.slice(0, 200)}`,
      );
    }
  }
}
