// The cost of writing an answer's next piece does not grow with the answer: what the owner sends to
// Redis for one more delta is about the delta's size, whether the answer so far is 2 KB or 100 KB.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advance, fold, initialStream, type StreamEvent } from '../src/machines/index.js';
import { StreamWriter } from '../src/runner/writer.js';
import { connectRedis, createRedisStore, type StreamStore } from '../src/store/index.js';
import { dropPrefix, randomPrefix, redisUrl } from './support/service.js';

/** A piece of the answer, as an owner records it: folded, then handed to the writer to coalesce. */
function piece(w: StreamWriter, text: string): Promise<void> {
  const event: StreamEvent = { type: 'answer.delta', at: Date.now(), text };
  return w.record([event], advance(w.snapshot, event)[0]);
}

const opening = (streamId: string): StreamEvent[] => [
  {
    type: 'stream.opened',
    at: 1,
    streamId,
    msgid: `m-${streamId}`,
    bot: 'bot',
    userid: 'u1',
    chattype: 'single',
    query: '问题',
  },
  { type: 'auth.granted', at: 2, user: { id: 'u1' } },
  { type: 'dify.started', at: 3, conversationId: 'c', messageId: 'm', taskId: 't' },
];

describe('the cost of one more delta', () => {
  const prefix = randomPrefix('writer-cost');
  let redis: Redis;
  let store: StreamStore;
  let sent = 0;

  beforeAll(async () => {
    redis = connectRedis({ url: redisUrl }) as Redis;
    store = createRedisStore(redis, { prefix, ttlSeconds: 600 });
    await store.ping();
    // Count the bytes of every command's arguments the client sends.
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = ((command: { args: unknown[] }) => {
      for (const arg of command.args) sent += Buffer.byteLength(String(arg));
      return send(command as never);
    }) as typeof redis.sendCommand;
  });
  afterAll(async () => {
    await store.close();
    await dropPrefix(prefix);
  });

  /** Bytes sent for `rounds` deltas of `piece` after an answer of `before` bytes. */
  async function bytesPerDelta(streamId: string, before: number, text: string, rounds: number) {
    const events = opening(streamId);
    await store.append(streamId, events, { expectedVersion: 0 });
    const writer = new StreamWriter(store, streamId, fold(events, initialStream()), events.length);
    const chunk = 'x'.repeat(1000);
    for (let written = 0; written < before; written += chunk.length) void piece(writer, chunk);
    await writer.flush();
    const start = sent;
    for (let i = 0; i < rounds; i++) {
      void piece(writer, text);
      await writer.flush();
    }
    return (sent - start) / rounds;
  }

  it('is about the delta, whatever the answer’s length', async () => {
    const piece = '一小段回答。';
    const short = await bytesPerDelta('short', 2_000, piece, 40);
    const long = await bytesPerDelta('long', 100_000, piece, 40);
    expect(long).toBeLessThan(short * 1.2 + 64);
    // And it is small: not a copy of the answer.
    expect(short).toBeLessThan(1_000);
  });
});
