// The HTTP edge: a Koa application (middleware in order: request context, error boundary; then the
// routes), and in front of it the one hot route, POST /wecom/callback (and a bot's own
// /wecom/callback/{id}). WeCom polls every answer about
// once a second, so that route is served straight from Node's request, with the same request ids,
// error table and logs, but without Koa's context, router and middleware chain per poll (see
// bench/poll.bench.ts: they cost about a fifth of a poll).
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { answerCallback, type CallbackDeps, queryOf, verifyUrl } from './callback.js';
import { refuse } from './errors.js';
import { CallbackClock } from './freshness.js';
import {
  closeUnreadBodies,
  errorBoundary,
  hasUnreadBody,
  readBody,
  requestContext,
  requestIdOf,
} from './middleware.js';

export interface ReadinessCheck {
  name: string;
  check: () => Promise<void>;
}

export interface AppDeps extends Omit<CallbackDeps, 'clock'> {
  logger: Logger;
  metrics: Metrics;
  readiness: ReadinessCheck[];
  /** Each bot's state for /readyz (a long-connection bot: who holds it, since when), and whether all are up. */
  botsReadiness?: () => Promise<{ bots: Record<string, unknown>; ready: boolean }>;
  /** Extra routes (the inspector) mounted by the caller. */
  extend?: (router: Router) => void;
}

const CALLBACK_PATH = '/wecom/callback';

/**
 * A callback's body must have arrived this long after it began to be read, or the request is
 * answered 408 and its connection closed: WeCom sends a few KB at once, a body trickling in holds a
 * connection for nothing. (Node's own request timeout, service.ts, bounds every other route.)
 */
const CALLBACK_BODY_DEADLINE_MS = 10_000;

/** The service's request listener: POST /wecom/callback on its own path, everything else through Koa. */
export function createHttpApp(appDeps: AppDeps): RequestListener {
  const clock = new CallbackClock({
    maxSkewSeconds: appDeps.config.wecom.maxSkewSeconds,
    record: (seconds) => appDeps.metrics.recordCallbackSkew(seconds),
  });
  const deps: AppDeps & CallbackDeps = { ...appDeps, clock };
  const koa = createKoaApp(deps).callback();
  const limit = deps.bodyLimit ?? 1 << 20;
  return (req, res) => {
    const botId = req.method === 'POST' ? callbackBotOf(req.url) : undefined;
    if (botId !== undefined) void serveCallback(deps, limit, req, res, botId || undefined);
    else void koa(req, res);
  };
}

/**
 * For a callback's path: '' for the shared `/wecom/callback`, the id for a bot's own
 * `/wecom/callback/{id}`; undefined for any other path.
 */
function callbackBotOf(url: string | undefined): string | undefined {
  if (!url?.startsWith(CALLBACK_PATH)) return undefined;
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path.length === CALLBACK_PATH.length) return '';
  if (path[CALLBACK_PATH.length] !== '/') return undefined;
  const id = path.slice(CALLBACK_PATH.length + 1);
  // Any id is looked up as it is (an unknown one is 404); a deeper path is not a callback's.
  return id && !id.includes('/') ? safeDecode(id) : undefined;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

async function serveCallback(
  deps: AppDeps & CallbackDeps,
  limit: number,
  req: IncomingMessage,
  res: ServerResponse,
  botId: string | undefined,
): Promise<void> {
  const requestId = requestIdOf(req.headers['x-request-id']);
  try {
    const body = await answerCallback(deps, {
      botId,
      query: queryOf(req.url),
      body: () => readBody(req, limit, CALLBACK_BODY_DEADLINE_MS),
      requestId,
      logger: deps.logger,
    });
    // The official demo and plugin answer the encrypted JSON as text/plain (docs/protocol/wecom.md §5.1).
    res.writeHead(200, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'x-request-id': requestId,
    });
    res.end(body);
  } catch (error) {
    const path = botId === undefined ? CALLBACK_PATH : `${CALLBACK_PATH}/${botId.slice(0, 64)}`;
    const answer = refuse(error, deps.logger.child({ requestId }), 'POST', path);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const headers: Record<string, string | number> = {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(answer.body),
      'x-request-id': requestId,
    };
    if (answer.retryAfter) headers['retry-after'] = String(answer.retryAfter);
    // A body left unread (refused as too large or too slow, or before it was read) is not drained:
    // Node closes the connection once this answer is flushed.
    if (hasUnreadBody(req)) headers.connection = 'close';
    res.writeHead(answer.status, headers);
    res.end(answer.body);
  }
}

function createKoaApp(deps: AppDeps & CallbackDeps): Koa {
  const app = new Koa({ proxy: true });
  const router = new Router();
  router.get(CALLBACK_PATH, verifyUrl(deps));
  router.get(`${CALLBACK_PATH}/:id`, verifyUrl(deps));
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    const results = await Promise.all(
      deps.readiness.map(async ({ name, check }) => {
        try {
          // Under the probes' own timeouts (2 s), so that the answer names what failed.
          await withTimeout(check(), 1500);
          return [name, 'ok'] as const;
        } catch (error) {
          return [name, `failed: ${(error as Error).message ?? 'unknown'}`] as const;
        }
      }),
    );
    const checks = Object.fromEntries(results);
    const draining = deps.isDraining();
    const bots = await withTimeout(deps.botsReadiness?.() ?? Promise.resolve(undefined), 1500).catch(
      (error: unknown) => ({ bots: { error: `failed: ${(error as Error).message}` }, ready: false }),
    );
    const ready = !draining && results.every(([, r]) => r === 'ok') && (bots?.ready ?? true);
    ctx.status = ready ? 200 : 503;
    ctx.body = {
      status: ready ? 'ready' : 'not ready',
      draining,
      checks,
      ...(bots ? { bots: bots.bots } : {}),
    };
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
  deps.extend?.(router);
  app.use(requestContext(deps.logger));
  app.use(closeUnreadBodies());
  app.use(errorBoundary());
  app.use(router.routes());
  app.use(router.allowedMethods());
  // Koa's own 'error' event would print stacks for errors we already answered; log them once instead.
  app.on('error', (error, ctx) => {
    if ((error as { code?: string }).code === 'ECONNRESET') return;
    deps.logger.warn({ err: error, path: ctx?.path }, 'http error');
  });
  return app;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    }),
  ]);
}
