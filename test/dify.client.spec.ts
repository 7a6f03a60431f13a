// The Dify client against a local fake that speaks Dify's real wire protocol (test/support/fakeDify.ts;
// the protocol is docs/protocol/dify.md): captured streams replayed and re-chunked, liveness, every
// failure class, retries, stop and abort; event streams read in turns.
import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DifyClient, type DifyClientOptions, type DifyStreamRequest } from '../src/dify/client.js';
import { DifyError } from '../src/dify/errors.js';
import type { DifyEvent } from '../src/dify/events.js';
import { ReadPace } from '../src/dify/readPace.js';
import {
  type FakeDify,
  fixturesAvailable,
  readFixture,
  type Scenario,
  startFakeDify,
} from './support/fakeDify.js';

let fake: FakeDify;
const clients: DifyClient[] = [];

beforeAll(async () => {
  fake = await startFakeDify();
});
afterAll(async () => {
  await fake.stop();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  fake.requests.length = 0;
  fake.setDefault({ kind: 'answer' });
});

function client(opts: Partial<DifyClientOptions> = {}): DifyClient {
  const c = new DifyClient({
    apiUrl: fake.url,
    apiKey: 'app-test',
    appType: 'chat',
    timeoutMs: 1000,
    retry: { attempts: 3, baseMs: 5, maxMs: 20 },
    ...opts,
  });
  clients.push(c);
  return c;
}

const turn: DifyStreamRequest = { query: 'hello', user: 'u1' };

async function collect(stream: AsyncIterable<DifyEvent>): Promise<DifyEvent[]> {
  const events: DifyEvent[] = [];
  for await (const e of stream) events.push(e);
  return events;
}

async function failure(stream: AsyncIterable<DifyEvent>): Promise<{ error: DifyError; events: DifyEvent[] }> {
  const events: DifyEvent[] = [];
  try {
    for await (const e of stream) events.push(e);
  } catch (error) {
    expect(error).toBeInstanceOf(DifyError);
    return { error: error as DifyError, events };
  }
  throw new Error(`expected a DifyError, got ${JSON.stringify(events)}`);
}

/** The answer a client should show: the deltas folded with the replacements. */
function answerOf(events: DifyEvent[]): string {
  let text = '';
  for (const e of events) {
    if (e.type === 'delta') text += e.text;
    if (e.type === 'replace') text = e.text;
  }
  return text;
}

/** The expected answer of a capture, read independently: the delta fields of its data frames. */
function deltasIn(file: string, event: string): string {
  let text = '';
  for (const line of readFixture(file).toString('utf8').split('\n')) {
    if (!line.startsWith('data: ')) continue;
    const j = JSON.parse(line.slice(6)) as { event: string; answer?: string; data?: { text?: string } };
    if (j.event === event) text += j.answer ?? j.data?.text ?? '';
  }
  return text;
}

describe.skipIf(!fixturesAvailable)('replaying the captured streams (§11)', () => {
  const cases: Array<{ file: string; appType: 'chat' | 'workflow'; event: string; status?: string }> = [
    { file: 'real_chatflow_2026-04_orjson.sse', appType: 'chat', event: 'message', status: 'succeeded' },
    {
      file: 'real_workflow_run_2026-04_orjson.sse',
      appType: 'workflow',
      event: 'text_chunk',
      status: 'succeeded',
    },
    { file: 'real_agent_chat_2026-04_orjson.sse', appType: 'chat', event: 'agent_message' },
  ];

  for (const c of cases) {
    it(`${c.file}: the answer is the concatenated deltas, frame by frame and under 50 re-chunkings`, async () => {
      const expected = deltasIn(c.file, c.event);
      expect(expected.length).toBeGreaterThan(0);
      const dify = client({ appType: c.appType });
      for (let seed = 0; seed <= 50; seed++) {
        const shape: Scenario =
          seed === 0
            ? { kind: 'fixture', file: c.file }
            : {
                kind: 'fixture',
                file: c.file,
                chunking: 'random',
                seed,
                maxChunkBytes: 16 + (seed % 5) * 100,
              };
        fake.script(shape);
        const events = await collect(dify.stream(turn));
        expect(answerOf(events)).toBe(expected);
        expect(events[0]?.type).toBe('started');
        expect(events.filter((e) => e.type === 'started')).toHaveLength(1);
        const end = events.at(-1);
        expect(end).toMatchObject({ type: 'end', text: expected });
        // The chatflow's end comes from workflow_finished, after message_end (§5.1).
        if (c.status) expect(end).toMatchObject({ status: c.status });
      }
    });
  }

  it('the chatflow capture reports its ids at once, from workflow_started', async () => {
    fake.script({ kind: 'fixture', file: 'real_chatflow_2026-04_orjson.sse' });
    const [started] = await collect(client().stream(turn));
    expect(started).toEqual({
      type: 'started',
      conversationId: '5c788d53-3148-4a04-9b2d-47f1e5cc274c',
      messageId: 'd92e3d00-935c-46e7-bc33-4132729f35e2',
      taskId: '9d244c23-b6d2-4fb3-b9d1-1779e5fa965c',
      workflowRunId: 'a2d83893-4c10-4c9c-83db-1b79fe921dc6',
    });
  });

  it('the workflow capture matches its run outputs', async () => {
    fake.script({ kind: 'fixture', file: 'real_workflow_run_2026-04_orjson.sse' });
    const events = await collect(client({ appType: 'workflow' }).stream(turn));
    expect(answerOf(events)).toBe('你好👋！有什么可以帮助你的吗？');
  });

  it('legacy json.dumps frames (\\uXXXX escapes) decode, and their EOF without message_end is incomplete', async () => {
    for (let seed = 0; seed <= 50; seed++) {
      fake.script({
        kind: 'fixture',
        file: 'legacy_jsondumps_agent_frames.sse',
        chunking: seed ? 'random' : 'frame',
        seed,
      });
      const { error, events } = await failure(client().stream(turn));
      expect(answerOf(events)).toBe('来我将这\n');
      expect(error).toMatchObject({
        code: 'incomplete',
        kind: 'interrupted',
        partial: '来我将这\n',
        retryable: false,
      });
    }
  });
});

describe('generated streams of every app flavour', () => {
  const text = '你好👋！This answer has emoji 🎉 and CJK 文字 in it.';

  for (const flavour of ['chat', 'agent', 'new-agent', 'chatflow', 'workflow'] as const) {
    it(`${flavour}: the answer survives random chunking inside UTF-8 characters`, async () => {
      const dify = client({ appType: flavour === 'workflow' ? 'workflow' : 'chat' });
      for (let seed = 1; seed <= 10; seed++) {
        fake.script({ kind: 'answer', flavour, text, chunking: 'random', seed, maxChunkBytes: 5 });
        const events = await collect(dify.stream(turn));
        expect(answerOf(events)).toBe(text);
        expect(events.at(-1)).toMatchObject({ type: 'end', text });
      }
    });
  }

  it('several frames in one chunk and pings between frames change nothing', async () => {
    fake.script({ kind: 'answer', text, framesPerChunk: 4, pingBetweenFrames: true });
    expect(answerOf(await collect(client().stream(turn)))).toBe(text);
  });

  it('message_replace replaces the answer (§4.3)', async () => {
    fake.script({ kind: 'answer', text: 'something rude', replaceWith: '[moderated]' });
    const events = await collect(client().stream(turn));
    expect(events.at(-2)).toEqual({ type: 'replace', text: '[moderated]' });
    expect(events.at(-1)).toMatchObject({ type: 'end', text: '[moderated]' });
  });

  it('text_replace replaces a workflow answer', async () => {
    fake.script({ kind: 'answer', flavour: 'workflow', text: 'draft', replaceWith: 'final' });
    expect(answerOf(await collect(client({ appType: 'workflow' }).stream(turn)))).toBe('final');
  });

  it('a workflow that streams nothing answers from its outputs', async () => {
    fake.script({ kind: 'answer', flavour: 'workflow', text: 'only in outputs', outputsOnly: true });
    const events = await collect(client({ appType: 'workflow' }).stream(turn));
    expect(events.at(-1)).toMatchObject({ type: 'end', text: 'only in outputs', status: 'succeeded' });
  });

  it('a failed chatflow run is a typed failure (§5.1)', async () => {
    fake.script({
      kind: 'answer',
      flavour: 'chatflow',
      text: 'partial',
      workflowStatus: 'failed',
      workflowError: 'LLM boom',
    });
    const { error } = await failure(client().stream(turn));
    expect(error).toMatchObject({
      code: 'workflow_failed',
      kind: 'failed',
      message: 'LLM boom',
      phase: 'stream',
    });
  });
});

describe('liveness and timeouts (§8.1)', () => {
  it('a silence longer than the idle timeout survives when pings keep flowing', async () => {
    fake.script({
      kind: 'answer',
      text: 'slow but alive',
      pause: { afterFrames: 2, ms: 900 },
      pingEveryMs: 80,
    });
    const events = await collect(client({ timeoutMs: 300 }).stream(turn));
    expect(answerOf(events)).toBe('slow but alive');
  });

  it('gaps shorter than the idle timeout are fine without pings', async () => {
    fake.script({ kind: 'answer', text: 'steady', frameDelayMs: 100 });
    expect(answerOf(await collect(client({ timeoutMs: 400 }).stream(turn)))).toBe('steady');
  });

  it('no byte for longer than the idle timeout is a timeout, with the partial text', async () => {
    fake.script({ kind: 'answer', pieces: ['first ', 'second'], pause: { afterFrames: 1, ms: 1500 } });
    const { error, events } = await failure(client({ timeoutMs: 300 }).stream(turn));
    expect(answerOf(events)).toBe('first ');
    expect(error).toMatchObject({
      code: 'timeout',
      kind: 'timeout',
      phase: 'stream',
      partial: 'first ',
      retryable: false,
    });
    expect(fake.runs()).toHaveLength(1);
  });

  it('no response headers in time is a timeout, not retried (the run may have started, §6.4)', async () => {
    fake.script({ kind: 'hang' });
    const { error } = await failure(client({ timeoutMs: 300 }).stream(turn));
    expect(error).toMatchObject({ code: 'timeout', kind: 'timeout', retryable: false });
    expect(fake.runs()).toHaveLength(1);
  });

  it('headers and then silence is a timeout', async () => {
    fake.script({ kind: 'hang', headers: true });
    const { error } = await failure(client({ timeoutMs: 300 }).stream(turn));
    expect(error).toMatchObject({ code: 'timeout', kind: 'timeout', phase: 'stream' });
  });
});

describe('failures inside a started stream are never re-sent', () => {
  it('an error frame with HTTP 200 is a typed error (§6.1)', async () => {
    fake.script({ kind: 'answer', pieces: ['a', 'b', 'c', 'd'], failAfter: 2 });
    const { error, events } = await failure(client().stream(turn));
    expect(answerOf(events)).toBe('ab');
    expect(error).toMatchObject({
      code: 'invalid_param',
      status: 400,
      kind: 'failed',
      phase: 'stream',
      partial: 'ab',
    });
    expect(error.message).toBe('Extra data: line 1 column 208 (char 207)');
    expect(fake.runs()).toHaveLength(1);
  });

  it('an error frame with a 5xx-like code is still not retried', async () => {
    fake.script({
      kind: 'answer',
      pieces: ['a', 'b'],
      failAfter: 1,
      failWith: { code: 'internal_server_error', status: 500 },
    });
    const { error } = await failure(client().stream(turn));
    expect(error).toMatchObject({ code: 'internal_server_error', kind: 'server', retryable: false });
    expect(fake.runs()).toHaveLength(1);
  });

  it('EOF before a terminal event is incomplete, keeping the partial text and ids (§5.3)', async () => {
    fake.script({ kind: 'answer', pieces: ['one ', 'two ', 'three'], eofAfter: 2 });
    const { error, events } = await failure(client().stream(turn));
    expect(events[0]?.type).toBe('started');
    expect(error).toMatchObject({ code: 'incomplete', kind: 'interrupted', partial: 'one two ' });
    expect(error.ids?.taskId).toEqual(expect.any(String));
    expect(fake.runs()).toHaveLength(1);
  });

  it('a socket destroyed mid-stream is incomplete and not re-sent', async () => {
    fake.script({ kind: 'answer', pieces: ['one ', 'two ', 'three'], destroyAfter: 2 });
    const { error } = await failure(client().stream(turn));
    expect(error).toMatchObject({ code: 'incomplete', kind: 'interrupted', partial: 'one two ' });
    expect(fake.runs()).toHaveLength(1);
  });
});

describe('errors before the stream (§6.2, §6.4)', () => {
  it('429 too_many_requests is retried with backoff, then succeeds', async () => {
    fake.script([
      { kind: 'error', status: 429, code: 'too_many_requests' },
      { kind: 'error', status: 429, code: 'too_many_requests' },
      { kind: 'answer', text: 'finally' },
    ]);
    expect(answerOf(await collect(client().stream(turn)))).toBe('finally');
    expect(fake.runs()).toHaveLength(3);
  });

  it('429 too_many_requests past the attempts is rate_limited', async () => {
    fake.script(
      Array.from({ length: 3 }, (): Scenario => ({ kind: 'error', status: 429, code: 'too_many_requests' })),
    );
    const { error } = await failure(client().stream(turn));
    expect(error).toMatchObject({
      code: 'too_many_requests',
      status: 429,
      kind: 'rate_limited',
      retryable: true,
    });
    expect(fake.runs()).toHaveLength(3);
  });

  it('429 rate_limit_error (a plan quota) is not retried', async () => {
    fake.script({ kind: 'error', status: 429, code: 'rate_limit_error' });
    const { error } = await failure(client().stream(turn));
    expect(error).toMatchObject({ code: 'rate_limit_error', kind: 'quota', retryable: false });
    expect(fake.runs()).toHaveLength(1);
  });

  it('5xx is retried', async () => {
    fake.script([
      { kind: 'error', status: 500, code: 'internal_server_error' },
      { kind: 'answer', text: 'ok' },
    ]);
    expect(answerOf(await collect(client().stream(turn)))).toBe('ok');
    expect(fake.runs()).toHaveLength(2);
  });

  it('400 is not retried', async () => {
    fake.script({
      kind: 'error',
      status: 400,
      code: 'invalid_param',
      message: 'name is required in input form',
    });
    const { error } = await failure(client().stream(turn));
    expect(error).toMatchObject({
      code: 'invalid_param',
      status: 400,
      kind: 'misconfigured',
      retryable: false,
    });
    expect(error.message).toBe('name is required in input form');
    expect(fake.runs()).toHaveLength(1);
  });

  it('400 provider_quota_exceeded is quota', async () => {
    fake.script({ kind: 'error', status: 400, code: 'provider_quota_exceeded' });
    expect((await failure(client().stream(turn))).error).toMatchObject({ kind: 'quota', retryable: false });
  });

  it('401 is misconfigured and not retried', async () => {
    const guarded = await startFakeDify({ apiKey: 'app-right' });
    try {
      const dify = client({ apiUrl: guarded.url, apiKey: 'app-wrong' });
      const { error } = await failure(dify.stream(turn));
      expect(error).toMatchObject({
        code: 'unauthorized',
        status: 401,
        kind: 'misconfigured',
        retryable: false,
      });
      expect(guarded.runs()).toHaveLength(1);
      // The user-token mode: the request's bearer replaces the app key.
      const events = await collect(dify.stream({ ...turn, bearer: 'app-right' }));
      expect(events.at(-1)?.type).toBe('end');
    } finally {
      await guarded.stop();
    }
  });

  it('an HTML 502 from a proxy is a typed error with a snippet, retried as a 5xx (§6.3)', async () => {
    fake.script(Array.from({ length: 3 }, (): Scenario => ({ kind: 'html', status: 502 })));
    const { error } = await failure(client().stream(turn));
    expect(error).toMatchObject({ code: 'http_error', status: 502, kind: 'server', body: '502 Bad Gateway' });
    expect(error.message).toContain('502 Bad Gateway');
    expect(fake.runs()).toHaveLength(3);
  });

  it('an HTML 504 is a timeout', async () => {
    fake.script(
      Array.from(
        { length: 3 },
        (): Scenario => ({ kind: 'html', status: 504, html: '<h1>Gateway Timeout</h1>' }),
      ),
    );
    expect((await failure(client().stream(turn))).error).toMatchObject({
      code: 'http_error',
      kind: 'timeout',
    });
  });

  it('connection refused is unreachable and retried', async () => {
    const port = await freePort();
    const warnings: Array<Record<string, unknown>> = [];
    const logger = { debug() {}, info() {}, warn: (o: Record<string, unknown>) => warnings.push(o) };
    const dify = client({ apiUrl: `http://127.0.0.1:${port}/v1`, logger });
    const { error } = await failure(dify.stream(turn));
    expect(error).toMatchObject({
      code: 'unreachable',
      kind: 'unreachable',
      retryable: true,
      phase: 'request',
    });
    expect(warnings.filter((w) => w.attempt !== undefined)).toHaveLength(2);
  });

  it('a socket reset before any answer is unreachable and not retried (the POST may have landed)', async () => {
    fake.script({ kind: 'reset' });
    const { error } = await failure(client().stream(turn));
    expect(error).toMatchObject({ code: 'unreachable', kind: 'unreachable', retryable: false });
    expect(fake.runs()).toHaveLength(1);
  });
});

describe('conversations (§7)', () => {
  it('a new turn sends no conversation id, and the next turn continues the issued one', async () => {
    const dify = client();
    const first = await collect(dify.stream(turn));
    const started = first[0];
    if (started?.type !== 'started') throw new Error('no started event');
    const second = await collect(dify.stream({ ...turn, conversationId: started.conversationId }));
    expect(second[0]).toMatchObject({ type: 'started', conversationId: started.conversationId });
    const [a, b] = fake.runs();
    expect(a?.body).not.toHaveProperty('conversation_id');
    expect(b?.body).toMatchObject({ conversation_id: started.conversationId });
  });

  it('a stored id Dify does not know (404) is dropped and the turn is sent once more without it', async () => {
    const stale = '00000000-0000-4000-8000-000000000000';
    const events = await collect(client().stream({ ...turn, conversationId: stale }));
    expect(events[0]).toEqual({ type: 'conversation_reset', staleConversationId: stale });
    expect(events[1]).toMatchObject({ type: 'started', conversationId: expect.any(String) });
    expect(events[1]).not.toMatchObject({ conversationId: stale });
    const runs = fake.runs();
    expect(runs).toHaveLength(2);
    expect(runs[0]?.body).toMatchObject({ conversation_id: stale });
    expect(runs[1]?.body).not.toHaveProperty('conversation_id');
  });

  it('a conversation the fake forgot answers 404 and is reset', async () => {
    const dify = client();
    const [started] = await collect(dify.stream(turn));
    fake.forgetConversations();
    const conversationId = started?.type === 'started' ? started.conversationId : undefined;
    const events = await collect(dify.stream({ ...turn, conversationId }));
    expect(events[0]?.type).toBe('conversation_reset');
  });

  it('a 404 without a stored id is not retried', async () => {
    fake.script({ kind: 'error', status: 404, code: 'not_found', message: 'Workflow not found' });
    const { error } = await failure(client().stream(turn));
    expect(error).toMatchObject({ code: 'not_found', kind: 'not_found' });
    expect(fake.runs()).toHaveLength(1);
  });
});

describe('request bodies (§2)', () => {
  it('a chat turn posts /chat-messages with streaming mode, inputs and the key', async () => {
    await collect(client().stream({ query: 'q', user: 'alice', inputs: { dept: 'R&D' } }));
    const [req] = fake.runs();
    expect(req?.path).toBe('/v1/chat-messages');
    expect(req?.headers.authorization).toBe('Bearer app-test');
    expect(req?.headers.accept).toBe('text/event-stream');
    expect(req?.body).toEqual({
      inputs: { dept: 'R&D' },
      query: 'q',
      response_mode: 'streaming',
      user: 'alice',
      auto_generate_name: true,
    });
  });

  it('a workflow run puts the query into inputs under the configured variable', async () => {
    await collect(
      client({ appType: 'workflow', queryVariable: 'text' }).stream({
        query: 'q',
        user: 'bob',
        inputs: { a: '1' },
      }),
    );
    const [req] = fake.runs();
    expect(req?.path).toBe('/v1/workflows/run');
    expect(req?.body).toEqual({ inputs: { a: '1', text: 'q' }, response_mode: 'streaming', user: 'bob' });
  });

  it('files are passed through', async () => {
    const files = [
      { type: 'image' as const, transfer_method: 'remote_url' as const, url: 'https://x/y.png' },
    ];
    await collect(client().stream({ ...turn, files }));
    expect(fake.runs()[0]?.body).toMatchObject({ files });
  });
});

describe('stop, abort, feedback, info', () => {
  it('stop posts {user} to the chat task stop path, and the run ends normally (§2.3, §5.2)', async () => {
    fake.script({ kind: 'answer', text: 'a long answer that will be cut short by stop', frameDelayMs: 30 });
    const dify = client();
    const events: DifyEvent[] = [];
    for await (const e of dify.stream(turn)) {
      events.push(e);
      if (e.type === 'started' && e.taskId) await dify.stop(e.taskId, 'u1');
    }
    const started = events[0];
    const taskId = started?.type === 'started' ? started.taskId : undefined;
    const stop = fake.requests.find((r) => r.path.endsWith('/stop'));
    expect(stop).toMatchObject({
      method: 'POST',
      path: `/v1/chat-messages/${taskId}/stop`,
      body: { user: 'u1' },
    });
    expect(events.at(-1)?.type).toBe('end');
    expect(answerOf(events).length).toBeLessThan('a long answer that will be cut short by stop'.length);
  });

  it('a workflow stop goes to /workflows/tasks/:id/stop and ends with status stopped', async () => {
    fake.script({
      kind: 'answer',
      flavour: 'workflow',
      text: 'a long workflow answer to stop',
      frameDelayMs: 30,
    });
    const dify = client({ appType: 'workflow' });
    const events: DifyEvent[] = [];
    for await (const e of dify.stream(turn)) {
      events.push(e);
      if (e.type === 'started' && e.taskId) await dify.stop(e.taskId, 'u1', { bearer: 'user-token' });
    }
    const stop = fake.requests.find((r) => r.path.endsWith('/stop'));
    expect(stop?.path).toMatch(/^\/v1\/workflows\/tasks\/[^/]+\/stop$/);
    expect(stop?.headers.authorization).toBe('Bearer user-token');
    expect(events.at(-1)).toMatchObject({ type: 'end', status: 'stopped' });
  });

  it('a stop that Dify rejects is a typed error', async () => {
    fake.script(
      { kind: 'error', status: 400, code: 'not_chat_app', message: 'Please check if your app mode matches' },
      'stop',
    );
    await expect(client().stop('t1', 'u1')).rejects.toMatchObject({
      code: 'not_chat_app',
      kind: 'misconfigured',
    });
  });

  it('abort mid-stream ends with an aborted error and stops the run server-side (§10.6)', async () => {
    fake.script({ kind: 'answer', text: 'an answer that goes on and on and on', frameDelayMs: 30 });
    const controller = new AbortController();
    const events: DifyEvent[] = [];
    const dify = client();
    const error = await (async () => {
      try {
        for await (const e of dify.stream({ ...turn, signal: controller.signal })) {
          events.push(e);
          if (e.type === 'delta') controller.abort();
        }
      } catch (err) {
        return err;
      }
    })();
    expect(error).toMatchObject({ code: 'aborted', kind: 'aborted', partial: answerOf(events) });
    const started = events[0];
    const taskId = started?.type === 'started' ? started.taskId : '';
    await expect
      .poll(() => fake.requests.some((r) => r.path === `/v1/chat-messages/${taskId}/stop`))
      .toBe(true);
  });

  it('pushed: each event reaches the callback in order, and the promise settles after the end', async () => {
    fake.script({ kind: 'answer', text: 'pushed piece by piece', frameDelayMs: 5 });
    const events: DifyEvent[] = [];
    await client().answer(turn, (e) => {
      events.push(e);
    });
    expect(events[0]?.type).toBe('started');
    expect(events.at(-1)?.type).toBe('end');
    expect(answerOf(events)).toBe('pushed piece by piece');
  });

  it('pushed: returning false lets go at once, quietly, and stops the run server-side (§10.6)', async () => {
    fake.script({ kind: 'answer', text: 'an answer the caller has had enough of', frameDelayMs: 30 });
    const events: DifyEvent[] = [];
    await client().answer(turn, (e) => {
      events.push(e);
      return e.type !== 'delta';
    });
    expect(events.map((e) => e.type)).toEqual(['started', 'delta']);
    const started = events[0];
    const taskId = started?.type === 'started' ? started.taskId : '';
    await expect
      .poll(() => fake.requests.some((r) => r.path === `/v1/chat-messages/${taskId}/stop`))
      .toBe(true);
  });

  it('pushed: a callback that throws rejects with its own error, and the run is stopped', async () => {
    fake.script({ kind: 'answer', text: 'an answer whose reader breaks', frameDelayMs: 30 });
    const broken = new Error('the reader broke');
    let taskId = '';
    await expect(
      client().answer(turn, (e) => {
        if (e.type === 'started') taskId = e.taskId ?? '';
        if (e.type === 'delta') throw broken;
      }),
    ).rejects.toBe(broken);
    await expect
      .poll(() => fake.requests.some((r) => r.path === `/v1/chat-messages/${taskId}/stop`))
      .toBe(true);
  });

  it('pulled: leaving the loop early lets go and stops the run server-side', async () => {
    fake.script({ kind: 'answer', text: 'an answer read only to its first piece', frameDelayMs: 30 });
    let taskId = '';
    for await (const e of client().stream(turn)) {
      if (e.type === 'started') taskId = e.taskId ?? '';
      if (e.type === 'delta') break;
    }
    await expect
      .poll(() => fake.requests.some((r) => r.path === `/v1/chat-messages/${taskId}/stop`))
      .toBe(true);
  });

  it('abort while waiting for headers is aborted', async () => {
    fake.script({ kind: 'hang' });
    const controller = new AbortController();
    const failed = failure(client().stream({ ...turn, signal: controller.signal }));
    // The request is out and its headers never come.
    await expect.poll(() => fake.runs().length).toBe(1);
    controller.abort();
    const { error } = await failed;
    expect(error).toMatchObject({ code: 'aborted', kind: 'aborted' });
  });

  it('an already aborted signal sends nothing', async () => {
    const { error } = await failure(client().stream({ ...turn, signal: AbortSignal.abort() }));
    expect(error.code).toBe('aborted');
    expect(fake.runs()).toHaveLength(0);
  });

  it('feedback posts the rating, and null revokes', async () => {
    const dify = client();
    await dify.feedback('m1', 'like', 'u1', 'great');
    await dify.feedback('m1', null, 'u1');
    expect(fake.requests.map((r) => [r.path, r.body])).toEqual([
      ['/v1/messages/m1/feedbacks', { rating: 'like', user: 'u1', content: 'great' }],
      ['/v1/messages/m1/feedbacks', { rating: null, user: 'u1' }],
    ]);
  });

  it('info reads the app', async () => {
    await expect(client().info()).resolves.toMatchObject({ name: 'Fake Dify app', mode: 'advanced-chat' });
  });

  it('upload sends multipart with the user', async () => {
    const file = await client().upload(
      { data: new TextEncoder().encode('hello'), filename: 'a.txt', contentType: 'text/plain' },
      'u1',
    );
    expect(file).toMatchObject({ id: expect.any(String), name: 'a.txt' });
    expect(fake.requests[0]?.rawBody).toContain('name="user"');
  });
});

/** A port with nothing listening: bind, read, close. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('reading event streams in turns', () => {
  it('reads them in turns, over HTTP and HTTPS, and says so', () => {
    expect(client({ readPace: new ReadPace({ everyMs: 100 }) }).paceMs).toBe(100);
    expect(client().paceMs).toBe(150);
    expect(client({ apiUrl: 'https://dify.example.com/v1' }).paceMs).toBe(150);
  });

  it('reads them as they come through a proxy, or when told to', () => {
    expect(client({ proxy: { httpProxy: 'http://127.0.0.1:9' } }).paceMs).toBeUndefined();
    expect(client({ readPace: false }).paceMs).toBeUndefined();
  });

  it('hands on every piece of an answer read in turns, in order', async () => {
    const pieces = Array.from({ length: 120 }, (_, i) => `${i} `);
    fake.script({ kind: 'answer', pieces, frameDelayMs: 2 });
    const pace = new ReadPace({ everyMs: 80 });
    const events: DifyEvent[] = [];
    await client({ readPace: pace }).answer(turn, (event) => {
      events.push(event);
    });
    expect(events.map((e) => (e.type === 'delta' ? e.text : '')).join('')).toBe(pieces.join(''));
    expect(events.at(-1)?.type).toBe('end');
    // Its connection was read in turns.
    expect(pace.size).toBe(1);
  });
});
