// A Dify stand-in for the delta-to-visible bench: every chat answer is `deltas` `message` frames
// (docs/protocol/dify.md §3–§4, chat flavour), one each `intervalMs`, whose text stamps the delta with
// its sequence number and the moment it left here (`performance.now()` of this process, where the
// poller that looks for it runs too): ` 17@12345.6;`. Then `message_end`.
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface StampedDifyOptions {
  deltas: number;
  intervalMs: number;
  /** Bytes of filler the first delta carries before its stamp: a long answer from its start. */
  prefixBytes?: number;
}

export interface StampedDify {
  /** Ends in /v1. */
  url: string;
  /** Answers being written now. */
  active(): number;
  /** Sets how the next answers go. */
  configure(options: StampedDifyOptions): void;
  stop(): Promise<void>;
}

/** The stamps in an answer, in order: sequence number → when it was sent (ms, `performance.now()`). */
export function stampsIn(text: string): Map<number, number> {
  const stamps = new Map<number, number>();
  for (const m of text.matchAll(/ (\d+)@(\d+(?:\.\d+)?);/g)) stamps.set(Number(m[1]), Number(m[2]));
  return stamps;
}

export async function startStampedDify(initial: StampedDifyOptions): Promise<StampedDify> {
  let options = initial;
  let active = 0;
  const sockets = new Set<Socket>();
  const closing = new AbortController();
  // Every answer in flight waits on it: as many listeners as answers.
  setMaxListeners(0, closing.signal);

  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    for await (const _ of req) {
      // the request body is not needed: every question gets the same kind of answer
    }
    const { deltas, intervalMs, prefixBytes = 0 } = options;
    const ids = {
      conversation_id: randomUUID(),
      message_id: randomUUID(),
      created_at: Math.floor(Date.now() / 1000),
      task_id: randomUUID(),
    };
    const frame = (event: string, rest: Record<string, unknown>) =>
      `data: ${JSON.stringify({ event, ...ids, ...rest })}\n\n`;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    active++;
    try {
      // Paced by the clock, not by the sleeps: a late timer is caught up on, so that an answer takes
      // `deltas × intervalMs` however busy this process is, and its length is not the service's doing.
      const start = performance.now();
      for (let seq = 0; seq < deltas && !res.destroyed; seq++) {
        const filler = seq === 0 && prefixBytes > 0 ? '长'.repeat(Math.ceil(prefixBytes / 3)) : '';
        const answerText = `${filler} ${seq}@${performance.now().toFixed(1)};`;
        res.write(frame('message', { id: ids.message_id, answer: answerText }));
        const next = start + (seq + 1) * intervalMs - performance.now();
        if (next > 0) await sleep(next, undefined, { signal: closing.signal });
      }
      res.end(
        frame('message_end', {
          id: ids.message_id,
          metadata: { usage: { total_tokens: deltas } },
          files: null,
        }),
      );
    } finally {
      active--;
    }
  };

  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url?.startsWith('/v1/chat-messages')) {
      answer(req, res).catch(() => res.destroy());
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ code: 'not_found', message: 'not here', status: 404 }));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    active: () => active,
    configure(next) {
      options = next;
    },
    async stop() {
      closing.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
