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

/** Read a request body as a Buffer, refusing more than `limit` bytes without buffering them. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] || 0);
  if (declared > limit) {
    req.resume();
    return Promise.reject(
      new HttpError('body_too_large', `content-length ${declared} over the ${limit}-byte limit`),
    );
  }
  // Events, not `for await`: every poll reads a body, and the async iterator costs more than it.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.resume();
        reject(new HttpError('body_too_large', `body over the ${limit}-byte limit`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.once('error', reject);
  });
}
