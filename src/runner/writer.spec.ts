// The writer against a store that goes away: events wait in memory and are written in order when it is
// back; an append cut off by the outage that was written all the same is not written twice nor taken
// for another node's; a real conflict and a too-long outage still fail the writer.
import { describe, expect, it } from 'vitest';
import { advance, fold, initialStream, type StreamEvent } from '../machines/index.js';
import { createMemoryStore, StoreError, type StreamStore } from '../store/index.js';
import { StreamWriter } from './writer.js';

/** A piece of the answer, as an owner records it: folded, then handed to the writer. */
function piece(w: StreamWriter, text: string): Promise<void> {
  const event: StreamEvent = { type: 'answer.delta', at: Date.now(), text };
  return w.record([event], advance(w.snapshot, event)[0]);
}

const opened: StreamEvent = {
  type: 'stream.opened',
  at: 1,
  streamId: 's1',
  msgid: 'm1',
  bot: 'bot',
  userid: 'u1',
  chattype: 'single',
  query: '问题',
  node: 'n1',
};

const down = () => new StoreError('unavailable', 'Connection is closed.');

/** A store whose appends fail as `plan` says: `down` before writing, `cut` after writing. */
function flaky(plan: Array<'down' | 'cut' | 'ok'>): {
  store: StreamStore;
  inner: StreamStore;
  attempts: () => number;
} {
  const inner = createMemoryStore({ ttlSeconds: 60 });
  let attempts = 0;
  const store: StreamStore = {
    ...inner,
    async append(streamId, events, options) {
      const step = plan[attempts++] ?? 'ok';
      if (step === 'down') throw down();
      const written = await inner.append(streamId, events, options);
      if (step === 'cut') throw down();
      return written;
    },
  };
  return { store, inner, attempts: () => attempts };
}

async function started(store: StreamStore): Promise<StreamWriter> {
  await store.append('s1', [opened], { expectedVersion: 0 });
  return new StreamWriter(store, 's1', fold([opened], initialStream()), 1, {
    retryDelays: [5],
    retryForMs: 2_000,
  });
}

const granted: StreamEvent = { type: 'auth.granted', at: 2, user: { id: 'u1', name: '张三' } };

describe('StreamWriter while the store is unreachable', () => {
  it('keeps the events and writes them, in order, once the store answers', async () => {
    const { store, attempts } = flaky(['ok', 'down', 'down', 'down']);
    const w = await started(store);
    void piece(w, '你好');
    await w.emit(granted);
    await w.emit({ type: 'answer.completed', at: 3 });
    expect(attempts()).toBe(6);
    const types = (await store.read('s1')).map((e) => e.event.type);
    expect(types).toEqual(['stream.opened', 'answer.delta', 'auth.granted', 'answer.completed']);
    expect(w.version).toBe(4);
    expect(w.failure).toBeUndefined();
  });

  it('an append written although its answer was lost counts as written, once', async () => {
    const { store } = flaky(['ok', 'cut']);
    const w = await started(store);
    await w.emit(granted, { type: 'dify.started', at: 3, conversationId: 'c1' });
    void piece(w, '答案');
    await w.emit({ type: 'answer.completed', at: 4, usage: undefined });
    const types = (await store.read('s1')).map((e) => e.event.type);
    expect(types).toEqual([
      'stream.opened',
      'auth.granted',
      'dify.started',
      'answer.delta',
      'answer.completed',
    ]);
    expect(w.failure).toBeUndefined();
    expect((await store.load('s1'))?.view.context.answer).toBe('答案');
  });

  it('another writer’s events in between are a conflict, even after an outage', async () => {
    const { store, inner } = flaky(['ok', 'down']);
    const w = await started(store);
    const pending = w.emit(granted);
    // Another node appends while this one waits out the outage.
    await inner.append('s1', [{ ...granted, at: 9 }], { expectedVersion: 1 });
    await expect(pending).rejects.toMatchObject({ code: 'version_conflict' });
    expect(w.failure).toMatchObject({ code: 'version_conflict' });
  });

  it('gives up when the outage outlasts its patience, and says so', async () => {
    const { store } = flaky(['ok', ...Array<'down'>(1000).fill('down')]);
    await store.append('s1', [opened], { expectedVersion: 0 });
    const w = new StreamWriter(store, 's1', fold([opened], initialStream()), 1, {
      retryDelays: [5],
      retryForMs: 50,
    });
    await expect(w.emit(granted)).rejects.toMatchObject({ code: 'unavailable' });
    // Later events are not written behind a gap.
    await expect(w.emit({ type: 'answer.completed', at: 5 })).rejects.toMatchObject({ code: 'unavailable' });
    expect(await store.read('s1')).toHaveLength(1);
  });

  it('gives up at once when too much text waits in memory', async () => {
    const { store, attempts } = flaky(['ok', 'down', 'down', 'down', 'down']);
    await store.append('s1', [opened], { expectedVersion: 0 });
    const w = new StreamWriter(store, 's1', fold([opened], initialStream()), 1, {
      retryDelays: [5],
      maxPendingBytes: 10,
    });
    void piece(w, '一二三四五六七八');
    await expect(w.flush()).rejects.toMatchObject({ code: 'unavailable' });
    expect(attempts()).toBe(2);
  });
});

describe('StreamWriter', () => {
  it('writes in one append what was recorded before it ran, pieces that follow each other merged', async () => {
    const store = createMemoryStore({ ttlSeconds: 60 });
    await store.append('s1', [opened], { expectedVersion: 0 });
    const w = new StreamWriter(store, 's1', fold([opened], initialStream()), 1);
    const granted: StreamEvent = { type: 'auth.granted', at: 2, user: { id: 'u1' } };
    void w.emit(granted, { type: 'dify.started', at: 3, conversationId: 'c1' });
    // Recorded before the first append runs: it writes them too.
    void piece(w, '你');
    void piece(w, '好');
    await w.emit({ type: 'answer.completed', at: 4 });
    const types = (await store.read('s1')).map((s) => s.event);
    expect(types).toMatchObject([
      { type: 'stream.opened' },
      { type: 'auth.granted' },
      { type: 'dify.started' },
      { type: 'answer.delta', text: '你好' },
      { type: 'answer.completed' },
    ]);
    expect((await store.load('s1'))?.view.context.answer).toBe('你好');
  });
});
