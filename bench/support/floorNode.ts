// A bench child: the FLOOR under a poll, the least work any server must do to answer one WeCom
// stream-refresh poll (docs/protocol/wecom.md §2, §4, §5.1), on bare node:http with no framework,
// given the service's own fastest primitives so that "service / floor" means something: the body read
// with events (not async iteration), the SHA-1 signature checked, AES-256-CBC decrypted, the JSON
// parsed for the stream id; the stream's state and the first bytes of its answer text read in one
// round trip on an auto-pipelined Redis client (the very fields the service's poll reads for a stream
// that is streaming: `st` of the snapshot hash and the text projection); the reply built from that
// text, encrypted (with the service's own ciphers, kept open, and its pool of random bytes) and signed.
// What it skips: the lease (a server must watch it to take over a dead owner's stream), the render's
// limits and notes, logs, metrics, request ids, the error table.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { POLL_TEXT_BYTES } from '../../src/store/port.js';
import { WecomCrypto } from '../../src/wecom/crypto.js';
import { announceReady, serveParent } from './childSide.mjs';

const token = process.env.WECOM_TOKEN ?? '';
const prefix = process.env.BENCH_PREFIX ?? '';
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
  enableOfflineQueue: true,
  enableAutoPipelining: true,
});

/**
 * The service's own primitives, the fastest it has: its signature (checked in constant time), its
 * cipher pair kept open across messages and its pool of random bytes.
 */
const crypto = new WecomCrypto({ token, encodingAESKey: process.env.WECOM_ENCODING_AES_KEY ?? '' });

function refuse(res: ServerResponse, status: number, why: string): void {
  res.writeHead(status, { 'content-type': 'text/plain' });
  res.end(why);
}

function body(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const raw = await body(req);
  const url = req.url ?? '';
  const query = new URLSearchParams(url.slice(url.indexOf('?') + 1));
  const timestamp = query.get('timestamp') ?? '';
  const nonce = query.get('nonce') ?? '';
  const { encrypt: encrypted } = JSON.parse(raw.toString('utf8')) as { encrypt: string };
  if (!crypto.signs(query.get('msg_signature') ?? '', timestamp, nonce, encrypted))
    return refuse(res, 401, 'signature');
  const message = JSON.parse(crypto.decrypt(encrypted).message) as { stream?: { id?: string } };
  const streamId = message.stream?.id ?? '';
  const base = `${prefix}stream:{${streamId}}`;
  // Sent together, answered in one round trip (auto-pipelining).
  const [state, text] = await Promise.all([
    redis.hget(`${base}:snap`, 'st'),
    redis.getrange(`${base}:text`, 0, POLL_TEXT_BYTES - 1),
  ]);
  if (state === null) return refuse(res, 404, 'no such stream');
  const finish = state === 'completed' || state === 'error';
  const reply = JSON.stringify({ msgtype: 'stream', stream: { id: streamId, finish, content: text } });
  const encryptedReply = crypto.encrypt(reply);
  const out = JSON.stringify({
    encrypt: encryptedReply,
    msgsignature: crypto.sign(timestamp, nonce, encryptedReply),
    timestamp: Number(timestamp),
    nonce,
  });
  res.writeHead(200, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(out),
  });
  res.end(out);
}

const server = createServer((req, res) => {
  handle(req, res).catch((error: unknown) => refuse(res, 500, String(error)));
});
server.keepAliveTimeout = 65_000;
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
serveParent({}, async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  redis.disconnect();
});
announceReady({ port: (server.address() as AddressInfo).port });
