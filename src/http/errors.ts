// The one table that turns an error's code into an HTTP answer. WeCom retries a callback that gets
// no 2xx, so a hostile or broken request gets a 4xx (retrying cannot help), while a passing outage
// of our own (the store) gets a 503 so that WeCom tries again later and nothing accepted is lost.
export interface HttpAnswer {
  status: number;
  /** A short, safe body: never a stack trace, never a secret. */
  body: string;
  level: 'warn' | 'error' | 'info';
  /** Seconds for `Retry-After`: set on the answers that ask to be tried again soon (a 503). */
  retryAfter?: number;
}

const table: Record<string, HttpAnswer> = {
  missing_params: { status: 400, body: 'missing query parameters', level: 'warn' },
  bad_signature: { status: 401, body: 'bad signature', level: 'warn' },
  bad_base64: { status: 400, body: 'bad ciphertext', level: 'warn' },
  bad_length: { status: 400, body: 'bad ciphertext', level: 'warn' },
  bad_padding: { status: 400, body: 'bad ciphertext', level: 'warn' },
  bad_receiveid: { status: 400, body: 'bad ciphertext', level: 'warn' },
  bad_key: { status: 500, body: 'server misconfigured', level: 'error' },
  bad_body: { status: 400, body: 'bad body', level: 'warn' },
  bad_json: { status: 400, body: 'bad JSON', level: 'warn' },
  bad_message: { status: 400, body: 'bad message', level: 'warn' },
  wrong_bot: { status: 403, body: 'wrong bot', level: 'warn' },
  stale_timestamp: { status: 401, body: 'stale timestamp', level: 'warn' },
  body_too_large: { status: 413, body: 'body too large', level: 'warn' },
  body_timeout: { status: 408, body: 'body too slow', level: 'warn' },
  unsupported_media_type: { status: 415, body: 'unsupported media type', level: 'warn' },
  unavailable: { status: 503, body: 'temporarily unavailable, retry later', level: 'error', retryAfter: 2 },
  version_conflict: {
    status: 503,
    body: 'temporarily unavailable, retry later',
    level: 'error',
    retryAfter: 2,
  },
  draining: { status: 503, body: 'node is shutting down, retry later', level: 'info', retryAfter: 2 },
  unauthorized: { status: 401, body: 'unauthorized', level: 'warn' },
  not_found: { status: 404, body: 'not found', level: 'info' },
};

const internal: HttpAnswer = { status: 500, body: 'internal error', level: 'error' };

/** An error the edge knows how to answer, raised by the HTTP layer itself. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly code: string,
    message: string,
    /** Fields for the refusal's log line. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** Log a refused request once, at the level its code deserves, and return the answer to give. */
export function refuse(
  error: unknown,
  log: { warn: LogFn; error: LogFn; info: LogFn },
  method: string,
  path: string,
): HttpAnswer & { code: string } {
  const answer = answerFor(error);
  log[answer.level](
    {
      err: answer.status >= 500 ? error : undefined,
      code: answer.code,
      status: answer.status,
      path,
      ...(error instanceof HttpError ? error.details : undefined),
    },
    `${method} ${path} refused: ${(error as Error)?.message ?? answer.code}`,
  );
  return answer;
}

type LogFn = (obj: object, msg: string) => void;

export function answerFor(error: unknown): HttpAnswer & { code: string } {
  const code =
    typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string'
      ? (error as { code: string }).code
      : 'internal';
  return { code, ...(table[code] ?? internal) };
}
