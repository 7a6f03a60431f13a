// Every way a Dify call can fail, as one error class with a stable `code` and a failure `kind`.
// The table below is the only place that decides which Dify codes mean what; the runner maps
// `kind` to the text the user reads (src/machines/texts.ts). Sources: docs/protocol/dify.md §6.
import { errors as undiciErrors } from 'undici';

/**
 * The failure class the runner maps to user-facing text: the answer source port's kinds
 * (src/runner/ports.ts `AnswerFailureKind`; the composition root checks that the two are the same).
 */
export type DifyErrorKind =
  | 'unreachable'
  | 'timeout'
  | 'rate_limited'
  | 'quota'
  | 'misconfigured'
  | 'not_found'
  | 'interrupted'
  | 'server'
  | 'aborted'
  | 'failed';

/** Where the failure happened: before a 200 stream began (`request`) or while reading it (`stream`). */
export type DifyErrorPhase = 'request' | 'stream';

/** The ids a stream had revealed before it failed, so the caller can stop, resume or look it up. */
export interface DifyIds {
  conversationId?: string;
  messageId?: string;
  taskId?: string;
  workflowRunId?: string;
}

export interface DifyErrorInit {
  /** Dify's own code when it sent one, or ours: unreachable, timeout, http_error, incomplete, aborted, … */
  code: string;
  message: string;
  status?: number | undefined;
  /** Defaults to the table's answer for (status, code, phase). */
  kind?: DifyErrorKind;
  /** Defaults to the §6.4 rule: only a pre-stream 429 too_many_requests or 5xx. */
  retryable?: boolean;
  phase?: DifyErrorPhase;
  partial?: string | undefined;
  /** A short snippet of a body that was not Dify's JSON envelope (an HTML proxy page, say). */
  body?: string;
  ids?: DifyIds | undefined;
  /** Seconds from a 429's Retry-After header. */
  retryAfterMs?: number | undefined;
  cause?: unknown;
}

export class DifyError extends Error {
  override readonly name = 'DifyError';
  readonly code: string;
  readonly status: number | undefined;
  readonly kind: DifyErrorKind;
  /** True only when sending the same request again is safe and may help (§6.4). */
  readonly retryable: boolean;
  readonly phase: DifyErrorPhase;
  /** The answer text received before the stream broke off. */
  readonly partial: string | undefined;
  readonly body: string | undefined;
  readonly ids: DifyIds | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(init: DifyErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.status = init.status;
    this.phase = init.phase ?? 'request';
    this.kind = init.kind ?? classify(init.status, init.code, this.phase);
    this.retryable = init.retryable ?? isRetryable(init.status, init.code, this.phase);
    this.partial = init.partial;
    this.body = init.body;
    this.ids = init.ids;
    this.retryAfterMs = init.retryAfterMs;
  }

  /** Whether the code is ours or one Dify documents: a bounded metric label. */
  get known(): boolean {
    return isKnownCode(this.code);
  }
}

export const isDifyError = (err: unknown): err is DifyError => err instanceof DifyError;

type KindRule = DifyErrorKind | { request: DifyErrorKind; stream: DifyErrorKind };

/**
 * (code) → kind, §6.1 and §6.2. A code not listed falls back to the HTTP status (kindForStatus).
 * `invalid_param` before the stream is nearly always our configuration (a required input missing,
 * files the app does not accept); inside a 200 stream it is a runtime ValueError (§6.1).
 */
const kindByCode: Record<string, KindRule> = {
  // ours
  unreachable: 'unreachable',
  timeout: 'timeout',
  aborted: 'aborted',
  incomplete: 'interrupted',
  frame_too_large: 'failed',
  workflow_failed: 'failed',
  // Dify's
  too_many_requests: 'rate_limited',
  rate_limit_error: 'quota', // Cloud plan quota: retrying will not help (§6.2)
  provider_quota_exceeded: 'quota',
  unauthorized: 'misconfigured',
  forbidden: 'misconfigured',
  app_unavailable: 'misconfigured',
  not_chat_app: 'misconfigured',
  not_workflow_app: 'misconfigured',
  provider_not_initialize: 'misconfigured',
  model_currently_not_support: 'misconfigured',
  agent_not_published: 'misconfigured',
  workflow_version_execution_not_allowed: 'misconfigured',
  bad_request: 'misconfigured',
  invalid_param: { request: 'misconfigured', stream: 'failed' },
  not_found: 'not_found',
  completion_request_error: 'server', // the LLM provider call failed (§6.1)
  internal_server_error: 'server',
  unknown: 'server',
  conversation_completed: 'failed',
  file_too_large: 'failed',
  unsupported_file_type: 'failed',
  no_file_uploaded: 'failed',
  too_many_files: 'failed',
  filename_not_exists_error: 'failed',
  // Human input forms (one-shot, with a deadline).
  human_input_form_expired: 'failed',
  human_input_form_submitted: 'failed',
  invalid_form_data: 'failed',
};

/** Whether `code` is one this client knows (ours or Dify's documented ones): a bounded metric label. */
export const isKnownCode = (code: string): boolean =>
  Object.hasOwn(kindByCode, code) || code === 'http_error';

/** For bodies without a code (HTML from a proxy, §6.3) or codes we do not know. */
function kindForStatus(status: number | undefined): DifyErrorKind {
  if (status === undefined) return 'failed';
  if (status === 401 || status === 403) return 'misconfigured';
  // A 404 without Dify's `not_found` code is a route miss: the API URL is wrong.
  if (status === 404) return 'misconfigured';
  if (status === 408 || status === 504 || status === 524) return 'timeout';
  if (status === 429) return 'rate_limited';
  if (status >= 500) return 'server';
  return 'failed';
}

/** The one mapping from (status, code, phase) to the failure class. */
function classify(
  status: number | undefined,
  code: string,
  phase: DifyErrorPhase = 'request',
): DifyErrorKind {
  const rule = kindByCode[code];
  if (rule === undefined) return kindForStatus(status);
  return typeof rule === 'string' ? rule : rule[phase];
}

/**
 * §6.4: a POST may already have created the message and billed the LLM, so only what cannot have
 * started a run is retried: Dify's concurrency 429 and 5xx answers. (Connection refused is decided
 * where the socket error is read, in fromNetworkError.)
 */
function isRetryable(status: number | undefined, code: string, phase: DifyErrorPhase): boolean {
  if (phase !== 'request') return false;
  if (code === 'too_many_requests') return true;
  return status !== undefined && status >= 500 && status < 600;
}

const SNIPPET_CHARS = 200;

/** A one-line, short, readable excerpt of a non-JSON body: an HTML page's title, or its text. */
function snippetOf(text: string): string {
  const title = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(text)?.[1];
  const plain = (title ?? text.replace(/<[^>]*>/g, ' ')).replace(/\s+/g, ' ').trim();
  return plain.length > SNIPPET_CHARS ? `${plain.slice(0, SNIPPET_CHARS)}…` : plain;
}

interface Envelope {
  code: string | undefined;
  message: string | undefined;
  status: number | undefined;
}

function parseEnvelope(text: string): Envelope | undefined {
  try {
    const json: unknown = JSON.parse(text);
    if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
    const { code, message, status } = json as Record<string, unknown>;
    return {
      code: typeof code === 'string' && code !== '' ? code : undefined,
      message: typeof message === 'string' ? message : undefined,
      status: typeof status === 'number' ? status : undefined,
    };
  } catch {
    return undefined;
  }
}

/**
 * An HTTP answer that is not a 200 event stream (§10.2): Dify's JSON envelope `{code,message,status}`
 * when it is one, else `http_error` with a snippet of whatever came (HTML, empty, text; §6.3).
 */
export function fromHttpResponse(status: number, bodyText: string, retryAfterMs?: number): DifyError {
  const envelope = parseEnvelope(bodyText);
  if (envelope && (envelope.code !== undefined || envelope.message !== undefined)) {
    const code = envelope.code ?? 'http_error';
    return new DifyError({
      code,
      status,
      message: envelope.message || `Dify answered HTTP ${status} ${code}`,
      retryAfterMs,
    });
  }
  const snippet = snippetOf(bodyText);
  return new DifyError({
    code: 'http_error',
    status,
    message: `Dify answered HTTP ${status}${snippet ? `: ${snippet}` : ' with an empty body'}`,
    body: snippet,
    retryAfterMs,
  });
}

/** An in-stream `error` frame (§6.1): HTTP was 200, the stream is over; never retried. */
export function fromErrorFrame(
  frame: { code?: string | undefined; status?: number | undefined; message?: string | undefined },
  partial: string,
  ids: DifyIds,
): DifyError {
  const code = frame.code ?? 'internal_server_error';
  return new DifyError({
    code,
    status: frame.status,
    phase: 'stream',
    message: frame.message || `Dify stream failed with ${code}`,
    partial,
    ids,
  });
}

/** Error codes of the socket layer, looked for on the error, its cause and an AggregateError's errors. */
function errorCodes(err: unknown, depth = 0): string[] {
  if (typeof err !== 'object' || err === null || depth > 4) return [];
  const out: string[] = [];
  const { code, cause, errors } = err as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof code === 'string') out.push(code);
  if (cause !== undefined) out.push(...errorCodes(cause, depth + 1));
  if (Array.isArray(errors)) for (const e of errors) out.push(...errorCodes(e, depth + 1));
  return out;
}

const describe = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * A failure below HTTP: the socket, a timeout or an abort. `phase` says whether a 200 stream had
 * begun; `partial` and `ids` are what it had delivered by then.
 */
export function fromNetworkError(
  err: unknown,
  opts: { phase: DifyErrorPhase; aborted: boolean; partial?: string; ids?: DifyIds },
): DifyError {
  if (err instanceof DifyError) return err;
  const { phase, partial, ids } = opts;
  const codes = errorCodes(err);
  const base = { phase, partial, ids, cause: err };
  if (
    opts.aborted ||
    codes.includes('UND_ERR_ABORTED') ||
    (err instanceof Error && err.name === 'AbortError')
  )
    return new DifyError({
      ...base,
      code: 'aborted',
      message: 'the Dify request was aborted',
      retryable: false,
    });
  if (err instanceof undiciErrors.ConnectTimeoutError || codes.includes('UND_ERR_CONNECT_TIMEOUT'))
    return new DifyError({
      ...base,
      code: 'timeout',
      message: `connecting to Dify timed out: ${describe(err)}`,
    });
  if (err instanceof undiciErrors.HeadersTimeoutError || codes.includes('UND_ERR_HEADERS_TIMEOUT'))
    return new DifyError({ ...base, code: 'timeout', message: 'Dify sent no response headers in time' });
  if (err instanceof undiciErrors.BodyTimeoutError || codes.includes('UND_ERR_BODY_TIMEOUT'))
    return new DifyError({
      ...base,
      code: 'timeout',
      message: 'the Dify stream went silent (no bytes, not even a ping)',
    });
  if (phase === 'stream')
    return new DifyError({
      ...base,
      code: 'incomplete',
      message: `the Dify stream broke off before its end: ${describe(err)}`,
    });
  // Refused means nothing reached Dify, so sending again is safe (§6.4). A reset may not be.
  const refused = codes.includes('ECONNREFUSED');
  return new DifyError({
    ...base,
    code: 'unreachable',
    message: `Dify is unreachable: ${describe(err)}${codes.length ? ` (${[...new Set(codes)].join(', ')})` : ''}`,
    retryable: refused,
  });
}
