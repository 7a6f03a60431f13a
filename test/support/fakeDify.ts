// A local stand-in for the Dify service API that speaks its real SSE protocol: it replays the captured
// streams in ../shared/fixtures/dify byte for byte, or generates chat, agent, New Agent, chatflow and
// workflow streams with the exact frame shapes of docs/protocol/dify.md §3–§4, and misbehaves on
// request (re-chunking inside UTF-8 characters, pings, pauses, error frames, EOF, resets, HTTP and
// HTML errors, hangs). It keeps Dify's conversation rules (§7) and records every request.
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep, setImmediate as tick } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { prng } from '../../src/machines/specification.js';

const fixturesDir = new URL('../../../shared/fixtures/dify/', import.meta.url);
/** False when the shared fixtures folder is absent: tests that replay fixtures skip with a message. */
export const fixturesAvailable = existsSync(fileURLToPath(fixturesDir));
/** The `.sse` captures, by file name. */
export const fixtureFiles: string[] = fixturesAvailable
  ? readdirSync(fileURLToPath(fixturesDir))
      .filter((f) => f.endsWith('.sse'))
      .sort()
  : [];

export function readFixture(name: string): Buffer {
  return readFileSync(fileURLToPath(new URL(name, fixturesDir)));
}

export interface RecordedRequest {
  method: string;
  /** The path without the query string, `/v1/…`. */
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body, or undefined when there was none or it was not JSON. */
  body: unknown;
  rawBody: string;
  /** The body's bytes, for binary uploads. */
  rawBytes: Buffer;
  at: number;
  /** How many writes of its answer's stream have gone out so far (run requests; 0 for others). */
  written: number;
}

/** Which request a scripted scenario answers. `run` = POST /chat-messages, /workflows/run, /completion-messages. */
export type Target =
  | 'run'
  | 'stop'
  | 'feedback'
  | 'info'
  | 'upload'
  | 'parameters'
  | 'suggested'
  | 'form'
  | 'events'
  | 'any';

export type Flavour = 'chat' | 'agent' | 'new-agent' | 'chatflow' | 'workflow';

/** How a stream goes over the wire. Frame counts include every frame of the source, pings too. */
export interface StreamShape {
  /** `frame`: each frame (or `framesPerChunk` frames) its own write; `random`: random byte slices; `whole`: one write. */
  chunking?: 'frame' | 'random' | 'whole';
  framesPerChunk?: number;
  /** For `random`: the PRNG seed and the largest slice. */
  seed?: number;
  maxChunkBytes?: number;
  /** For `random` (default true): force slices to end inside multi-byte UTF-8 characters. */
  splitUtf8?: boolean;
  /** Send `event: ping\n\n` on a timer, always between frames, never inside one. */
  pingEveryMs?: number;
  pingBetweenFrames?: boolean;
  /** Start with `event: ping` like newer workflow/chatflow streams. Default: true for those flavours. */
  leadingPing?: boolean;
  /** Wait after each write. */
  frameDelayMs?: number;
  /** A long silence after the given number of frames (pings continue if `pingEveryMs`). */
  pause?: { afterFrames: number; ms: number };
  /** After this many frames, send an `error` frame (§6.1) and close. */
  failAfter?: number;
  failWith?: { code?: string; status?: number; message?: string };
  /** After this many frames, end the body without a terminal event. */
  eofAfter?: number;
  /** After this many frames, destroy the socket. */
  destroyAfter?: number;
}

export interface AnswerOptions {
  /** The answer; split into small deltas unless `pieces` gives them. */
  text?: string;
  /** The answer made from the question: `{query}` in it is replaced by the query (wins over `text`). */
  echo?: string;
  pieces?: string[];
  /** Default: chat on /chat-messages, workflow on /workflows/run. */
  flavour?: Flavour;
  /** Send `message_replace` (`text_replace` for workflow) with this text before the end (§4.3). */
  replaceWith?: string;
  /** Chatflow/workflow run status; `failed` ends with workflow_finished(failed) (+ error for chatflow). */
  workflowStatus?: 'succeeded' | 'failed' | 'partial-succeeded';
  workflowError?: string;
  /** Workflow only: leave out text_chunk frames, so the answer is only in the outputs. */
  outputsOnly?: boolean;
  /**
   * Chatflow or workflow: after the text, pause on a human input form (`human_input_required`, then
   * `workflow_paused`, as Dify's docs show them). Answering the form (POST /form/human_input/:token)
   * and reading the run again (GET /workflow/:id/events) streams `resumeText`.
   */
  humanInput?: HumanInputOptions;
  /** Files of the answer: `message_file` frames (chat family) and the end frames' `files`. */
  files?: Array<{ type: 'image' | 'document'; url: string; filename?: string }>;
}

export interface HumanInputOptions {
  title?: string;
  content?: string;
  actions?: Array<{ id: string; title: string; button_style?: string }>;
  /** Seconds from now until the form expires. Default a day. Negative: expired already. */
  expiresInS?: number;
  /** The form is delivered by e-mail or the console only: no token the Service API can use. */
  noToken?: boolean;
  /** What the resumed run says. Default "{action} 已处理。", `{action}` the chosen button's title. */
  resumeText?: string;
  /** The resumed run reports the form timed out (`human_input_form_timeout`) before its text. */
  timedOut?: boolean;
  /** The resumed run pauses again on another form. */
  thenPause?: HumanInputOptions;
}

/** A form the fake paused a run on, until answered. */
export interface FakeForm {
  token: string;
  runId: string;
  user: string;
  flavour: Flavour;
  options: HumanInputOptions;
  expiresAt: number;
  /** The answer it took: action and inputs. */
  submitted?: { action: string; inputs: unknown; user: string };
  ids: Ids;
}

export type Scenario =
  | ({ kind: 'answer' } & AnswerOptions & StreamShape)
  | ({ kind: 'fixture'; file: string } & StreamShape)
  /** Frames as given: an object is sent as `data: <JSON>\n\n`, a string as is. */
  | ({ kind: 'frames'; frames: Array<string | Record<string, unknown>> } & StreamShape)
  /** An HTTP error with Dify's JSON envelope (§1.3, §6.2). */
  | { kind: 'error'; status: number; code: string; message?: string; headers?: Record<string, string> }
  /** A non-JSON error page (§6.3); default: nginx's 502. */
  | { kind: 'html'; status: number; html?: string }
  | { kind: 'json'; status?: number; body: unknown }
  /** Never answer, or send 200 event-stream headers and then nothing. */
  | { kind: 'hang'; headers?: boolean }
  /** Destroy the socket without any answer. */
  | { kind: 'reset' };

export interface FakeDifyOptions {
  /** When set, other bearers get 401 unauthorized. */
  apiKey?: string;
  /** GET /info `mode`. */
  mode?: string;
  /** GET /parameters' body when nothing is scripted. Default: an app with no opening statement. */
  parameters?: Record<string, unknown>;
  /** Answer 404 for conversation ids this fake did not issue (§7.2). Default true. */
  checkConversations?: boolean;
  /** GET /messages/:id/suggested's questions; unset: 400 "Suggested Questions Is Disabled." */
  suggested?: string[];
}

export interface FakeDify {
  /** The base URL, ending in /v1. */
  url: string;
  requests: RecordedRequest[];
  /** The recorded run requests only (chat-messages, workflows/run, completion-messages). */
  runs(): RecordedRequest[];
  /** Queue scenarios for the next requests of `on` (default `run`), in order. */
  script(next: Scenario | Scenario[], on?: Target): void;
  /** What a run request gets when nothing is scripted. */
  setDefault(scenario: Scenario): void;
  /** Conversation ids issued so far (and those seen in replayed fixtures). */
  conversations: Set<string>;
  forgetConversations(): void;
  /** Task ids of generated streams that are still being written. */
  activeTasks(): string[];
  /** The forms runs paused on, by token (answered ones keep their answer). */
  forms: Map<string, FakeForm>;
  /** Serve `body` at `path` (its query ignored), as Dify serves an answer's files (`/files/…`). */
  serve(path: string, body: Buffer, contentType?: string): void;
  stop(): Promise<void>;
}

const NGINX_502 =
  '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

const defaultMessages: Record<string, string> = {
  not_found: 'Conversation Not Exists.',
  too_many_requests:
    'Too many requests. Please try again later. The current maximum concurrent requests allowed for fake-app is 1.',
  unauthorized: 'Access token is invalid',
  internal_server_error: 'Internal Server Error, please contact support.',
  invalid_param: 'Invalid parameter.',
  rate_limit_error: 'Rate limit exceeded.',
};

const PING = 'event: ping\n\n';
const data = (obj: Record<string, unknown>): string => `data: ${JSON.stringify(obj)}\n\n`;

export { prng };

/**
 * Cut bytes at random places, 1..maxBytes long; with `splitUtf8`, also inside a few multi-byte
 * characters (after a lead byte), which is what breaks clients that decode chunk by chunk (§9.2).
 */
export function rechunk(bytes: Buffer, rand: () => number, maxBytes = 64, splitUtf8 = true): Buffer[] {
  const cuts = new Set<number>();
  for (let at = 0; at < bytes.length; ) {
    at += 1 + Math.floor(rand() * maxBytes);
    if (at < bytes.length) cuts.add(at);
  }
  if (splitUtf8) {
    let forced = 0;
    for (let i = 0; i < bytes.length && forced < 8; i++) {
      const b = bytes[i] ?? 0;
      if (b >= 0xc0 && rand() < 0.3) {
        cuts.add(i + 1);
        forced++;
      }
    }
  }
  const sorted = [...cuts].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const cut of sorted) {
    out.push(bytes.subarray(prev, cut));
    prev = cut;
  }
  out.push(bytes.subarray(prev));
  return out.filter((b) => b.length > 0);
}

/** Split a fixture into its frames, each keeping its `\n\n`; joined they are the file again. */
function splitFrames(text: string): string[] {
  const frames: string[] = [];
  let start = 0;
  for (let end = text.indexOf('\n\n'); end !== -1; end = text.indexOf('\n\n', start)) {
    frames.push(text.slice(start, end + 2));
    start = end + 2;
  }
  if (start < text.length) frames.push(text.slice(start));
  return frames;
}

/** Small deltas of 1–3 characters (code points, so emoji stay whole), like a real LLM stream. */
export function piecesOf(text: string): string[] {
  const chars = Array.from(text);
  const out: string[] = [];
  for (let i = 0, n = 1; i < chars.length; i += n, n = (n % 3) + 1) out.push(chars.slice(i, i + n).join(''));
  return out;
}

export interface Ids {
  conversationId: string;
  messageId: string;
  taskId: string;
  workflowRunId: string;
  createdAt: number;
}

/** A generated stream: its frames, and how it ends when stopped (§5.2: a normal end, status stopped). */
interface Plan {
  frames: string[];
  stopped?: () => string[];
  taskId?: string;
  errorIds: Record<string, unknown>;
  /** The form the run pauses on, to be kept until answered. */
  form?: FakeForm;
}

const defaultActions = [
  { id: 'approve', title: '同意', button_style: 'primary' },
  { id: 'reject', title: '拒绝', button_style: 'accent' },
];

/** The frames of a pause on a form (the docs' humanInputPause shape), and the form to keep. */
function pauseFrames(
  h: HumanInputOptions,
  flavour: Flavour,
  ids: Ids,
  user: string,
  frame: (event: string, d: Record<string, unknown>) => string,
): { frames: string[]; form: FakeForm } {
  const token = `tok_${randomUUID().replaceAll('-', '')}`;
  const expiresAt = Math.floor(Date.now() / 1000) + (h.expiresInS ?? 86_400);
  const actions = h.actions ?? defaultActions;
  const frames = [
    frame('human_input_required', {
      form_id: randomUUID(),
      form_token: h.noToken ? null : token,
      node_id: 'approval_node',
      node_title: h.title ?? '审批',
      form_content: h.content ?? '请审批这份草稿。',
      inputs: [{ type: 'paragraph', output_variable_name: 'comment', default: null }],
      actions,
      display_in_ui: false,
      resolved_default_values: { comment: '' },
      expiration_time: expiresAt,
    }),
    frame('workflow_paused', {
      workflow_run_id: ids.workflowRunId,
      paused_nodes: ['approval_node'],
      outputs: {},
      reasons: [{ type: 'human_input_required' }],
      status: 'paused',
      created_at: ids.createdAt,
      elapsed_time: 0.5,
      total_tokens: 0,
      total_steps: 2,
    }),
  ];
  return {
    frames,
    form: { token, runId: ids.workflowRunId, user, flavour, options: h, expiresAt: expiresAt * 1000, ids },
  };
}

const usage = {
  prompt_tokens: 16,
  prompt_unit_price: '0',
  prompt_price_unit: '0.001',
  prompt_price: '0',
  completion_tokens: 25,
  completion_unit_price: '0',
  completion_price_unit: '0.001',
  completion_price: '0',
  total_tokens: 41,
  total_price: '0',
  currency: 'USD',
  latency: 0.5,
  time_to_first_token: null,
  time_to_generate: null,
};

function answerPlan(o: AnswerOptions, flavour: Flavour, ids: Ids, query: string, user = ''): Plan {
  const text =
    o.echo?.replaceAll('{query}', query) ??
    o.text ??
    (o.pieces ? o.pieces.join('') : 'Hello from the fake Dify.');
  const pieces = o.pieces ?? piecesOf(text);
  const finalText = o.replaceWith ?? text;
  const status = o.workflowStatus ?? 'succeeded';
  // chat-family field order: event, conversation_id, message_id, created_at, then the event's own (§3.5).
  const chat = (event: string, rest: Record<string, unknown>) =>
    data({
      event,
      conversation_id: ids.conversationId,
      message_id: ids.messageId,
      created_at: ids.createdAt,
      task_id: ids.taskId,
      ...rest,
    });
  const endFiles = o.files?.map((f, i) => ({
    dify_model_identity: '__dify__file__',
    id: `file-${i + 1}`,
    tenant_id: 'fake',
    type: f.type,
    transfer_method: 'tool_file',
    remote_url: null,
    related_id: `file-${i + 1}`,
    filename: f.filename ?? null,
    extension: null,
    mime_type: null,
    size: -1,
    url: f.url,
  }));
  const messageEnd = () =>
    chat('message_end', {
      id: ids.messageId,
      metadata: { annotation_reply: null, retriever_resources: [], usage },
      files: endFiles ?? null,
    });
  const messageFiles = (o.files ?? []).map((f, i) =>
    chat('message_file', { id: `file-${i + 1}`, type: f.type, belongs_to: 'assistant', url: f.url }),
  );
  const errorIds = {
    conversation_id: ids.conversationId,
    message_id: ids.messageId,
    created_at: ids.createdAt,
  };
  const runData = (s: string, outputs: Record<string, unknown>) => ({
    id: ids.workflowRunId,
    workflow_id: 'fake-workflow',
    status: s,
    outputs,
    error: s === 'failed' ? (o.workflowError ?? 'Node LLM run failed: fake failure') : null,
    elapsed_time: 0.5,
    total_tokens: 41,
    total_steps: 3,
    created_by: { id: 'fake-end-user', user: 'fake' },
    created_at: ids.createdAt,
    finished_at: ids.createdAt + 1,
    exceptions_count: 0,
    files: [],
  });

  switch (flavour) {
    case 'chat': {
      const frames = [
        ...messageFiles,
        ...pieces.map((answer) => chat('message', { id: ids.messageId, answer })),
      ];
      if (o.replaceWith !== undefined)
        frames.push(chat('message_replace', { answer: o.replaceWith, reason: 'output_moderation' }));
      return {
        frames: [...frames, messageEnd()],
        stopped: () => [messageEnd()],
        taskId: ids.taskId,
        errorIds,
      };
    }
    case 'agent':
    case 'new-agent': {
      const thoughtId = randomUUID();
      const thought = (t: string) =>
        chat('agent_thought', {
          id: thoughtId,
          position: 1,
          thought: t,
          observation: '',
          tool: '',
          tool_labels: {},
          tool_input: '',
          message_files: [],
        });
      const frames = pieces.map((answer) => chat('agent_message', { id: ids.messageId, answer }));
      if (flavour === 'agent') {
        frames.unshift(thought(''));
        frames.push(chat('agent_message', { id: ids.messageId, answer: '' }), thought(finalText));
      } else {
        // New Agent repeats the full answer in one closing `message` (§4.3).
        frames.push(chat('message', { id: ids.messageId, answer: text }));
      }
      if (o.replaceWith !== undefined)
        frames.push(chat('message_replace', { answer: o.replaceWith, reason: 'output_moderation' }));
      return {
        frames: [...frames, messageEnd()],
        stopped: () => [messageEnd()],
        taskId: ids.taskId,
        errorIds,
      };
    }
    case 'chatflow': {
      const flow = (event: string, d: Record<string, unknown>) =>
        chat(event, { workflow_run_id: ids.workflowRunId, data: d });
      const node = { id: randomUUID(), node_id: 'llm', node_type: 'llm', title: 'LLM', index: 1 };
      const frames = [
        flow('workflow_started', {
          id: ids.workflowRunId,
          workflow_id: 'fake-workflow',
          inputs: { 'sys.query': query },
          created_at: ids.createdAt,
        }),
        flow('node_started', { ...node, predecessor_node_id: null, inputs: null, created_at: ids.createdAt }),
        ...pieces.map((answer) =>
          chat('message', { id: ids.messageId, answer, from_variable_selector: ['llm', 'text'] }),
        ),
      ];
      if (status === 'failed') {
        const error = o.workflowError ?? 'Node LLM run failed: fake failure';
        frames.push(
          flow('workflow_finished', runData('failed', {})),
          data({ event: 'error', ...errorIds, code: 'internal_server_error', status: 500, message: error }),
        );
        return { frames, taskId: ids.taskId, errorIds };
      }
      frames.push(flow('node_finished', { ...node, status: 'succeeded', outputs: { text } }));
      frames.push(...messageFiles);
      if (o.humanInput) {
        const paused = pauseFrames(o.humanInput, flavour, ids, user, flow);
        return { frames: [...frames, ...paused.frames], taskId: ids.taskId, errorIds, form: paused.form };
      }
      if (o.replaceWith !== undefined)
        frames.push(chat('message_replace', { answer: o.replaceWith, reason: 'output_moderation' }));
      const finished = (s: string) =>
        flow('workflow_finished', { ...runData(s, { answer: finalText }), files: endFiles ?? [] });
      return {
        frames: [...frames, messageEnd(), finished(status)],
        stopped: () => [messageEnd(), finished('stopped')],
        taskId: ids.taskId,
        errorIds,
      };
    }
    case 'workflow': {
      // workflow field order: event, workflow_run_id, task_id, data (§3.5).
      const wf = (event: string, d: Record<string, unknown>) =>
        data({ event, workflow_run_id: ids.workflowRunId, task_id: ids.taskId, data: d });
      const frames = [
        wf('workflow_started', {
          id: ids.workflowRunId,
          workflow_id: 'fake-workflow',
          inputs: { query },
          created_at: ids.createdAt,
        }),
      ];
      if (!o.outputsOnly)
        for (const t of pieces)
          frames.push(wf('text_chunk', { text: t, from_variable_selector: ['llm', 'text'] }));
      if (o.humanInput) {
        const paused = pauseFrames(o.humanInput, flavour, ids, user, wf);
        return {
          frames: [...frames, ...paused.frames],
          taskId: ids.taskId,
          errorIds: { workflow_run_id: ids.workflowRunId },
          form: paused.form,
        };
      }
      if (o.replaceWith !== undefined) frames.push(wf('text_replace', { text: o.replaceWith }));
      const finished = (s: string) =>
        wf('workflow_finished', {
          ...runData(s, s === 'failed' ? {} : { answer: finalText }),
          files: endFiles ?? [],
        });
      return {
        frames: [...frames, finished(status)],
        stopped: () => [finished('stopped')],
        taskId: ids.taskId,
        errorIds: { workflow_run_id: ids.workflowRunId },
      };
    }
  }
}

/** The ids an error frame should carry, and the conversation ids a replayed stream uses. */
function idsInFrames(frames: string[]): { errorIds: Record<string, unknown>; conversations: string[] } {
  const conversations = new Set<string>();
  let errorIds: Record<string, unknown> | undefined;
  for (const f of frames) {
    const line = f.split('\n').find((l) => l.startsWith('data:'));
    if (!line) continue;
    try {
      const j = JSON.parse(line.slice(5)) as Record<string, unknown>;
      if (typeof j.conversation_id === 'string') conversations.add(j.conversation_id);
      errorIds ??=
        typeof j.conversation_id === 'string'
          ? { conversation_id: j.conversation_id, message_id: j.message_id, created_at: j.created_at }
          : { workflow_run_id: j.workflow_run_id };
    } catch {
      // not JSON: nothing to learn
    }
  }
  return { errorIds: errorIds ?? {}, conversations: [...conversations] };
}

type Op = { t: 'write'; bytes: Buffer; boundary: boolean } | { t: 'pause'; ms: number };

/** Turn frames into writes and pauses as the shape says. */
function opsOf(frames: string[], shape: StreamShape): Op[] {
  const ops: Op[] = [];
  const pauseAt = shape.pause?.afterFrames;
  const segments: string[][] = [];
  if (pauseAt !== undefined && pauseAt < frames.length) {
    segments.push(frames.slice(0, pauseAt), frames.slice(pauseAt));
  } else segments.push(frames);
  segments.forEach((segment, index) => {
    if (index > 0 && shape.pause) ops.push({ t: 'pause', ms: shape.pause.ms });
    const mode = shape.chunking ?? 'frame';
    if (mode === 'random') {
      const rand = prng(shape.seed ?? 1);
      const bytes = Buffer.from(segment.join(''));
      const ends = new Set<number>();
      let offset = 0;
      for (const f of segment) {
        offset += Buffer.byteLength(f);
        ends.add(offset);
      }
      let at = 0;
      for (const piece of rechunk(bytes, rand, shape.maxChunkBytes ?? 64, shape.splitUtf8 ?? true)) {
        at += piece.length;
        ops.push({ t: 'write', bytes: piece, boundary: ends.has(at) });
      }
    } else if (mode === 'whole') {
      if (segment.length) ops.push({ t: 'write', bytes: Buffer.from(segment.join('')), boundary: true });
    } else {
      const n = Math.max(1, shape.framesPerChunk ?? 1);
      for (let i = 0; i < segment.length; i += n)
        ops.push({ t: 'write', bytes: Buffer.from(segment.slice(i, i + n).join('')), boundary: true });
    }
  });
  return ops;
}

export async function startFakeDify(options: FakeDifyOptions = {}): Promise<FakeDify> {
  const requests: RecordedRequest[] = [];
  const queue: Array<{ scenario: Scenario; on: Target }> = [];
  let defaultScenario: Scenario = { kind: 'answer' };
  const conversations = new Set<string>();
  const sockets = new Set<Socket>();
  const active = new Map<string, { stop(): void }>();
  const closing = new AbortController();
  // Every open stream listens for the fake's shutdown: many at once is normal, not a leak.
  setMaxListeners(0, closing.signal);
  const checkConversations = options.checkConversations ?? true;
  const forms = new Map<string, FakeForm>();
  const served = new Map<string, { body: Buffer; contentType: string }>();

  /** The rest of a run that paused on `form`, once answered (the docs' resumedRun shapes). */
  const resumedPlan = (form: FakeForm): Plan => {
    const { ids, options: h, flavour } = form;
    const chosen = form.submitted?.action ?? '';
    const title = (h.actions ?? defaultActions).find((a) => a.id === chosen)?.title ?? chosen;
    const text = (h.resumeText ?? '{action} 已处理。').replaceAll('{action}', title);
    const chatflow = flavour !== 'workflow';
    const frame = (event: string, d: Record<string, unknown>) =>
      chatflow
        ? data({
            event,
            task_id: ids.taskId,
            message_id: ids.messageId,
            conversation_id: ids.conversationId,
            created_at: ids.createdAt,
            workflow_run_id: ids.workflowRunId,
            data: d,
          })
        : data({ event, task_id: ids.taskId, workflow_run_id: ids.workflowRunId, data: d });
    const frames = [
      frame('human_input_form_filled', {
        node_id: 'approval_node',
        node_title: h.title ?? '审批',
        rendered_content: h.content ?? '请审批这份草稿。',
        action_id: chosen,
        action_text: title,
        submitted_data: form.submitted?.inputs ?? {},
      }),
    ];
    if (h.timedOut)
      frames.push(
        frame('human_input_form_timeout', {
          node_id: 'approval_node',
          node_title: h.title ?? '审批',
          expiration_time: form.expiresAt / 1000,
        }),
      );
    for (const piece of piecesOf(text))
      frames.push(
        chatflow
          ? data({
              event: 'message',
              conversation_id: ids.conversationId,
              message_id: ids.messageId,
              created_at: ids.createdAt,
              task_id: ids.taskId,
              id: ids.messageId,
              answer: piece,
            })
          : frame('text_chunk', { text: piece, from_variable_selector: ['llm', 'text'] }),
      );
    if (h.thenPause) {
      const again = { ...ids, workflowRunId: ids.workflowRunId };
      const paused = pauseFrames(h.thenPause, flavour, again, form.user, frame);
      forms.set(paused.form.token, paused.form);
      return { frames: [...frames, ...paused.frames], taskId: ids.taskId, errorIds: {} };
    }
    const finished = frame('workflow_finished', {
      id: ids.workflowRunId,
      workflow_id: 'fake-workflow',
      status: 'succeeded',
      outputs: { answer: text },
      elapsed_time: 2.1,
      total_tokens: 42,
      total_steps: 3,
      created_at: ids.createdAt,
      finished_at: ids.createdAt + 2,
    });
    const end = data({
      event: 'message_end',
      conversation_id: ids.conversationId,
      message_id: ids.messageId,
      created_at: ids.createdAt,
      task_id: ids.taskId,
      id: ids.messageId,
      metadata: { usage },
      files: null,
    });
    return { frames: [...frames, ...(chatflow ? [end] : []), finished], taskId: ids.taskId, errorIds: {} };
  };

  const take = (target: Exclude<Target, 'any'>): Scenario | undefined => {
    const i = queue.findIndex((q) => q.on === target || q.on === 'any');
    if (i === -1) return undefined;
    return queue.splice(i, 1)[0]?.scenario;
  };

  const sendJson = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  };
  const sendError = (res: ServerResponse, status: number, code: string, message?: string, headers = {}) => {
    const extra: Record<string, string> =
      status === 401 ? { 'www-authenticate': 'Bearer realm="api"', ...headers } : headers;
    sendJson(res, status, { code, message: message ?? defaultMessages[code] ?? code, status }, extra);
  };

  /** Answer with a non-stream scenario; returns false for stream scenarios. */
  const answerPlain = (req: IncomingMessage, res: ServerResponse, s: Scenario): boolean => {
    switch (s.kind) {
      case 'error':
        sendError(res, s.status, s.code, s.message, s.headers);
        return true;
      case 'html': {
        const html = s.html ?? NGINX_502;
        res.writeHead(s.status, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(html) });
        res.end(html);
        return true;
      }
      case 'json':
        sendJson(res, s.status ?? 200, s.body);
        return true;
      case 'hang':
        if (s.headers) {
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
          res.flushHeaders();
        }
        return true;
      case 'reset':
        req.socket.destroy();
        return true;
      default:
        return false;
    }
  };

  const writeStream = async (res: ServerResponse, plan: Plan, shape: StreamShape, rec: RecordedRequest) => {
    let frames = plan.frames;
    if (shape.leadingPing) frames = [PING, ...frames];
    let ending: 'end' | 'destroy' = 'end';
    if (shape.failAfter !== undefined) {
      const f = shape.failWith ?? {};
      frames = [
        ...frames.slice(0, shape.failAfter),
        data({
          event: 'error',
          ...plan.errorIds,
          code: f.code ?? 'invalid_param',
          status: f.status ?? 400,
          message: f.message ?? 'Extra data: line 1 column 208 (char 207)',
        }),
      ];
    } else if (shape.eofAfter !== undefined) frames = frames.slice(0, shape.eofAfter);
    else if (shape.destroyAfter !== undefined) {
      frames = frames.slice(0, shape.destroyAfter);
      ending = 'destroy';
    }
    if (shape.pingBetweenFrames) frames = frames.flatMap((f, i) => (i === 0 ? [f] : [PING, f]));

    const done = new AbortController();
    const stopWaiting = () => done.abort();
    res.on('close', stopWaiting);
    closing.signal.addEventListener('abort', stopWaiting, { once: true });
    let stopRequested = false;
    if (plan.taskId) active.set(plan.taskId, { stop: () => (stopRequested = true) });

    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    res.flushHeaders();
    res.socket?.setNoDelay(true);
    let atBoundary = true;
    const pinger =
      shape.pingEveryMs !== undefined
        ? setInterval(() => {
            if (atBoundary && !done.signal.aborted) res.write(PING);
          }, shape.pingEveryMs)
        : undefined;
    try {
      let ops = opsOf(frames, shape);
      let stopApplied = false;
      for (let i = 0; i < ops.length; i++) {
        if (done.signal.aborted) return;
        if (stopRequested && !stopApplied && atBoundary && plan.stopped) {
          // Dify ends a stopped run normally (§5.2).
          stopApplied = true;
          ops = [...ops.slice(0, i), ...opsOf(plan.stopped(), { chunking: 'frame' })];
        }
        const op = ops[i];
        if (!op) break;
        // Pauses and the pace between frames are the scenario's (how this Dify behaves), not waits.
        if (op.t === 'pause') {
          await sleep(op.ms, undefined, { signal: done.signal }).catch(() => undefined);
          continue;
        }
        res.write(op.bytes);
        rec.written++;
        atBoundary = op.boundary;
        if (shape.frameDelayMs)
          await sleep(shape.frameDelayMs, undefined, { signal: done.signal }).catch(() => {});
        else await tick();
      }
      if (done.signal.aborted) return;
      if (ending === 'destroy') res.destroy();
      else res.end();
    } finally {
      if (pinger) clearInterval(pinger);
      if (plan.taskId) active.delete(plan.taskId);
      res.off('close', stopWaiting);
      closing.signal.removeEventListener('abort', stopWaiting);
    }
  };

  const handleRun = async (
    req: IncomingMessage,
    res: ServerResponse,
    rec: RecordedRequest,
    workflow: boolean,
  ) => {
    const body = (typeof rec.body === 'object' && rec.body !== null ? rec.body : {}) as Record<
      string,
      unknown
    >;
    if (typeof body.user !== 'string' || body.user === '')
      return sendError(res, 400, 'invalid_param', 'Arg user must be provided.');
    const chat = rec.path === '/v1/chat-messages';
    if (chat && (typeof body.query !== 'string' || body.query.trim() === ''))
      return sendError(res, 400, 'invalid_param', 'query is required');
    const given = typeof body.conversation_id === 'string' ? body.conversation_id.trim() : '';
    if (chat && given !== '' && checkConversations && !conversations.has(given))
      return sendError(res, 404, 'not_found', 'Conversation Not Exists.');

    const scenario = take('run') ?? defaultScenario;
    if (answerPlain(req, res, scenario)) return;
    let plan: Plan;
    let shape: StreamShape = scenario as StreamShape;
    if (scenario.kind === 'answer') {
      const conversationId = given || randomUUID();
      const flavour = scenario.flavour ?? (workflow ? 'workflow' : 'chat');
      if (flavour !== 'workflow') conversations.add(conversationId);
      const ids: Ids = {
        conversationId,
        messageId: randomUUID(),
        taskId: randomUUID(),
        workflowRunId: randomUUID(),
        createdAt: Math.floor(Date.now() / 1000),
      };
      const inputs = (body.inputs ?? {}) as Record<string, unknown>;
      const query = typeof body.query === 'string' ? body.query : String(inputs.query ?? '');
      plan = answerPlan(scenario, flavour, ids, query, String(body.user));
      if (plan.form) forms.set(plan.form.token, plan.form);
      const workflowish = flavour === 'workflow' || flavour === 'chatflow';
      shape = { ...scenario, leadingPing: scenario.leadingPing ?? workflowish };
    } else if (scenario.kind === 'fixture') {
      const frames = splitFrames(readFixture(scenario.file).toString('utf8'));
      const found = idsInFrames(frames);
      for (const c of found.conversations) conversations.add(c);
      plan = { frames, errorIds: found.errorIds };
    } else if (scenario.kind === 'frames') {
      const frames = scenario.frames.map((f) => (typeof f === 'string' ? f : data(f)));
      const found = idsInFrames(frames);
      for (const c of found.conversations) conversations.add(c);
      plan = { frames, errorIds: found.errorIds };
    } else return;
    await writeStream(res, plan, shape, rec);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const rawBody = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    if (rawBody && (req.headers['content-type'] ?? '').includes('json')) {
      try {
        body = JSON.parse(rawBody);
      } catch {
        body = undefined;
      }
    }
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body,
      rawBody,
      rawBytes: Buffer.concat(chunks),
      at: Date.now(),
      written: 0,
    };
    requests.push(rec);

    // An answer's files are signed URLs: no key.
    const file = req.method === 'GET' ? served.get(url.pathname) : undefined;
    if (file) {
      res.writeHead(200, { 'content-type': file.contentType, 'content-length': file.body.length });
      res.end(file.body);
      return;
    }
    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`)
      return sendError(res, 401, 'unauthorized', 'Access token is invalid');

    const p = url.pathname;
    const post = req.method === 'POST';
    const plain = (target: Exclude<Target, 'any' | 'run'>, fallback: () => void) => {
      const s = take(target);
      if (s && answerPlain(req, res, s)) return;
      fallback();
    };
    if (post && (p === '/v1/chat-messages' || p === '/v1/completion-messages'))
      return handleRun(req, res, rec, false);
    if (post && p === '/v1/workflows/run') return handleRun(req, res, rec, true);
    const stop = /^\/v1\/(?:chat-messages|completion-messages|workflows\/tasks)\/([^/]+)\/stop$/.exec(p);
    if (post && stop)
      return plain('stop', () => {
        const user = (body as { user?: unknown } | undefined)?.user;
        if (typeof user !== 'string' || user === '')
          return sendError(res, 400, 'invalid_param', 'Arg user must be provided.');
        active.get(decodeURIComponent(stop[1] ?? ''))?.stop();
        sendJson(res, 200, { result: 'success' });
      });
    if (post && /^\/v1\/messages\/[^/]+\/feedbacks$/.test(p))
      return plain('feedback', () => sendJson(res, 200, { result: 'success' }));
    if (req.method === 'GET' && p === '/v1/info')
      return plain('info', () =>
        sendJson(res, 200, {
          name: 'Fake Dify app',
          description: 'a local stand-in',
          tags: [],
          mode: options.mode ?? 'advanced-chat',
          author_name: 'fake',
        }),
      );
    if (req.method === 'GET' && p === '/v1/parameters')
      return plain('parameters', () =>
        sendJson(
          res,
          200,
          options.parameters ?? { opening_statement: '', user_input_form: [], file_upload: {} },
        ),
      );
    const formPath = /^\/v1\/form\/human_input\/([^/]+)$/.exec(p);
    if (post && formPath)
      return plain('form', () => {
        const form = forms.get(decodeURIComponent(formPath[1] ?? ''));
        const b = (body ?? {}) as { action?: unknown; user?: unknown; inputs?: unknown };
        if (!form) return sendError(res, 404, 'not_found', 'Form not found');
        if (form.submitted)
          return sendError(
            res,
            412,
            'human_input_form_submitted',
            'This form has already been submitted by another user',
          );
        if (Date.now() > form.expiresAt)
          return sendError(res, 412, 'human_input_form_expired', 'This form has expired');
        const actions = form.options.actions ?? defaultActions;
        if (typeof b.action !== 'string' || !actions.some((a) => a.id === b.action))
          return sendError(res, 400, 'invalid_form_data', 'Invalid action');
        if (typeof b.user !== 'string' || b.user === '')
          return sendError(res, 400, 'invalid_param', 'user is required');
        form.submitted = { action: b.action, inputs: b.inputs ?? {}, user: b.user };
        sendJson(res, 200, {});
      });
    const events = /^\/v1\/workflow\/([^/]+)\/events$/.exec(p);
    if (req.method === 'GET' && events) {
      const scripted = take('events');
      if (scripted && answerPlain(req, res, scripted)) return;
      const runId = decodeURIComponent(events[1] ?? '');
      const form = [...forms.values()].reverse().find((f) => f.runId === runId && f.submitted);
      if (!form || form.user !== url.searchParams.get('user'))
        return sendError(res, 404, 'not_found', 'Workflow run not found');
      return writeStream(
        res,
        resumedPlan(form),
        scripted && scripted.kind !== 'answer' ? (scripted as StreamShape) : {},
        rec,
      );
    }
    const suggestedPath = /^\/v1\/messages\/[^/]+\/suggested$/.exec(p);
    if (req.method === 'GET' && suggestedPath)
      return plain('suggested', () =>
        options.suggested
          ? sendJson(res, 200, { result: 'success', data: options.suggested })
          : sendError(res, 400, 'bad_request', 'Suggested Questions Is Disabled.'),
      );
    if (post && p === '/v1/files/upload')
      return plain('upload', () => {
        const name = /filename="([^"]*)"/.exec(rawBody)?.[1] ?? 'file';
        sendJson(res, 201, {
          id: randomUUID(),
          name,
          size: chunks.reduce((n, c) => n + c.length, 0),
          extension: name.includes('.') ? name.split('.').pop() : null,
          mime_type: 'application/octet-stream',
          created_by: 'fake',
          created_at: Math.floor(Date.now() / 1000),
        });
      });
    sendError(res, 404, 'not_found', 'The requested URL was not found on the server.');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'internal_server_error', String(err));
      else res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    runs: () => requests.filter((r) => /\/(chat-messages|completion-messages|workflows\/run)$/.test(r.path)),
    script(next, on = 'run') {
      for (const scenario of Array.isArray(next) ? next : [next]) queue.push({ scenario, on });
    },
    setDefault(scenario) {
      defaultScenario = scenario;
    },
    conversations,
    forms,
    serve(path, body, contentType = 'image/png') {
      served.set(path, { body, contentType });
    },
    forgetConversations: () => conversations.clear(),
    activeTasks: () => [...active.keys()],
    async stop() {
      closing.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
