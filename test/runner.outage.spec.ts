// An owner rides out a store outage around its Dify call: the token cache and the
// conversation id it needs before asking are waited for, the conversation id Dify gives is kept once
// the store is back, and the answer neither fails nor waits for it meanwhile. An in-memory store stands
// in for Redis here, made unreachable for the conversation keys only, so that the outage falls exactly
// where it is tested; the whole-Redis outage, with a real redis-server stopped and started, is
// test/e2e.outage.spec.ts.
import { describe, expect, it } from 'vitest';
import { NoneAuthenticator } from '../src/auth/none.js';
import { AuthError, type AuthErrorCode, type Authenticator } from '../src/auth/types.js';
import { silentLogger } from '../src/log.js';
import { defaultTexts } from '../src/machines/index.js';
import { createMetrics } from '../src/metrics.js';
import { pollDelivery } from '../src/runner/pollDelivery.js';
import type { AnswerEvent, AnswerRequest, AnswerSource } from '../src/runner/ports.js';
import { Runner } from '../src/runner/runner.js';
import type { WriterOptions } from '../src/runner/writer.js';
import { createMemoryStore, StoreError, type StreamStore } from '../src/store/index.js';
import { answering } from './support/answerSource.js';
import { anyBot } from './support/bots.js';
import { testConfig } from './support/service.js';

/** The in-memory store, with its conversation keys unreachable while `down` is set. */
function withConversationOutage(): {
  store: StreamStore;
  setDown(down: boolean): void;
  failures: () => number;
} {
  const inner = createMemoryStore({ ttlSeconds: 600 });
  let down = false;
  let failures = 0;
  const guard =
    <A extends unknown[], R>(op: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (down) {
        failures++;
        throw new StoreError('unavailable', 'connect ECONNREFUSED 127.0.0.1:6379');
      }
      return op(...args);
    };
  const store: StreamStore = {
    ...inner,
    getConversation: guard(inner.getConversation),
    setConversation: guard(inner.setConversation),
    clearConversation: guard(inner.clearConversation),
  };
  const setDown = (d: boolean) => {
    down = d;
  };
  return { store, setDown, failures: () => failures };
}

function runnerOn(
  store: StreamStore,
  answers: AnswerSource,
  writer?: WriterOptions,
  auth: Authenticator = new NoneAuthenticator(),
): Runner {
  return new Runner({
    store,
    bots: anyBot({ answers, auth }),
    delivery: pollDelivery({ deliver: async () => undefined }),
    config: testConfig({}),
    logger: silentLogger,
    metrics: createMetrics({ defaults: false }),
    checkEveryMs: 20,
    ...(writer ? { writer } : {}),
  });
}

const ask = (runner: Runner, msgid: string, query: string) =>
  runner.accept({ msgid, bot: 'bot', userid: 'zhangsan', chattype: 'single', text: query });

describe('the store unreachable around the Dify call', () => {
  it('waits for the conversation id before asking, and asks with it once the store is back', async () => {
    const { store, setDown, failures } = withConversationOutage();
    const asked: AnswerRequest[] = [];
    const runner = runnerOn(store, {
      answer: answering(async function* (request: AnswerRequest): AsyncIterable<AnswerEvent> {
        asked.push(request);
        yield { type: 'started', conversationId: 'conv-1', messageId: 'm', taskId: 't' };
        yield { type: 'delta', text: '第二个回答' };
        yield { type: 'end' };
      }),
    });
    try {
      await store.setConversation('bot', 'zhangsan', 'conv-1');
      setDown(true);
      const { streamId } = await ask(runner, 'm-1', '接着上次的问题');
      await expect.poll(failures).toBeGreaterThan(2);
      expect(asked).toHaveLength(0);
      setDown(false);
      await expect.poll(async () => (await store.load(streamId))?.view.value).toBe('completed');
      expect(asked).toHaveLength(1);
      expect(asked[0]?.conversationId).toBe('conv-1');
      expect((await store.load(streamId))?.view.context.answer).toBe('第二个回答');
    } finally {
      await runner.drain(1000);
    }
  });

  it('streams on while the new conversation id cannot be kept, and keeps it when the store is back', async () => {
    const { store, setDown, failures } = withConversationOutage();
    let release!: () => void;
    const later = new Promise<void>((resolve) => (release = resolve));
    const runner = runnerOn(store, {
      answer: answering(async function* (): AsyncIterable<AnswerEvent> {
        setDown(true); // the store goes away just as Dify starts answering
        yield { type: 'started', conversationId: 'conv-new', messageId: 'm', taskId: 't' };
        yield { type: 'delta', text: '先到的' };
        await later;
        yield { type: 'delta', text: '后到的' };
        yield { type: 'end' };
      }),
    });
    try {
      const { streamId } = await ask(runner, 'm-2', '新问题');
      // The answer's text reaches the stream although the conversation id is not written yet.
      await expect.poll(async () => (await store.load(streamId))?.view.context.answer).toBe('先到的');
      await expect.poll(failures).toBeGreaterThan(1);
      release();
      await expect.poll(async () => (await store.load(streamId))?.view.value).toBe('completed');
      expect((await store.load(streamId))?.view.context.answer).toBe('先到的后到的');
      expect(await store.getLease(streamId)).toBeDefined(); // the owner holds on until the id is kept
      setDown(false);
      await expect.poll(() => store.getLease(streamId)).toBeUndefined();
      expect(await store.getConversation('bot', 'zhangsan')).toBe('conv-new');
    } finally {
      await runner.drain(1000);
    }
  });

  it('an outage longer than the owner’s patience ends the answer with a clear message', async () => {
    const { store, setDown } = withConversationOutage();
    const ending: AnswerSource = {
      answer: answering(async function* (): AsyncIterable<AnswerEvent> {
        yield { type: 'end' };
      }),
    };
    const runner = runnerOn(store, ending, { retryForMs: 300 });
    try {
      setDown(true);
      const { streamId } = await ask(runner, 'm-3', '问题');
      await expect
        .poll(async () => (await store.load(streamId))?.view.context.error?.code, { timeout: 3_000 })
        .toBe('store_unavailable');
    } finally {
      await runner.drain(1000);
    }
  });
});

/** A directory authenticator whose first `failures` answers are `code`: its token cache or service down. */
function failingAuth(code: AuthErrorCode, failures: number): Authenticator & { calls: () => number } {
  let calls = 0;
  return {
    async authenticate({ userid }) {
      if (++calls <= failures) throw new AuthError(code, `token cache read failed: Connection is closed.`);
      return { granted: true, user: { id: `E-${userid}`, name: '张三' } };
    },
    async close() {},
    calls: () => calls,
  };
}

describe('authentication while a dependency is down', () => {
  const answered: AnswerSource = {
    answer: answering(async function* (): AsyncIterable<AnswerEvent> {
      yield { type: 'delta', text: '你好，张三' };
      yield { type: 'end' };
    }),
  };

  it('the token cache (in Redis) unreachable is waited out, and the user answered', async () => {
    const store = createMemoryStore({ ttlSeconds: 600 });
    const auth = failingAuth('cache_unavailable', 3);
    const runner = runnerOn(store, answered, { retryDelays: [20] }, auth);
    try {
      const { streamId } = await ask(runner, 'm-4', '你好');
      await expect.poll(async () => (await store.load(streamId))?.view.value).toBe('completed');
      expect((await store.load(streamId))?.view.context.answer).toBe('你好，张三');
      expect(auth.calls()).toBe(4);
    } finally {
      await runner.drain(1000);
    }
  });

  it('a token service that is down is not asked again: the user is told to try later', async () => {
    const store = createMemoryStore({ ttlSeconds: 600 });
    const auth = failingAuth('token_service_unavailable', 3);
    const runner = runnerOn(store, answered, { retryDelays: [20] }, auth);
    try {
      const { streamId } = await ask(runner, 'm-5', '你好');
      await expect.poll(async () => (await store.load(streamId))?.view.value).toBe('error');
      const reply = JSON.parse(await runner.poll(streamId, 'bot')) as { stream: { content: string } };
      expect(reply.stream.content).toBe(defaultTexts.failures.auth_unavailable);
      expect(auth.calls()).toBe(1);
    } finally {
      await runner.drain(1000);
    }
  });
});

describe('a message whose place in its conversation’s line was not kept', () => {
  it('takes one itself, and waits for the answer ahead instead of running beside it', async () => {
    const inner = createMemoryStore({ ttlSeconds: 600 });
    let failJoins = 0;
    const store: StreamStore = {
      ...inner,
      async joinLine(bot, scope, streamId) {
        if (failJoins > 0) {
          failJoins--;
          throw new StoreError('unavailable', 'Connection is closed.');
        }
        return inner.joinLine(bot, scope, streamId);
      },
    };
    const asked: string[] = [];
    let finishFirst!: () => void;
    const firstMayEnd = new Promise<void>((resolve) => (finishFirst = resolve));
    const runner = runnerOn(store, {
      answer: answering(async function* (request: AnswerRequest): AsyncIterable<AnswerEvent> {
        asked.push(request.query);
        if (request.query === '第一个问题') await firstMayEnd;
        yield { type: 'delta', text: `回答：${request.query}` };
        yield { type: 'end' };
      }),
    });
    try {
      const first = await ask(runner, 'm-6', '第一个问题');
      await expect.poll(() => asked).toEqual(['第一个问题']);
      failJoins = 1; // the second message's join at accept fails
      const second = await ask(runner, 'm-7', '第二个问题');
      // Queued is where the owner decides to wait rather than ask: Dify has not heard of it by then.
      await expect.poll(async () => (await store.load(second.streamId))?.view.value).toBe('queued');
      expect(asked).toEqual(['第一个问题']);
      finishFirst();
      await expect.poll(async () => (await store.load(second.streamId))?.view.value).toBe('completed');
      expect(asked).toEqual(['第一个问题', '第二个问题']);
      expect((await store.load(first.streamId))?.view.value).toBe('completed');
    } finally {
      finishFirst();
      await runner.drain(1000);
    }
  });
});
