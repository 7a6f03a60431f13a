// When the owner can no longer write the answer (its stream vanished from the store, or the store
// stayed unreachable past the writer's patience), it stops the answer on purpose: Dify is let go and
// told to stop, nothing more is read, no promise is left to fail unseen, and the stream is counted and
// logged as what it is (not recorded), never as completed.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { NoneAuthenticator } from '../src/auth/none.js';
import { createLogger } from '../src/log.js';
import { createMetrics, type Metrics } from '../src/metrics.js';
import { pollDelivery } from '../src/runner/pollDelivery.js';
import type { AnswerEvent, AnswerRequest, AnswerSource } from '../src/runner/ports.js';
import { Runner } from '../src/runner/runner.js';
import { createMemoryStore, StoreError, type StreamStore } from '../src/store/index.js';
import { answering } from './support/answerSource.js';
import { anyBot } from './support/bots.js';
import { logLines } from './support/logLines.js';
import { testConfig } from './support/service.js';

/** Dify streaming a long answer, one piece every 10 ms, and what the owner did with it. */
function longAnswer() {
  const seen = { pieces: 0, ended: false, signal: undefined as AbortSignal | undefined };
  const answers: AnswerSource = {
    answer: answering(async function* (request: AnswerRequest): AsyncIterable<AnswerEvent> {
      seen.signal = request.signal;
      try {
        yield { type: 'started', conversationId: 'c', messageId: 'm', taskId: 'task-1' };
        for (let i = 0; i < 500; i++) {
          // As the Dify client does: an aborted request ends the stream with an error (and the client
          // itself tells Dify to stop the task).
          if (request.signal?.aborted)
            throw Object.assign(new Error('aborted'), { name: 'DifyError', kind: 'aborted' });
          // Dify's pace between pieces: part of the scene, not a wait. Aborted, the source stops at once,
          // as the client does (its socket is destroyed): no piece is read after it.
          await sleep(10, undefined, { signal: request.signal });
          seen.pieces++;
          yield { type: 'delta', text: `第${i}段。` };
        }
        yield { type: 'end' };
      } finally {
        // Thrown out of, or closed by the reader: no piece can follow.
        seen.ended = true;
      }
    }),
  };
  return { answers, seen };
}

/** The memory store; `break()` makes every later append fail the way `kind` says. */
function breakable(kind: 'vanished' | 'unreachable'): { store: StreamStore; break(): void } {
  const inner = createMemoryStore({ ttlSeconds: 600 });
  let broken = false;
  const store: StreamStore = {
    ...inner,
    async append(streamId, events, options) {
      if (!broken) return inner.append(streamId, events, options);
      throw kind === 'vanished'
        ? new StoreError('version_conflict', `stream ${streamId} is at version 0`, { actual: 0 })
        : new StoreError('unavailable', 'connect ECONNREFUSED 127.0.0.1:6379');
    },
  };
  return {
    store,
    break: () => {
      broken = true;
    },
  };
}

const finishedCount = async (metrics: Metrics, state: string): Promise<number> => {
  const metric = await metrics.streamsFinished.get();
  return metric.values.find((v) => v.labels.state === state)?.value ?? 0;
};

describe('an owner whose writes fail', () => {
  const runners: Runner[] = [];
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.drain(1000)));
  });

  for (const kind of ['vanished', 'unreachable'] as const) {
    it(`stops reading Dify when the stream ${kind === 'vanished' ? 'vanished from the store' : 'stays unreachable'}`, async () => {
      const { store, break: breakStore } = breakable(kind);
      const { answers, seen } = longAnswer();
      const log = logLines();
      const metrics = createMetrics({ defaults: false });
      const runner = new Runner({
        store,
        bots: anyBot({ answers, auth: new NoneAuthenticator() }),
        delivery: pollDelivery({ deliver: async () => undefined }),
        config: testConfig({}),
        logger: createLogger('info', log.sink),
        metrics,
        writer: { retryDelays: [20], retryForMs: 200 },
      });
      runners.push(runner);
      await runner.accept({
        msgid: `m-${kind}`,
        bot: 'bot',
        userid: 'u',
        chattype: 'single',
        text: '长答案',
      });
      await expect.poll(() => seen.pieces, { timeout: 5_000 }).toBeGreaterThan(10);
      breakStore();
      await expect.poll(() => runner.inflight, { timeout: 5_000 }).toBe(0);
      const piecesWhenDone = seen.pieces;
      // Dify was let go well before the end of its answer (which makes the client stop its task).
      expect(piecesWhenDone).toBeLessThan(200);
      expect(seen.signal?.aborted).toBe(true);
      // Nothing more is read: by the time the job is gone, Dify's stream has ended.
      expect(seen.ended).toBe(true);
      expect(seen.pieces).toBe(piecesWhenDone);
      expect(await finishedCount(metrics, 'completed')).toBe(0);
      const outcome = log.lines.find((l) => l.msg === 'stream outcome');
      expect(outcome?.state).not.toBe('completed');
      expect(outcome?.state).toBe('unrecorded');
      expect(await finishedCount(metrics, 'unrecorded')).toBe(1);
    });
  }
});
