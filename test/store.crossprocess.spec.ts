// Any node can answer a poll for any stream: a stream written by one process is loaded, identically,
// by a fresh client in another process.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fold, persist, type StreamEvent } from '../src/machines/index.js';
import { connectRedis, createRedisStore, type StreamStore } from '../src/store/index.js';
import { deleteKeys, randomPrefix } from './support/redisKeys.js';

const run = promisify(execFile);
const url = 'redis://127.0.0.1:6379';
const script = fileURLToPath(new URL('./support/redisLoadStream.ts', import.meta.url));
const root = fileURLToPath(new URL('..', import.meta.url));

/** Loads a stream in a child process and returns what it printed. */
async function loadElsewhere(prefix: string, streamId: string): Promise<unknown> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', script, url, prefix, streamId], {
    cwd: root,
    timeout: 20_000,
  });
  return JSON.parse(stdout);
}

describe('a stream across processes', () => {
  const prefix = randomPrefix('xproc');
  let store: StreamStore;
  let admin: Redis;

  beforeAll(() => {
    store = createRedisStore(connectRedis({ url }), { prefix, ttlSeconds: 600 });
    admin = new Redis(url);
  });
  afterAll(async () => {
    await deleteKeys(admin, prefix);
    await admin.quit();
    await store.close();
  });

  it('is rebuilt by another process exactly as by the writer, snapshot and tail alike', async () => {
    const id = `xproc-${Date.now()}`;
    let at = Date.now();
    const events: StreamEvent[] = [
      {
        type: 'stream.opened',
        at: ++at,
        streamId: id,
        msgid: 'msg-x',
        bot: 'bot-1',
        userid: 'wangwu',
        chatid: 'chat-9',
        chattype: 'group',
        query: '总结一下 🙂',
        responseUrl: 'https://example.invalid/response',
      },
      { type: 'auth.granted', at: ++at, user: { id: 'wangwu', name: '王五', department: '研发' } },
      { type: 'dify.started', at: ++at, conversationId: 'c-1', messageId: 'm-1', taskId: 't-1' },
      { type: 'answer.delta', at: ++at, text: '第一段，' },
      { type: 'answer.delta', at: ++at, text: 'with "quotes" \\ and\nnewlines 👩‍💻' },
    ];
    await store.append(id, events.slice(0, 4), {
      expectedVersion: 0,
      snapshot: persist(fold(events.slice(0, 4))),
    });
    await store.append(id, events.slice(4), { expectedVersion: 4 });

    const here = await store.load(id);
    const there = await loadElsewhere(prefix, id);
    expect(there).toEqual({
      version: 5,
      tail: 1,
      stream: JSON.parse(JSON.stringify(persist(here!.snapshot))),
    });
    expect(there).toEqual(JSON.parse(JSON.stringify({ version: 5, tail: 1, stream: persist(fold(events)) })));

    const done: StreamEvent[] = [{ type: 'answer.completed', at: ++at }];
    await store.append(id, done, { expectedVersion: 5, snapshot: persist(fold([...events, ...done])) });
    expect(await loadElsewhere(prefix, id)).toMatchObject({
      version: 6,
      tail: 0,
      stream: { value: 'completed' },
    });
  });

  it('prints nothing to rebuild for a stream that does not exist', async () => {
    expect(await loadElsewhere(prefix, 'no-such-stream')).toBeNull();
  });
});
