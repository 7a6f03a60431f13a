// The inspector's routes: the page and its assets under /inspector, JSON under /inspector/api. It
// only reads the store (listStreams, read, getLease); a look never changes a stream. Its answers are
// JSON, including its errors, so it maps them itself rather than through the service's text boundary.
import type Router from '@koa/router';
import type { Context, Next } from 'koa';
import { z } from 'zod';
import { defaultStuckSettings, diagnoseStuck, type StreamFacts } from '../../diagnosis/stuck.js';
import type { Logger } from '../../log.js';
import { hideResponseUrl } from '../../machines/hiddenResponseUrl.js';
import {
  defaultTexts,
  isFinished,
  isKnown,
  isRunning,
  type StreamSnapshot,
  stateOf,
  streamMachine,
  type Texts,
} from '../../machines/index.js';
import { isStreamId } from '../../store/keys.js';
import type { Lease, StreamStore } from '../../store/port.js';
import { requireToken } from './access.js';
import type { ApiError, Chart, Step, StreamDetail, StreamList, StreamRow } from './api.js';
import { readAsset } from './assets.js';
import { chartOf } from './chart.js';
import { replaySteps } from './steps.js';

export interface InspectorDeps {
  store: StreamStore;
  /** INSPECTOR_TOKEN: when set, every inspector request must carry it. */
  token?: string | undefined;
  logger: Logger;
  /** The bubble texts the runner uses, when they are not the defaults. */
  texts?: Texts;
  /** The store's clock, for tests; the age of a stream and whether its lease is live follow it. */
  now?: () => number;
  /** WeCom's polling window (STREAM_WINDOW_SECONDS), for "the bubble can no longer change". */
  windowMs?: number;
}

/** A stream's events as stored, for `wecom-dify replay --url`, which folds them itself. */
export interface StreamEvents {
  now: number;
  streamId: string;
  lease: Lease | null;
  /** Each event as stored; one this version cannot read, as it was written. */
  events: { seq: number; id: string; event: unknown }[];
}

type ErrorCode = 'not_found' | 'bad_request' | 'store_unavailable' | 'internal';

const statusOf: Record<ErrorCode, number> = {
  not_found: 404,
  bad_request: 400,
  store_unavailable: 503,
  internal: 500,
};

/** A refusal the inspector answers as `{error, message}`; the message is safe to show. */
class InspectorError extends Error {
  override readonly name = 'InspectorError';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const MAX_LIMIT = 500;

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_LIMIT).default(50),
  unfinished: z.enum(['1', 'true', '0', 'false']).optional(),
  /** One bot's streams, by its id. */
  bot: z.string().min(1).max(64).optional(),
});

// The page is plain HTML, CSS and JS from this server only; the policy makes sure of it.
const pagePolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function mountInspector(router: Router, deps: InspectorDeps): void {
  const { store } = deps;
  const log = deps.logger.child({ component: 'inspector' });
  const texts = deps.texts ?? defaultTexts;
  const now = deps.now ?? Date.now;
  const stuckSettings = { ...defaultStuckSettings, ...(deps.windowMs ? { windowMs: deps.windowMs } : {}) };
  // Read from the machine's definition once: it is code, it does not change while we run.
  const chart = chartOf(streamMachine);
  const guard = requireToken(deps.token);

  /** Every store call: a failure becomes a 503 with a clear message, logged with its cause. */
  async function fromStore<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      log.error({ err: error, code, call: what }, 'inspector: the event store failed');
      throw new InspectorError(
        'store_unavailable',
        `the event store did not answer (${what}${typeof code === 'string' ? `: ${code}` : ''}); try again shortly`,
      );
    }
  }

  const common = async (ctx: Context, next: Next) => {
    // The token may travel in the URL: keep it out of caches and of other sites' Referer headers.
    ctx.set('cache-control', 'no-store');
    ctx.set('referrer-policy', 'no-referrer');
    ctx.set('x-content-type-options', 'nosniff');
    await next();
  };

  const api =
    (handler: (ctx: Context) => Promise<unknown>) =>
    async (ctx: Context): Promise<void> => {
      try {
        ctx.body = await handler(ctx);
      } catch (error) {
        const known = error instanceof InspectorError;
        if (!known) log.error({ err: error, path: ctx.path }, 'inspector: request failed');
        const code: ErrorCode = known ? error.code : 'internal';
        ctx.status = statusOf[code];
        ctx.body = {
          error: code,
          message: known ? error.message : 'internal error; see the service log',
        } satisfies ApiError;
        if (code === 'store_unavailable') ctx.set('retry-after', '2');
      }
    };

  const page = async (ctx: Context) => {
    const html = await readAsset('index.html');
    if (!html) throw new Error('inspector assets are missing: index.html');
    // The browser fetches the page's assets itself, with no Authorization header: a token that came
    // in the URL goes on to their URLs. It passed the guard, so it is the right one; it is escaped.
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : undefined;
    const assetQuery = token ? `?token=${encodeURIComponent(token)}` : '';
    ctx.set('content-security-policy', pagePolicy);
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = html.body.toString('utf8').replaceAll('{{assetQuery}}', escapeHtml(assetQuery));
  };

  router.get('/inspector', common, guard, page);
  router.get('/inspector/', common, guard, page);

  router.get('/inspector/assets/:file', common, guard, async (ctx) => {
    const asset = await readAsset(ctx.params.file ?? '');
    if (!asset) {
      ctx.status = 404;
      ctx.body = { error: 'not_found', message: 'no such asset' };
      return;
    }
    ctx.type = asset.type;
    ctx.body = asset.body;
  });

  router.get(
    '/inspector/api/machine',
    common,
    guard,
    api(async (): Promise<Chart> => chart),
  );

  router.get(
    '/inspector/api/streams',
    common,
    guard,
    api(async (ctx): Promise<StreamList> => {
      const query = listQuery.safeParse(ctx.query);
      if (!query.success)
        throw new InspectorError(
          'bad_request',
          `limit must be 1..${MAX_LIMIT}, unfinished 1 or 0, and bot a bot's id`,
        );
      const { limit, unfinished, bot } = query.data;
      const unfinishedOnly = unfinished === '1' || unfinished === 'true';
      // The store lists every bot's streams: for one bot's, look through as many as a list may show.
      const scan = bot === undefined ? limit : MAX_LIMIT;
      const listed = await fromStore('listStreams', () => store.listStreams({ limit: scan, unfinishedOnly }));
      const summaries = bot === undefined ? listed : listed.filter((s) => s.bot === bot).slice(0, limit);
      const at = now();
      return {
        now: at,
        streams: summaries.map((s): StreamRow => {
          const { lease, stuck } = diagnoseStuck(s, s.lease, at, stuckSettings);
          return { ...s, leaseLive: lease.status === 'held', ...(stuck ? { stuck } : {}) };
        }),
      };
    }),
  );

  /** The stream the request names: its events and its lease, or not_found. */
  async function streamOf(ctx: Context) {
    const notFound = () => new InspectorError('not_found', 'no such stream (never opened, or expired)');
    // Anything unlike a stream id (store/keys.ts) cannot be a stream.
    const streamId = String(ctx.params.id ?? '');
    if (!isStreamId(streamId)) throw notFound();
    const [events, lease] = await Promise.all([
      fromStore('read', () => store.read(streamId)),
      fromStore('getLease', () => store.getLease(streamId)),
    ]);
    if (events.length === 0) throw notFound();
    return { streamId, events, lease };
  }

  /** The stream a queued one waits behind, and its state: often the whole answer to "why is it stuck". */
  async function behindOf(snapshot: StreamSnapshot): Promise<StreamFacts['behind']> {
    const streamId = snapshot.context.queuedBehind;
    if (!streamId || stateOf(snapshot) !== 'queued') return undefined;
    const loaded = await fromStore('load', () => store.load(streamId));
    return { streamId, state: loaded ? stateOf(loaded.view) : 'gone (expired)' };
  }

  router.get(
    '/inspector/api/streams/:id',
    common,
    guard,
    api(async (ctx): Promise<StreamDetail> => {
      const { streamId, events, lease } = await streamOf(ctx);
      const { steps, snapshot } = replaySteps(events, texts);
      const { answer, ...rest } = snapshot.context;
      const context = hideResponseUrl(rest);
      const behind = await behindOf(snapshot);
      const at = now();
      const diagnosis = diagnoseStuck(factsOf(snapshot, steps, behind), lease, at, stuckSettings);
      return {
        now: at,
        streamId,
        version: events.length,
        state: stateOf(snapshot),
        finished: isFinished(snapshot),
        running: isRunning(snapshot),
        context,
        answerLength: answer.length,
        lease: lease ?? null,
        leaseLive: diagnosis.lease.status === 'held',
        diagnosis,
        steps,
      };
    }),
  );

  router.get(
    '/inspector/api/streams/:id/events',
    common,
    guard,
    api(async (ctx): Promise<StreamEvents> => {
      const { streamId, events, lease } = await streamOf(ctx);
      return {
        now: now(),
        streamId,
        lease: lease ?? null,
        events: events.map(({ seq, id, event }) => ({
          seq,
          id,
          event: hideResponseUrl(isKnown(event) ? event : event.raw),
        })),
      };
    }),
  );

  router.get(
    '/inspector/api/{*rest}',
    common,
    guard,
    api(async () => {
      throw new InspectorError('not_found', 'no such inspector API');
    }),
  );
}

/** What the fold of a stream's events tells the diagnosis. */
function factsOf(
  snapshot: StreamSnapshot,
  steps: readonly Step[],
  behind: StreamFacts['behind'],
): StreamFacts {
  // A long answer has many thousand steps: no spread into Math.max.
  const lastEventAt = steps.reduce<number | undefined>(
    (last, s) => (s.at === undefined ? last : Math.max(last ?? s.at, s.at)),
    undefined,
  );
  const taken = steps.findLast((s) => s.outcome === 'moved' || s.outcome === 'stayed');
  return {
    state: stateOf(snapshot),
    finished: isFinished(snapshot),
    openedAt: snapshot.context.openedAt,
    ...(lastEventAt !== undefined ? { lastEventAt } : {}),
    stateSince: snapshot.context.lastEventAt,
    ...(taken ? { lastTaken: taken.type } : {}),
    ...(behind ? { behind } : {}),
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
