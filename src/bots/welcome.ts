// A bot's welcome, the reply to `enter_chat` (docs/protocol/wecom.md §6.6): its Dify app's opening
// statement and suggested questions, or the bot's welcome text where the app has none or Dify cannot
// say in time. WeCom takes the welcome within 5 s only and, unanswered, does not send the event again
// that day: so a lookup is waited for a short while at most, and what it found is kept and answers at
// once, refreshed in the background once it is old (stale while revalidate).
import { randomBytes } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { type DifyOpening, fetchDifyParameters } from '../dify/parameters.js';
import { cardTaskId, type TemplateCard, welcomeCard } from '../machines/index.js';
import { outboundAgent, type ProxySettings } from '../outbound.js';

/**
 * What a user who opens the bot's chat is sent: a text, or a card whose buttons ask the questions the
 * Dify app suggests (enter_chat takes either, docs/protocol/wecom.md §5.2).
 */
export type WelcomeReply =
  | { msgtype: 'text'; text: { content: string } }
  | { msgtype: 'template_card'; template_card: TemplateCard };

export const textWelcomeReply = (content: string): WelcomeReply => ({ msgtype: 'text', text: { content } });

/** The welcome to send a user who opens the bot's chat. */
export interface Welcome {
  reply(): Promise<WelcomeReply>;
  /** Look the welcome up now, in the background: the bot is new. */
  warm(): void;
  close(): Promise<void>;
}

/** The welcome of a bot that always sends its welcome text (or has no Dify to ask). */
export function textWelcome(welcomeText: string): Welcome {
  return { reply: async () => textWelcomeReply(welcomeText), warm() {}, close: async () => {} };
}

/** The line before the suggested questions. */
const QUESTIONS_INTRO = '你可以问我：';

/** What a card shows well: a title of 26 characters, a text under it of 112 (WeCom's advice). */
const TITLE_CHARS = 26;
const SUBTITLE_CHARS = 112;

/**
 * The opening as the user sees it: the welcome text where the app has no opening statement; a card
 * where it suggests questions and its statement fits one (its first line the title, the rest under
 * it), each question a button that asks it; otherwise the statement, then the questions as a list.
 */
export function renderWelcome(opening: DifyOpening, welcomeText: string): WelcomeReply {
  const statement = opening.openingStatement.trim();
  if (statement === '') return textWelcomeReply(welcomeText);
  if (opening.suggestedQuestions.length === 0) return textWelcomeReply(statement);
  const [first = '', ...rest] = statement.split('\n');
  const under = rest.join('\n').trim();
  if ([...first].length <= TITLE_CHARS && [...under].length <= SUBTITLE_CHARS)
    // Given a task id of its own as each welcome is sent (`fresh`).
    return {
      msgtype: 'template_card',
      template_card: welcomeCard(first, under, opening.suggestedQuestions, '-'),
    };
  const questions = opening.suggestedQuestions.map((q) => `- ${q}`).join('\n');
  return textWelcomeReply(`${statement}\n\n${QUESTIONS_INTRO}\n${questions}`);
}

/** The pino methods used; a pino logger fits. */
interface WelcomeLogger {
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
}

export interface DifyWelcomeOptions {
  apiUrl: string;
  apiKey: string;
  proxy?: ProxySettings | undefined;
  welcomeText: string;
  /** The bot's Dify timeout: a lookup in the background takes no longer than this, nor than LOOKUP_MS. */
  timeoutMs: number;
  logger: WelcomeLogger;
  /** How long a welcome Dify gave is sent as it is. Default 10 minutes. */
  freshMs?: number;
  /** How long a user's welcome waits for a lookup when none is kept. Default 2 s. */
  waitMs?: number;
  /** How long after a failed lookup Dify is asked again. Default 30 s. */
  retryMs?: number;
  now?: () => number;
}

/** A lookup may finish after the welcome that waited for it gave up: its answer is kept for the next. */
const LOOKUP_MS = 10_000;

export class DifyWelcome implements Welcome {
  readonly #o: DifyWelcomeOptions;
  readonly #agent: Dispatcher;
  readonly #closing = new AbortController();
  readonly #now: () => number;
  readonly #lookupMs: number;
  /** The last welcome found, and until when it is sent without asking Dify again. */
  #kept: { reply: WelcomeReply; until: number } | undefined;
  #lookup: Promise<WelcomeReply> | undefined;
  #failing = false;

  constructor(options: DifyWelcomeOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#lookupMs = Math.min(options.timeoutMs, LOOKUP_MS);
    this.#agent = outboundAgent(options.proxy, {
      connect: { timeout: this.#lookupMs },
      keepAliveTimeout: 4_000,
    });
  }

  async reply(): Promise<WelcomeReply> {
    return fresh(await this.#current());
  }

  async #current(): Promise<WelcomeReply> {
    const kept = this.#kept;
    if (kept) {
      if (this.#now() >= kept.until) void this.#refresh();
      return kept.reply;
    }
    return this.#within(this.#refresh(), this.#o.waitMs ?? 2_000);
  }

  warm(): void {
    void this.#refresh();
  }

  async close(): Promise<void> {
    this.#closing.abort();
    await this.#agent.destroy().catch(() => undefined);
  }

  /** The lookup under way, or a new one; it resolves to the welcome, never rejects. */
  #refresh(): Promise<WelcomeReply> {
    if (this.#closing.signal.aborted)
      return Promise.resolve(this.#kept?.reply ?? textWelcomeReply(this.#o.welcomeText));
    this.#lookup ??= this.#look().finally(() => {
      this.#lookup = undefined;
    });
    return this.#lookup;
  }

  async #look(): Promise<WelcomeReply> {
    const { apiUrl, apiKey, welcomeText, logger } = this.#o;
    const result = await fetchDifyParameters(
      { apiUrl, apiKey, timeoutMs: this.#lookupMs },
      { dispatcher: this.#agent, signal: this.#closing.signal },
    );
    if (this.#closing.signal.aborted) return this.#kept?.reply ?? textWelcomeReply(welcomeText);
    if (result.ok) {
      if (this.#failing) logger.info({ dify: apiUrl }, 'welcome: the Dify app’s opening is sent again');
      this.#failing = false;
      const reply = renderWelcome(result.opening, welcomeText);
      this.#kept = { reply, until: this.#now() + (this.#o.freshMs ?? 600_000) };
      return reply;
    }
    if (!this.#failing)
      logger.warn(
        { dify: apiUrl, code: result.code, status: result.status, err: result.message },
        'welcome: the Dify app’s opening could not be looked up; the welcome text is sent instead',
      );
    this.#failing = true;
    // What Dify said before still beats the welcome text; either is sent at once until Dify is asked
    // again, rather than every user who opens the chat waiting on a Dify that is down.
    const reply = this.#kept?.reply ?? textWelcomeReply(welcomeText);
    this.#kept = { reply, until: this.#now() + (this.#o.retryMs ?? 30_000) };
    return reply;
  }

  /** The lookup's welcome if it comes within `ms`, else the welcome text. */
  async #within(lookup: Promise<WelcomeReply>, ms: number): Promise<WelcomeReply> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<WelcomeReply>((resolve) => {
      timer = setTimeout(() => resolve(textWelcomeReply(this.#o.welcomeText)), ms);
    });
    try {
      return await Promise.race([lookup, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A card's task id is unique per card sent (WeCom's rule): each welcome gets its own. */
function fresh(reply: WelcomeReply): WelcomeReply {
  if (reply.msgtype !== 'template_card') return reply;
  return {
    ...reply,
    template_card: {
      ...reply.template_card,
      task_id: cardTaskId('welcome', randomBytes(12).toString('base64url')),
    },
  };
}
