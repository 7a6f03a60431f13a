// The images and files a user sends (docs/protocol/wecom.md §6.2, §7): their URLs answer with the raw
// AES-256-CBC ciphertext of the file, under the callback's own key, with no framing, and expire after
// five minutes. Downloaded with a deadline and a size cap, decrypted, and named from the response.
import { type Dispatcher, request } from 'undici';
import { BodyTooLargeError, discard, outboundAgent, type ProxySettings, readBounded } from '../outbound.js';
import { decryptMediaWithKey, type WecomCrypto } from './crypto.js';

export type MediaErrorCode = 'expired' | 'unreachable' | 'too_large' | 'undecryptable';

export class MediaError extends Error {
  override readonly name = 'MediaError';
  constructor(
    readonly code: MediaErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface FetchedMedia {
  data: Buffer;
  filename: string;
  contentType: string;
}

export interface MediaFetcherOptions {
  /** The bot's callback crypto; a long-connection bot has none: each of its files brings its key. */
  crypto?: WecomCrypto | undefined;
  /** The whole download must end within this. Default 20 s. */
  timeoutMs?: number;
  /** Larger downloads are refused. Default 20 MiB (Dify's own default limits are 10–15 MB). */
  maxBytes?: number;
  proxy?: ProxySettings;
}

/** What the bytes are, by their magic numbers: WeCom's download names are not always telling. */
const signatures: Array<{ type: string; ext: string; test: (b: Buffer) => boolean }> = [
  {
    type: 'image/png',
    ext: 'png',
    test: (b) => b.subarray(0, 8).equals(Buffer.from('89504e470d0a1a0a', 'hex')),
  },
  { type: 'image/jpeg', ext: 'jpg', test: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { type: 'image/gif', ext: 'gif', test: (b) => b.subarray(0, 4).toString('latin1') === 'GIF8' },
  {
    type: 'image/webp',
    ext: 'webp',
    test: (b) =>
      b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP',
  },
  { type: 'application/pdf', ext: 'pdf', test: (b) => b.subarray(0, 5).toString('latin1') === '%PDF-' },
];

export function sniff(data: Buffer): { type: string; ext: string } | undefined {
  const found = signatures.find((s) => s.test(data));
  return found && { type: found.type, ext: found.ext };
}

/** `filename*=UTF-8''…` (RFC 5987) wins over `filename="…"`. */
export function filenameOf(disposition: string | undefined): string | undefined {
  if (!disposition) return undefined;
  const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(disposition)?.[1];
  if (star) {
    try {
      return decodeURIComponent(star.trim());
    } catch {
      // fall through to the plain form
    }
  }
  return /filename\s*=\s*"?([^";]+)"?/.exec(disposition)?.[1]?.trim();
}

export class MediaFetcher {
  readonly #crypto: WecomCrypto | undefined;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #agent: Dispatcher;

  constructor(options: MediaFetcherOptions) {
    this.#crypto = options.crypto;
    this.#timeoutMs = options.timeoutMs ?? 20_000;
    this.#maxBytes = options.maxBytes ?? 20 << 20;
    this.#agent = outboundAgent(options.proxy, {
      connect: { timeout: this.#timeoutMs },
      keepAliveTimeout: 4_000,
    });
  }

  async fetch(url: string, kind: 'image' | 'file', aesKey?: string): Promise<FetchedMedia> {
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(url, {
        dispatcher: this.#agent,
        signal: AbortSignal.timeout(this.#timeoutMs),
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
    } catch (error) {
      throw new MediaError('unreachable', `the ${kind} could not be downloaded`, { cause: error });
    }
    if (res.statusCode >= 400) {
      discard(res.body);
      // The URL lasts five minutes; after that WeCom answers 4xx.
      throw new MediaError(
        res.statusCode < 500 ? 'expired' : 'unreachable',
        `the ${kind} download answered HTTP ${res.statusCode}`,
      );
    }
    let ciphertext: Buffer;
    try {
      ciphertext = await readBounded(res.body, this.#maxBytes, `the ${kind} download`);
    } catch (error) {
      if (error instanceof BodyTooLargeError)
        throw new MediaError('too_large', `the ${kind} is larger than ${this.#maxBytes} bytes`);
      throw new MediaError('unreachable', `the ${kind} download broke off`, { cause: error });
    }
    let data: Buffer;
    try {
      if (aesKey) data = decryptMediaWithKey(ciphertext, aesKey);
      else if (this.#crypto) data = this.#crypto.decryptMedia(ciphertext);
      else throw new Error('no key to decrypt it with');
    } catch (error) {
      throw new MediaError('undecryptable', `the ${kind} could not be decrypted`, { cause: error });
    }
    const sniffed = sniff(data);
    const disposition = res.headers['content-disposition'];
    const named = filenameOf(Array.isArray(disposition) ? disposition[0] : disposition);
    const ext = sniffed?.ext ?? (kind === 'image' ? 'png' : 'bin');
    return {
      data,
      filename: named ?? `${kind}.${ext}`,
      contentType: sniffed?.type ?? (kind === 'image' ? 'image/png' : 'application/octet-stream'),
    };
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}
