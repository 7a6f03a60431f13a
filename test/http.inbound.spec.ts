// What a hostile request body costs a node, seen from a raw socket: a body past the limit is answered
// 413 and its connection closed, not read to its end; a body that trickles is cut with 408 after a
// stated bound; headers that trickle are cut by Node's own timeouts; and the node keeps serving.
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService, testBot } from './support/service.js';
import { WecomClient } from './support/wecomClient.js';

const MiB = 1 << 20;

/** A raw connection: what came back, whether and when it closed. */
interface Raw {
  socket: Socket;
  received: () => string;
  closed: () => boolean;
  /** Resolves with the milliseconds from connecting to the close. */
  whenClosed: Promise<number>;
}

async function rawConnect(port: number): Promise<Raw> {
  const socket = connect(port, '127.0.0.1');
  const started = Date.now();
  let text = '';
  let isClosed = false;
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
  });
  // A reset after the server closes is expected while we are still writing.
  socket.on('error', () => {});
  const whenClosed = new Promise<number>((resolve) =>
    socket.once('close', () => {
      isClosed = true;
      resolve(Date.now() - started);
    }),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, received: () => text, closed: () => isClosed, whenClosed };
}

/** Write as fast as the socket takes it, up to `total` bytes or until it closes; the bytes it took. */
async function flood(raw: Raw, total: number): Promise<number> {
  const payload = Buffer.alloc(64 * 1024, 'a');
  const chunk = Buffer.concat([
    Buffer.from(`${payload.length.toString(16)}\r\n`),
    payload,
    Buffer.from('\r\n'),
  ]);
  let accepted = 0;
  while (!raw.closed() && accepted < total) {
    const more = raw.socket.write(chunk);
    accepted += payload.length;
    if (!more)
      await new Promise<void>((resolve) => {
        const done = () => {
          raw.socket.off('drain', done);
          raw.socket.off('close', done);
          resolve();
        };
        raw.socket.on('drain', done);
        raw.socket.on('close', done);
      });
  }
  return accepted;
}

/**
 * Send `bytes` one at a time, `everyMs` apart, until the socket closes or `limitMs` passes: a slow
 * client's pace is the attack under test, not a wait.
 */
async function trickle(raw: Raw, bytes: string, everyMs: number, limitMs: number): Promise<void> {
  const until = Date.now() + limitMs;
  for (let i = 0; !raw.closed() && Date.now() < until; i = (i + 1) % bytes.length) {
    raw.socket.write(bytes[i] ?? 'a');
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** When the connection closed (ms after connecting), or Infinity if it is still open after `ms`. */
const closedWithin = (raw: Raw, ms: number): Promise<number> =>
  Promise.race([raw.whenClosed, sleep(ms).then(() => Number.POSITIVE_INFINITY)]);

const statusOf = (text: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);

describe('inbound request bodies', () => {
  let service: TestService;
  let wecom: WecomClient;

  beforeAll(async () => {
    service = await startTestService({ WECOM_BOT_ID: testBot.botId });
    wecom = new WecomClient({ baseUrl: service.url, ...testBot });
  });
  afterAll(async () => {
    await service?.stop();
  });

  const callbackHead = (extra = '') => {
    const query = new URLSearchParams(wecom.sign('x')).toString();
    return `POST /wecom/callback?${query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${extra}`;
  };

  const stillServing = async () => {
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    const welcome = await wecom.event('enter_chat', {}, { userid: 'after-the-attack' });
    expect(welcome.status).toBe(200);
    expect(welcome.reply).toMatchObject({ msgtype: 'text' });
  };

  it('a 100 MB chunked callback body gets 413 and its connection closed long before 100 MB were sent', async () => {
    const raw = await rawConnect(service.port);
    raw.socket.write(`${callbackHead('Transfer-Encoding: chunked\r\n')}\r\n`);
    const accepted = await flood(raw, 100 * MiB);
    const closedAfterMs = await closedWithin(raw, 5000);
    expect(statusOf(raw.received())).toBe(413);
    expect(raw.received().toLowerCase()).toContain('connection: close');
    // 1 MiB read, then socket buffers on both sides: nowhere near the 100 MB.
    expect(accepted).toBeLessThan(20 * MiB);
    expect(closedAfterMs).toBeLessThan(5000);
    await stillServing();
  });

  it('a declared Content-Length over the limit gets 413 and its connection closed without reading it', async () => {
    const raw = await rawConnect(service.port);
    raw.socket.write(`${callbackHead(`Content-Length: ${100 * MiB}\r\n`)}\r\n`);
    const accepted = await flood(raw, 100 * MiB);
    expect(await closedWithin(raw, 5000)).toBeLessThan(5000);
    expect(statusOf(raw.received())).toBe(413);
    expect(accepted).toBeLessThan(20 * MiB);
    await stillServing();
  });

  it('a large body sent to a route that reads none is not read to its end either', async () => {
    const raw = await rawConnect(service.port);
    raw.socket.write('POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n');
    const accepted = await flood(raw, 100 * MiB);
    expect(await closedWithin(raw, 5000)).toBeLessThan(5000);
    expect(statusOf(raw.received())).toBeGreaterThanOrEqual(400);
    expect(accepted).toBeLessThan(20 * MiB);
    await stillServing();
  });

  describe.concurrent('slow requests', () => {
    it('a callback body trickling a byte every 200 ms is cut with 408 after 10 s, and its connection closed', async () => {
      const raw = await rawConnect(service.port);
      raw.socket.write(`${callbackHead('Transfer-Encoding: chunked\r\n')}\r\n`);
      // One chunk of 1000 bytes, sent a byte at a time: it would take 200 s.
      raw.socket.write('3e8\r\n');
      await trickle(raw, '{"encrypt":"', 200, 20_000);
      const closedAfterMs = await closedWithin(raw, 1000);
      expect(statusOf(raw.received())).toBe(408);
      expect(raw.received().toLowerCase()).toContain('connection: close');
      expect(closedAfterMs).toBeGreaterThan(9_000);
      expect(closedAfterMs).toBeLessThan(13_000);
      await stillServing();
    });

    it('headers trickling a byte every 200 ms are cut by the server within about 10 s', async () => {
      const raw = await rawConnect(service.port);
      raw.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      await trickle(raw, 'abcdefgh', 200, 20_000);
      const closedAfterMs = await closedWithin(raw, 1000);
      expect(statusOf(raw.received())).toBe(408);
      expect(closedAfterMs).toBeLessThan(13_000);
      await stillServing();
    });
  });
});
