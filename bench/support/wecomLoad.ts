// Callbacks as WeCom sends them, encrypted and signed ahead of time (with the official @wecom/crypto,
// via test/support/wecomClient.ts) so that the load generator only sends bytes; a keep-alive undici
// pool to send them; a closed-loop driver (N in flight, a fixed time); and the reply check WeCom
// would make (signature, echoed nonce, decryptable JSON).
import { decrypt, getSignature } from '@wecom/crypto';
import { Pool } from 'undici';
import { type ReplyJson, randomMsgid, WecomClient } from '../../test/support/wecomClient.js';
import { testBot } from './nodes.js';
import { now } from './stats.js';

export interface Prepared {
  /** `/wecom/callback?msg_signature=…&timestamp=…&nonce=…` */
  path: string;
  body: string;
  nonce: string;
}

export const benchClient = (baseUrl = 'http://127.0.0.1'): WecomClient =>
  new WecomClient({
    baseUrl,
    token: testBot.token,
    encodingAESKey: testBot.encodingAESKey,
    botId: testBot.botId,
  });

const common = (userid: string): Record<string, unknown> => ({
  msgid: randomMsgid(),
  aibotid: testBot.botId,
  chattype: 'single',
  from: { userid },
});

/** A stream refresh poll (docs/protocol/wecom.md §6.3). */
export const pollMessage = (streamId: string, userid = 'bench-user'): Record<string, unknown> => ({
  ...common(userid),
  msgtype: 'stream',
  stream: { id: streamId },
});

/** A user's text message (§6.2), without a response_url: nothing may leave this machine. */
export const textMessage = (content: string, userid: string): Record<string, unknown> => ({
  ...common(userid),
  msgtype: 'text',
  text: { content },
});

let nonces = 0;

/** Encrypt and sign one callback now, for sending later. */
export function prepare(client: WecomClient, message: Record<string, unknown>): Prepared {
  const encrypt = client.encrypt(JSON.stringify(message));
  const nonce = `${Date.now() % 1e6}${++nonces}`;
  const query = client.sign(encrypt, String(Math.floor(Date.now() / 1000)), nonce);
  return { path: `${client.path}?${new URLSearchParams(query)}`, body: JSON.stringify({ encrypt }), nonce };
}

export function openPool(origin: string, connections: number): Pool {
  return new Pool(origin, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 60_000,
  });
}

export async function post(pool: Pool, p: Prepared): Promise<{ status: number; body: string }> {
  const res = await pool.request({
    method: 'POST',
    path: p.path,
    headers: { 'content-type': 'application/json' },
    body: p.body,
  });
  return { status: res.statusCode, body: await res.body.text() };
}

/** The reply as WeCom reads it (§5.1); throws when WeCom would refuse it. */
export function openReply(body: string, nonce: string): ReplyJson {
  const envelope = JSON.parse(body) as {
    encrypt: string;
    msgsignature: string;
    timestamp: number;
    nonce: string;
  };
  if (envelope.nonce !== nonce) throw new Error(`reply nonce ${envelope.nonce} is not ${nonce}`);
  if (
    envelope.msgsignature !==
    getSignature(testBot.token, envelope.timestamp, envelope.nonce, envelope.encrypt)
  )
    throw new Error('reply signature does not match');
  return JSON.parse(decrypt(testBot.encodingAESKey, envelope.encrypt).message) as ReplyJson;
}

export interface LoadResult {
  seconds: number;
  /** 200 answers. */
  ok: number;
  /** Other statuses and transport errors. */
  failed: number;
  firstFailure?: string;
  /** ms per 200 answer. */
  latencies: number[];
}

/**
 * Closed loop: `concurrency` workers each send the next prepared request as soon as their previous
 * one was answered (body read), for `durationMs`. Requests started before the end are all counted.
 */
export async function drive(
  pool: Pool,
  requests: readonly Prepared[],
  o: { concurrency: number; durationMs: number },
): Promise<LoadResult> {
  const result: LoadResult = { seconds: 0, ok: 0, failed: 0, latencies: [] };
  let next = 0;
  const started = now();
  const end = started + o.durationMs;
  const worker = async (): Promise<void> => {
    while (now() < end) {
      const p = requests[next++ % requests.length];
      if (!p) return;
      const t0 = now();
      try {
        const { status, body } = await post(pool, p);
        if (status === 200) {
          result.ok++;
          result.latencies.push(now() - t0);
        } else {
          result.failed++;
          result.firstFailure ??= `status ${status}: ${body.slice(0, 200)}`;
        }
      } catch (error) {
        result.failed++;
        result.firstFailure ??= String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  result.seconds = (now() - started) / 1000;
  return result;
}
