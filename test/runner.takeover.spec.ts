// Takeover, told as the protocol: a running stream whose owner's lease is gone is claimed by exactly
// one node, recorded as `stream.taken_over`, and answered again from the start; the third loss ends it
// with an error the user understands; a stream nobody polls is found by the sweep. Two runners share
// one in-memory store here, as two nodes share Redis.
import { afterEach, describe, expect, it } from 'vitest';
import { NoneAuthenticator } from '../src/auth/none.js';
import { silentLogger } from '../src/log.js';
import { defaultTexts, type EventOf, type StreamEvent } from '../src/machines/index.js';
import { createMetrics } from '../src/metrics.js';
import { pollDelivery } from '../src/runner/pollDelivery.js';
import type { AnswerEvent, AnswerRequest, AnswerSource } from '../src/runner/ports.js';
import { Runner } from '../src/runner/runner.js';
import { createMemoryStore, type StreamStore } from '../src/store/index.js';
import { answering as scene } from './support/answerSource.js';
import { anyBot } from './support/bots.js';
import { testConfig } from './support/service.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function answering(text: string, calls: string[]): AnswerSource {
  return {
    answer: scene(async function* (request: AnswerRequest): AsyncIterable<AnswerEvent> {
      calls.push(request.query);
      yield { type: 'started', conversationId: 'c1', messageId: 'm1', taskId: 't1' };
      for (const piece of text.match(/.{1,3}/gu) ?? []) {
        await sleep(5); // Dify's pace between pieces: part of the scene, not a wait
        yield { type: 'delta', text: piece };
      }
      yield { type: 'end' };
    }),
  };
}

interface LeaseAttempt {
  streamId: string;
  /** Whether it got the lease; undefined while the store has not answered. */
  won?: boolean;
}

/** The store, recording every lease taken through it and whether it was got. */
function recordingLeases(store: StreamStore, attempts: LeaseAttempt[]): StreamStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'acquireLease')
        return async (...args: Parameters<StreamStore['acquireLease']>) => {
          const attempt: LeaseAttempt = { streamId: args[0] };
          attempts.push(attempt);
          attempt.won = await target.acquireLease(...args);
          return attempt.won;
        };
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** A runner's poll, as WeCom reads it. */
const poll = async (runner: Runner, id: string) =>
  JSON.parse(await runner.poll(id, 'bot')) as { stream: { finish: boolean; content: string } };

function node(store: StreamStore, name: string, calls: string[], retired?: string): Runner {
  const config = testConfig({ NODE_ID: name, LEASE_SECONDS: '2' });
  const bots = anyBot({ answers: answering('重新回答的内容', calls), auth: new NoneAuthenticator() });
  return new Runner({
    store,
    // A bot no node serves any more (taken out of the bots file) is `retired`.
    bots: { bot: (id) => (id === retired ? undefined : bots.bot(id)) },
    delivery: pollDelivery({ deliver: async () => undefined }),
    config,
    logger: silentLogger,
    metrics: createMetrics({ defaults: false }),
    checkEveryMs: 20,
  });
}

const opened = (streamId: string, node = 'dead-node'): EventOf<'stream.opened'> => ({
  type: 'stream.opened',
  at: Date.now() - 60_000,
  streamId,
  msgid: `msg-${streamId}`,
  bot: 'bot',
  userid: `user-${streamId}`,
  chattype: 'single',
  query: '问题',
  node,
});
const granted: StreamEvent = { type: 'auth.granted', at: Date.now() - 59_000, user: { id: 'u' } };
const half: StreamEvent = { type: 'answer.delta', at: Date.now() - 58_000, text: '半个回答' };

describe('taking over a stream whose owner is gone', () => {
  const runners: Runner[] = [];
  afterEach(async () => {
    await Promise.all(runners.splice(0).map((r) => r.drain(1000)));
  });

  it('a poll finds it, exactly one of two nodes takes it over, and the answer starts over', async () => {
    const store = createMemoryStore({ ttlSeconds: 600 });
    const calls: string[] = [];
    const [a, b] = [node(store, 'a', calls), node(store, 'b', calls)];
    runners.push(a, b);
    await store.append('s1', [opened('s1'), granted, half], { expectedVersion: 0 });
    // What the user saw stays until the new answer's first text replaces it.
    const polls = await Promise.all([poll(a, 's1'), poll(b, 's1'), poll(a, 's1'), poll(b, 's1')]);
    for (const p of polls) expect(p.stream).toMatchObject({ finish: false, content: '半个回答' });
    await expect.poll(async () => (await store.load('s1'))?.view.value).toBe('completed');
    expect((await poll(a, 's1')).stream).toMatchObject({ finish: true, content: '重新回答的内容' });
    const events = (await store.read('s1')).map((e) => e.event);
    const takeovers = events.filter((e) => e.type === 'stream.taken_over');
    expect(takeovers).toHaveLength(1);
    expect(takeovers[0]).toMatchObject({ attempt: 1, previousNode: 'dead-node' });
    expect(calls).toEqual(['问题']);
  });

  it('a stream with a live owner is left alone', async () => {
    const inner = createMemoryStore({ ttlSeconds: 600 });
    const attempts: LeaseAttempt[] = [];
    const store = recordingLeases(inner, attempts);
    const calls: string[] = [];
    const a = node(store, 'a', calls);
    runners.push(a);
    await inner.append('s2', [opened('s2'), granted, half], { expectedVersion: 0 });
    await inner.acquireLease('s2', { node: 'alive-node', token: 'alive-node' }, 10_000);
    // Beside it, a stream in the same state whose owner is gone: polled after s2, and taken over.
    await inner.append('s2-gone', [{ ...opened('s2-gone'), query: '另一个问题' }, granted, half], {
      expectedVersion: 0,
    });
    await a.poll('s2', 'bot');
    await a.poll('s2-gone', 'bot');
    // The runner has decided about both polls once the later one's takeover has run to its end.
    await expect.poll(async () => (await inner.load('s2-gone'))?.view.value).toBe('completed');
    expect(calls).toEqual(['另一个问题']);
    // Any lease the runner tried to take on s2 was refused (and none is still pending), and the owner
    // still holds it.
    expect(attempts.filter((t) => t.streamId === 's2' && t.won !== false)).toEqual([]);
    expect(await inner.getLease('s2')).toMatchObject({ node: 'alive-node' });
    expect((await inner.read('s2')).map((e) => e.event.type)).not.toContain('stream.taken_over');
  });

  it('after two takeovers, the third loss ends the stream with an error the user understands', async () => {
    const store = createMemoryStore({ ttlSeconds: 600 });
    const calls: string[] = [];
    const a = node(store, 'a', calls);
    runners.push(a);
    const lost = (attempt: number): StreamEvent => ({
      type: 'stream.taken_over',
      at: Date.now() - 50_000 + attempt,
      node: `n${attempt}`,
      attempt,
    });
    await store.append('s3', [opened('s3'), granted, half, lost(1), lost(2)], { expectedVersion: 0 });
    await a.poll('s3', 'bot');
    await expect.poll(async () => (await store.load('s3'))?.view.value).toBe('error');
    const reply = await poll(a, 's3');
    expect(reply.stream.finish).toBe(true);
    expect(reply.stream.content.endsWith(defaultTexts.failures.takeover_exhausted!)).toBe(true);
    expect(calls).toEqual([]);
    expect((await store.read('s3')).at(-1)?.event).toMatchObject({
      type: 'answer.failed',
      code: 'takeover_exhausted',
    });
  });

  /**
   * A sweeping node `a` on a store whose clock runs `clock.ago` ms behind (a minute at first): what is
   * written then was written when the dead owner wrote, as its events say.
   */
  function sweeping(retired?: string) {
    const clock = { ago: 60_000 };
    const store = createMemoryStore({ ttlSeconds: 600, now: () => Date.now() - clock.ago });
    const calls: string[] = [];
    const a = node(store, 'a', calls, retired);
    runners.push(a);
    return { clock, store, calls, a };
  }

  it('the sweep takes over an orphan that nobody polls', async () => {
    const { clock, store, a } = sweeping();
    await store.append('s4', [opened('s4'), granted], { expectedVersion: 0 });
    clock.ago = 0;
    expect(await a.sweep()).toBe(1);
    await expect.poll(async () => (await store.load('s4'))?.view.value).toBe('completed');
    expect(await a.sweep()).toBe(0);
  });

  it('the sweep finds an orphan among more healthy answers than one sweep reads', async () => {
    const { clock, store, calls, a } = sweeping();
    await store.append('s5', [opened('s5'), granted], { expectedVersion: 0 });
    // A busy cluster: 300 answers a live node holds, each recorded just now.
    clock.ago = 0;
    const fresh: StreamEvent = { ...granted, at: Date.now() };
    for (let i = 0; i < 300; i++) {
      const id = `busy-${i}`;
      await store.append(id, [{ ...opened(id, 'live-node'), at: Date.now() }, fresh], { expectedVersion: 0 });
      await store.acquireLease(id, { node: 'live-node', token: `job-${i}` }, 60_000);
    }
    expect(await a.sweep()).toBe(1);
    await expect.poll(async () => (await store.load('s5'))?.view.value).toBe('completed');
    expect(calls).toEqual(['问题']);
  });

  it('the sweep finds an orphan behind more streams than one sweep reads that no node takes over', async () => {
    const { clock, store, calls, a } = sweeping('retired-bot');
    // 250 streams of a bot taken out of the bots file: older than the orphan, and never taken over.
    for (let i = 0; i < 250; i++) {
      const id = `retired-${i}`;
      await store.append(id, [{ ...opened(id), bot: 'retired-bot' }, granted], { expectedVersion: 0 });
    }
    clock.ago = 30_000;
    await store.append('s6', [opened('s6'), granted], { expectedVersion: 0 });
    clock.ago = 0;
    // Each sweep reads 200 of the 251 from a random point: the orphan is among them before long.
    await expect
      .poll(
        async () => {
          await a.sweep();
          return (await store.load('s6'))?.view.value;
        },
        { timeout: 10_000, interval: 50 },
      )
      .toBe('completed');
    expect(calls).toEqual(['问题']);
    expect((await store.load('retired-0'))?.view.value).toBe('thinking');
  });
});

describe('an answer that runs out of time', () => {
  it('ends with a clear error after ANSWER_TIMEOUT_SECONDS, and Dify is let go', async () => {
    const store = createMemoryStore({ ttlSeconds: 600 });
    let aborted = false;
    const hanging: AnswerSource = {
      answer: scene(async function* (request: AnswerRequest): AsyncIterable<AnswerEvent> {
        yield { type: 'started', conversationId: 'c', messageId: 'm', taskId: 't' };
        yield { type: 'delta', text: '想了很久' };
        await new Promise<void>((resolve) =>
          request.signal?.addEventListener('abort', () => {
            aborted = true;
            resolve();
          }),
        );
        throw new Error('aborted');
      }),
    };
    const runner = new Runner({
      store,
      bots: anyBot({ answers: hanging, auth: new NoneAuthenticator() }),
      delivery: pollDelivery({ deliver: async () => undefined }),
      config: testConfig({ ANSWER_TIMEOUT_SECONDS: '1' }),
      logger: silentLogger,
      metrics: createMetrics({ defaults: false }),
    });
    try {
      const { streamId } = await runner.accept({
        msgid: 'm-timeout',
        bot: 'bot',
        userid: 'slow-user',
        chattype: 'single',
        text: '一个要想很久的问题',
      });
      await expect
        .poll(async () => (await store.load(streamId))?.view.value, { timeout: 3_000 })
        .toBe('error');
      const reply = await poll(runner, streamId);
      expect(reply.stream).toMatchObject({ finish: true });
      expect(reply.stream.content.startsWith('想了很久')).toBe(true);
      expect(reply.stream.content.endsWith(defaultTexts.failures.answer_timeout!)).toBe(true);
      expect(aborted).toBe(true);
    } finally {
      await runner.drain(1000);
    }
  });
});
