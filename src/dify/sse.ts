// Dify's SSE wire format turned into typed frames: bytes → UTF-8 text → SSE events (eventsource-parser)
// → JSON → one `DifyFrame` per data frame. Protocol notes: docs/protocol/dify.md §3, §4, §9.
import { createParser, type EventSourceParser, type ParseError } from 'eventsource-parser';
import { z } from 'zod';
import type { DifyIds } from './errors.js';

/**
 * `node_finished` frames can carry whole HTTP bodies and prompts (§9.2), so the buffer is generous:
 * a frame this large is not a Dify frame any more.
 */
const MAX_FRAME_CHARS = 32 * 1024 * 1024;

type Usage = Record<string, unknown>;

/** What the client acts on. Every other Dify event arrives as `other`. */
export type DifyFrameBody =
  | { event: 'message'; answer: string }
  | { event: 'agent_message'; answer: string }
  | { event: 'message_replace'; answer: string }
  | { event: 'text_chunk'; text: string }
  | { event: 'text_replace'; text: string }
  | { event: 'message_end'; usage?: Usage | undefined }
  | { event: 'workflow_started' }
  | {
      event: 'workflow_finished';
      status: string;
      error?: string | undefined;
      outputs?: Record<string, unknown> | undefined;
      usage?: Usage | undefined;
    }
  | { event: 'workflow_paused' }
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
const messageEndSchema = z.looseObject({
  metadata: z.looseObject({ usage: usageSchema.nullish() }).nullish(),
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
  }),
});
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
      return p.success ? { event, usage: opt(p.data.metadata?.usage) } : { event };
    }
    case 'workflow_started':
    case 'workflow_paused':
      return { event };
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
      };
    }
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

/**
 * Bytes in, frames out. The TextDecoder runs in streaming mode, so a character whose UTF-8 bytes
 * are split across TCP chunks survives (§9.2). Only complete events are dispatched, never the
 * unterminated tail of the buffer (§9.3). `event: ping` frames have no data and are never
 * dispatched (§3.2): liveness is the caller's business, on raw bytes.
 */
export class DifyFrameReader {
  readonly #decoder = new TextDecoder('utf-8');
  readonly #parser: EventSourceParser;
  #frames: DifyFrame[] = [];
  #overflow: ParseError | undefined;
  /** Data payloads that were not Dify frames, for diagnostics. */
  skipped = 0;
  /** The last SSE `id:` seen. */
  lastEventId: string | undefined;

  constructor(opts: { maxFrameChars?: number } = {}) {
    this.#parser = createParser({
      maxBufferSize: opts.maxFrameChars ?? MAX_FRAME_CHARS,
      onEvent: (msg) => {
        if (msg.id) this.lastEventId = msg.id;
        const frame = parseFrame(msg.data, msg.id);
        if (frame) this.#frames.push(frame);
        else this.skipped++;
      },
      onError: (err) => {
        if (err.type === 'max-buffer-size-exceeded') this.#overflow = err;
      },
    });
  }

  /** Feed raw bytes; returns the frames they completed. Throws when one frame outgrows the buffer. */
  push(bytes: Uint8Array): DifyFrame[] {
    this.#feed(this.#decoder.decode(bytes, { stream: true }));
    return this.#take();
  }

  /** The body ended: flush the decoder. An unterminated last frame is dropped, never guessed at. */
  end(): DifyFrame[] {
    this.#feed(this.#decoder.decode());
    return this.#take();
  }

  #feed(text: string): void {
    if (text === '' || this.#overflow) return;
    this.#parser.feed(text);
  }

  #take(): DifyFrame[] {
    if (this.#overflow) throw new FrameTooLargeError(this.#overflow.message);
    const out = this.#frames;
    this.#frames = [];
    return out;
  }
}

/** One SSE event was larger than the parser's buffer. */
export class FrameTooLargeError extends Error {
  override readonly name = 'FrameTooLargeError';
}
