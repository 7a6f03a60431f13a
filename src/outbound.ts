// Every outbound HTTP connection (Dify, WeCom's response_url and media downloads, the token service)
// goes through one kind of undici dispatcher: a plain keep-alive Agent, or, where the company only
// lets traffic out through a proxy (HTTP_PROXY / HTTPS_PROXY, with NO_PROXY exceptions), one that
// tunnels through it. The proxy settings come from src/config.ts like every other setting. Every whole
// body read from those services goes through `readBounded`, so that none outgrows its bound (Dify's
// event stream is read frame by frame, with its own limit).
import { Agent, type Dispatcher, EnvHttpProxyAgent } from 'undici';

export interface ProxySettings {
  httpProxy?: string | undefined;
  httpsProxy?: string | undefined;
  /** Hosts reached directly: `host`, `.domain`, `host:port`, comma-separated, `*` for all. */
  noProxy?: string | undefined;
}

export function outboundAgent(proxy: ProxySettings | undefined, options: Agent.Options = {}): Dispatcher {
  if (!proxy?.httpProxy && !proxy?.httpsProxy) return new Agent(options);
  // Empty strings, not undefined: undici would otherwise read the process environment itself.
  return new EnvHttpProxyAgent({
    ...options,
    httpProxy: proxy.httpProxy ?? '',
    httpsProxy: proxy.httpsProxy ?? '',
    noProxy: proxy.noProxy ?? '',
  });
}

/**
 * Let go of a response body that is not read to its end. Destroying it makes undici emit an
 * AbortError on it: expected here, and without a listener an uncaught exception that would take the
 * process down.
 */
export function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
}

/**
 * A response body that went past its bound. `head` holds its first `maxBytes`, for a caller that can
 * use the start of it (an error page's title); nothing after them was read.
 */
export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
  readonly code = 'body_too_large';
  constructor(
    readonly what: string,
    readonly maxBytes: number,
    readonly head: Buffer,
  ) {
    super(`${what} answered more than ${maxBytes} bytes`);
  }
}

/**
 * Read a whole response body, at most `maxBytes` of it, as it streams: a declared Content-Length is
 * not needed and not trusted. Past the bound the body is destroyed (its connection is not reused)
 * and a BodyTooLargeError is thrown; what the body itself throws (a reset, a timeout) passes through.
 */
export async function readBounded(
  body: Dispatcher.ResponseData['body'],
  maxBytes: number,
  what: string,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (size + chunk.length > maxBytes) {
      chunks.push(chunk.subarray(0, maxBytes - size));
      discard(body);
      throw new BodyTooLargeError(what, maxBytes, Buffer.concat(chunks));
    }
    size += chunk.length;
    chunks.push(chunk);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
}
