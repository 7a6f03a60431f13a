// The client of the external token service (AUTH_API_URL) that issues a user's token.
//
// Contract (README.md "Authentication" repeats it for the people who run the service):
//   POST {AUTH_API_URL}
//   Content-Type: application/json
//   { "userid": "<WeCom userid>", "account": "<account code>", "secret": "<only when the directory holds one>" }
//
//   200 (any 2xx) application/json
//   { "token": "<opaque, 1..4096 chars, no whitespace>",
//     "expires_in": <whole seconds the token stays valid, 1..2592000>,
//     "user": { ...optional extra non-secret user info, kept in the Redis user info } }
//
// Anything else is an AuthError, and nothing is cached:
//   no answer within AUTH_API_TIMEOUT_MS, a connection error or a 5xx → 'token_service_unavailable';
//   a 4xx, or a 2xx whose body is not that JSON (or is over 64 KiB) → 'token_service_bad_response'.
// The request and its answer are never logged: they carry the secret and the token.
import { type Dispatcher, request } from 'undici';
import { z } from 'zod';
import { BodyTooLargeError, discard, outboundAgent, type ProxySettings, readBounded } from '../outbound.js';
import type { Secret } from './secretBox.js';
import { AuthError } from './types.js';

const tokenResponseSchema = z.object({
  token: z.string().min(1).max(4096).regex(/^\S+$/, 'must not contain whitespace'),
  expires_in: z
    .number()
    .int()
    .min(1)
    .max(30 * 24 * 3600),
  user: z.record(z.string(), z.unknown()).optional(),
});
export interface TokenRequest {
  userid: string;
  account: string;
  secret?: Secret;
}

export interface IssuedToken {
  token: string;
  expiresInSeconds: number;
  /** Extra user info the service returned, if any. */
  user?: Record<string, unknown>;
}

export interface TokenService {
  issue(req: TokenRequest): Promise<IssuedToken>;
  close(): Promise<void>;
}

export interface TokenServiceOptions {
  url: string;
  /** The whole exchange (connect, headers, body) must finish within this (AUTH_API_TIMEOUT_MS). */
  timeoutMs: number;
  dispatcher?: Dispatcher;
  /** HTTP_PROXY / HTTPS_PROXY / NO_PROXY (an internal token service is usually in NO_PROXY). */
  proxy?: ProxySettings | undefined;
}

/** Bodies larger than this are not a token answer. */
const MAX_BODY_BYTES = 64 * 1024;

/** A 2xx's body, bounded: a larger one is a bad response, read no further. */
async function readAnswer(
  body: Dispatcher.ResponseData['body'],
  where: string,
  status: number,
): Promise<string> {
  try {
    return (await readBounded(body, MAX_BODY_BYTES, `token service ${where}`)).toString('utf8');
  } catch (error) {
    if (error instanceof BodyTooLargeError)
      throw new AuthError('token_service_bad_response', error.message, { status });
    throw error;
  }
}

export function createTokenService(options: TokenServiceOptions): TokenService {
  const dispatcher =
    options.dispatcher ??
    outboundAgent(options.proxy, { connectTimeout: options.timeoutMs, keepAliveTimeout: 10_000 });
  // Closed with the service; a dispatcher given in is its giver's to close.
  const ownAgent = options.dispatcher ? undefined : dispatcher;
  const where = (() => {
    try {
      const u = new URL(options.url);
      return `${u.origin}${u.pathname}`;
    } catch {
      return 'AUTH_API_URL';
    }
  })();

  async function issue(req: TokenRequest): Promise<IssuedToken> {
    const body = JSON.stringify({
      userid: req.userid,
      account: req.account,
      ...(req.secret ? { secret: req.secret.reveal() } : {}),
    });
    const signal = AbortSignal.timeout(options.timeoutMs);
    let status: number;
    let text: string;
    try {
      const res = await request(options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body,
        signal,
        dispatcher,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
      });
      status = res.statusCode;
      const ok = status >= 200 && status < 300;
      // Only a 2xx's body is read: the status says enough of the others.
      if (!ok) discard(res.body);
      text = ok ? await readAnswer(res.body, where, status) : '';
    } catch (error) {
      if (error instanceof AuthError) throw error;
      const timedOut = signal.aborted || (error as { code?: unknown }).code === 'UND_ERR_HEADERS_TIMEOUT';
      const code = (error as { code?: unknown }).code;
      throw new AuthError(
        'token_service_unavailable',
        timedOut
          ? `token service ${where} did not answer within ${options.timeoutMs} ms`
          : `token service ${where} unreachable${typeof code === 'string' ? ` (${code})` : ''}`,
        { cause: error },
      );
    }
    if (status >= 500)
      throw new AuthError('token_service_unavailable', `token service ${where} answered HTTP ${status}`, {
        status,
      });
    if (status < 200 || status >= 300)
      throw new AuthError('token_service_bad_response', `token service ${where} answered HTTP ${status}`, {
        status,
      });
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new AuthError(
        'token_service_bad_response',
        `token service ${where} answered ${status} with no JSON`,
        {
          status,
        },
      );
    }
    const parsed = tokenResponseSchema.safeParse(json);
    if (!parsed.success) {
      // Name the field, never echo the value: it may be a token.
      const issue = parsed.error.issues[0];
      const field = issue ? issue.path.join('.') || '(root)' : '(root)';
      throw new AuthError(
        'token_service_bad_response',
        `token service ${where} answered ${status} with an unexpected body: ${field} ${issue?.message ?? 'invalid'}`,
        { status },
      );
    }
    return {
      token: parsed.data.token,
      expiresInSeconds: parsed.data.expires_in,
      ...(parsed.data.user ? { user: parsed.data.user } : {}),
    };
  }

  return {
    issue,
    async close() {
      await ownAgent?.close();
    },
  };
}
