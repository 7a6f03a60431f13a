// Copies of one message racing on one node, made deterministic: the first copy's opening write is
// held back until every other copy has been answered, so that they all reach the store before it.
// However the copies interleave, the message is one stream, one owner and one Dify request; a copy
// that lost never releases the lease the winner holds (a node holds many leases; it must release only
// its own).
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { NoneAuthenticator } from '../src/auth/none.js';
import { silentLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { pollDelivery } from '../src/runner/pollDelivery.js';
import type { AnswerEvent, AnswerRequest, AnswerSource } from '../src/runner/ports.js';
import { Runner } from '../src/runner/runner.js';
import { connectRedis, createRedisStore, type StreamStore } from '../src/store/index.js';
import { answering } from './support/answerSource.js';
import { anyBot } from './support/bots.js';
import { dropPrefix, randomPrefix, redisUrl, testConfig } from './support/service.js';

function slowAnswer(calls: string[]): AnswerSource {
  return {
    answer: answering(async function* (request: AnswerRequest): AsyncIterable<AnswerEvent> {
      calls.push(request.query);
      yield { type: 'started', conversationId: 'c1', messageId: 'm1', taskId: 't1' };
      for (const piece of ['一', '二', '三', '四', '五']) {
        // Dify's pace between pieces: part of the scene, not a wait.
        await sleep(60, undefined, { signal: request.signal }).catch(() => undefined);
        yield { type: 'delta', text: piece };
      }
      yield { type: 'end' };
    }),
  };
}

/**
 * The store, with the first opening write (an append at version 0) held back until `release()`: every
 * other copy of the message gets to the store before it.
 */
function holdingFirstOpening(store: StreamStore): { store: StreamStore; release(): void } {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let openings = 0;
  const held = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'append')
        return async (...args: Parameters<StreamStore['append']>) => {
          if (args[2].expectedVersion === 0 && openings++ === 0) await released;
          return target.append(...args);
        };
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { store: held, release };
}

describe('copies of one message on one node', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('are one stream and one Dify request, and the owner keeps its lease', async () => {
    const prefix = randomPrefix('runner-copies');
    const redis = connectRedis({ url: redisUrl });
    const base = createRedisStore(redis, { prefix, ttlSeconds: 600 });
    cleanups.push(async () => {
      await base.close();
      await dropPrefix(prefix);
    });
    const { store, release } = holdingFirstOpening(base);
    cleanups.push(async () => release());
    const calls: string[] = [];
    const runner = new Runner({
      store,
      bots: anyBot({ answers: slowAnswer(calls), auth: new NoneAuthenticator() }),
      delivery: pollDelivery({ deliver: async () => undefined }),
      config: testConfig({ NODE_ID: 'one-node', LEASE_SECONDS: '2' }),
      logger: silentLogger,
      metrics: createMetrics({ defaults: false }),
    });
    cleanups.push(async () => void (await runner.drain(1000)));
    const message = { msgid: 'copied', bot: 'bot', userid: 'u1', chattype: 'single' as const, text: '问' };
    const copies = Array.from({ length: 5 }, () => runner.accept(message));
    // The first copy's opening goes to the store only once every other copy has been answered.
    let answered = 0;
    const counted = () => {
      if (++answered === copies.length - 1) release();
    };
    for (const copy of copies) void copy.then(counted, counted);
    const accepted = await Promise.all(copies);
    const [streamId] = new Set(accepted.map((a) => a.streamId));
    expect(new Set(accepted.map((a) => a.streamId)).size).toBe(1);
    expect(accepted.filter((a) => !a.duplicate)).toHaveLength(1);
    // While the answer runs, the owner's lease is there for every poll to see.
    for (;;) {
      const polled = await base.poll(streamId!);
      if (polled?.state === 'completed') break;
      if (polled?.state !== 'idle') expect(polled?.lease?.node).toBe('one-node');
      await runner.poll(streamId!, 'bot');
      await sleep(20); // WeCom's pace between polls
    }
    const events = (await base.read(streamId!)).map((e) => e.event.type);
    expect(events).not.toContain('stream.taken_over');
    expect(events.filter((t) => t === 'stream.opened')).toHaveLength(1);
    expect(calls).toEqual(['问']);
  });
});
