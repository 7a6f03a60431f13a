// WeCom's response_url endpoint, played for the simulator (docs/protocol/wecom.md §8): what the
// bubble could not show (an answer past WeCom's window, or longer than the bubble) is POSTed here,
// once per message, as markdown, and the simulator prints it after the bubble. Loopback only: it is
// given to an instance on this machine; one elsewhere gets a URL that goes nowhere.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DeliveryReceiver {
  /** A fresh response_url, and the code that names what arrives at it. */
  next(): { url: string; code: string };
  /** The markdown delivered for `code`, once it comes; undefined at the deadline or on abort. */
  wait(code: string, timeoutMs: number, signal?: AbortSignal): Promise<string | undefined>;
  close(): Promise<void>;
}

/** `response_url` as WeCom shapes it (§8.1), on a port nothing listens on. */
export const deadEndResponseUrl = (): string =>
  `http://127.0.0.1:9/cgi-bin/aibot/response?response_code=sim-${randomBytes(12).toString('hex')}`;

export async function startDeliveryReceiver(): Promise<DeliveryReceiver> {
  const arrived = new Map<string, string>();
  const waiting = new Map<string, (markdown: string) => void>();
  const server = createServer((req, res) => {
    const code = new URL(req.url ?? '/', 'http://local').searchParams.get('response_code') ?? '';
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      if (body.length < 1 << 20) body += chunk;
    });
    req.on('end', () => {
      let markdown: string | undefined;
      try {
        const json = JSON.parse(body) as { markdown?: { content?: unknown } };
        if (typeof json.markdown?.content === 'string') markdown = json.markdown.content;
      } catch {
        // answered below
      }
      res.setHeader('content-type', 'application/json');
      // Each response_url is good for one message (§8.1).
      if (markdown === undefined || arrived.has(code)) {
        res.end('{"errcode":40058,"errmsg":"invalid or used response_url"}');
        return;
      }
      arrived.set(code, markdown);
      waiting.get(code)?.(markdown);
      res.end('{"errcode":0,"errmsg":"ok"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  const { port } = server.address() as AddressInfo;
  return {
    next() {
      const code = `sim-${randomBytes(12).toString('hex')}`;
      return { url: `http://127.0.0.1:${port}/cgi-bin/aibot/response?response_code=${code}`, code };
    },
    wait(code, timeoutMs, signal) {
      const done = arrived.get(code);
      if (done !== undefined) return Promise.resolve(done);
      return new Promise((resolve) => {
        const finish = (markdown: string | undefined) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          waiting.delete(code);
          resolve(markdown);
        };
        const onAbort = () => finish(undefined);
        const timer = setTimeout(() => finish(undefined), timeoutMs);
        signal?.addEventListener('abort', onAbort, { once: true });
        waiting.set(code, finish);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
