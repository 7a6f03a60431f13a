// The Koa application: middleware in order (request context, error boundary), then the routes.
import Router from '@koa/router';
import Koa from 'koa';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { type CallbackDeps, receive, verifyUrl } from './callback.js';
import { errorBoundary, requestContext } from './middleware.js';

export interface ReadinessCheck {
  name: string;
  check: () => Promise<void>;
}

export interface AppDeps extends CallbackDeps {
  logger: Logger;
  metrics: Metrics;
  readiness: ReadinessCheck[];
  /** Extra routes (the inspector) mounted by the caller. */
  extend?: (router: Router) => void;
}

export function createHttpApp(deps: AppDeps): Koa {
  const app = new Koa({ proxy: true });
  const router = new Router();
  router.get('/wecom/callback', verifyUrl(deps));
  router.post('/wecom/callback', receive(deps));
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    const results = await Promise.all(
      deps.readiness.map(async ({ name, check }) => {
        try {
          await withTimeout(check(), 2000);
          return [name, 'ok'] as const;
        } catch (error) {
          return [name, `failed: ${(error as Error).message ?? 'unknown'}`] as const;
        }
      }),
    );
    const checks = Object.fromEntries(results);
    const draining = deps.isDraining();
    const ready = !draining && results.every(([, r]) => r === 'ok');
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'not ready', draining, checks };
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
  deps.extend?.(router);
  app.use(requestContext(deps.logger));
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
