// Small pieces of the HTTP edge, each doing one thing: request ids, the error boundary, a bounded raw
// body. The Koa middleware and the callback's own path (app.ts) share them.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Context, Next } from 'koa';
import type { Logger } from '../log.js';
import { type HttpAnswer, HttpError, refuse } from './errors.js';

export interface State {
  log: Logger;
  requestId: string;
}

/** The caller's X-Request-Id when it is a sane token, else a new one. */
export function requestIdOf(incoming: string | string[] | undefined): string {
  const given = Array.isArray(incoming) ? incoming[0] : incoming;
  return given && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
}

export function requestContext(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    const requestId = requestIdOf(ctx.get('x-request-id'));
    ctx.state.requestId = requestId;
    ctx.state.log = logger.child({ requestId });
    ctx.set('x-request-id', requestId);
    await next();
  };
}

/** The outermost middleware: errors become answers here (and in the callback's path), through `refuse`. */
export function errorBoundary() {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (error) {
      const answer: HttpAnswer = refuse(error, (ctx.state as State).log, ctx.method, ctx.path);
      ctx.status = answer.status;
      ctx.type = 'text/plain';
      ctx.body = answer.body;
      if (answer.retryAfter) ctx.set('retry-after', String(answer.retryAfter));
    }
  };
}

/**
 * When a request's body was not read to its end (refused early, too large, too slow), answer with
 * `Connection: close`: Node then closes the socket once the answer is flushed, instead of reading
 * the rest of the body to keep the connection alive. The callback's path (app.ts) does the same.
 */
export function closeUnreadBodies() {
  return async (ctx: Context, next: Next) => {
    await next();
    if (hasUnreadBody(ctx.req)) ctx.set('connection', 'close');
  };
}

/** Whether a body was announced and has not all arrived. */
export function hasUnreadBody(req: IncomingMessage): boolean {
  if (req.complete) return false;
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] || 0) > 0;
}

/**
 * Read a request body as a Buffer: refusing more than `limit` bytes without buffering them
 * (`body_too_large`), and a body still arriving after `deadlineMs` (`body_timeout`). Nothing more is
 * read after a refusal; the caller answers with `Connection: close`.
 */
export function readBody(req: IncomingMessage, limit: number, deadlineMs: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] || 0);
  if (declared > limit)
    return Promise.reject(
      new HttpError('body_too_large', `content-length ${declared} over the ${limit}-byte limit`),
    );
  // Events, not `for await`: every poll reads a body, and the async iterator costs more than it.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const refuse = (error: HttpError) => {
      stop();
      req.pause();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) refuse(new HttpError('body_too_large', `body over the ${limit}-byte limit`));
      else chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    const timer = setTimeout(
      () =>
        refuse(
          new HttpError('body_timeout', `body not received within ${deadlineMs} ms (${size} bytes came)`),
        ),
      deadlineMs,
    );
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
  });
}
