// Every outbound HTTP connection (Dify, WeCom's response_url and media downloads, the token service)
// goes through one kind of undici dispatcher: a plain keep-alive Agent, or, where the company only
// lets traffic out through a proxy (HTTP_PROXY / HTTPS_PROXY, with NO_PROXY exceptions), one that
// tunnels through it. The proxy settings come from src/config.ts like every other setting.
import { Agent, type Dispatcher, EnvHttpProxyAgent } from 'undici';

export interface ProxySettings {
  httpProxy?: string;
  httpsProxy?: string;
  /** Hosts reached directly: `host`, `.domain`, `host:port`, comma-separated, `*` for all. */
  noProxy?: string;
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
