// Every body the service reads from another service is bounded as it streams, whatever Content-Length
// says or does not say: a peer that answers 300 MB (Dify, the token service, response_url, a media
// download) makes the call fail quickly and clearly, and the node's memory does not follow it.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenService } from '../src/auth/tokenService.js';
import { AuthError } from '../src/auth/types.js';
import { DifyClient } from '../src/dify/client.js';
import { DifyError } from '../src/dify/errors.js';
import { BodyTooLargeError, readBounded } from '../src/outbound.js';
import {
  DeliveryError,
  MediaError,
  MediaFetcher,
  ResponseUrlClient,
  WecomCrypto,
} from '../src/wecom/index.js';
import { testBot } from './support/service.js';

const MiB = 1 << 20;
const HUGE = 300 * MiB;

/** A peer that answers every request with `status` and a 300 MB body, chunked, with no Content-Length. */
interface Flood {
  url: string;
  status: number;
  /** Bytes the last answer got out before its client hung up (or all of them). */
  sent: () => number;
  close: () => Promise<void>;
}

async function startFlood(): Promise<Flood> {
  const chunk = Buffer.alloc(64 * 1024, '7');
  let sent = 0;
  const flood: Flood = {
    url: '',
    status: 200,
    sent: () => sent,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req, res) => {
    req.resume();
    sent = 0;
    res.writeHead(flood.status, { 'content-type': 'application/json' });
    res.on('error', () => {});
    // As fast as the client reads, no faster: the flood itself holds one chunk.
    const pump = () => {
      while (sent < HUGE && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      if (!res.destroyed) res.end();
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  flood.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return flood;
}

/** Run `call`, which must fail; the error, how long it took and how much the process's RSS grew. */
async function measure(
  call: () => Promise<unknown>,
): Promise<{ error: unknown; ms: number; grewMiB: number }> {
  const rss = process.memoryUsage().rss;
  const started = Date.now();
  let error: unknown;
  try {
    await call();
  } catch (e) {
    error = e;
  }
  const grewMiB = (process.memoryUsage().rss - rss) / MiB;
  if (error === undefined) throw new Error('expected the call to fail');
  return { error, ms: Date.now() - started, grewMiB };
}

describe('bodies read from other services are bounded as they stream', () => {
  let flood: Flood;
  beforeAll(async () => {
    flood = await startFlood();
  });
  afterAll(async () => {
    await flood?.close();
  });

  const bounded = (r: { ms: number; grewMiB: number }) => {
    expect(r.ms).toBeLessThan(5000);
    expect(r.grewMiB).toBeLessThan(50);
    // The peer was cut off: it got nowhere near its 300 MB out.
    expect(flood.sent()).toBeLessThan(50 * MiB);
  };

  it('a Dify JSON answer (feedback) past 1 MiB fails as body_too_large', async () => {
    flood.status = 200;
    const dify = new DifyClient({
      apiUrl: flood.url,
      apiKey: 'app-test',
      appType: 'chat',
      timeoutMs: 30_000,
    });
    try {
      const r = await measure(() => dify.feedback('m1', 'like', 'u1'));
      expect(r.error).toBeInstanceOf(DifyError);
      expect(r.error).toMatchObject({ code: 'body_too_large', retryable: false });
      expect((r.error as Error).message).toMatch(/more than 1048576 bytes/);
      bounded(r);
    } finally {
      await dify.close();
    }
  });

  it('a Dify error body is read up to 64 KiB, and the error still names the status', async () => {
    flood.status = 500;
    const dify = new DifyClient({
      apiUrl: flood.url,
      apiKey: 'app-test',
      appType: 'chat',
      timeoutMs: 30_000,
      retry: { attempts: 1 },
    });
    try {
      const r = await measure(() => dify.info());
      expect(r.error).toBeInstanceOf(DifyError);
      expect(r.error).toMatchObject({ code: 'http_error', status: 500 });
      bounded(r);
    } finally {
      await dify.close();
    }
  });

  it('a token service answer past 64 KiB is a bad response', async () => {
    flood.status = 200;
    const tokens = createTokenService({ url: `${flood.url}/token`, timeoutMs: 30_000 });
    try {
      const r = await measure(() => tokens.issue({ userid: 'u1', account: 'a1' }));
      expect(r.error).toBeInstanceOf(AuthError);
      expect(r.error).toMatchObject({ code: 'token_service_bad_response' });
      expect((r.error as Error).message).toMatch(/more than 65536 bytes/);
      bounded(r);
    } finally {
      await tokens.close();
    }
  });

  it('a response_url answer past 64 KiB fails the delivery', async () => {
    flood.status = 200;
    const delivery = new ResponseUrlClient({ timeoutMs: 30_000 });
    try {
      const r = await measure(() => delivery.deliver(`${flood.url}/response?response_code=x`, 'the answer'));
      expect(r.error).toBeInstanceOf(DeliveryError);
      expect((r.error as Error).message).toMatch(/more than 65536 bytes/);
      bounded(r);
    } finally {
      await delivery.close();
    }
  });

  it('a media download past its limit is too_large', async () => {
    flood.status = 200;
    const crypto = new WecomCrypto({ token: testBot.token, encodingAESKey: testBot.encodingAESKey });
    const media = new MediaFetcher({ crypto, maxBytes: 2 * MiB, timeoutMs: 30_000 });
    try {
      const r = await measure(() => media.fetch(`${flood.url}/media`, 'file'));
      expect(r.error).toBeInstanceOf(MediaError);
      expect(r.error).toMatchObject({ code: 'too_large' });
      bounded(r);
    } finally {
      await media.close();
    }
  });
});

describe('readBounded', () => {
  let server: Server;
  let url = '';
  beforeAll(async () => {
    // `/<n>` answers n bytes, in chunks of 1000, with no Content-Length.
    server = createServer((req, res) => {
      const n = Number(req.url?.slice(1));
      for (let left = n; left > 0; left -= 1000) res.write(Buffer.alloc(Math.min(1000, left), 'x'));
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('reads a body of exactly its bound', async () => {
    const { body } = await request(`${url}/4500`);
    expect((await readBounded(body, 4500, 'the peer')).length).toBe(4500);
  });

  it('refuses one byte more, naming the peer and the bound, with the first bytes kept', async () => {
    const { body } = await request(`${url}/4501`);
    const error = await readBounded(body, 4500, 'the peer').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BodyTooLargeError);
    expect(error).toMatchObject({
      code: 'body_too_large',
      message: 'the peer answered more than 4500 bytes',
    });
    expect((error as BodyTooLargeError).head.length).toBe(4500);
    expect(body.destroyed).toBe(true);
  });
});
