// The composition root: builds the store, the authenticators, the bots (each with its Dify client),
// the runner and the HTTP app from the settings, starts listening, reads the bots again when asked
// (SIGHUP), and drains on shutdown.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Router from '@koa/router';
import { Authenticators } from './auth/factory.js';
import type { Authenticator } from './auth/types.js';
import { BotRegistry } from './bots/registry.js';
import type { BotConfig, Config } from './config.js';
import type { DifyErrorKind } from './dify/errors.js';
import { createHttpApp, type ReadinessCheck } from './http/app.js';
import { createMemoryRateLimiter, createRedisRateLimiter } from './limits/index.js';
import type { Logger } from './log.js';
import {
  type ConnectionBot,
  type ConnectionTuning,
  LongConnections,
  memoryConnectionState,
  redisConnectionState,
} from './longConnection/index.js';
import { createMetrics, type Metrics } from './metrics.js';
import type { PieceOptions } from './runner/pieces.js';
import { pollDelivery } from './runner/pollDelivery.js';
import type { AnswerFailureKind, AnswerSource, Delivery, ResponseUrlSender } from './runner/ports.js';
import { Runner } from './runner/runner.js';
import type { WriterOptions } from './runner/writer.js';
import { openStore, type RedisClient } from './store/index.js';
import type { StreamStore } from './store/port.js';
import { ResponseUrlClient } from './wecom/index.js';

/** The Dify client fails with exactly the answer source port's kinds (runner/failures.ts maps each). */
type SameKinds<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const difyFailsAsThePortSays: SameKinds<DifyErrorKind, AnswerFailureKind> = true;
void difyFailsAsThePortSays;

export interface ServiceOptions {
  config: Config;
  logger: Logger;
  /** Overrides, for tests and the demo. */
  store?: StreamStore;
  /** Every bot's answers, or each bot's, instead of its Dify app. */
  answers?: AnswerSource | ((bot: BotConfig) => AnswerSource);
  /** Every bot's authenticator. */
  auth?: Authenticator;
  /** Where what the bubble could not show is sent (WeCom's response_url). */
  responseUrl?: ResponseUrlSender;
  /** Of the store's and the rate limits' keys; REDIS_KEY_PREFIX when absent. */
  keyPrefix?: string | undefined;
  writer?: WriterOptions;
  pieces?: PieceOptions;
  metrics?: Metrics;
  /** The long connections' timings (tests shorten them). */
  longConnection?: ConnectionTuning;
}

export interface RunningService {
  url: string;
  port: number;
  runner: Runner;
  store: StreamStore;
  metrics: Metrics;
  server: Server;
  bots: BotRegistry;
  /**
   * Serve these bots from now on (the bots file read again): new callbacks go to them, answers
   * already running finish with the bot they started with. Throws, changing nothing, when a bot
   * cannot be built.
   */
  reloadBots(bots: readonly BotConfig[]): Promise<{ added: string[]; changed: string[]; removed: string[] }>;
  isDraining(): boolean;
  /** Graceful: refuse new messages, let answers finish up to the drain deadline, hand the rest over. */
  shutdown(): Promise<void>;
}

export async function startService(options: ServiceOptions): Promise<RunningService> {
  const { config, logger } = options;
  const metrics = options.metrics ?? createMetrics();
  let redis: RedisClient | undefined;
  let store = options.store;
  if (!store) {
    const opened = openStore(config.store, {
      prefix: options.keyPrefix ?? config.store.prefix,
      onError: (error) => logger.warn({ err: error }, 'redis connection error'),
      onIndexError: (error) => logger.warn({ err: error }, 'redis index update failed'),
    });
    ({ store, redis } = opened);
    if (opened.kind === 'memory')
      logger.warn(
        'REDIS_URL is not set: streams live in this process only. Run ONE node like this; set REDIS_URL for more.',
      );
  }
  const authenticators = new Authenticators(config.auth, {
    redis,
    ownKeyPrefix: options.keyPrefix ?? config.store.prefix,
    proxy: config.proxy,
    logger,
    onTokenRequest: (outcome) => metrics.tokenService.inc({ outcome }),
  });
  let bots: BotRegistry;
  try {
    bots = await BotRegistry.open(config.bots, {
      authenticators,
      logger,
      metrics,
      proxy: config.proxy,
      answers: options.answers,
      auth: options.auth,
      // An answer lasts its window, and what it could not show is sent after: an hour is ample.
      retireAfterMs: Math.max(3_600_000, 2 * config.stream.windowMs),
    });
  } catch (error) {
    await Promise.allSettled([authenticators.close(), options.store ? undefined : store.close()]);
    throw error;
  }
  const responseUrl: ResponseUrlSender & { close?: () => Promise<void> } =
    options.responseUrl ?? new ResponseUrlClient({ proxy: config.proxy });
  // The callback transport: WeCom polls, and the reply a poll sends is kept with every append. On the
  // long connection the same reply is pushed as frames (longConnection/), and what the bubble could not
  // show goes over the connection rather than a response_url.
  const polled = pollDelivery(responseUrl);
  let longConnections: LongConnections | undefined;
  const delivery: Delivery = {
    ...(polled.projection ? { projection: polled.projection } : {}),
    ...(polled.attach ? { attach: polled.attach } : {}),
    ...(polled.forget ? { forget: polled.forget } : {}),
    // Over the long connection an answer's files go as files; a callback's bubble has no room for them.
    sendsFiles: (view) => view.context.replyTo !== undefined && longConnections !== undefined,
    recorded: (streamId, view) => longConnections?.recorded(streamId, view),
    sendRest: (view, markdown) =>
      view.context.replyTo && longConnections
        ? longConnections.sendRest(view, markdown)
        : polled.sendRest(view, markdown),
  };
  // Across nodes in Redis; in this process with the in-memory store.
  const limiter = redis
    ? createRedisRateLimiter(redis, {
        prefix: options.keyPrefix ?? config.store.prefix,
        onError: (error) => {
          metrics.storeErrors.inc({ op: 'rate_limit' });
          logger.warn({ err: error }, 'rate limits not checked: the message goes on');
        },
      })
    : createMemoryRateLimiter();
  const runner = new Runner({
    store,
    bots,
    delivery,
    config,
    logger,
    metrics,
    ...(options.writer ? { writer: options.writer } : {}),
    ...(options.pieces ? { pieces: options.pieces } : {}),
    limiter,
  });
  // Orphans exist only where other nodes can die while this one lives: a shared store. (Tests that
  // pass their own store decide for themselves.)
  if (redis) runner.startSweeping();
  const prefix = options.keyPrefix ?? config.store.prefix;
  longConnections = new LongConnections({
    runner,
    store,
    state: redis ? redisConnectionState(redis, prefix) : memoryConnectionState(),
    node: config.nodeId,
    leaseMs: config.stream.leaseMs,
    push: config.wecom.ws,
    logger,
    metrics,
    tuning: options.longConnection,
  });
  const connections = longConnections;
  await connections.update(connectionBotsOf(bots));
  // A long-connection bot is down when no node has held it subscribed for longer than a lease and
  // the back-off's cap: time enough for another node to take over.
  const downAfterMs = config.stream.leaseMs + (options.longConnection?.backoffCapMs ?? 30_000);
  const botsReadiness = async () => {
    const connected = await connections.readiness();
    let ready = true;
    const out: Record<string, unknown> = {};
    for (const bot of bots.list()) {
      const c = connected[bot.id];
      if (!c) {
        out[bot.id] = { mode: 'callback' };
        continue;
      }
      const { downForMs, ...shown } = c;
      if (downForMs !== undefined && downForMs > downAfterMs) ready = false;
      out[bot.id] = shown;
    }
    return { bots: out, ready };
  };
  let draining = false;
  const readiness: ReadinessCheck[] = [{ name: 'store', check: () => store.ping() }];
  // The directory is checked once a bot uses it (a test's own authenticator answers for itself).
  if (options.auth?.ping) readiness.push({ name: 'directory', check: () => options.auth!.ping!() });
  else if (!options.auth && config.bots.some((b) => b.auth.mode !== 'none'))
    readiness.push({ name: 'directory', check: () => authenticators.ping() });
  // The inspector is loaded only where it is switched on.
  const inspector = config.inspector.enabled ? await import('./http/inspector/index.js') : undefined;
  const app = createHttpApp({
    bots,
    runner,
    config,
    metrics,
    logger,
    readiness,
    botsReadiness,
    isDraining: () => draining,
    ...(inspector
      ? {
          extend: (router: Router) =>
            inspector.mountInspector(router, {
              store,
              token: config.inspector.token,
              logger,
              windowMs: config.stream.windowMs,
            }),
        }
      : {}),
  });
  if (config.inspector.enabled && !config.inspector.token)
    logger.warn('INSPECTOR=1 without INSPECTOR_TOKEN: anyone who reaches this port can read every stream');
  const server = createServer(
    {
      // Node looks for requests past these every connectionsCheckingInterval (30 s by default), and
      // takes the larger of the two as the request timeout when headersTimeout exceeds requestTimeout:
      // with 66 s and 30 s a body trickling a byte a second held its connection for 90 s.
      headersTimeout: 10_000,
      requestTimeout: 15_000,
      connectionsCheckingInterval: 1_000,
    },
    app,
  ).listen({ port: config.port, host: config.host });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  // Keep-alive from a load balancer should outlive its own idle timeout. (The headers timeout runs
  // from a request's first byte, not over an idle keep-alive connection: it need not exceed this.)
  server.keepAliveTimeout = 65_000;
  const { port } = server.address() as AddressInfo;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  logger.info(
    {
      port,
      host: config.host,
      node: config.nodeId,
      store: redis ? 'redis' : 'memory',
      bots: config.bots.map((b) => b.id),
    },
    'listening',
  );

  let shuttingDown: Promise<void> | undefined;
  const shutdown = () => {
    shuttingDown ??= (async () => {
      draining = true;
      metrics.draining.set(1);
      logger.info({ inflight: runner.inflight, deadlineMs: config.stream.drainMs }, 'draining');
      const result = await runner.drain(config.stream.drainMs);
      logger.info(result, 'drained');
      // The answers finished here are pushed out; the rest are carried on by the next holder.
      await connections.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 1000).unref();
      });
      await Promise.allSettled([
        bots.close(),
        responseUrl.close?.(),
        authenticators.close(),
        options.auth?.close(),
        store.close(),
      ]);
      logger.info('stopped');
    })();
    return shuttingDown;
  };
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    runner,
    store,
    metrics,
    server,
    bots,
    reloadBots: async (next) => {
      const changes = await bots.replace(next);
      await connections.update(connectionBotsOf(bots));
      return changes;
    },
    isDraining: () => draining,
    shutdown,
  };
}

/** The long-connection bots among those served, as their connections need them. */
function connectionBotsOf(bots: BotRegistry): ConnectionBot[] {
  return bots.list().flatMap((bot) => {
    const lc = bot.config.longConnection;
    if (!lc) return [];
    return [
      {
        id: bot.id,
        name: bot.name,
        aibotid: bot.aibotid,
        // The bot served when the event comes: a reload that changes only its welcome keeps the
        // connection (compared as JSON, which leaves functions out) yet takes the new welcome.
        welcome: () => (bots.bot(bot.id) ?? bot).welcome(),
        longConnection: lc,
      },
    ];
  });
}
