// Dify's event streams read in turns (src/dify/readPace.ts), on real sockets: what came between two
// turns is read at once and in order, nothing is lost, a socket's end and its failures still arrive,
// over plain TCP and over TLS. (The Dify client reading its streams in turns: test/dify.client.spec.ts.)
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ReadPace } from '../src/dify/readPace.js';
import { until } from './support/until.js';

const servers: Server[] = [];
const sockets: Socket[] = [];
/** A self-signed certificate for 127.0.0.1, made for this run (undefined without openssl). */
let tlsIdentity: { key: Buffer; cert: Buffer } | undefined;

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'wd-pace-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    tlsIdentity = { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
  } catch {
    tlsIdentity = undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

function pace(everyMs: number, turns = 2): ReadPace {
  return new ReadPace({ everyMs, turns });
}

/** Listen on a free loopback port (closed after the test): the port. */
async function listening(server: Server): Promise<number> {
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A server that hands each connection to `serve`, and a client socket connected to it. */
async function pair(serve: (server: Socket) => void): Promise<Socket> {
  const port = await listening(
    createServer((socket) => {
      socket.setNoDelay(true);
      socket.on('error', () => {});
      serve(socket);
    }),
  );
  const client = tcpConnect(port, '127.0.0.1');
  sockets.push(client);
  await once(client, 'connect');
  return client;
}

/** Everything a socket reads, and in how many reads. */
function reading(socket: Socket): { text: () => string; reads: () => number } {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { text: () => Buffer.concat(chunks).toString('utf8'), reads: () => chunks.length };
}

/** Send `count` numbered pieces, one every `everyMs`, each in a write (a TCP segment) of its own. */
function piecesEvery(count: number, everyMs: number): (socket: Socket) => void {
  return (socket) => {
    let sent = 0;
    const timer = setInterval(() => {
      socket.write(`piece ${sent};`);
      if (++sent === count) clearInterval(timer);
    }, everyMs);
    socket.on('close', () => clearInterval(timer));
  };
}

const expected = (count: number) => Array.from({ length: count }, (_, i) => `piece ${i};`).join('');

describe('a socket read in turns', () => {
  it('reads what came between two turns at once, in order, and loses nothing', async () => {
    const client = await pair(piecesEvery(60, 4));
    const p = pace(120);
    p.add(client);
    const got = reading(client);
    await until('all sixty pieces read', () => got.text() === expected(60), { timeoutMs: 10_000 });
    // Sixty pieces sent over a quarter of a second or more; read in turns of 120 ms, a few reads take them all.
    expect(got.reads()).toBeLessThanOrEqual(20);
    expect(p.size).toBe(1);
  });

  it('still sees its end, and what came before it', async () => {
    const client = await pair((socket) => {
      socket.write('last words;');
      // After the socket's first turn (100 ms), while its read is held.
      setTimeout(() => socket.end('the end'), 130);
    });
    const p = pace(200);
    p.add(client);
    const got = reading(client);
    await once(client, 'end');
    expect(got.text()).toBe('last words;the end');
    await until('the closed socket no longer paced', () => p.size === 0);
  });

  it('still sees the connection fail', async () => {
    const client = await pair((socket) => {
      socket.write('a start;');
      setTimeout(() => socket.resetAndDestroy(), 130);
    });
    const p = pace(200);
    p.add(client);
    const got = reading(client);
    const failed = once(client, 'error');
    const [error] = (await failed) as [NodeJS.ErrnoException];
    expect(error.code).toBe('ECONNRESET');
    await until('the failed socket no longer paced', () => client.destroyed && p.size === 0);
    expect(got.text()).toBe('a start;');
  });

  it('holds a TLS socket too, and loses nothing', async (ctx) => {
    if (!tlsIdentity) {
      ctx.skip(true, 'openssl is not installed: no certificate to serve TLS with');
      return;
    }
    const port = await listening(
      createTlsServer(tlsIdentity, (socket) => {
        socket.on('error', () => {});
        piecesEvery(60, 4)(socket);
      }),
    );
    const client = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    sockets.push(client);
    await once(client, 'secureConnect');
    const p = pace(120);
    p.add(client);
    expect(p.size).toBe(1);
    // Each TLS record is handed on by itself; what one read of the connection brought comes in the
    // same turn of the event loop.
    let moments = 0;
    let inMoment = false;
    const chunks: Buffer[] = [];
    client.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (inMoment) return;
      inMoment = true;
      moments++;
      setImmediate(() => {
        inMoment = false;
      });
    });
    await until('all sixty pieces read over TLS', () => Buffer.concat(chunks).toString() === expected(60), {
      timeoutMs: 10_000,
    });
    expect(moments).toBeLessThanOrEqual(20);
  });
});
