// Small Koa middleware, each doing one thing: request ids, the error boundary, a bounded raw body.
import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from '../log.js';
import { answerFor, HttpError } from './errors.js';

export interface State {
  log: Logger;
  requestId: string;
}

export function requestContext(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    const incoming = ctx.get('x-request-id');
    const requestId = /^[\w.-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = requestId;
    ctx.state.log = logger.child({ requestId });
    ctx.set('x-request-id', requestId);
    await next();
  };
}

/** The outermost middleware and the only place where errors become responses. */
export function errorBoundary() {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (error) {
      const answer = answerFor(error);
      const log = (ctx.state as State).log;
      log[answer.level](
        { err: answer.status >= 500 ? error : undefined, code: answer.code, status: answer.status, path: ctx.path },
        `${ctx.method} ${ctx.path} refused: ${(error as Error).message ?? answer.code}`,
      );
      ctx.status = answer.status;
      ctx.type = 'text/plain';
      ctx.body = answer.body;
      if (answer.status === 503) ctx.set('retry-after', '2');
    }
  };
}

/** Read the request body as a Buffer, refusing more than `limit` bytes without buffering them. */
export async function readBody(ctx: Context, limit: number): Promise<Buffer> {
  const declared = Number(ctx.get('content-length') || 0);
  if (declared > limit) {
    ctx.req.resume();
    throw new HttpError('body_too_large', `content-length ${declared} over the ${limit}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      ctx.req.resume();
      throw new HttpError('body_too_large', `body over the ${limit}-byte limit`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
