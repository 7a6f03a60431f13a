// `wecom-dify replay` and `export` against the real Redis: a stream recorded by the running service
// replays to the states of the live fold; an export replays offline with no Redis and no settings, to
// the same steps; unknown events are shown; a stream whose owner died says why it is stuck.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fold, type StreamEvent, stateOf } from '../src/machines/index.js';
import { connectRedis, createRedisStore, type StreamStore } from '../src/store/index.js';
import { runCli, tempCwd } from './support/cliRun.js';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import {
  dropPrefix,
  randomPrefix,
  redisUrl,
  startTestService,
  type TestService,
  testBot,
} from './support/service.js';
import { WecomClient } from './support/wecomClient.js';

interface Step {
  seq: number;
  type: string;
  offsetMs: number | null;
  state: string;
  applied: boolean;
  unknown: boolean;
  answerLength: number;
  summary: string;
  event: { type: string; [key: string]: unknown };
}
interface Report {
  streamId: string;
  bot?: string;
  steps: Step[];
  diagnosis: {
    state: string;
    finished: boolean;
    stuck: boolean;
    reasons: string[];
    lease: { status: string };
  };
  source?: { file: string; exportedAt: number };
}

const cwd = tempCwd('replay');
/** The running service's keys, and apart from them the streams written by hand (no sweep takes them over). */
const prefix = randomPrefix('cli-replay');
const handPrefix = randomPrefix('cli-replay-hand');
const env = { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix };
const handEnv = { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: handPrefix };
const answer = '你好！这是一个一段一段流出来的回答。Each piece is its own event.';

describe('wecom-dify replay and export', { timeout: 90_000 }, () => {
  let dify: FakeDify;
  let service: TestService;
  let hand: StreamStore;
  let streamId: string;
  let responseUrl: string;

  beforeAll(async () => {
    dify = await startFakeDify();
    dify.setDefault({ kind: 'answer', text: answer, frameDelayMs: 20 });
    service = await startTestService(
      { REDIS_URL: redisUrl, DIFY_API_URL: dify.url, DIFY_TIMEOUT_SECONDS: '5', WECOM_BOT_ID: testBot.botId },
      { keyPrefix: prefix },
    );
    hand = createRedisStore(connectRedis({ url: redisUrl }), { prefix: handPrefix, ttlSeconds: 600 });
    const wecom = new WecomClient({ baseUrl: service.url, ...testBot });
    const sent = await wecom.text('你好');
    streamId = sent.reply.stream.id;
    responseUrl = String(sent.sent.response_url);
    const { reply } = await wecom.pollUntilFinished(streamId, { intervalMs: 50 });
    expect(reply.stream.content).toBe(answer);
  });

  afterAll(async () => {
    await service?.stop();
    await dify?.stop();
    await hand?.close();
    await Promise.all([dropPrefix(prefix), dropPrefix(handPrefix)]);
    cwd.remove();
  });

  const replayJson = async (args: string[], e: Record<string, string> = env): Promise<Report> => {
    const result = await runCli(['replay', ...args, '--json'], { cwd: cwd.dir, env: e });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout) as Report;
  };

  it('replays a recorded stream to the same states as the live fold, step by step', async () => {
    const report = await replayJson([streamId]);
    const stored = await service.store.read(streamId);
    expect(report.streamId).toBe(streamId);
    // A deployment without a bots file serves one bot, `default`.
    expect(report.bot).toBe('default');
    expect(report.steps.map((s) => s.type)).toEqual(stored.map((s) => s.event.type));
    report.steps.forEach((step, i) => {
      const live = fold(stored.slice(0, i + 1).map((s) => s.event));
      expect(step.state).toBe(stateOf(live));
      expect(step.answerLength).toBe(live.context.answer.length);
    });
    const loaded = await service.store.load(streamId);
    expect(report.steps.at(-1)?.state).toBe(stateOf(loaded!.snapshot));
    expect(report.steps.map((s) => s.state)).toEqual(
      expect.arrayContaining(['authenticating', 'thinking', 'streaming', 'completed']),
    );
    expect(report.steps[0]).toMatchObject({ seq: 1, offsetMs: 0, type: 'stream.opened' });
    expect(report.steps.at(-1)?.answerLength).toBe(answer.length);
    expect(report.diagnosis).toMatchObject({ state: 'completed', finished: true, stuck: false });
  });

  it('prints every event with its offset, state and the answer’s growth, then the final state', async () => {
    const { code, stdout } = await runCli(['replay', streamId], { cwd: cwd.dir, env });
    expect(code).toBe(0);
    expect(stdout).toContain(`stream ${streamId} · zhangsan asked "你好"`);
    expect(stdout.split('\n')[0]).toMatch(/ · bot default$/);
    expect(stdout).toMatch(/^\+0\.000s {2}stream\.opened {2,}authenticating/m);
    expect(stdout).toMatch(/^\+\d+\.\d{3}s {2}answer\.delta {2,}streaming {2,}\d+ {2,}\+\d+ {2}"/m);
    expect(stdout).toMatch(/^\+\d+\.\d{3}s {2}answer\.completed {2,}completed/m);
    expect(stdout).toContain(`final state: completed,`);
    expect(stdout).toContain(`answer ${answer.length} chars`);
  });

  it('export then offline replay --file, with no Redis and no settings, gives the same steps', async () => {
    const exported = await runCli(['export', streamId], { cwd: cwd.dir, env });
    expect(exported.code).toBe(0);
    const file = join(cwd.dir, `${streamId}.json`);
    expect(existsSync(file)).toBe(true);
    expect(exported.stdout).toMatch(
      new RegExp(`wrote \\d+ events of stream ${streamId} \\(bot default\\) to ${streamId}.json`),
    );
    const json = JSON.parse(readFileSync(file, 'utf8')) as {
      streamId: string;
      bot: string;
      exportedAt: number;
      lease: unknown;
      events: unknown[];
    };
    expect(json.streamId).toBe(streamId);
    expect(json.bot).toBe('default');
    expect(json.lease).toBeNull();
    expect(Math.abs(json.exportedAt - Date.now())).toBeLessThan(60_000);
    // The response_url could message the user for an hour: the file says it was there, not what it is.
    expect(readFileSync(file, 'utf8')).not.toContain(new URL(responseUrl).searchParams.get('response_code'));
    expect(json.events[0]).toMatchObject({
      event: { type: 'stream.opened', responseUrl: '(set, not shown)' },
    });

    const online = await replayJson([streamId]);
    const offline = await replayJson(['--file', `${streamId}.json`], {});
    expect(online.steps[0]?.event.responseUrl).toBe(responseUrl);
    const essentials = (r: Report) =>
      r.steps.map(({ seq, type, offsetMs, state, answerLength, event }) => ({
        seq,
        type,
        offsetMs,
        state,
        answerLength,
        event: event.responseUrl ? { ...event, responseUrl: '(set, not shown)' } : event,
      }));
    expect(essentials(offline)).toEqual(essentials(online));
    expect(offline.source).toEqual({ file: `${streamId}.json`, exportedAt: json.exportedAt });
    expect(offline.diagnosis.state).toBe('completed');

    const text = await runCli(['replay', '--file', `${streamId}.json`], { cwd: cwd.dir, env: {} });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^\(offline, from .*: exported at \d{4}-\d\d-\d\dT/);
    expect(text.stdout).toContain('final state: completed');
  });

  it('export --out names the file, and --out - writes to standard output', async () => {
    const named = await runCli(['export', streamId, '--out', 'bug-report.json'], { cwd: cwd.dir, env });
    expect(named.code).toBe(0);
    expect(existsSync(join(cwd.dir, 'bug-report.json'))).toBe(true);
    const piped = await runCli(['export', streamId, '--out', '-'], { cwd: cwd.dir, env });
    expect(piped.code).toBe(0);
    expect(JSON.parse(piped.stdout)).toMatchObject({ format: 'wecom-dify/stream-export', streamId });
  });

  it('an event of a type this version does not know is shown, not dropped, and survives the export', async () => {
    const id = `unknown-${Date.now()}`;
    const events: StreamEvent[] = [
      {
        type: 'stream.opened',
        at: Date.now(),
        streamId: id,
        msgid: 'm-u',
        bot: 'b',
        userid: 'lisi',
        chattype: 'single',
        query: 'hi',
      },
      { type: 'auth.granted', at: Date.now() + 1, user: { id: 'lisi' } },
      // A newer node's event: the store keeps it as written.
      { type: 'stream.teleported', at: Date.now() + 2, to: 'mars' } as unknown as StreamEvent,
      { type: 'answer.delta', at: Date.now() + 3, text: 'hello' },
      { type: 'answer.completed', at: Date.now() + 4 },
    ];
    await hand.append(id, events, { expectedVersion: 0 });
    const report = await replayJson([id], handEnv);
    expect(report.steps[2]).toMatchObject({
      type: 'stream.teleported',
      unknown: true,
      applied: false,
      state: 'thinking',
    });
    expect(report.steps[2]?.summary).toContain('unknown event type "stream.teleported"');
    expect(report.steps.at(-1)?.state).toBe('completed');
    const text = await runCli(['replay', id], { cwd: cwd.dir, env: handEnv });
    expect(text.stdout).toMatch(/stream\.teleported \(unknown\) {2,}\(thinking\)/);
    expect(text.stdout).toContain('5 events (1 unknown)');

    await runCli(['export', id, '--out', 'unknown.json'], { cwd: cwd.dir, env: handEnv });
    const offline = await replayJson(['--file', 'unknown.json'], {});
    expect(offline.steps[2]).toMatchObject({ type: 'stream.teleported', unknown: true });
    expect(offline.steps[2]?.event).toMatchObject({ raw: { type: 'stream.teleported', to: 'mars' } });
  });

  it('replays and exports a stream whose id starts with "-", as one in 64 do', async () => {
    const id = `-${randomBytes(16).toString('base64url').slice(1)}`;
    await hand.append(
      id,
      [
        {
          type: 'stream.opened',
          at: Date.now(),
          streamId: id,
          msgid: 'm-dash',
          bot: 'b',
          userid: 'lisi',
          chattype: 'single',
          query: 'hi',
        },
        { type: 'auth.granted', at: Date.now() + 1, user: { id: 'lisi' } },
      ],
      { expectedVersion: 0 },
    );
    const report = await replayJson([id], handEnv);
    expect(report.streamId).toBe(id);
    expect(report.steps.map((s) => s.type)).toEqual(['stream.opened', 'auth.granted']);
    // Given after the flags, and after a `--` of the user's own, it is the same stream.
    const afterDashes = await runCli(['replay', '--json', '--', id], { cwd: cwd.dir, env: handEnv });
    expect(afterDashes.code).toBe(0);
    expect((JSON.parse(afterDashes.stdout) as Report).streamId).toBe(id);
    const exported = await runCli(['export', id, '--out', '-'], { cwd: cwd.dir, env: handEnv });
    expect(exported.code).toBe(0);
    expect(exported.stdout).toContain(id);
    // An export is named after its stream: its file starts with "-" too, and replays offline.
    expect((await runCli(['export', id], { cwd: cwd.dir, env: handEnv })).code).toBe(0);
    const offline = await replayJson(['--file', `${id}.json`], {});
    expect(offline.steps.map((s) => s.type)).toEqual(['stream.opened', 'auth.granted']);
  });

  it('a stream whose owner died says where and why it is stuck', async () => {
    const id = `dead-${Date.now()}`;
    const at = Date.now() - 3 * 60_000;
    await hand.append(
      id,
      [
        {
          type: 'stream.opened',
          at,
          streamId: id,
          msgid: 'm-d',
          bot: 'b',
          userid: 'wangwu',
          chattype: 'single',
          query: '还在吗',
          node: 'node-dead',
        },
        { type: 'auth.granted', at: at + 5, user: { id: 'wangwu' } },
        { type: 'dify.started', at: at + 300, conversationId: 'c-9', taskId: 't-9' },
        { type: 'answer.delta', at: at + 900, text: '让我想想' },
      ],
      { expectedVersion: 0 },
    );
    // An owner that died holding its lease: the lease runs out.
    await hand.acquireLease(id, { node: 'node-dead', token: 'node-dead' }, 50);
    await expect.poll(() => hand.getLease(id)).toBeUndefined();
    const { code, stdout } = await runCli(['replay', id], { cwd: cwd.dir, env: handEnv });
    expect(code).toBe(0);
    expect(stdout).toContain('final state: streaming, not finished — STUCK');
    expect(stdout).toMatch(/no event for (2m59s|3m\d\ds) \(the last: answer\.delta at /);
    expect(stdout).toContain('no live lease: its owner is gone');
    expect(stdout).toMatch(/waiting on Dify since \S+ \(\S+\): the last event was answer\.delta/);
    const report = await replayJson([id], handEnv);
    expect(report.diagnosis).toMatchObject({
      state: 'streaming',
      finished: false,
      stuck: true,
      lease: { status: 'none' },
    });
  });

  it('a stream that is not there, a file that is not an export, and bad usage are said plainly', async () => {
    writeFileSync(join(cwd.dir, 'not-an-export.json'), '{"hello":1}');
    const [missing, notExport, noRedis, both, none] = await Promise.all([
      runCli(['replay', 'no-such-stream'], { cwd: cwd.dir, env }),
      runCli(['replay', '--file', 'not-an-export.json'], { cwd: cwd.dir, env: {} }),
      runCli(['replay', streamId], { cwd: cwd.dir, env: {} }),
      runCli(['replay', streamId, '--file', 'x.json'], { cwd: cwd.dir, env }),
      runCli(['export'], { cwd: cwd.dir, env }),
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('replay: no stream no-such-stream under the prefix');
    expect(notExport.code).toBe(1);
    expect(notExport.stderr).toContain('not a wecom-dify stream export');
    expect(noRedis.code).toBe(2);
    expect(noRedis.stderr).toMatch(/^wecom-dify: REDIS_URL: required/);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('give a stream id or --file, not both');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('usage: wecom-dify export');
  });
});
