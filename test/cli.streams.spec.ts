// `wecom-dify streams` against the real Redis: recent streams as a table or JSON, and the filters an
// operator reaches for first: unfinished, stuck (quiet, or whose owner is gone), one user's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fold, persist, type StreamEvent } from '../src/machines/index.js';
import { connectRedis, createRedisStore, type StreamStore } from '../src/store/index.js';
import { runCli, tempCwd } from './support/cliRun.js';
import { dropPrefix, randomPrefix, redisUrl } from './support/service.js';
import { until } from './support/until.js';

interface Row {
  streamId: string;
  bot: string;
  userid: string;
  state: string;
  finished: boolean;
  answerLength: number;
  ageMs: number;
  quietMs: number;
  lease: { node: string; until: number } | null;
  stuck?: 'no-lease' | 'quiet';
}

const cwd = tempCwd('streams');
const prefix = randomPrefix('cli-streams');
const env = { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix };
const tag = Math.random().toString(36).slice(2, 8);
const ids = {
  done: `done-${tag}`,
  noLease: `nolease-${tag}`,
  expired: `expired-${tag}`,
  alive: `alive-${tag}`,
  quiet: `quiet-${tag}`,
};

/** The events of a stream that got as far as `upTo`. */
function streamOf(
  streamId: string,
  userid: string,
  at: number,
  upTo: 'granted' | 'thinking' | 'streaming' | 'done',
): StreamEvent[] {
  const events: StreamEvent[] = [
    {
      type: 'stream.opened',
      at,
      streamId,
      msgid: `m-${streamId}`,
      bot: 'bot',
      userid,
      chattype: 'single',
      query: '你好',
      node: 'node-a',
    },
    { type: 'auth.granted', at: at + 1, user: { id: userid } },
  ];
  if (upTo === 'granted') return events;
  events.push({ type: 'dify.started', at: at + 2, conversationId: 'c', taskId: 't' });
  if (upTo === 'thinking') return events;
  events.push({ type: 'answer.delta', at: at + 3, text: '你好，世界' });
  if (upTo === 'streaming') return events;
  events.push({ type: 'answer.completed', at: at + 4 });
  return events;
}

const list = async (...args: string[]): Promise<Row[]> => {
  const result = await runCli(['streams', '--json', ...args], { cwd: cwd.dir, env });
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as Row[];
};
const idsOf = (rows: Row[]) =>
  rows
    .map((r) => r.streamId)
    .filter((id) => id.endsWith(tag))
    .sort();

describe('wecom-dify streams', { timeout: 90_000 }, () => {
  let store: StreamStore;

  beforeAll(async () => {
    store = createRedisStore(connectRedis({ url: redisUrl }), { prefix, ttlSeconds: 600 });
    const now = Date.now();
    const record = async (streamId: string, events: StreamEvent[]) =>
      store.append(streamId, events, { expectedVersion: 0, snapshot: persist(fold(events)) });
    await record(ids.done, streamOf(ids.done, 'alice', now - 5_000, 'done'));
    // An owner that died without a trace: opened and granted, and no lease at all.
    await record(ids.noLease, streamOf(ids.noLease, 'bob', now - 2_000, 'granted'));
    // An owner that died holding its lease: the lease runs out.
    await record(ids.expired, streamOf(ids.expired, 'carol', now - 1_000, 'thinking'));
    await store.acquireLease(ids.expired, { node: 'node-dead', token: 'node-dead' }, 50);
    // A live owner, writing.
    await record(ids.alive, streamOf(ids.alive, 'dave', now, 'streaming'));
    await store.acquireLease(ids.alive, { node: 'node-live', token: 'node-live' }, 120_000);
    // A live owner whose answer has been quiet for ten minutes.
    await record(ids.quiet, streamOf(ids.quiet, 'erin', now - 10 * 60_000, 'thinking'));
    await store.acquireLease(ids.quiet, { node: 'node-slow', token: 'node-slow' }, 120_000);
    await until('the dead owner’s lease runs out', async () => !(await store.getLease(ids.expired)));
  });

  afterAll(async () => {
    await store?.close();
    await dropPrefix(prefix);
    cwd.remove();
  });

  it('lists recent streams as a table: id, bot, user, state, age, last event, answer length, owner', async () => {
    const { code, stdout, stderr } = await runCli(['streams'], { cwd: cwd.dir, env });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^STREAM\s+BOT\s+USER\s+STATE\s+AGE\s+LAST EVENT\s+ANSWER\s+OWNER$/);
    const row = (id: string) => lines.find((l) => l.startsWith(id)) ?? '';
    expect(row(ids.done)).toMatch(/^\S+\s+bot\s+alice\s+completed\s+\S+\s+\S+ ago\s+5\s+-$/);
    expect(row(ids.alive)).toMatch(/dave\s+streaming\s.*\s5\s+node-live \(\S+ left\)$/);
    expect(row(ids.noLease)).toMatch(/bob\s+thinking\s.*\snone$/);
    expect(lines.at(-1)).toBe('5 streams');
  });

  it('--json gives every field, and --unfinished leaves out the finished', async () => {
    const all = await list();
    expect(idsOf(all)).toEqual(Object.values(ids).sort());
    const done = all.find((r) => r.streamId === ids.done);
    expect(done).toMatchObject({
      bot: 'bot',
      userid: 'alice',
      state: 'completed',
      finished: true,
      answerLength: 5,
      lease: null,
    });
    expect(done?.ageMs).toBeGreaterThanOrEqual(5_000);
    expect(all.find((r) => r.streamId === ids.alive)?.lease?.node).toBe('node-live');
    expect(idsOf(await list('--unfinished'))).toEqual(
      [ids.alive, ids.expired, ids.noLease, ids.quiet].sort(),
    );
  });

  it('--stuck finds the streams whose owner died (no lease, or a lease run out) and the quiet ones', async () => {
    const stuck = await list('--stuck', '5m');
    expect(Object.fromEntries(stuck.map((r) => [r.streamId, r.stuck]))).toEqual({
      [ids.noLease]: 'no-lease',
      [ids.expired]: 'no-lease',
      [ids.quiet]: 'quiet',
    });
    // Quiet for ten minutes is not stuck for an hour; an owner gone is stuck at any threshold.
    expect(idsOf(await list('--stuck', '1h'))).toEqual([ids.expired, ids.noLease].sort());
    const table = await runCli(['streams', '--stuck', '90s'], { cwd: cwd.dir, env });
    expect(table.stdout).toMatch(new RegExp(`${ids.expired}.*none\\s+owner gone`));
    expect(table.stdout).toMatch(new RegExp(`${ids.quiet}.*node-slow.*quiet`));
  });

  it('--user shows one user’s streams, --limit caps the list', async () => {
    expect(idsOf(await list('--user', 'carol'))).toEqual([ids.expired]);
    expect(await list('--user', 'nobody')).toEqual([]);
    expect(await list('--limit', '2')).toHaveLength(2);
  });

  it('--prefix names the keys to read, over REDIS_KEY_PREFIX', async () => {
    const result = await runCli(['streams', '--json', '--prefix', prefix], {
      cwd: cwd.dir,
      env: { REDIS_URL: redisUrl },
    });
    expect(result.code).toBe(0);
    expect(idsOf(JSON.parse(result.stdout) as Row[])).toHaveLength(5);
    const elsewhere = await runCli(['streams', '--json', '--prefix', `${prefix}none:`], {
      cwd: cwd.dir,
      env,
    });
    expect(JSON.parse(elsewhere.stdout)).toEqual([]);
  });

  it('refuses to run without Redis: the in-memory store of a service cannot be read from here', async () => {
    const { code, stdout, stderr } = await runCli(['streams'], { cwd: cwd.dir, env: {} });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(
      /^wecom-dify: REDIS_URL: required: .*REDIS_CLUSTER_NODES.*no other process can read/,
    );
  });

  it('a malformed setting or flag is a usage problem, exit code 2', async () => {
    const [badUrl, badDuration, unknown] = await Promise.all([
      runCli(['streams'], { cwd: cwd.dir, env: { REDIS_URL: 'http://x' } }),
      runCli(['streams', '--stuck', 'soon'], { cwd: cwd.dir, env }),
      runCli(['streams', '--colour'], { cwd: cwd.dir, env }),
    ]);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toBe('wecom-dify: REDIS_URL: must start with redis:// or rediss://\n');
    expect(badDuration.code).toBe(2);
    expect(badDuration.stderr).toContain('--stuck takes a duration such as 500ms, 90s, 2m or 1h, not "soon"');
    expect(badDuration.stderr).toContain('usage');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("Unknown option '--colour'");
  });

  it('a server and a cluster both set is a settings problem, exit code 2, as for the service', async () => {
    const { code, stderr } = await runCli(['streams'], {
      cwd: cwd.dir,
      env: { ...env, REDIS_CLUSTER_NODES: '127.0.0.1:7000' },
    });
    expect(code).toBe(2);
    expect(stderr).toBe('wecom-dify: REDIS_CLUSTER_NODES: set REDIS_URL or REDIS_CLUSTER_NODES, not both\n');
  });

  it('an unreachable Redis is a failure, exit code 1, said in one line', async () => {
    const { code, stderr } = await runCli(['streams'], {
      cwd: cwd.dir,
      env: { REDIS_URL: 'redis://127.0.0.1:1' },
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^wecom-dify: streams: redis listStreams failed: /);
  });
});
