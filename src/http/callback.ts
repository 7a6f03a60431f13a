// The WeCom callback route: find the bot, verify, decrypt, parse, dispatch, and reply with the
// encrypted envelope (docs/protocol/wecom.md §3–§5). A bot's own path (`/wecom/callback/{id}`) names
// it; the bare path serves whichever bot's Token signed the callback. One log line per callback: bot,
// msgid, aibotid, msgtype, userid, outcome, ms; at `debug` for a poll answered as usual.
import type { Context } from 'koa';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { type Metrics, msgtypeLabel } from '../metrics.js';
import { clickOf, feedbackOf, incomingOf } from '../runner/incoming.js';
import type { Runner } from '../runner/runner.js';
import { type CallbackQuery, parseMessage, type WecomCrypto, type WecomMessage } from '../wecom/index.js';
import { emptyReply, updateCardReply } from '../wecom/reply.js';
import { answerFor, type HttpAnswer, HttpError } from './errors.js';
import type { CallbackClock } from './freshness.js';
import type { State } from './middleware.js';

/** A bot, as its callbacks need it. */
export interface CallbackBot {
  id: string;
  crypto: WecomCrypto;
  /** The name it is @mentioned by (taken off a group question). */
  name?: string | undefined;
  /** When set, callbacks whose aibotid differs are refused. */
  aibotid?: string | undefined;
  /** The reply to `enter_chat` (a text, or a card), ready within WeCom's 5 s. */
  welcome(): Promise<object>;
}

/** The bots a node serves, as the callback route finds them. */
export interface CallbackBots {
  /** The bot of its own path. */
  byId(id: string): CallbackBot | undefined;
  /** The bot whose Token signed this callback (`body` for a POST; a GET's is its query's echostr). */
  bySignature(query: CallbackQuery, body?: unknown): CallbackBot | undefined;
}

export interface CallbackDeps {
  bots: CallbackBots;
  runner: Runner;
  config: Pick<Config, 'wecom'>;
  metrics: Metrics;
  /** True while the node drains: new messages are refused so WeCom retries them elsewhere. */
  isDraining: () => boolean;
  /** Refuses a signed callback whose timestamp is too far from now (a replay), and records the skew. */
  clock: CallbackClock;
  bodyLimit?: number;
}

export type Query = Record<string, string | undefined>;

/**
 * The first value of each query parameter, URL-decoded as URLSearchParams decodes it (a repeated one
 * counts by its first). Split by hand: every poll comes here, and its four parameters need no decoding.
 */
export function queryOf(url: string | undefined): Query {
  const at = url?.indexOf('?') ?? -1;
  const q: Query = {};
  if (at < 0 || !url) return q;
  // As URLSearchParams, a second `?` at the start of the query is dropped.
  for (let start = url[at + 1] === '?' ? at + 2 : at + 1; start <= url.length; ) {
    let end = url.indexOf('&', start);
    if (end < 0) end = url.length;
    if (end > start) {
      const eq = url.indexOf('=', start);
      const split = eq >= 0 && eq < end;
      const key = decodeParam(url.slice(start, split ? eq : end));
      if (!Object.hasOwn(q, key)) q[key] = decodeParam(split ? url.slice(eq + 1, end) : '');
    }
    start = end + 1;
  }
  return q;
}

/** A query component as URLSearchParams reads it: `+` a space, `%XX` decoded, a bad escape kept. */
function decodeParam(text: string): string {
  if (!text.includes('%') && !text.includes('+')) return text;
  return new URLSearchParams(`a=${text}`).get('a') ?? '';
}

/** A signed callback names its signature, timestamp and nonce: without them it is a 400, not a 401. */
function requireSignatureParams(q: Query): asserts q is Query & { nonce: string; timestamp: string } {
  if (!q.nonce || !q.timestamp || !(q.msg_signature ?? q.msgsignature ?? q.signature))
    throw new HttpError('missing_params', 'msg_signature, timestamp and nonce are required');
}

/**
 * The bot a callback is for: the one its path names (`id`; an unknown id is 404), or on the shared
 * path the one whose Token signed it (none: 401, as any bad signature).
 */
export function botOf(bots: CallbackBots, id: string | undefined, query: Query, body?: unknown): CallbackBot {
  if (id !== undefined) {
    const bot = bots.byId(id);
    if (!bot) throw new HttpError('not_found', `no bot ${JSON.stringify(id.slice(0, 40))} here`);
    return bot;
  }
  requireSignatureParams(query);
  const bot = bots.bySignature(query, body);
  if (!bot) throw new HttpError('bad_signature', "no bot's Token signed this callback");
  return bot;
}

/** GET: URL verification. Answer the bare echostr plaintext, within WeCom's 1 s (§3). */
export function verifyUrl(deps: CallbackDeps) {
  return async (ctx: Context) => {
    let plain: string;
    const log = (ctx.state as State).log;
    let bot: CallbackBot | undefined;
    try {
      const query = queryOf(ctx.url);
      bot = botOf(deps.bots, ctx.params?.id, query);
      plain = bot.crypto.verifyUrl(query);
      deps.clock.check(query.timestamp ?? '', () => log);
    } catch (error) {
      deps.metrics.countCallback(bot?.id ?? '', 'verify', refusal(answerFor(error)));
      throw error;
    }
    deps.metrics.countCallback(bot.id, 'verify', 'verified');
    log.info({ bot: bot.id, outcome: 'verified' }, 'callback URL verified');
    ctx.type = 'text/plain';
    ctx.body = plain;
  };
}

/** The outcome label of a refused callback: `rejected` for a 4xx (its fault), `error` for a 5xx (ours). */
const refusal = (answer: HttpAnswer): 'rejected' | 'error' => (answer.status >= 500 ? 'error' : 'rejected');

/** What `answerCallback` needs of a POST: its query, its body (read on demand) and its logger. */
export interface CallbackRequest {
  /** The bot its path names (`/wecom/callback/{id}`); undefined on the shared path. */
  botId?: string | undefined;
  query: Query;
  /** The raw body, bounded by the caller. */
  body: () => Promise<Buffer>;
  requestId: string;
  /** The root logger: the callback's line names its request id itself (a child per poll costs). */
  logger: Logger;
}

/**
 * POST: a message, an event or a refresh poll. Returns the encrypted envelope as JSON text; throws
 * what the error boundary answers. It runs on every poll, so it is served outside Koa (app.ts).
 */
export async function answerCallback(deps: CallbackDeps, req: CallbackRequest): Promise<string> {
  const started = performance.now();
  const { query: q, requestId, logger } = req;
  /** The request's logger, made only when something more than the callback's line is said. */
  let child: Logger | undefined;
  const log = () => {
    child ??= logger.child({ requestId });
    return child;
  };
  let message: WecomMessage | undefined;
  let bot: CallbackBot | undefined;
  let outcome = 'error';
  let streamId: string | undefined;
  let refused: 'rejected' | 'error' | undefined;
  try {
    requireSignatureParams(q);
    const raw = await req.body();
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new HttpError('bad_body', 'the body is not JSON');
    }
    bot = botOf(deps.bots, req.botId, q, body);
    const plaintext = bot.crypto.decryptCallback(q, body);
    // Once the signature holds, before anything is done: a replay is refused here.
    deps.clock.check(q.timestamp, log);
    message = parseMessage(plaintext, { botName: bot.name });
    if (bot.aibotid && message.aibotid !== bot.aibotid)
      throw new HttpError('wrong_bot', `aibotid ${message.aibotid} is not bot ${bot.id}'s (${bot.aibotid})`);
    const dispatched = await dispatch(deps, bot, message, log);
    const { reply, result } = dispatched;
    outcome = result;
    streamId = dispatched.streamId;
    const replyJson = typeof reply === 'string' ? reply : JSON.stringify(reply);
    return JSON.stringify(bot.crypto.encryptReply(replyJson, q.nonce, q.timestamp));
  } catch (error) {
    const answer = answerFor(error);
    refused = refusal(answer);
    outcome = `${refused}:${answer.code}`;
    throw error;
  } finally {
    const msgtype = message?.msgtype ?? 'unparsed';
    const seconds = (performance.now() - started) / 1000;
    const botId = bot?.id ?? '';
    const polled = msgtype === 'stream' && !refused;
    if (polled) deps.metrics.observePoll(botId, seconds);
    deps.metrics.countCallback(botId, msgtypeLabel(msgtype), refused ?? outcome);
    // A poll answered as usual says nothing new: WeCom sends one a second for every answer on its
    // way, so at `info` they would be most of a busy node's lines, and the line costs a poll 5–10% of
    // its CPU. The metrics count and time every poll; a refused or slow one is logged like any callback.
    const routine = polled && seconds < SLOW_POLL_SECONDS;
    if (!routine || logger.isLevelEnabled('debug'))
      logger[routine ? 'debug' : 'info'](
        {
          requestId,
          bot: bot?.id ?? req.botId,
          // The answer this callback is about: a poll's own msgid is the poll's, not the message's.
          streamId: streamId ?? (message?.kind === 'stream' ? message.stream.id : undefined),
          msgid: message?.msgid,
          aibotid: message?.aibotid,
          msgtype,
          userid: message?.from?.userid,
          chattype: message?.chattype,
          outcome,
          durationMs: Math.round(seconds * 100_000) / 100,
        },
        'callback',
      );
  }
}

/** A poll that took this long is logged at `info`: a node or its Redis struggling shows in the log. */
export const SLOW_POLL_SECONDS = 1;

async function dispatch(
  deps: CallbackDeps,
  bot: CallbackBot,
  m: WecomMessage,
  log: () => Logger,
): Promise<{ reply: object | string; result: string; streamId?: string }> {
  switch (m.kind) {
    case 'stream':
      // The poll's reply comes as JSON text already (often as the owner stored it).
      return { reply: await deps.runner.poll(m.stream.id, bot.id), result: 'polled' };
    case 'text':
    case 'voice':
    case 'mixed':
    case 'image':
    case 'file': {
      if (deps.isDraining()) throw new HttpError('draining', 'draining: refusing a new message');
      const accepted = await deps.runner.accept(incomingOf(m, bot.id));
      return {
        reply: accepted.reply,
        result: accepted.duplicate ? 'duplicate' : 'accepted',
        streamId: accepted.streamId,
      };
    }
    case 'enter_chat':
      return { reply: await bot.welcome(), result: 'welcomed' };
    case 'feedback_event': {
      // Only an empty reply is allowed (§5.2); Dify hears of the rating in the background.
      const feedback = feedbackOf(m);
      deps.runner
        .feedback(feedback, bot.id)
        .catch((error: unknown) => log().warn({ err: error }, 'feedback could not be recorded'));
      return { reply: emptyReply(), result: 'event', streamId: feedback.id };
    }
    case 'template_card_event': {
      // WeCom waits 5 s for the card's new look, once; a click it could not be given is left as it was.
      const card = await deps.runner.click(clickOf(m), bot.id).catch((error: unknown) => {
        log().warn({ err: error }, 'a card click could not be handled');
        return undefined;
      });
      return {
        reply: card ? updateCardReply(card) : emptyReply(),
        result: card ? 'clicked' : 'event',
        ...(m.event.template_card_event.task_id ? { streamId: m.event.template_card_event.task_id } : {}),
      };
    }
    default:
      // Kept and logged by the caller's line; answered harmlessly so WeCom does not retry.
      return { reply: emptyReply(), result: 'ignored' };
  }
}
