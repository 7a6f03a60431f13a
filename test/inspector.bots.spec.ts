// The inspector of a deployment with several bots, over the real Redis: the list shows each stream's
// bot and `?bot=<id>` keeps one bot's (the limit counting only its streams), a stream shows its bot,
// and the page has the control that picks one.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Router from '@koa/router';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountInspector, type StreamDetail, type StreamList } from '../src/http/inspector/index.js';
import { silentLogger } from '../src/log.js';
import { fold, persist, type StreamEvent } from '../src/machines/index.js';
import { at, completed, delta, difyStarted, granted, opened } from '../src/machines/specification.js';
import { connectRedis, createRedisStore, type StreamStore } from '../src/store/index.js';
import { dropPrefix, randomPrefix, redisUrl } from './support/service.js';

const prefix = randomPrefix('inspector-bots');
const tag = Math.random().toString(36).slice(2, 8);
const ids = { hrOld: `hr-old-${tag}`, hrNew: `hr-new-${tag}`, it: `it-${tag}` };

/** A stream of `bot` that answered "ok". */
const answered = (streamId: string, bot: string, userid: string): StreamEvent[] => {
  const t = Date.now();
  return [
    at(t, opened({ streamId, msgid: `m-${streamId}`, bot, userid, query: '打印机坏了' })),
    at(t + 1, granted({ id: userid })),
    at(t + 2, difyStarted()),
    at(t + 3, delta('ok')),
    at(t + 4, completed()),
  ];
};

describe('the inspector with several bots', () => {
  let store: StreamStore;
  let server: Server;
  let url: string;

  beforeAll(async () => {
    // Each stream recorded a moment after the one before: it's is the newest of all.
    let clock = Date.now();
    store = createRedisStore(connectRedis({ url: redisUrl }), { prefix, ttlSeconds: 600, now: () => clock });
    for (const [id, bot, user] of [
      [ids.hrOld, 'hr', 'alice'],
      [ids.hrNew, 'hr', 'bob'],
      [ids.it, 'it', 'carol'],
    ] as const) {
      clock += 10;
      const events = answered(id, bot, user);
      await store.append(id, events, { expectedVersion: 0, snapshot: persist(fold(events)) });
    }
    const router = new Router();
    mountInspector(router, { store, logger: silentLogger });
    const app = new Koa();
    app.use(router.routes());
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await store?.close();
    await dropPrefix(prefix);
  });

  const list = async (query = ''): Promise<StreamList> => {
    const res = await fetch(`${url}/inspector/api/streams${query}`);
    expect(res.status).toBe(200);
    return (await res.json()) as StreamList;
  };
  const botsOf = (l: StreamList) => l.streams.map((s) => [s.streamId, s.bot]);

  it('lists every bot’s streams, each with its bot', async () => {
    expect(botsOf(await list())).toEqual([
      [ids.it, 'it'],
      [ids.hrNew, 'hr'],
      [ids.hrOld, 'hr'],
    ]);
  });

  it('?bot=hr lists only hr’s streams, and ?bot=it only it’s', async () => {
    expect(botsOf(await list('?bot=hr'))).toEqual([
      [ids.hrNew, 'hr'],
      [ids.hrOld, 'hr'],
    ]);
    expect(botsOf(await list('?bot=it'))).toEqual([[ids.it, 'it']]);
    expect((await list('?bot=finance')).streams).toEqual([]);
  });

  it('the limit counts the bot’s own streams, though another bot’s are newer', async () => {
    expect(botsOf(await list('?bot=hr&limit=1'))).toEqual([[ids.hrNew, 'hr']]);
  });

  it('refuses an empty bot in JSON', async () => {
    const res = await fetch(`${url}/inspector/api/streams?bot=`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'bad_request', message: expect.stringContaining('bot') });
  });

  it('a stream shows its bot', async () => {
    const res = await fetch(`${url}/inspector/api/streams/${ids.it}`);
    const detail = (await res.json()) as StreamDetail;
    expect(detail.context).toMatchObject({ bot: 'it', userid: 'carol' });
  });

  it('the page has a column for the bot and a control to show one bot’s streams', async () => {
    const html = await (await fetch(`${url}/inspector`)).text();
    expect(html).toMatch(/<th[^>]*>bot<\/th>/);
    expect(html).toMatch(/<select id="bot-filter"[^>]*><option value="">all bots<\/option><\/select>/);
  });
});
