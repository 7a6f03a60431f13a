// The operator commands in a deployment of several bots, against the real Redis: `streams` shows each
// stream's bot and `--bot` keeps one bot's; `replay` and `export` name the bot, and with `--bot` refuse
// another bot's stream (from Redis, from an export, from a service's inspector), so that an operator
// never reads the wrong bot's stream by a slip of the id.

import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Router from '@koa/router';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountInspector } from '../src/http/inspector/index.js';
import { silentLogger } from '../src/log.js';
import { fold, persist, type StreamEvent } from '../src/machines/index.js';
import { connectRedis, createRedisStore, type StreamStore } from '../src/store/index.js';
import { runInProcess } from './support/cliInProcess.js';
import { runCli, tempCwd } from './support/cliRun.js';
import { dropPrefix, randomPrefix, redisUrl } from './support/service.js';

interface Row {
  streamId: string;
  bot: string;
  userid: string;
}

const cwd = tempCwd('bots-filter');
const prefix = randomPrefix('cli-bots');
const env = { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix };
const tag = Math.random().toString(36).slice(2, 8);
const ids = {
  hrDone: `hr-done-${tag}`,
  hrRunning: `hr-running-${tag}`,
  itDone: `it-done-${tag}`,
};

/** A stream of `bot` that `userid` opened; `done` with its answer completed. */
function streamOf(streamId: string, bot: string, userid: string, at: number, done: boolean): StreamEvent[] {
  const events: StreamEvent[] = [
    {
      type: 'stream.opened',
      at,
      streamId,
      msgid: `m-${streamId}`,
      bot,
      userid,
      chattype: 'single',
      query: '年假怎么请？',
      node: 'node-a',
    },
    { type: 'auth.granted', at: at + 1, user: { id: userid } },
    { type: 'dify.started', at: at + 2, conversationId: 'c', taskId: 't' },
    { type: 'answer.delta', at: at + 3, text: '在系统里提交' },
  ];
  if (done) events.push({ type: 'answer.completed', at: at + 4 });
  return events;
}

/**
 * The command in this process (a child each would cost seconds), but where it reads or writes a file
 * relative to its working directory: there, a child process in the test's own directory.
 */
const cli = (args: string[], e: Record<string, string> = env) =>
  args[0] === 'export' || args.includes('--file')
    ? runCli(args, { cwd: cwd.dir, env: e })
    : runInProcess(args, e);

describe('wecom-dify streams, replay and export with several bots', { timeout: 90_000 }, () => {
  let store: StreamStore;
  let inspector: Server;
  let inspectorUrl: string;

  beforeAll(async () => {
    const now = Date.now();
    // Each stream recorded a moment after the one before, so that the newest-first order is certain.
    let clock = now;
    store = createRedisStore(connectRedis({ url: redisUrl }), { prefix, ttlSeconds: 600, now: () => clock });
    const record = async (streamId: string, events: StreamEvent[]) => {
      clock += 10;
      await store.append(streamId, events, { expectedVersion: 0, snapshot: persist(fold(events)) });
    };
    await record(ids.hrDone, streamOf(ids.hrDone, 'hr', 'alice', now - 3_000, true));
    await record(ids.itDone, streamOf(ids.itDone, 'it', 'bob', now - 2_000, true));
    await record(ids.hrRunning, streamOf(ids.hrRunning, 'hr', 'carol', now - 1_000, false));
    // A service's inspector over the same streams, for `replay --url`.
    const router = new Router();
    mountInspector(router, { store, logger: silentLogger });
    const app = new Koa();
    app.use(router.routes());
    inspector = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => inspector.once('listening', resolve));
    inspectorUrl = `http://127.0.0.1:${(inspector.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => inspector?.close(resolve));
    await store?.close();
    await dropPrefix(prefix);
    cwd.remove();
  });

  const list = async (...args: string[]): Promise<Row[]> => {
    const result = await cli(['streams', '--json', ...args]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout) as Row[];
  };

  it('streams shows every stream’s bot, in the table and in the JSON', async () => {
    const { code, stdout } = await cli(['streams']);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^STREAM\s+BOT\s+USER\s+STATE/);
    const row = (id: string) => lines.find((l) => l.startsWith(id)) ?? '';
    expect(row(ids.hrDone)).toMatch(/^\S+\s+hr\s+alice\s+completed/);
    expect(row(ids.itDone)).toMatch(/^\S+\s+it\s+bob\s+completed/);
    expect(row(ids.hrRunning)).toMatch(/^\S+\s+hr\s+carol\s+streaming/);
    expect(Object.fromEntries((await list()).map((r) => [r.streamId, r.bot]))).toEqual({
      [ids.hrRunning]: 'hr',
      [ids.itDone]: 'it',
      [ids.hrDone]: 'hr',
    });
  });

  it('streams --bot hr shows only hr’s streams, with the other filters too', async () => {
    const [hrBot, itBot, hrUnfinished, hrOfBob, finance, table] = await Promise.all([
      list('--bot', 'hr'),
      list('--bot', 'it'),
      list('--bot', 'hr', '--unfinished'),
      list('--bot', 'hr', '--user', 'bob'),
      list('--bot', 'finance'),
      cli(['streams', '--bot', 'hr']),
    ]);
    expect(hrBot.map((r) => r.streamId)).toEqual([ids.hrRunning, ids.hrDone]);
    expect(itBot.map((r) => r.streamId)).toEqual([ids.itDone]);
    expect(hrUnfinished.map((r) => r.streamId)).toEqual([ids.hrRunning]);
    expect(hrOfBob).toEqual([]);
    expect(finance).toEqual([]);
    expect(table.stdout).not.toContain(ids.itDone);
    expect(table.stdout.trim().split('\n').at(-1)).toBe('2 streams');
  });

  it('replay names the stream’s bot, in the report and in its JSON', async () => {
    const text = await cli(['replay', ids.itDone]);
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')[0]).toBe(
      `stream ${ids.itDone} · bob asked "年假怎么请？" · node node-a · bot it`,
    );
    const json = await cli(['replay', ids.itDone, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ streamId: ids.itDone, bot: 'it' });
  });

  it('replay --bot hr replays hr’s stream, and refuses it’s with exit code 1, saying whose it is', async () => {
    const ours = await cli(['replay', ids.hrDone, '--bot', 'hr']);
    expect(ours.stderr).toBe('');
    expect(ours.code).toBe(0);
    expect(ours.stdout).toContain('final state: completed');
    const theirs = await cli(['replay', ids.itDone, '--bot', 'hr']);
    expect(theirs).toMatchObject({ code: 1, stdout: '' });
    expect(theirs.stderr).toBe(`wecom-dify: replay: stream ${ids.itDone} is bot it's, not hr\n`);
    const json = await cli(['replay', ids.itDone, '--bot', 'hr', '--json']);
    expect(json).toMatchObject({ code: 1, stdout: '' });
  });

  it('export writes the bot into the file, and with --bot refuses another bot’s stream', async () => {
    const exported = await cli(['export', ids.hrDone, '--bot', 'hr']);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toBe(`wrote 5 events of stream ${ids.hrDone} (bot hr) to ${ids.hrDone}.json\n`);
    expect(JSON.parse(readFileSync(join(cwd.dir, `${ids.hrDone}.json`), 'utf8'))).toMatchObject({
      streamId: ids.hrDone,
      bot: 'hr',
    });
    const theirs = await cli(['export', ids.itDone, '--bot', 'hr', '--out', '-']);
    expect(theirs).toMatchObject({ code: 1, stdout: '' });
    expect(theirs.stderr).toBe(`wecom-dify: export: stream ${ids.itDone} is bot it's, not hr\n`);
  });

  it('replay --file --bot checks the exported stream’s bot, offline', async () => {
    await cli(['export', ids.itDone, '--out', 'it.json']);
    const theirs = await cli(['replay', '--file', 'it.json', '--bot', 'hr'], {});
    expect(theirs).toMatchObject({ code: 1, stdout: '' });
    expect(theirs.stderr).toBe(`wecom-dify: replay: stream ${ids.itDone} is bot it's, not hr\n`);
    const ours = await cli(['replay', '--file', 'it.json', '--bot', 'it', '--json'], {});
    expect(ours.code).toBe(0);
    expect(JSON.parse(ours.stdout)).toMatchObject({ streamId: ids.itDone, bot: 'it' });
  });

  it('replay --url --bot checks the bot of the stream the service’s inspector reads', async () => {
    const theirs = await cli(['replay', ids.itDone, '--url', inspectorUrl, '--bot', 'hr'], {});
    expect(theirs).toMatchObject({ code: 1, stdout: '' });
    expect(theirs.stderr).toBe(`wecom-dify: replay: stream ${ids.itDone} is bot it's, not hr\n`);
    const ours = await cli(['replay', ids.hrRunning, '--url', inspectorUrl, '--bot', 'hr'], {});
    expect(ours.code).toBe(0);
    expect(ours.stdout.split('\n')[0]).toMatch(/ · bot hr$/);
  });
});
