// The inspector's HTTP API, on its own router over the in-memory store: the live list, a stream's
// steps (state and WeCom bubble after each event), the chart read from the machine, the token, and
// the JSON answers to bad input and to a failing store.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import Router from '@koa/router';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bubbleAt,
  type Chart,
  mountInspector,
  type Step,
  type StreamDetail,
  type StreamList,
} from '../src/http/inspector/index.js';
import { createLogger, silentLogger } from '../src/log.js';
import type { EventOf, EventType, StreamEvent } from '../src/machines/events.js';
import { evolve, fold, stateOf } from '../src/machines/fold.js';
import {
  at,
  attached,
  bubbleClosed,
  commandHandled,
  completed,
  deliveryFailed,
  deliverySent,
  delta,
  denied,
  dequeued,
  difyStarted,
  failed,
  feedbackGiven,
  filesUploaded,
  granted,
  inputExpired,
  inputGiven,
  inputRequired,
  opened,
  queued,
  released,
  replaced,
  stored,
  suggested,
  T0,
  takenOver,
} from '../src/machines/specification.js';
import { defaultTexts } from '../src/machines/texts.js';
import { createMemoryStore } from '../src/store/memory.js';
import { StoreError, type StreamStore } from '../src/store/port.js';

const TOKEN = 'inspector-test-token';

interface Running {
  url: string;
  server: Server;
}

async function serve(
  store: StreamStore,
  options: { token?: string; logs?: string[]; now?: () => number; windowMs?: number } = {},
) {
  const logger = options.logs
    ? createLogger(
        'info',
        new Writable({
          write(chunk, _encoding, done) {
            options.logs!.push(String(chunk));
            done();
          },
        }),
      )
    : silentLogger;
  const router = new Router();
  const { logs: _logs, ...deps } = options;
  mountInspector(router, { store, logger, ...deps });
  const app = new Koa();
  app.use(router.routes());
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server } satisfies Running;
}

const running: Running[] = [];
async function start(store: StreamStore, options: Parameters<typeof serve>[1] = {}): Promise<string> {
  const r = await serve(store, options);
  running.push(r);
  return r.url;
}

afterAll(async () => {
  await Promise.all(running.map((r) => new Promise((resolve) => r.server.close(resolve))));
});

async function getJson<T>(
  url: string,
  init?: RequestInit,
): Promise<{ status: number; body: T; headers: Headers }> {
  const res = await fetch(url, init);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return { status: res.status, body: (await res.json()) as T, headers: res.headers };
}

/** A stream that streamed "Hello" and completed: six events, 0, 5, 40, 100, 160 and 200 ms in. */
const helloStream = (streamId: string, userid = 'zhangsan'): StreamEvent[] => [
  at(T0, opened({ streamId, userid, query: 'say hello' })),
  at(T0 + 5, granted({ id: userid, name: 'Zhang San' })),
  at(T0 + 40, difyStarted()),
  at(T0 + 100, delta('Hel')),
  at(T0 + 160, delta('lo')),
  at(T0 + 200, completed({ total_tokens: 12 })),
];

// ---- the stream machine as a reader of src/machines/streamMachine.ts expects it drawn ----
// Written out, not read from the machine: a change to the machine must be made here too, on purpose.

const expectedStates: Record<string, string[]> = {
  idle: [],
  authenticating: ['running'],
  queued: ['running'],
  thinking: ['running'],
  streaming: ['running'],
  completed: ['finished'],
  error: ['finished'],
  waiting: ['finished'],
};

/** Events that take a state to another. */
const expectedMoves = [
  'idle → authenticating on stream.opened',
  'authenticating → thinking on auth.granted / ask',
  'authenticating → completed on command.handled',
  'authenticating → error on auth.denied',
  'queued → thinking on stream.dequeued',
  'thinking → queued on stream.queued',
  'thinking → streaming on answer.delta',
  'thinking → streaming on answer.replaced',
  'thinking → completed on answer.completed',
  'thinking → waiting on input.required',
  'streaming → completed on answer.completed',
  'streaming → waiting on input.required',
  'waiting → completed on input.given',
  'waiting → completed on input.expired',
  // Held once by the group of the running states, for every one of them.
  'running → error on answer.failed',
  'running → authenticating on stream.taken_over',
];

/** Events a state takes without leaving it. */
const expectedStays: Record<string, string[]> = {
  idle: [],
  authenticating: [],
  queued: [],
  thinking: ['files.uploaded', 'dify.started / keepConversation'],
  streaming: ['dify.started / keepConversation', 'answer.delta', 'answer.replaced'],
  completed: ['answer.suggested', 'bubble.closed', 'delivery.sent', 'delivery.failed', 'feedback.given'],
  error: ['delivery.sent', 'delivery.failed'],
  waiting: ['bubble.closed', 'delivery.sent', 'delivery.failed'],
};
/** The groups of states, their children, and what every child takes and stays. */
const expectedGroups = {
  running: {
    children: ['authenticating', 'queued', 'thinking', 'streaming'],
    stays: ['stream.released / handOver', 'bubble.closed', 'answer.suggested', 'answer.attached'],
  },
};

/** One event of every type the stream knows (the compiler says when a type is missing). */
const oneOfEach: { [K in EventType]: EventOf<K> } = {
  'stream.opened': opened(),
  'command.handled': commandHandled(),
  'auth.granted': granted(),
  'auth.denied': denied(),
  'stream.queued': queued(),
  'stream.dequeued': dequeued(),
  'files.uploaded': filesUploaded(),
  'dify.started': difyStarted(),
  'answer.delta': delta('字'),
  'answer.replaced': replaced('新的回答'),
  'answer.completed': completed(),
  'answer.failed': failed(),
  'stream.taken_over': takenOver(),
  'stream.released': released(),
  'bubble.closed': bubbleClosed(),
  'delivery.sent': deliverySent(),
  'delivery.failed': deliveryFailed(),
  'feedback.given': feedbackGiven(),
  'answer.suggested': suggested(),
  'answer.attached': attached(),
  'input.required': inputRequired(),
  'input.given': inputGiven(),
  'input.expired': inputExpired(),
};

/** A history that ends in each state. */
const historyTo: Record<string, StreamEvent[]> = {
  idle: [],
  authenticating: [opened()],
  queued: [opened(), granted(), queued()],
  thinking: [opened(), granted()],
  streaming: [opened(), granted(), delta('字')],
  completed: [opened(), granted(), delta('字'), completed()],
  error: [opened(), failed()],
  waiting: [opened(), granted(), delta('字'), inputRequired()],
};

describe('the inspector API', () => {
  let clock = T0 + 1_000;
  const store = createMemoryStore({ ttlSeconds: 3600, now: () => clock });
  let url: string;

  beforeAll(async () => {
    await store.append('done-1', helloStream('done-1'), { expectedVersion: 0 });
    clock += 10;
    const live = helloStream('live-1', 'lisi').slice(0, 4);
    await store.append('live-1', live, { expectedVersion: 0 });
    await store.acquireLease('live-1', { node: 'node-a', token: 'node-a' }, 15_000);
    url = await start(store, { now: () => clock });
  });

  it('lists recent streams, newest first, with their bot, user, state, times, answer length and lease', async () => {
    const { status, body } = await getJson<StreamList>(`${url}/inspector/api/streams`);
    expect(status).toBe(200);
    expect(body.now).toBe(clock);
    expect(body.streams.map((s) => s.streamId)).toEqual(['live-1', 'done-1']);
    const [live, done] = body.streams;
    expect(live).toMatchObject({
      bot: 'bot-1',
      userid: 'lisi',
      state: 'streaming',
      finished: false,
      answerLength: 3,
      openedAt: T0,
      lastEventAt: T0 + 100,
      leaseLive: true,
      lease: { node: 'node-a' },
    });
    expect(done).toMatchObject({
      userid: 'zhangsan',
      state: 'completed',
      finished: true,
      answerLength: 5,
      leaseLive: false,
    });
    expect(done).not.toHaveProperty('lease');
  });

  it('lists only the unfinished streams when asked, and refuses a bad limit in JSON', async () => {
    const { body } = await getJson<StreamList>(`${url}/inspector/api/streams?unfinished=1`);
    expect(body.streams.map((s) => s.streamId)).toEqual(['live-1']);
    const bad = await getJson<{ error: string }>(`${url}/inspector/api/streams?limit=nope`);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe('bad_request');
  });

  it("steps through a stream: after each event, the machine's state and the WeCom bubble as it looked", async () => {
    const { status, body } = await getJson<StreamDetail>(`${url}/inspector/api/streams/done-1`);
    expect(status).toBe(200);
    expect(body).toMatchObject({
      streamId: 'done-1',
      version: 6,
      state: 'completed',
      finished: true,
      answerLength: 5,
    });
    expect(body.context).toMatchObject({ userid: 'zhangsan', query: 'say hello', conversationId: 'conv-1' });
    expect(body.context).not.toHaveProperty('answer');
    const steps = body.steps;
    expect(steps.map((s) => s.type)).toEqual([
      'stream.opened',
      'auth.granted',
      'dify.started',
      'answer.delta',
      'answer.delta',
      'answer.completed',
    ]);
    expect(steps.map((s) => s.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(steps.map((s) => s.offsetMs)).toEqual([0, 5, 40, 100, 160, 200]);
    expect(steps.map((s) => s.state)).toEqual([
      'authenticating',
      'thinking',
      'thinking',
      'streaming',
      'streaming',
      'completed',
    ]);
    expect(steps.map((s) => s.from)).toEqual([
      'idle',
      'authenticating',
      'thinking',
      'thinking',
      'streaming',
      'streaming',
    ]);
    expect(steps.map((s) => s.outcome)).toEqual(['moved', 'moved', 'stayed', 'moved', 'stayed', 'moved']);
    expect(steps.map((_, i) => bubbleAt(steps, i))).toEqual([
      defaultTexts.authenticating,
      defaultTexts.thinking,
      defaultTexts.thinking,
      'Hel',
      'Hello',
      'Hello',
    ]);
    expect(steps.map((s) => s.bubble.finish)).toEqual([false, false, false, false, false, true]);
    // A growing answer costs its deltas: each step carries only what changed.
    expect(steps[4]!.bubble).toEqual({ finish: false, keep: 3, add: 'lo' });
    expect(steps.map((s) => s.answerLength)).toEqual([0, 0, 0, 3, 5, 5]);
    expect(steps[0]!.summary).toContain('"say hello"');
    expect(steps[1]!.summary).toBe('as zhangsan (Zhang San)');
    expect(steps[5]!.summary).toBe('12 tokens');
  });

  it("shows a running stream's live lease", async () => {
    const { body } = await getJson<StreamDetail>(`${url}/inspector/api/streams/live-1`);
    expect(body).toMatchObject({
      state: 'streaming',
      running: true,
      leaseLive: true,
      lease: { node: 'node-a' },
    });
    clock += 20_000;
    const later = await getJson<StreamDetail>(`${url}/inspector/api/streams/live-1`);
    expect(later.body.leaseLive).toBe(false);
  });

  it('answers an unknown stream id, and an unknown API, with a 404 in JSON', async () => {
    const missing = await getJson<{ error: string; message: string }>(
      `${url}/inspector/api/streams/no-such-stream`,
    );
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ error: 'not_found', message: expect.stringContaining('no such stream') });
    const long = await getJson<{ error: string }>(`${url}/inspector/api/streams/${'x'.repeat(300)}`);
    expect(long.status).toBe(404);
    const api = await getJson<{ error: string }>(`${url}/inspector/api/nothing/here`);
    expect(api.status).toBe(404);
    expect(api.body.error).toBe('not_found');
  });

  it('draws the stream machine as a reader of it expects: its states, and every event that moves one', async () => {
    const { status, body: chart } = await getJson<Chart>(`${url}/inspector/api/machine`);
    expect(status).toBe(200);
    expect(chart.machineId).toBe('stream');
    expect(chart.initial).toBe('idle');
    expect(Object.fromEntries(chart.nodes.map((n) => [n.id, n.tags]))).toEqual(expectedStates);
    const moves = chart.edges.flatMap((e) => e.events.map((event) => `${e.from} → ${e.to} on ${event}`));
    expect(moves.sort()).toEqual([...expectedMoves].sort());
    const stays = Object.fromEntries(chart.nodes.map((n) => [n.id, [...n.stays].sort()]));
    expect(stays).toEqual(
      Object.fromEntries(Object.entries(expectedStays).map(([id, events]) => [id, [...events].sort()])),
    );
    expect(
      Object.fromEntries(
        chart.groups.map((g) => [g.id, { children: g.children, stays: [...g.stays].sort() }]),
      ),
    ).toEqual(
      Object.fromEntries(
        Object.entries(expectedGroups).map(([id, g]) => [
          id,
          { children: g.children, stays: [...g.stays].sort() },
        ]),
      ),
    );
    // What each state does on entering it: the effects its owner runs.
    expect(Object.fromEntries(chart.nodes.filter((n) => n.does.length).map((n) => [n.id, n.does]))).toEqual({
      authenticating: ['authenticate'],
      completed: ['finish'],
      error: ['finish'],
      waiting: ['finish'],
    });
    expect(chart.anyState).toEqual([]);
  });

  it('draws exactly what the fold does: every event each state takes, and where it leads', async () => {
    const { body: chart } = await getJson<Chart>(`${url}/inspector/api/machine`);
    // An arrow or a stay of a group is every child's; the effects an event names are not the fold's.
    const childrenOf = (id: string) => chart.groups.find((g) => g.id === id)?.children ?? [id];
    const eventOf = (label: string) => label.replace(/ \/ .*$/, '');
    const drawn = new Set([
      ...chart.edges.flatMap((e) =>
        childrenOf(e.from).flatMap((from) =>
          e.events.map((event) => `${from} → ${e.to} on ${eventOf(event)}`),
        ),
      ),
      ...chart.nodes.flatMap((n) => n.stays.map((event) => `${n.id} → ${n.id} on ${eventOf(event)}`)),
      ...chart.groups.flatMap((g) =>
        g.children.flatMap((child) => g.stays.map((event) => `${child} → ${child} on ${eventOf(event)}`)),
      ),
    ]);
    const taken = new Set<string>();
    for (const [state, history] of Object.entries(historyTo)) {
      const before = fold(history);
      expect(stateOf(before), `the history that reaches ${state}`).toBe(state);
      for (const event of Object.values(oneOfEach)) {
        if (!before.can(event)) continue;
        taken.add(`${state} → ${stateOf(evolve(before, event))} on ${event.type}`);
      }
    }
    expect([...drawn].sort()).toEqual([...taken].sort());
  });

  it('lays the chart out so that no two boxes overlap and no label covers a box', async () => {
    const { body: chart } = await getJson<Chart>(`${url}/inspector/api/machine`);
    const boxes = chart.nodes.map((n) => ({ x: n.x, y: n.y, w: n.w, h: n.h }));
    const labels = chart.edges.map((e) => e.label);
    const overlap = (a: (typeof boxes)[0], b: (typeof boxes)[0]) =>
      a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
    for (const [i, a] of boxes.entries())
      for (const b of boxes.slice(i + 1)) expect(overlap(a, b)).toBe(false);
    for (const label of labels) for (const box of boxes) expect(overlap(label, box)).toBe(false);
    for (const [i, a] of labels.entries())
      for (const b of labels.slice(i + 1)) expect(overlap(a, b)).toBe(false);
    for (const box of [...boxes, ...labels]) {
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.y).toBeGreaterThanOrEqual(0);
      expect(box.x + box.w).toBeLessThanOrEqual(chart.width);
      expect(box.y + box.h).toBeLessThanOrEqual(chart.height);
    }
  });
});

describe('the inspector says why a stream stands still', () => {
  let clock = T0 + 1_000;
  const store = createMemoryStore({ ttlSeconds: 3600, now: () => clock });
  let url: string;

  beforeAll(async () => {
    // `first` is answering, its owner alive; `second`, in the same conversation, waits behind it.
    await store.append('first', helloStream('first').slice(0, 4), { expectedVersion: 0 });
    await store.acquireLease('first', { node: 'node-a', token: 'job-1' }, 15_000);
    await store.append(
      'second',
      [
        at(T0 + 300, opened({ streamId: 'second', msgid: 'msg-2', query: 'and then?' })),
        at(T0 + 305, granted()),
        at(T0 + 310, queued('first')),
      ],
      { expectedVersion: 0 },
    );
    await store.acquireLease('second', { node: 'node-a', token: 'job-2' }, 15_000);
    url = await start(store, { now: () => clock, windowMs: 60_000 });
  });

  it('while its owner is alive: what it waits for, and how long WeCom still polls', async () => {
    const { body } = await getJson<StreamDetail>(`${url}/inspector/api/streams/second`);
    expect(body.diagnosis).toEqual({
      lease: { status: 'held', node: 'node-a', until: T0 + 16_000, remainingMs: 15_000 },
      quietMs: 690,
      waiting: { on: 'queue', since: T0 + 310, forMs: 690, behind: 'first', behindState: 'streaming' },
      windowEndsAt: T0 + 60_300,
      windowPassed: false,
    });
    const list = await getJson<StreamList>(`${url}/inspector/api/streams`);
    for (const s of list.body.streams) expect(s).not.toHaveProperty('stuck');
  });

  it('once its lease has run out: stuck, its owner gone, in the list and in the stream', async () => {
    clock = T0 + 20_000;
    const { body } = await getJson<StreamDetail>(`${url}/inspector/api/streams/first`);
    // The store answers only a live lease: one that ran out is none.
    expect(body.diagnosis).toMatchObject({
      lease: { status: 'none' },
      waiting: { on: 'dify', lastEvent: 'answer.delta' },
      stuck: 'no-lease',
    });
    const list = await getJson<StreamList>(`${url}/inspector/api/streams`);
    expect(list.body.streams.map((s) => [s.streamId, s.stuck])).toEqual([
      ['second', 'no-lease'],
      ['first', 'no-lease'],
    ]);
  });

  it('past the window, WeCom no longer polls: the bubble can no longer change', async () => {
    clock = T0 + 61_000;
    const { body } = await getJson<StreamDetail>(`${url}/inspector/api/streams/second`);
    expect(body.diagnosis).toMatchObject({ windowEndsAt: T0 + 60_300, windowPassed: true });
  });
});

describe('the inspector on events it cannot fold', () => {
  it('marks an event the state does not take as ignored, and shows one this version cannot read as unknown', async () => {
    const store = createMemoryStore({ ttlSeconds: 3600 });
    await store.append('odd-1', helloStream('odd-1'), { expectedVersion: 0 });
    await store.append('odd-1', [at(T0 + 300, delta(' again'))], { expectedVersion: 6 });
    const future = stored({ type: 'stream.teleported', at: T0 + 400, where: 'mars' });
    const withFuture: StreamStore = {
      ...store,
      read: async (id) => {
        const events = await store.read(id);
        return [...events, { seq: events.length + 1, id: String(events.length + 1), event: future }];
      },
    };
    const url = await start(withFuture);
    const { body } = await getJson<StreamDetail>(`${url}/inspector/api/streams/odd-1`);
    const [late, unknown] = body.steps.slice(-2) as [Step, Step];
    expect(late).toMatchObject({
      type: 'answer.delta',
      outcome: 'ignored',
      from: 'completed',
      state: 'completed',
    });
    expect(unknown).toMatchObject({
      type: 'stream.teleported',
      outcome: 'unknown',
      state: 'completed',
      offsetMs: 400,
      summary: 'unknown: unknown event type "stream.teleported" (kept, not folded)',
    });
    // Neither changed what the user sees.
    expect(bubbleAt(body.steps, body.steps.length - 1)).toBe('Hello');
  });
});

describe('the inspector when the store fails', () => {
  it('answers 503 in JSON with a clear message, logs the cause, and never shows a stack trace', async () => {
    const store = createMemoryStore({ ttlSeconds: 3600 });
    const down = () => Promise.reject(new StoreError('unavailable', 'connect ECONNREFUSED 127.0.0.1:6379'));
    const broken: StreamStore = { ...store, listStreams: down, read: down, getLease: down };
    const logs: string[] = [];
    const url = await start(broken, { logs });
    for (const path of ['streams', 'streams/some-stream']) {
      const res = await fetch(`${url}/inspector/api/${path}`);
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('2');
      const text = await res.text();
      const body = JSON.parse(text) as { error: string; message: string };
      expect(body.error).toBe('store_unavailable');
      expect(body.message).toMatch(
        /^the event store did not answer \((listStreams|read|getLease): unavailable\); try again shortly$/,
      );
      expect(text).not.toMatch(/ECONNREFUSED|\n\s+at /);
    }
    const logged = logs.map((l) => JSON.parse(l) as { msg: string; err?: { message: string } });
    expect(
      logged.some(
        (l) => l.msg === 'inspector: the event store failed' && l.err?.message.includes('ECONNREFUSED'),
      ),
    ).toBe(true);
  });
});

describe('the inspector behind INSPECTOR_TOKEN', () => {
  const store = createMemoryStore({ ttlSeconds: 3600 });
  let url: string;
  beforeAll(async () => {
    await store.append('s-1', helloStream('s-1'), { expectedVersion: 0 });
    url = await start(store, { token: TOKEN });
  });

  const everything = [
    '/inspector',
    '/inspector/assets/inspector.js',
    '/inspector/api/streams',
    '/inspector/api/streams/s-1',
  ];

  it('refuses every request without the token, or with a wrong one, with 401', async () => {
    for (const path of everything) {
      for (const init of [
        {},
        { headers: { authorization: 'Bearer wrong-token-here' } },
        { headers: { authorization: TOKEN } },
      ]) {
        const res = await fetch(`${url}${path}`, init);
        expect(res.status, path).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
        expect(((await res.json()) as { error: string }).error).toBe('unauthorized');
      }
      const wrong = await fetch(`${url}${path}?token=${TOKEN}x`);
      expect(wrong.status, path).toBe(401);
    }
  });

  it('lets through a request with the token as a bearer header or as ?token=', async () => {
    for (const path of everything) {
      const byHeader = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(byHeader.status, path).toBe(200);
      const byQuery = await fetch(`${url}${path}?token=${TOKEN}`);
      expect(byQuery.status, path).toBe(200);
    }
  });

  it('passes a token from the URL on to the URLs of the page’s own assets', async () => {
    const html = await (await fetch(`${url}/inspector?token=${TOKEN}`)).text();
    expect(html).toContain(`/inspector/assets/inspector.js?token=${TOKEN}`);
    expect(html).toContain(`/inspector/assets/inspector.css?token=${TOKEN}`);
    expect(html).not.toContain('{{');
  });
});

describe('the inspector page and its assets', () => {
  let url: string;
  beforeAll(async () => {
    url = await start(createMemoryStore({ ttlSeconds: 3600 }));
  });

  it('serves the page and its assets with their content types, open when no token is set', async () => {
    const types: Record<string, RegExp> = {
      '/inspector': /^text\/html; charset=utf-8/,
      '/inspector/assets/inspector.css': /^text\/css/,
      '/inspector/assets/inspector.js': /^text\/javascript/,
      '/inspector/assets/markdown.js': /^text\/javascript/,
    };
    for (const [path, type] of Object.entries(types)) {
      const res = await fetch(`${url}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toMatch(type);
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
    const page = await fetch(`${url}/inspector`);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(await page.text()).toContain('<svg id="chart"');
  });

  it('needs nothing from the internet: no page, style or script refers to another host', async () => {
    for (const path of [
      '/inspector',
      '/inspector/assets/inspector.css',
      '/inspector/assets/inspector.js',
      '/inspector/assets/markdown.js',
    ]) {
      const text = await (await fetch(`${url}${path}`)).text();
      const hosts = [...text.matchAll(/(?:https?:)?\/\/([\w.-]+\.[a-z]{2,})/gi)].map((m) => m[1]);
      // The SVG namespace is a name, never fetched.
      expect(
        hosts.filter((h) => h !== 'www.w3.org'),
        path,
      ).toEqual([]);
      expect(text, path).not.toMatch(/@import|@font-face/);
    }
  });

  it('reads no file outside its assets folder and answers an unknown asset with 404', async () => {
    for (const name of [
      'nope.js',
      '..%2Froutes.ts',
      '%2E%2E%2F%2E%2E%2Fpackage.json',
      'routes.ts',
      '.hidden.js',
    ]) {
      const res = await fetch(`${url}/inspector/assets/${name}`);
      expect(res.status, name).toBe(404);
    }
  });
});
