// A stand-in for WeCom's response_url endpoint (docs/protocol/wecom.md §8): it records every POST
// and answers `{"errcode":0,"errmsg":"ok"}`, or fails as told. Each URL it hands out is unique, as
// WeCom's are, and it reports a second use of one URL as an error (each may be called once).
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivered {
  code: string;
  body: unknown;
  at: number;
}

export interface ResponseUrlReceiver {
  /** A fresh response_url. */
  url(): string;
  delivered: Delivered[];
  /** How the next deliveries are answered: ok, an HTTP status, or a WeCom errcode. */
  failWith(failure: { status?: number; errcode?: number } | undefined): void;
  stop(): Promise<void>;
}

export async function startResponseUrlReceiver(): Promise<ResponseUrlReceiver> {
  const delivered: Delivered[] = [];
  let failure: { status?: number; errcode?: number } | undefined;
  const used = new Set<string>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => {
      raw += chunk.toString();
    });
    req.on('end', () => {
      const code = new URL(req.url ?? '/', 'http://x').searchParams.get('response_code') ?? '';
      let body: unknown = raw;
      try {
        body = JSON.parse(raw);
      } catch {
        // recorded as text
      }
      delivered.push({ code, body, at: Date.now() });
      res.setHeader('content-type', 'application/json');
      if (failure?.status) {
        res.statusCode = failure.status;
        res.end('{"errcode":-1,"errmsg":"system busy"}');
        return;
      }
      if (failure?.errcode !== undefined || used.has(code)) {
        res.end(
          JSON.stringify({ errcode: failure?.errcode ?? 60140, errmsg: 'response_url used or invalid' }),
        );
        return;
      }
      used.add(code);
      res.end('{"errcode":0,"errmsg":"ok"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: () =>
      `http://127.0.0.1:${port}/cgi-bin/aibot/response?response_code=${randomBytes(8).toString('hex')}`,
    delivered,
    failWith(next) {
      failure = next;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
