// The Dify app's opening: its opening statement and suggested questions, from `GET /parameters`
// (docs/protocol/dify.md §2.6), for the welcome a user gets on opening the bot's chat. One call, not
// retried, bounded in time and in size; every failure is a value with Dify's code, never thrown.
import { type Dispatcher, request } from 'undici';
import { z } from 'zod';
import { BodyTooLargeError, discard, outboundAgent, type ProxySettings, readBounded } from '../outbound.js';
import { type DifyErrorKind, fromHttpResponse, fromNetworkError } from './errors.js';

export interface DifyParametersSettings {
  /** The service API base, `…/v1`. */
  apiUrl: string;
  apiKey: string;
  /** The whole call, connecting and reading the body included. */
  timeoutMs: number;
  proxy?: ProxySettings | undefined;
}

export interface DifyParametersOptions {
  /** Reused between calls where given (its owner closes it); else one is made for this call. */
  dispatcher?: Dispatcher | undefined;
  signal?: AbortSignal | undefined;
}

/** What of `/parameters` the welcome uses; empty where the app has none. */
export interface DifyOpening {
  openingStatement: string;
  suggestedQuestions: string[];
}

export type DifyParametersResult =
  | { ok: true; opening: DifyOpening }
  | { ok: false; code: string; kind: DifyErrorKind; status?: number; message: string };

/** The app's settings run to a few KB; a user input form with long option lists stays well within. */
const PARAMETERS_BODY_BYTES = 256 * 1024;
/** Enough of an error body for Dify's JSON envelope or an HTML page's title. */
const ERROR_BODY_BYTES = 16 * 1024;
/** Older servers asked for `user` here (§2.6), newer ones ignore it: one fixed end user for the app. */
const PARAMETERS_USER = 'wecom-dify';

// Loose: the rest of the app's settings are not this module's business. A field of an odd type is
// taken as absent rather than losing the other one.
const parametersSchema = z.looseObject({
  opening_statement: z.string().nullish().catch(null),
  suggested_questions: z.array(z.string()).nullish().catch(null),
});

/** The opening of a `/parameters` body; undefined when it is not an object. */
export function openingOf(json: unknown): DifyOpening | undefined {
  const parsed = parametersSchema.safeParse(json);
  if (!parsed.success) return undefined;
  return {
    openingStatement: parsed.data.opening_statement?.trim() ?? '',
    suggestedQuestions: (parsed.data.suggested_questions ?? []).map((q) => q.trim()).filter((q) => q !== ''),
  };
}

export async function fetchDifyParameters(
  settings: DifyParametersSettings,
  options: DifyParametersOptions = {},
): Promise<DifyParametersResult> {
  const dispatcher =
    options.dispatcher ?? outboundAgent(settings.proxy, { connect: { timeout: settings.timeoutMs } });
  const own = options.dispatcher ? undefined : dispatcher;
  const timeout = AbortSignal.timeout(settings.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const url = `${settings.apiUrl.replace(/\/+$/, '')}/parameters?user=${encodeURIComponent(PARAMETERS_USER)}`;
  try {
    const res = await request(url, {
      method: 'GET',
      headers: { authorization: `Bearer ${settings.apiKey}`, accept: 'application/json' },
      signal,
      dispatcher,
    });
    if (res.statusCode < 200 || res.statusCode >= 300)
      return failure(fromHttpResponse(res.statusCode, await errorText(res)));
    let text: string;
    try {
      text = (await readBounded(res.body, PARAMETERS_BODY_BYTES, 'Dify (/parameters)')).toString('utf8');
    } catch (error) {
      if (!(error instanceof BodyTooLargeError)) throw error;
      return {
        ok: false,
        code: 'body_too_large',
        kind: 'failed',
        status: res.statusCode,
        message: error.message,
      };
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return failure(fromHttpResponse(res.statusCode, text));
    }
    const opening = openingOf(json);
    if (!opening)
      return {
        ok: false,
        code: 'http_error',
        kind: 'failed',
        status: res.statusCode,
        message: 'Dify /parameters answered an unexpected body',
      };
    return { ok: true, opening };
  } catch (error) {
    // Our own deadline aborts the request with a TimeoutError, which the socket-level mapping would
    // take for an unreachable Dify.
    if (timeout.aborted && !options.signal?.aborted)
      return {
        ok: false,
        code: 'timeout',
        kind: 'timeout',
        message: `Dify /parameters did not answer within ${settings.timeoutMs} ms`,
      };
    return failure(fromNetworkError(error, { phase: 'request', aborted: options.signal?.aborted ?? false }));
  } finally {
    // Everything wanted of the connection has been read, or will not be.
    await own?.destroy().catch(() => undefined);
  }
}

async function errorText(res: Dispatcher.ResponseData): Promise<string> {
  try {
    return (await readBounded(res.body, ERROR_BODY_BYTES, 'Dify')).toString('utf8');
  } catch (error) {
    // The start of a longer body is enough; one cut short leaves the status.
    if (!res.body.destroyed) discard(res.body);
    return error instanceof BodyTooLargeError ? error.head.toString('utf8') : '';
  }
}

function failure(error: {
  code: string;
  kind: DifyErrorKind;
  status: number | undefined;
  message: string;
}): DifyParametersResult {
  return {
    ok: false,
    code: error.code,
    kind: error.kind,
    ...(error.status !== undefined ? { status: error.status } : {}),
    message: error.message,
  };
}
