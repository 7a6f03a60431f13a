// Dify's human input and suggested questions, from the wire up: the published examples parsed and
// folded (a run pausing on a form, a resumed run, a form that timed out), then the client's resume
// (submit the form, read the rest of the run) and suggested questions against a small local server.
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DifyClient, type DifyResumeRequest } from '../src/dify/client.js';
import { DifyError, fromHttpResponse } from '../src/dify/errors.js';
import { AnswerFold, type DifyEvent, FORM_TIMEOUT_NOTE, PAUSED_NOTE } from '../src/dify/events.js';
import { type DifyForm, type DifyFrame, DifyFrameReader, parseFrame } from '../src/dify/sse.js';
import { failureOf } from '../src/runner/failures.js';
import { fixturesAvailable, readFixture } from './support/fakeDify.js';

const enc = new TextEncoder();

// ---- the wire ---------------------------------------------------------------------------------

/** A docs example's SSE body: its frames, joined by one space, as SSE bytes (`data: …\n\n` each). */
const sseOf = (example: string): string =>
  example
    .split(/(?=data: )/)
    .map((frame) => `${frame.trim()}\n\n`)
    .join('');

const sseOfFrames = (frames: Array<Record<string, unknown>>): string =>
  frames.map((f) => `data: ${JSON.stringify(f)}\n\n`).join('');

function readAll(sse: string, chunkBytes?: number): DifyFrame[] {
  const bytes = enc.encode(sse);
  const reader = new DifyFrameReader();
  const frames: DifyFrame[] = [];
  const step = chunkBytes ?? bytes.length;
  for (let i = 0; i < bytes.length; i += step) frames.push(...reader.push(bytes.subarray(i, i + step)));
  return [...frames, ...reader.end()];
}

function foldAll(frames: DifyFrame[], options?: { thinking?: 'show' | 'hide' }) {
  const fold = new AnswerFold(options);
  const events = frames.flatMap((frame) => (fold.done ? [] : fold.apply(frame)));
  if (!fold.done) events.push(...fold.eof());
  return { events, fold };
}

const textOf = (events: DifyEvent[]): string =>
  events.reduce((text, e) => (e.type === 'delta' ? text + e.text : e.type === 'replace' ? e.text : text), '');

// The ids of the docs examples.
const TASK = 'c3800678-a077-43df-a102-53f23ed20b88';
const RUN = 'fb47b2e6-5e43-4f90-be01-d5c5a088d156';
const MESSAGE = '2e4f6a8b-1c3d-5e7f-9a0b-2c4d6e8f0a1b';
const CONVERSATION = '9d3a2f1b-6c7d-4e8f-a0b1-c2d3e4f5a6b7';

/** The form of the docs examples, as the client reads it. */
const docsForm: DifyForm = {
  token: 'tok_abc123',
  title: 'Approval',
  content: 'Please review the draft.',
  actions: [{ id: 'approve', title: 'Approve', style: 'primary' }],
  defaults: { comment: '' },
  expiresAt: 1705494029 * 1000,
};

/** A `human_input_required` frame shaped as the docs' (docs/protocol/dify.md §4.9), with `data` fields overridden. */
const formFrame = (data: Record<string, unknown> = {}) => ({
  event: 'human_input_required',
  task_id: 't1',
  workflow_run_id: 'r1',
  data: {
    form_id: 'f1',
    form_token: 'tok_1',
    node_id: 'approval_node',
    node_title: 'Approval',
    form_content: 'Please review the draft.',
    inputs: [{ type: 'paragraph', output_variable_name: 'comment', default: null }],
    actions: [{ id: 'approve', title: 'Approve', button_style: 'primary' }],
    display_in_ui: false,
    resolved_default_values: { comment: '' },
    expiration_time: 1705494029,
    ...data,
  },
});
const paused = { event: 'workflow_paused', task_id: 't1', workflow_run_id: 'r1', data: { status: 'paused' } };
const text = (t: string) => ({
  event: 'text_chunk',
  task_id: 't1',
  workflow_run_id: 'r1',
  data: { text: t },
});
const finished = {
  event: 'workflow_finished',
  task_id: 't1',
  workflow_run_id: 'r1',
  data: { id: 'r1', status: 'succeeded', outputs: {} },
};

// ---- the docs examples ------------------------------------------------------------------------

const examples: Record<string, unknown> = fixturesAvailable
  ? (
      JSON.parse(readFixture('official_docs_examples.json').toString('utf8')) as {
        examples: Record<string, unknown>;
      }
    ).examples
  : {};
function example(key: string): string {
  const value = examples[key];
  if (typeof value !== 'string') throw new Error(`no SSE example named ${key}`);
  return value;
}
function envelope(key: string): string {
  const value = examples[key];
  if (typeof value !== 'object' || value === null) throw new Error(`no JSON example named ${key}`);
  return JSON.stringify(value);
}

describe.skipIf(!fixturesAvailable)("Dify's published examples of human input", () => {
  const pauses = [
    'POST /chat-messages 200 text/event-stream humanInputPause',
    'POST /workflows/run 200 text/event-stream humanInputPause',
    'POST /workflows/{workflow_id}/run 200 text/event-stream humanInputPause',
  ];

  it.each(pauses)('%s: the form is read whole', (key) => {
    const frames = readAll(sseOf(example(key)));
    expect(frames.map((f) => f.event)).toEqual([
      'workflow_started',
      'human_input_required',
      'workflow_paused',
    ]);
    expect(frames[1]).toMatchObject({ event: 'human_input_required', form: docsForm });
    expect(frames[1]?.ids).toMatchObject({ taskId: TASK, workflowRunId: RUN });
  });

  it.each(pauses)('%s: parseFrame reads each data payload as the reader does', (key) => {
    const payloads = example(key)
      .split(/(?=data: )/)
      .map((f) => f.trim().slice('data: '.length));
    expect(payloads.map((p) => parseFrame(p))).toEqual(readAll(sseOf(example(key))));
  });

  it.each(pauses)('%s: the fold pauses with the form, then ends (status paused)', (key) => {
    const { events, fold } = foldAll(readAll(sseOf(example(key))));
    expect(events.map((e) => e.type)).toEqual(['started', 'paused', 'end']);
    expect(events[1]).toEqual({ type: 'paused', form: docsForm, workflowRunId: RUN });
    expect(events[2]).toEqual({ type: 'end', text: '', status: 'paused' });
    expect(fold.done).toBe(true);
  });

  it('the chat pause carries the conversation and message ids', () => {
    const { events } = foldAll(readAll(sseOf(example(pauses[0] as string))));
    expect(events[0]).toEqual({
      type: 'started',
      conversationId: CONVERSATION,
      messageId: MESSAGE,
      taskId: TASK,
      workflowRunId: RUN,
    });
  });

  it.each([1, 7, 64])('re-chunked every %i bytes, the pause reads the same', (chunk) => {
    const sse = sseOf(example(pauses[0] as string));
    expect(readAll(sse, chunk)).toEqual(readAll(sse));
  });

  it('the resumed workflow: the choice is read, then the text and the end', () => {
    const frames = readAll(
      sseOf(example('GET /workflow/{workflow_run_id}/events 200 text/event-stream resumedRun')),
    );
    expect(frames[0]).toMatchObject({ event: 'human_input_form_filled', actionText: 'Approve' });
    const shown = foldAll(frames);
    expect(shown.events[0]).toEqual({ type: 'started', taskId: TASK, workflowRunId: RUN });
    expect(shown.events.some((e) => e.type === 'paused')).toBe(false);
    expect(shown.events.at(-1)).toEqual({
      type: 'end',
      text: '<think>Approved, now translating.</think>\nBonjour',
      status: 'succeeded',
      usage: { total_tokens: 42, total_steps: 2, elapsed_time: 2.1 },
    });
    expect(textOf(shown.events)).toBe('<think>Approved, now translating.</think>\nBonjour');
    const hidden = foldAll(frames, { thinking: 'hide' });
    expect(hidden.events.at(-1)).toMatchObject({ type: 'end', text: 'Bonjour', status: 'succeeded' });
  });

  it('the resumed chatflow: the message is the answer, and it ends', () => {
    const key = 'GET /workflow/{workflow_run_id}/events 200 text/event-stream resumedRunChatflow';
    const frames = readAll(sseOf(example(key)));
    expect(frames[0]).toMatchObject({ event: 'human_input_form_filled', actionText: 'Approve' });
    const shown = foldAll(frames);
    expect(shown.events[0]).toEqual({
      type: 'started',
      conversationId: CONVERSATION,
      messageId: MESSAGE,
      taskId: TASK,
      workflowRunId: RUN,
    });
    expect(shown.events.some((e) => e.type === 'paused')).toBe(false);
    expect(shown.events.at(-1)).toMatchObject({
      type: 'end',
      text: '<think>The reviewer approved the draft.</think>\nApproved',
      usage: { total_tokens: 42, latency: 1.3 },
    });
    expect(foldAll(frames, { thinking: 'hide' }).events.at(-1)).toMatchObject({
      type: 'end',
      text: 'Approved',
    });
  });

  it.each([
    ['POST /form/human_input/{form_token} 412 application/json human_input_form_expired', 412, 'form_closed'],
    [
      'POST /form/human_input/{form_token} 412 application/json human_input_form_submitted',
      412,
      'form_closed',
    ],
    ['POST /form/human_input/{form_token} 400 application/json invalid_form_data', 400, 'form_unanswerable'],
    ['POST /form/human_input/{form_token} 404 application/json not_found', 404, 'dify_error'],
  ])('%s: the failure the user is told', (key, status, failure) => {
    const error = fromHttpResponse(status, envelope(key));
    expect(error.status).toBe(status);
    expect(error.retryable).toBe(false);
    expect(failureOf(error).code).toBe(failure);
  });
});
if (!fixturesAvailable)
  console.warn('fixtures/dify not found next to the project: the docs examples of human input are skipped');

// ---- the fold, on frames made here ---------------------------------------------------------------

describe('human input frames', () => {
  it('a form: its fields read with fallbacks (title, action titles, defaults, no deadline)', () => {
    const frame = parseFrame(
      JSON.stringify(
        formFrame({
          node_title: null,
          form_content: null,
          actions: [{ id: 'ok' }, { id: 'no', title: '', button_style: null }],
          resolved_default_values: { a: 'x', n: 3, o: { k: 1 }, gone: null },
          expiration_time: null,
        }),
      ),
    );
    expect(frame).toEqual({
      event: 'human_input_required',
      ids: { taskId: 't1', workflowRunId: 'r1' },
      form: {
        token: 'tok_1',
        title: '',
        content: '',
        actions: [
          { id: 'ok', title: 'ok', style: undefined },
          { id: 'no', title: 'no', style: undefined },
        ],
        defaults: { a: 'x', n: '3', o: '{"k":1}' },
        expiresAt: undefined,
      },
    });
  });

  it('a form whose fields do not fit is another frame, not an error', () => {
    expect(parseFrame(JSON.stringify(formFrame({ actions: [{ id: '' }] })))).toMatchObject({
      event: 'other',
      name: 'human_input_required',
    });
    expect(parseFrame(JSON.stringify({ event: 'human_input_required', data: null }))).toMatchObject({
      event: 'other',
    });
  });

  it('the choice of a resumed run, with or without its text', () => {
    const filled = (data: unknown) => parseFrame(JSON.stringify({ event: 'human_input_form_filled', data }));
    expect(filled({ action_text: 'Approve' })).toMatchObject({ actionText: 'Approve' });
    expect(filled({})).toMatchObject({ event: 'human_input_form_filled', actionText: undefined });
    expect(filled(null)).toMatchObject({ event: 'human_input_form_filled', actionText: undefined });
  });

  it('a pause on an answerable form: the form, then the end; no note', () => {
    const { events } = foldAll(readAll(sseOfFrames([text('Draft ready.'), formFrame(), paused])));
    expect(events).toEqual([
      { type: 'started', taskId: 't1', workflowRunId: 'r1' },
      { type: 'delta', text: 'Draft ready.' },
      { type: 'paused', form: { ...docsForm, token: 'tok_1' }, workflowRunId: 'r1' },
      { type: 'end', text: 'Draft ready.', status: 'paused' },
    ]);
  });

  it('a form without a token (sent by e-mail, say): its text and PAUSED_NOTE, and no paused event', () => {
    const { events } = foldAll(readAll(sseOfFrames([formFrame({ form_token: null }), paused])));
    expect(events.some((e) => e.type === 'paused')).toBe(false);
    expect(events.slice(1)).toEqual([
      { type: 'delta', text: `Please review the draft.\n\n${PAUSED_NOTE}` },
      { type: 'end', text: `Please review the draft.\n\n${PAUSED_NOTE}`, status: 'paused' },
    ]);
  });

  it('after some text, the note follows a blank line', () => {
    const { events } = foldAll(readAll(sseOfFrames([text('Draft:'), formFrame({ form_token: '' }), paused])));
    expect(events.at(-1)).toEqual({
      type: 'end',
      text: `Draft:\n\nPlease review the draft.\n\n${PAUSED_NOTE}`,
      status: 'paused',
    });
  });

  it('a form with no buttons cannot be answered here either', () => {
    const { events } = foldAll(
      readAll(sseOfFrames([formFrame({ actions: [], form_content: '  ' }), paused])),
    );
    expect(events.some((e) => e.type === 'paused')).toBe(false);
    expect(events.at(-1)).toEqual({ type: 'end', text: PAUSED_NOTE, status: 'paused' });
  });

  it('a pause with no form read (or one that did not parse): the note alone', () => {
    for (const frames of [[paused], [formFrame({ actions: 'none' }), paused]]) {
      const { events } = foldAll(readAll(sseOfFrames(frames)));
      expect(events.some((e) => e.type === 'paused')).toBe(false);
      expect(events.at(-1)).toEqual({ type: 'end', text: PAUSED_NOTE, status: 'paused' });
    }
  });

  it('a form that timed out: the note, then the rest of the run', () => {
    const timeout = { event: 'human_input_form_timeout', task_id: 't1', workflow_run_id: 'r1', data: {} };
    const { events } = foldAll(readAll(sseOfFrames([timeout, text('Rejected by default.'), finished])));
    expect(events.slice(1)).toEqual([
      { type: 'delta', text: `${FORM_TIMEOUT_NOTE}\n\n` },
      { type: 'delta', text: 'Rejected by default.' },
      { type: 'end', text: `${FORM_TIMEOUT_NOTE}\n\nRejected by default.`, status: 'succeeded' },
    ]);
  });

  it('a timeout after some text: the note after a blank line', () => {
    const timeout = { event: 'human_input_form_timeout', task_id: 't1', data: {} };
    const { events } = foldAll(readAll(sseOfFrames([text('Waiting…'), timeout, finished])));
    expect(textOf(events)).toBe(`Waiting…\n\n${FORM_TIMEOUT_NOTE}\n\n`);
  });

  it('a thinking block open at the pause is closed before the end', () => {
    const reasoning = { event: 'reasoning_chunk', task_id: 't1', data: { reasoning: 'hmm' } };
    const { events } = foldAll(readAll(sseOfFrames([reasoning, formFrame(), paused])));
    expect(events.map((e) => e.type)).toEqual(['started', 'delta', 'delta', 'paused', 'end']);
    expect(events.at(-1)).toEqual({ type: 'end', text: '<think>hmm</think>', status: 'paused' });
  });
});

// ---- the client, against a local server ----------------------------------------------------------

interface Seen {
  method: string;
  /** The path as sent, percent-encoding kept, without the query. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
}
type Route = (req: Seen, res: ServerResponse) => void;

let server: Server;
let apiUrl: string;
const seen: Seen[] = [];
let route: Route = (_req, res) => json(res, 500, { code: 'unknown', message: 'no route' });
const clients: DifyClient[] = [];

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
function sse(res: ServerResponse, body: string): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }).end(body);
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://local');
      const r: Seen = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(r);
      route(r, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(clients.splice(0).map((c) => c.close()));
  seen.length = 0;
  route = (_req, res) => json(res, 500, { code: 'unknown', message: 'no route' });
});

function client(retry = { attempts: 1, baseMs: 1, maxMs: 1 }): DifyClient {
  const c = new DifyClient({
    apiUrl,
    apiKey: 'app-test',
    appType: 'chat',
    timeoutMs: 5000,
    retry,
  });
  clients.push(c);
  return c;
}

const resumedFrames = [
  {
    event: 'human_input_form_filled',
    task_id: 't2',
    message_id: 'm2',
    conversation_id: 'c1',
    workflow_run_id: RUN,
    data: { action_id: 'approve', action_text: 'Approve' },
  },
  { event: 'message', task_id: 't2', message_id: 'm2', conversation_id: 'c1', answer: 'Appro' },
  { event: 'message', task_id: 't2', message_id: 'm2', conversation_id: 'c1', answer: 'ved' },
  {
    event: 'message_end',
    task_id: 't2',
    message_id: 'm2',
    conversation_id: 'c1',
    metadata: { usage: { total_tokens: 5 } },
  },
];

const resumeReq: DifyResumeRequest = {
  formToken: 'tok_abc123',
  action: 'approve',
  inputs: { comment: 'Looks good.' },
  workflowRunId: RUN,
  user: 'wecom:张三',
};

/** The routes of a resume: the submit answers `submit`, the events route `events`. */
function resumeRoutes(
  submit: (res: ServerResponse) => void = (res) => json(res, 200, {}),
  events: (res: ServerResponse) => void = (res) => sse(res, sseOfFrames(resumedFrames)),
): Route {
  return (req, res) => {
    if (req.method === 'POST' && req.path.startsWith('/v1/form/human_input/')) submit(res);
    else if (req.method === 'GET' && /^\/v1\/workflow\/[^/]+\/events$/.test(req.path)) events(res);
    else if (req.method === 'POST' && /\/stop$/.test(req.path)) json(res, 200, { result: 'success' });
    else json(res, 404, { code: 'not_found', message: `no route ${req.method} ${req.path}` });
  };
}

async function failureOfCall(call: Promise<unknown>): Promise<DifyError> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(DifyError);
    return error as DifyError;
  }
  throw new Error('expected a DifyError');
}

describe('DifyClient.resume', () => {
  it('submits the form with the action and the inputs, then reads the run: its events handed on', async () => {
    route = resumeRoutes();
    const events: DifyEvent[] = [];
    await client().resume(resumeReq, (e) => void events.push(e));
    expect(events).toEqual([
      { type: 'started', taskId: 't2', workflowRunId: RUN, messageId: 'm2', conversationId: 'c1' },
      { type: 'delta', text: 'Appro' },
      { type: 'delta', text: 'ved' },
      { type: 'end', text: 'Approved', usage: { total_tokens: 5 } },
    ]);
    expect(seen.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /v1/form/human_input/tok_abc123',
      `GET /v1/workflow/${RUN}/events`,
    ]);
    const [submit, read] = seen as [Seen, Seen];
    expect(JSON.parse(submit.body)).toEqual({
      inputs: { comment: 'Looks good.' },
      action: 'approve',
      user: 'wecom:张三',
    });
    expect(submit.headers['content-type']).toBe('application/json');
    expect(submit.headers.authorization).toBe('Bearer app-test');
    expect([...submit.query.keys()]).toEqual([]);
    expect(read.query.get('user')).toBe('wecom:张三');
    expect([...read.query.keys()]).toEqual(['user']);
    expect(read.headers.accept).toBe('text/event-stream');
    expect(read.headers.authorization).toBe('Bearer app-test');
    expect(read.body).toBe('');
  });

  it('no inputs: an empty object is submitted; a bearer overrides the app key on both calls', async () => {
    route = resumeRoutes();
    const { inputs: _, ...noInputs } = resumeReq;
    await client().resume({ ...noInputs, bearer: 'user-token' }, () => {});
    expect(JSON.parse(seen[0]?.body ?? '')).toEqual({ inputs: {}, action: 'approve', user: 'wecom:张三' });
    expect(seen.map((r) => r.headers.authorization)).toEqual(['Bearer user-token', 'Bearer user-token']);
  });

  it('the token and the run id are escaped into the path', async () => {
    route = resumeRoutes();
    await client().resume({ ...resumeReq, formToken: 'a/b c?', workflowRunId: 'r/1' }, () => {});
    expect(seen.map((r) => r.path)).toEqual([
      '/v1/form/human_input/a%2Fb%20c%3F',
      '/v1/workflow/r%2F1/events',
    ]);
  });

  it('a resumed workflow, served: its text and its end', async () => {
    route = resumeRoutes(undefined, (res) =>
      sse(
        res,
        sseOfFrames([
          resumedFrames[0] as Record<string, unknown>,
          text('Bonjour'),
          { ...finished, data: { ...finished.data, total_tokens: 42 } },
        ]),
      ),
    );
    const events: DifyEvent[] = [];
    await client().resume(resumeReq, (e) => void events.push(e));
    expect(events.at(-1)).toEqual({
      type: 'end',
      text: 'Bonjour',
      status: 'succeeded',
      usage: { total_tokens: 42 },
    });
  });

  it('a resumed run that pauses again hands on the next form', async () => {
    route = resumeRoutes(undefined, (res) =>
      sse(
        res,
        sseOfFrames([text('Step 2.'), formFrame({ form_token: 'tok_2', node_title: 'Second' }), paused]),
      ),
    );
    const events: DifyEvent[] = [];
    await client().resume(resumeReq, (e) => void events.push(e));
    expect(events.slice(-2)).toEqual([
      { type: 'paused', form: { ...docsForm, token: 'tok_2', title: 'Second' }, workflowRunId: 'r1' },
      { type: 'end', text: 'Step 2.', status: 'paused' },
    ]);
  });

  it('a form past its deadline: the 412 rejects with its code, the run is not read, and the user is told form_closed', async () => {
    route = resumeRoutes((res) =>
      json(res, 412, {
        status: 412,
        code: 'human_input_form_expired',
        message: 'This form has expired, form_id=a1b2c3d4-e5f6-7890-abcd-ef1234567890',
      }),
    );
    const events: DifyEvent[] = [];
    const error = await failureOfCall(client().resume(resumeReq, (e) => void events.push(e)));
    expect(error.code).toBe('human_input_form_expired');
    expect(error.status).toBe(412);
    expect(error.kind).toBe('failed');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('This form has expired');
    expect(error.known).toBe(true);
    expect(failureOf(error)).toEqual({ code: 'form_closed', message: error.message });
    expect(events).toEqual([]);
    expect(seen.map((r) => r.method)).toEqual(['POST']);
  });

  it('a form answered already (412 submitted) is form_closed too; invalid_form_data is form_unanswerable', async () => {
    route = resumeRoutes((res) =>
      json(res, 412, { status: 412, code: 'human_input_form_submitted', message: 'already submitted' }),
    );
    const submitted = await failureOfCall(client().resume(resumeReq, () => {}));
    expect(failureOf(submitted).code).toBe('form_closed');
    route = resumeRoutes((res) =>
      json(res, 400, {
        status: 400,
        code: 'invalid_form_data',
        message: 'Missing required inputs: feedback',
      }),
    );
    const invalid = await failureOfCall(client().resume(resumeReq, () => {}));
    expect(invalid.code).toBe('invalid_form_data');
    expect(failureOf(invalid).code).toBe('form_unanswerable');
  });

  it('answering again after a takeover: a form found answered already is read on, not refused', async () => {
    route = resumeRoutes((res) =>
      json(res, 412, { status: 412, code: 'human_input_form_submitted', message: 'already submitted' }),
    );
    const events: DifyEvent[] = [];
    await client().resume({ ...resumeReq, again: true }, (e) => void events.push(e));
    expect(events.at(-1)).toEqual({ type: 'end', text: 'Approved', usage: { total_tokens: 5 } });
  });

  it('a 502 may have been taken: sent again, and "answered already" then means it was', async () => {
    let tries = 0;
    route = resumeRoutes((res) => {
      tries++;
      if (tries === 1) json(res, 502, { status: 502, code: 'bad_gateway', message: 'upstream' });
      else json(res, 412, { status: 412, code: 'human_input_form_submitted', message: 'already submitted' });
    });
    const events: DifyEvent[] = [];
    await client({ attempts: 3, baseMs: 1, maxMs: 1 }).resume(resumeReq, (e) => void events.push(e));
    expect(tries).toBe(2);
    expect(events.at(-1)).toMatchObject({ type: 'end', text: 'Approved' });
  });

  it('a Dify that keeps failing is tried three times, then the failure is the answer’s', async () => {
    route = resumeRoutes((res) => json(res, 502, { status: 502, code: 'bad_gateway', message: 'upstream' }));
    const error = await failureOfCall(
      client({ attempts: 3, baseMs: 1, maxMs: 1 }).resume(resumeReq, () => {}),
    );
    expect(error.status).toBe(502);
    expect(seen.filter((r) => r.path.startsWith('/v1/form/'))).toHaveLength(3);
  });

  it("a run the events route does not know rejects with Dify's not_found", async () => {
    route = resumeRoutes(undefined, (res) =>
      json(res, 404, { status: 404, code: 'not_found', message: 'Workflow run not found' }),
    );
    const error = await failureOfCall(client().resume(resumeReq, () => {}));
    expect(error.code).toBe('not_found');
    expect(seen.map((r) => r.method)).toEqual(['POST', 'GET']);
  });

  it('an events answer that is not a stream is an error', async () => {
    route = resumeRoutes(undefined, (res) => json(res, 200, { result: 'success' }));
    const error = await failureOfCall(client().resume(resumeReq, () => {}));
    expect(error.status).toBe(200);
  });

  it('letting go of the resumed answer stops its task', async () => {
    let stopped!: (req: Seen) => void;
    const stop = new Promise<Seen>((resolve) => {
      stopped = resolve;
    });
    const base = resumeRoutes();
    route = (req, res) => {
      if (req.path.endsWith('/stop')) stopped(req);
      base(req, res);
    };
    const events: DifyEvent[] = [];
    await client().resume(resumeReq, (e) => {
      events.push(e);
      return e.type !== 'delta';
    });
    expect(events.map((e) => e.type)).toEqual(['started', 'delta']);
    const stopReq = await stop;
    expect(stopReq.path).toBe('/v1/chat-messages/t2/stop');
    expect(JSON.parse(stopReq.body)).toEqual({ user: 'wecom:张三' });
  });
});

describe('DifyClient.suggested', () => {
  const asked = () => seen.filter((r) => r.path.endsWith('/suggested'));

  it('asks for the message, as the user, and gives the questions', async () => {
    route = (_req, res) =>
      json(res, 200, {
        result: 'success',
        data: ['What colors does it come in?', '  How is the battery?  ', '', '   ', 42, null, 'Price?'],
      });
    expect(await client().suggested('m-1', 'wecom:张三')).toEqual([
      'What colors does it come in?',
      'How is the battery?',
      'Price?',
    ]);
    expect(seen).toHaveLength(1);
    const [req] = seen as [Seen];
    expect(req.method).toBe('GET');
    expect(req.path).toBe('/v1/messages/m-1/suggested');
    expect(req.query.get('user')).toBe('wecom:张三');
    expect(req.headers.authorization).toBe('Bearer app-test');
    expect(req.body).toBe('');
  });

  it('a 400 for a user’s own token mutes nobody: the next call is asked', async () => {
    route = (_req, res) =>
      json(res, 400, { code: 'bad_request', message: 'Suggested Questions Is Disabled.', status: 400 });
    const c = client();
    expect(await c.suggested('m-1', 'u1', { bearer: 'user-token' })).toEqual([]);
    expect(await c.suggested('m-2', 'u1', { bearer: 'user-token' })).toEqual([]);
    expect(asked()).toHaveLength(2);
  });

  it('a bearer overrides the app key; the message id is escaped', async () => {
    route = (_req, res) => json(res, 200, { result: 'success', data: [] });
    await client().suggested('m/1', 'u1', { bearer: 'user-token' });
    expect(seen[0]?.path).toBe('/v1/messages/m%2F1/suggested');
    expect(seen[0]?.headers.authorization).toBe('Bearer user-token');
  });

  it('an answer without a list of questions gives none', async () => {
    for (const body of [{ result: 'success' }, { data: 'nope' }, {}]) {
      route = (_req, res) => json(res, 200, body);
      expect(await client().suggested('m-1', 'u1')).toEqual([]);
    }
  });

  it.each([
    [400, { status: 400, code: 'bad_request', message: 'Suggested Questions Is Disabled.' }],
    [
      400,
      {
        status: 400,
        code: 'not_chat_app',
        message: 'Please check if your app mode matches the right API route.',
      },
    ],
    [404, { status: 404, code: 'not_found', message: 'Message Not Exists.' }],
  ])('%i (%o): none, and the app is not asked again for ten minutes', async (status, body) => {
    route = (_req, res) => json(res, status, body);
    const start = Date.now();
    const now = vi.spyOn(Date, 'now');
    now.mockReturnValue(start);
    const c = client();
    expect(await c.suggested('m-1', 'u1')).toEqual([]);
    expect(asked()).toHaveLength(1);
    expect(await c.suggested('m-2', 'u2')).toEqual([]);
    now.mockReturnValue(start + 599_999);
    expect(await c.suggested('m-3', 'u1')).toEqual([]);
    expect(asked()).toHaveLength(1);
    // Ten minutes on, it is asked again; the app now answers.
    route = (_req, res) => json(res, 200, { result: 'success', data: ['Again?'] });
    now.mockReturnValue(start + 600_000);
    expect(await c.suggested('m-4', 'u1')).toEqual(['Again?']);
    expect(asked()).toHaveLength(2);
  });

  it('another client is not held back by the first one', async () => {
    route = (_req, res) => json(res, 400, { status: 400, code: 'bad_request', message: 'disabled' });
    expect(await client().suggested('m-1', 'u1')).toEqual([]);
    route = (_req, res) => json(res, 200, { result: 'success', data: ['Yes?'] });
    expect(await client().suggested('m-1', 'u1')).toEqual(['Yes?']);
    expect(asked()).toHaveLength(2);
  });

  it('a server error rejects, and the app is asked again next time', async () => {
    route = (_req, res) =>
      json(res, 500, {
        status: 500,
        code: 'internal_server_error',
        message: 'The server encountered an error.',
      });
    const c = client();
    const error = await failureOfCall(c.suggested('m-1', 'u1'));
    expect(error.status).toBe(500);
    route = (_req, res) => json(res, 200, { result: 'success', data: ['Now?'] });
    expect(await c.suggested('m-1', 'u1')).toEqual(['Now?']);
    expect(asked()).toHaveLength(2);
  });
});
