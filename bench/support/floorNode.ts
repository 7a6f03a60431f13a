// A bench child: the FLOOR under a poll, the least work any server must do to answer one WeCom
// stream-refresh poll (docs/protocol/wecom.md §2, §4, §5.1), on bare node:http with no framework:
// read the body, check the SHA-1 signature, decrypt AES-256-CBC, parse the JSON to learn the stream
// id, fetch the stream's stored snapshot JSON in one Redis round trip (HGET of the very value the
// service reads), then encrypt and sign a reply of the same plaintext size as the service's.
// It does not restore the snapshot nor render it: the reply content is given (BENCH_FLOOR_CONTENT).
import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { announceReady, serveParent } from './childSide.mjs';

const token = process.env.WECOM_TOKEN ?? '';
const key = Buffer.from(`${process.env.WECOM_ENCODING_AES_KEY ?? ''}=`, 'base64');
const iv = key.subarray(0, 16);
const prefix = process.env.BENCH_PREFIX ?? '';
const content = process.env.BENCH_FLOOR_CONTENT ?? '';
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { enableOfflineQueue: true });

const sign = (timestamp: string, nonce: string, encrypt: string): string =>
  createHash('sha1').update([token, timestamp, nonce, encrypt].sort().join('')).digest('hex');

function decrypt(b64: string): string {
  const decipher = createDecipheriv('aes-256-cbc', key, iv);
  decipher.setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(Buffer.from(b64, 'base64')), decipher.final()]);
  const length = plain.readUInt32BE(16);
  return plain.subarray(20, 20 + length).toString('utf8');
}

function encrypt(text: string): string {
  const message = Buffer.from(text, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(message.length, 0);
  const unpadded = 20 + message.length;
  const pad = 32 - (unpadded % 32);
  const framed = Buffer.concat([randomBytes(16), length, message, Buffer.alloc(pad, pad)]);
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(framed), cipher.final()]).toString('base64');
}

function refuse(res: ServerResponse, status: number, why: string): void {
  res.writeHead(status, { 'content-type': 'text/plain' });
  res.end(why);
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const url = req.url ?? '';
  const query = new URLSearchParams(url.slice(url.indexOf('?') + 1));
  const timestamp = query.get('timestamp') ?? '';
  const nonce = query.get('nonce') ?? '';
  const given = Buffer.from(query.get('msg_signature') ?? '');
  const { encrypt: encrypted } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { encrypt: string };
  const expected = Buffer.from(sign(timestamp, nonce, encrypted));
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return refuse(res, 401, 'signature');
  const message = JSON.parse(decrypt(encrypted)) as { stream?: { id?: string } };
  const streamId = message.stream?.id ?? '';
  const snapshot = await redis.hget(`${prefix}stream:{${streamId}}:snap`, 's');
  if (snapshot === null) return refuse(res, 404, 'no such stream');
  const reply = JSON.stringify({ msgtype: 'stream', stream: { id: streamId, finish: false, content } });
  const encryptedReply = encrypt(reply);
  const body = JSON.stringify({
    encrypt: encryptedReply,
    msgsignature: sign(timestamp, nonce, encryptedReply),
    timestamp: Number(timestamp),
    nonce,
  });
  res.writeHead(200, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
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
