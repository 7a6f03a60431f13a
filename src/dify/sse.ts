// Dify's SSE wire format turned into typed frames: bytes → SSE events (read on bytes, no streaming
// text decoder) → JSON → one `DifyFrame` per data frame. Protocol notes: docs/protocol/dify.md §3, §4, §9.
import { z } from 'zod';
import type { DifyIds } from './errors.js';

/**
 * `node_finished` frames can carry whole HTTP bodies and prompts (§9.2), so the bound is generous:
 * a frame this large is not a Dify frame any more.
 */
const MAX_FRAME_BYTES = 32 * 1024 * 1024;

type Usage = Record<string, unknown>;

/** A file Dify attaches to an answer: where it is (signed, expiring; relative on some servers) and what. */
export interface DifyFile {
  id?: string | undefined;
  /** image, document, audio, video, custom. */
  type: string;
  url: string;
  name?: string | undefined;
}

/**
 * A form a workflow paused on, waiting for a person (`human_input_required`): its buttons, the defaults
 * of its fields, and the token the Service API submits it with (none when the node delivers the form by
 * e-mail or in Dify's console only: then it cannot be answered from here).
 */
export interface DifyForm {
  token?: string | undefined;
  /** The human input node's title. */
  title: string;
  /** The form's text, with the workflow's variables filled in (markdown). */
  content: string;
  actions: Array<{ id: string; title: string; style?: string | undefined }>;
  /** The fields' defaults, by output variable: what a click submits (a button fills no field). */
  defaults: Record<string, string>;
  /** When the form stops taking answers (ms since the epoch). */
  expiresAt?: number | undefined;
}

/** What the client acts on. Every other Dify event arrives as `other`. */
export type DifyFrameBody =
  | { event: 'message'; answer: string }
  | { event: 'agent_message'; answer: string }
  | { event: 'message_replace'; answer: string }
  | { event: 'text_chunk'; text: string }
  | { event: 'text_replace'; text: string }
  | { event: 'message_end'; usage?: Usage | undefined; files?: DifyFile[] | undefined }
  | { event: 'workflow_started' }
  | {
      event: 'workflow_finished';
      status: string;
      error?: string | undefined;
      outputs?: Record<string, unknown> | undefined;
      usage?: Usage | undefined;
      files?: DifyFile[] | undefined;
    }
  /** A file of the answer (an image a tool drew, a chart): `belongsTo` user files are the question's. */
  | { event: 'message_file'; file: DifyFile; belongsTo?: string | undefined }
  | { event: 'workflow_paused' }
  /** The run waits for a person to answer this form; `workflow_paused` follows (§4.9). */
  | { event: 'human_input_required'; form: DifyForm }
  /** A resumed run: the form was answered, with this action. */
  | { event: 'human_input_form_filled'; actionText?: string | undefined }
  /** A resumed run: nobody answered the form in time. */
  | { event: 'human_input_form_timeout' }
  /** A chatflow or workflow LLM node's reasoning, streamed apart from the answer (§4). */
  | { event: 'reasoning_chunk'; reasoning: string }
  /** An agent's step: upserted by `id`; `tool` names what it calls (`;`-separated). */
  | { event: 'agent_thought'; id: string; tool: string; toolLabels?: Record<string, unknown> | undefined }
  | { event: 'error'; code?: string | undefined; status?: number | undefined; message?: string | undefined }
  | { event: 'other'; name: string };

export type DifyFrame = DifyFrameBody & {
  /** The ids this frame carries (§4.1: every chat-family frame repeats them). */
  ids: DifyIds;
  /** The SSE `id:` cursor newer Redis-backed servers send (§3.3), kept for a later resume. */
  cursor?: string;
};

const id = z.string().nullish();
const envelopeSchema = z.looseObject({
  event: z.string().min(1),
  conversation_id: id,
  message_id: id,
  task_id: id,
  workflow_run_id: id,
});
const answerSchema = z.looseObject({ answer: z.string() });
const textSchema = z.looseObject({ data: z.looseObject({ text: z.string() }) });
const usageSchema = z.record(z.string(), z.unknown());
// message_file (url) and the File objects of message_end and workflow_finished (url or remote_url).
const fileSchema = z.looseObject({
  id: z.string().nullish(),
  type: z.string().nullish(),
  url: z.string().nullish(),
  remote_url: z.string().nullish(),
  filename: z.string().nullish(),
  belongs_to: z.string().nullish(),
});
const filesSchema = z.array(z.unknown()).nullish();
function filesOf(list: unknown[] | null | undefined): DifyFile[] | undefined {
  const out: DifyFile[] = [];
  for (const item of list ?? []) {
    const file = fileOf(item);
    if (file) out.push(file);
  }
  return out.length ? out : undefined;
}
function fileOf(item: unknown): DifyFile | undefined {
  const p = fileSchema.safeParse(item);
  if (!p.success) return undefined;
  const url = p.data.url || p.data.remote_url;
  if (!url) return undefined;
  return { id: opt(p.data.id), type: p.data.type || 'custom', url, name: opt(p.data.filename) };
}
const messageEndSchema = z.looseObject({
  metadata: z.looseObject({ usage: usageSchema.nullish() }).nullish(),
  files: filesSchema,
});
const workflowStartedSchema = z.looseObject({ data: z.looseObject({ id: z.string().nullish() }).nullish() });
const workflowFinishedSchema = z.looseObject({
  data: z.looseObject({
    id: z.string().nullish(),
    status: z.string(),
    error: z.string().nullish(),
    outputs: z.record(z.string(), z.unknown()).nullish(),
    total_tokens: z.number().nullish(),
    total_steps: z.number().nullish(),
    elapsed_time: z.number().nullish(),
    files: filesSchema,
  }),
});
const reasoningSchema = z.looseObject({ data: z.looseObject({ reasoning: z.string() }) });
const agentThoughtSchema = z.looseObject({
  id: z.string(),
  tool: z.string().nullish(),
  tool_labels: z.record(z.string(), z.unknown()).nullish(),
});
const formSchema = z.looseObject({
  data: z.looseObject({
    form_token: z.string().nullish(),
    node_title: z.string().nullish(),
    form_content: z.string().nullish(),
    actions: z
      .array(
        z.looseObject({
          id: z.string().min(1),
          title: z.string().nullish(),
          button_style: z.string().nullish(),
        }),
      )
      .nullish(),
    resolved_default_values: z.record(z.string(), z.unknown()).nullish(),
    expiration_time: z.number().nullish(),
  }),
});
const formFilledSchema = z.looseObject({ data: z.looseObject({ action_text: z.string().nullish() }) });
const errorSchema = z.looseObject({
  code: z.string().nullish(),
  status: z.number().nullish(),
  message: z.string().nullish(),
});

const opt = <T>(v: T | null | undefined): T | undefined => (v === null || v === '' ? undefined : v);

function bodyOf(event: string, json: unknown): DifyFrameBody | undefined {
  switch (event) {
    case 'message':
    case 'agent_message':
    case 'message_replace': {
      const p = answerSchema.safeParse(json);
      return p.success ? { event, answer: p.data.answer } : undefined;
    }
    case 'text_chunk':
    case 'text_replace': {
      const p = textSchema.safeParse(json);
      return p.success ? { event, text: p.data.data.text } : undefined;
    }
    case 'message_end': {
      const p = messageEndSchema.safeParse(json);
      return p.success
        ? { event, usage: opt(p.data.metadata?.usage), files: filesOf(p.data.files) }
        : { event };
    }
    case 'workflow_started':
    case 'workflow_paused':
      return { event };
    case 'message_file': {
      const file = fileOf(json);
      const belongsTo = fileSchema.safeParse(json).data?.belongs_to ?? undefined;
      return file ? { event, file, belongsTo } : undefined;
    }
    case 'reasoning_chunk': {
      const p = reasoningSchema.safeParse(json);
      return p.success ? { event, reasoning: p.data.data.reasoning } : undefined;
    }
    case 'agent_thought': {
      const p = agentThoughtSchema.safeParse(json);
      return p.success
        ? { event, id: p.data.id, tool: p.data.tool ?? '', toolLabels: opt(p.data.tool_labels) }
        : undefined;
    }
    case 'workflow_finished': {
      const p = workflowFinishedSchema.safeParse(json);
      if (!p.success) return { event, status: 'succeeded' };
      const d = p.data.data;
      const usage: Usage = {};
      if (typeof d.total_tokens === 'number') usage.total_tokens = d.total_tokens;
      if (typeof d.total_steps === 'number') usage.total_steps = d.total_steps;
      if (typeof d.elapsed_time === 'number') usage.elapsed_time = d.elapsed_time;
      return {
        event,
        status: d.status,
        error: opt(d.error),
        outputs: opt(d.outputs),
        usage: Object.keys(usage).length ? usage : undefined,
        files: filesOf(d.files),
      };
    }
    case 'human_input_required': {
      const p = formSchema.safeParse(json);
      if (!p.success) return { event: 'other', name: event };
      const d = p.data.data;
      const defaults: Record<string, string> = {};
      for (const [k, v] of Object.entries(d.resolved_default_values ?? {}))
        if (v !== null && v !== undefined) defaults[k] = typeof v === 'string' ? v : JSON.stringify(v);
      return {
        event,
        form: {
          token: opt(d.form_token),
          title: d.node_title ?? '',
          content: d.form_content ?? '',
          actions: (d.actions ?? []).map((a) => ({
            id: a.id,
            title: a.title || a.id,
            style: opt(a.button_style),
          })),
          defaults,
          // Dify gives seconds.
          expiresAt: typeof d.expiration_time === 'number' ? d.expiration_time * 1000 : undefined,
        },
      };
    }
    case 'human_input_form_filled': {
      const p = formFilledSchema.safeParse(json);
      return { event, actionText: opt(p.data?.data.action_text) };
    }
    case 'human_input_form_timeout':
      return { event };
    case 'error': {
      const p = errorSchema.safeParse(json);
      return p.success
        ? { event, code: opt(p.data.code), status: opt(p.data.status), message: opt(p.data.message) }
        : { event };
    }
    default:
      return { event: 'other', name: event };
  }
}

/**
 * One SSE `data` payload → a frame, or undefined for what is not a Dify frame: non-JSON data, a JSON
 * value that is not an object, an object without `event` (§9.4). Unknown events become `other`;
 * a known event whose fields do not fit (an `answer` that is not a string) also becomes `other`,
 * so an odd frame is skipped rather than breaking a stream.
 */
export function parseFrame(data: string, cursor?: string): DifyFrame | undefined {
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return undefined;
  }
  // The frames that carry an answer's text come twenty times a second and more: read by hand, the
  // same checks the schemas make (an object, its `event`, a string of text, ids that are strings).
  const fast = textFrame(json, cursor);
  if (fast) return fast;
  const envelope = envelopeSchema.safeParse(json);
  if (!envelope.success) return undefined;
  const e = envelope.data;
  const ids: DifyIds = {};
  const conversationId = opt(e.conversation_id);
  const messageId = opt(e.message_id);
  const taskId = opt(e.task_id);
  // workflow_started carries the run id as data.id too; it is the only resume handle (§4.1).
  let workflowRunId = opt(e.workflow_run_id);
  if (!workflowRunId && e.event === 'workflow_started') {
    const started = workflowStartedSchema.safeParse(json);
    workflowRunId = started.success ? opt(started.data.data?.id) : undefined;
  }
  if (conversationId) ids.conversationId = conversationId;
  if (messageId) ids.messageId = messageId;
  if (taskId) ids.taskId = taskId;
  if (workflowRunId) ids.workflowRunId = workflowRunId;
  const body = bodyOf(e.event, json) ?? { event: 'other', name: e.event };
  return cursor ? { ...body, ids, cursor } : { ...body, ids };
}

/** A `message`, `agent_message` or `text_chunk` frame whose fields are as Dify sends them; else undefined. */
function textFrame(json: unknown, cursor: string | undefined): DifyFrame | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const j = json as Record<string, unknown>;
  const event = j.event;
  let text: unknown;
  if (event === 'message' || event === 'agent_message') text = j.answer;
  else if (event === 'text_chunk') {
    const data = j.data as { text?: unknown } | null | undefined;
    if (typeof data !== 'object' || data === null) return undefined;
    text = data.text;
  } else return undefined;
  if (typeof text !== 'string') return undefined;
  // Each id by name (a fixed property, not a loop over names): this runs for every piece of text.
  const conversationId = idOf(j.conversation_id);
  const messageId = idOf(j.message_id);
  const taskId = idOf(j.task_id);
  const workflowRunId = idOf(j.workflow_run_id);
  if (conversationId === null || messageId === null || taskId === null || workflowRunId === null)
    return undefined;
  const ids: DifyIds = {};
  if (conversationId !== undefined) ids.conversationId = conversationId;
  if (messageId !== undefined) ids.messageId = messageId;
  if (taskId !== undefined) ids.taskId = taskId;
  if (workflowRunId !== undefined) ids.workflowRunId = workflowRunId;
  const frame: DifyFrame =
    event === 'text_chunk'
      ? { event, text, ids }
      : { event: event as 'message' | 'agent_message', answer: text, ids };
  if (cursor) frame.cursor = cursor;
  return frame;
}

/** An id field: its string, undefined when absent (null and '' count as absent), null when not a string. */
function idOf(value: unknown): string | undefined | null {
  if (value === undefined || value === null || value === '') return undefined;
  return typeof value === 'string' ? value : null;
}

/** One SSE event that carried data: its data (lines joined by LF) and the `id:` it named, if any. */
export interface SseEvent {
  data: string;
  id?: string;
}

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;
/** `data:`, the field nearly every line of a Dify stream starts with. */
const DATA = Buffer.from('data:');

/**
 * The SSE wire format (WHATWG HTML, "interpreting an event stream"), read on bytes: lines end at CRLF,
 * LF or CR (a CR at the end of one chunk and an LF at the start of the next are one line end); a
 * leading BOM is skipped; `:` starts a comment; a field's value loses one leading space; a blank line
 * dispatches the event if it had data. Lines are cut on bytes, which no UTF-8 character contains, and
 * each is decoded whole, so a character split across chunks survives without a streaming decoder.
 * `event:` and `retry:` are read past (Dify names its events inside the JSON). Only complete events
 * are dispatched: an unterminated line, or an event without its blank line, is held until its end
 * comes, and dropped if the stream ends first.
 */
export class SseDecoder {
  /** The bytes of an unterminated line, from earlier chunks. */
  #rest: Buffer | undefined;
  #data: string | undefined;
  #id: string | undefined;
  /** How many bytes the event being read holds so far (its lines, and the unterminated one). */
  #size = 0;
  #started = false;
  /** The last chunk ended with a CR: an LF starting this one is part of the same line end. */
  #afterCR = false;

  constructor(
    private readonly onEvent: (event: SseEvent) => void,
    /** The largest event, in bytes: past it `push` throws FrameTooLargeError. */
    private readonly maxBytes: number,
  ) {}

  push(chunk: Uint8Array): void {
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let pos = 0;
    if (this.#afterCR && buf.length > 0) {
      this.#afterCR = false;
      if (buf[0] === LF) pos = 1;
    }
    if (this.#rest) {
      buf = Buffer.concat([this.#rest, buf.subarray(pos)]);
      pos = 0;
      this.#rest = undefined;
    }
    if (!this.#started) {
      if (buf.length - pos < 3 && buf[pos] === 0xef) {
        this.#hold(buf, pos);
        return;
      }
      this.#started = true;
      if (buf[pos] === 0xef && buf[pos + 1] === 0xbb && buf[pos + 2] === 0xbf) pos += 3;
    }
    // Most streams never send a CR: then a line ends at the next LF, found natively.
    const anyCR = buf.indexOf(CR, pos) !== -1;
    while (pos < buf.length) {
      let end = buf.indexOf(LF, pos);
      if (anyCR) {
        const cr = buf.indexOf(CR, pos);
        if (cr !== -1 && (end === -1 || cr < end)) end = cr;
      }
      if (end === -1) break;
      this.#line(buf, pos, end);
      pos = end + 1;
      if (buf[end] === CR) {
        if (pos === buf.length) this.#afterCR = true;
        else if (buf[pos] === LF) pos++;
      }
    }
    if (pos < buf.length) this.#hold(buf, pos);
  }

  /** The stream ended: what was not terminated is dropped, never guessed at. */
  end(): void {
    this.#rest = undefined;
    this.#data = undefined;
    this.#id = undefined;
    this.#size = 0;
  }

  #hold(buf: Buffer, from: number): void {
    const rest = buf.subarray(from);
    if (this.#size + rest.length > this.maxBytes) this.#tooLarge();
    this.#rest = rest;
  }

  #line(buf: Buffer, start: number, end: number): void {
    if (start === end) {
      this.#dispatch();
      return;
    }
    this.#size += end - start;
    if (this.#size > this.maxBytes) this.#tooLarge();
    if (buf[start] === COLON) return; // a comment
    if (end - start >= DATA.length && buf.compare(DATA, 0, DATA.length, start, start + DATA.length) === 0) {
      let from = start + DATA.length;
      if (buf[from] === SPACE) from++;
      const value = buf.toString('utf8', from, end);
      this.#data = this.#data === undefined ? value : `${this.#data}\n${value}`;
      return;
    }
    const line = buf.toString('utf8', start, end);
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.#data = this.#data === undefined ? value : `${this.#data}\n${value}`;
    else if (field === 'id' && !value.includes('\0')) this.#id = value;
  }

  #dispatch(): void {
    const data = this.#data;
    const id = this.#id;
    this.#data = undefined;
    this.#id = undefined;
    this.#size = 0;
    if (data !== undefined) this.onEvent(id ? { data, id } : { data });
  }

  #tooLarge(): never {
    this.#rest = undefined;
    throw new FrameTooLargeError(`an SSE event is larger than ${this.maxBytes} bytes`);
  }
}

/**
 * Bytes in, frames out: SSE events (SseDecoder) → JSON → one `DifyFrame` per data frame (§9.2, §9.3).
 * `event: ping` frames have no data and are never dispatched (§3.2): liveness is the caller's
 * business, on raw bytes.
 */
export class DifyFrameReader {
  readonly #decoder: SseDecoder;
  #frames: DifyFrame[] = [];
  /** Data payloads that were not Dify frames, for diagnostics. */
  skipped = 0;

  constructor(opts: { maxFrameBytes?: number } = {}) {
    this.#decoder = new SseDecoder((event) => {
      const frame = parseFrame(event.data, event.id);
      if (frame) this.#frames.push(frame);
      else this.skipped++;
    }, opts.maxFrameBytes ?? MAX_FRAME_BYTES);
  }

  /** Feed raw bytes; returns the frames they completed. Throws when one frame outgrows the buffer. */
  push(bytes: Uint8Array): DifyFrame[] {
    this.#decoder.push(bytes);
    return this.#take();
  }

  /** The body ended. An unterminated last frame is dropped, never guessed at. */
  end(): DifyFrame[] {
    this.#decoder.end();
    return this.#take();
  }

  #take(): DifyFrame[] {
    if (this.#frames.length === 0) return noFrames;
    const out = this.#frames;
    this.#frames = [];
    return out;
  }
}

const noFrames: DifyFrame[] = [];

/** One SSE event was larger than the reader's bound. */
export class FrameTooLargeError extends Error {
  override readonly name = 'FrameTooLargeError';
}
