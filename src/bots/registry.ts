// The bots a node serves, built from their settings: each with its own WeCom crypto, Dify client,
// authenticator, media downloads, texts and welcome. The runner finds a stream's bot here by id; the
// callback route finds a request's bot by its path, or, on the one URL all bots may share, by whose
// Token signed it. On SIGHUP the bots file is read again and `replace` swaps the set: a bot whose settings
// did not change is kept as it is, a new or changed one is built, and what a changed or removed bot
// held (its Dify connections) is closed only once the answers it was running have had time to end,
// since an answer keeps the bot it started with.
import type { Authenticators } from '../auth/factory.js';
import type { Authenticator } from '../auth/types.js';
import type { BotConfig } from '../botsFile.js';
import { textsOf } from '../botsFile.js';
import { checkDifyApp } from '../dify/appCheck.js';
import { DifyClient } from '../dify/index.js';
import type { Logger } from '../log.js';
import { announceBot, type Metrics } from '../metrics.js';
import type { ProxySettings } from '../outbound.js';
import type { AnswerSource, Bot, Bots } from '../runner/ports.js';
import { type CallbackQuery, MediaFetcher, signerOf, WecomCrypto } from '../wecom/index.js';
import { DifyWelcome, textWelcome, type Welcome, type WelcomeReply } from './welcome.js';

/** A bot as the node serves it: what its answers need (`Bot`) and what its callbacks need. */
export interface ServedBot extends Bot {
  config: BotConfig;
  /** A callback bot's crypto; a long-connection bot has none. */
  crypto?: WecomCrypto | undefined;
  /** The name it is @mentioned by, taken off a group question. */
  name?: string | undefined;
  /** When set, callbacks whose aibotid differs are refused. */
  aibotid?: string | undefined;
  welcomeText: string;
  /** The reply to a user opening the bot's chat: its Dify app's opening, or `welcomeText` (welcome.ts). */
  welcome(): Promise<WelcomeReply>;
}

/** A bot WeCom reaches by callback. */
export type CallbackServedBot = ServedBot & { crypto: WecomCrypto };

const byCallback = (bot: ServedBot | undefined): bot is CallbackServedBot => bot?.crypto !== undefined;

type Closable = AnswerSource & { close?: () => Promise<void> };

export interface BotRegistryOptions {
  /** The deployment's authenticators, shared by the bots (one per mode). */
  authenticators: Authenticators;
  logger: Logger;
  /** Where each bot's series are made, at 0, when it is first served. */
  metrics?: Metrics | undefined;
  proxy?: ProxySettings | undefined;
  /** Every bot's answers from here instead of its Dify app (tests, the demo). */
  answers?: AnswerSource | ((bot: BotConfig) => AnswerSource) | undefined;
  /** Every bot's authenticator (tests). */
  auth?: Authenticator | undefined;
  /** Whether each new bot's Dify app is looked up (`GET /info`) and the outcome logged. Default true. */
  checkDify?: boolean;
  /** How long a replaced bot's connections stay open for the answers it still runs. */
  retireAfterMs: number;
}

interface Held {
  bot: ServedBot;
  /** The settings it was built from, as text: a reload that leaves them alone keeps the bot. */
  key: string;
  /** Starts what the bot looks up ahead of its first user (its welcome), without waiting for it. */
  warm: () => void;
  close: () => Promise<void>;
}

export class BotRegistry implements Bots {
  readonly #o: BotRegistryOptions;
  #held = new Map<string, Held>();
  #list: ServedBot[] = [];
  #callbackBots: CallbackServedBot[] = [];
  readonly #retiring = new Set<{ timer: NodeJS.Timeout; close: () => Promise<void> }>();
  readonly #checks = new AbortController();

  private constructor(options: BotRegistryOptions) {
    this.#o = options;
  }

  /** The bots of `configs`, built; throws when one cannot be (its authenticator's directory is down). */
  static async open(configs: readonly BotConfig[], options: BotRegistryOptions): Promise<BotRegistry> {
    const registry = new BotRegistry(options);
    await registry.replace(configs);
    return registry;
  }

  bot(id: string): ServedBot | undefined {
    return this.#held.get(id)?.bot;
  }

  /** The bot of a callback's own path (`/wecom/callback/{id}`): a callback bot's only. */
  byId(id: string): CallbackServedBot | undefined {
    const bot = this.bot(id);
    return byCallback(bot) ? bot : undefined;
  }

  /**
   * The bot whose Token signed a callback on the shared URL (`body` for a POST, none for a GET).
   * With one bot there is nothing to search: its own check of the signature decides.
   */
  bySignature(query: CallbackQuery, body?: unknown): CallbackServedBot | undefined {
    const bots = this.#callbackBots;
    if (bots.length === 1) return bots[0];
    const found = signerOf(bots, (bot) => bot.crypto, query, body);
    // The bot found goes first for the next search: a bot's polls come in runs (about one a second
    // per answer), so the search mostly ends at its first candidate.
    if (found && bots[0] !== found) {
      const at = bots.indexOf(found);
      if (at > 0) {
        bots.splice(at, 1);
        bots.unshift(found);
      }
    }
    return found;
  }

  list(): readonly ServedBot[] {
    return this.#list;
  }

  /**
   * Serve `configs` from now on. Every new or changed bot is built before anything is swapped, so a
   * failure leaves the bots as they were. Returns which ids were added, changed and removed.
   */
  async replace(
    configs: readonly BotConfig[],
  ): Promise<{ added: string[]; changed: string[]; removed: string[] }> {
    const next = new Map<string, Held>();
    const built: Held[] = [];
    const added: string[] = [];
    const changed: string[] = [];
    try {
      for (const config of configs) {
        const key = JSON.stringify(config);
        const old = this.#held.get(config.id);
        if (old && old.key === key) {
          next.set(config.id, old);
          continue;
        }
        const held = await this.#build(config, key);
        built.push(held);
        next.set(config.id, held);
        (old ? changed : added).push(config.id);
      }
    } catch (error) {
      await Promise.allSettled(built.map((h) => h.close()));
      throw error;
    }
    const removed = [...this.#held.keys()].filter((id) => !next.has(id));
    for (const [id, old] of this.#held) if (next.get(id) !== old) this.#retire(old);
    this.#held = next;
    this.#list = [...next.values()].map((h) => h.bot);
    this.#callbackBots = this.#list.filter(byCallback);
    for (const held of built) {
      if (this.#o.metrics) announceBot(this.#o.metrics, held.bot.id);
      this.#check(held.bot);
      held.warm();
    }
    return { added, changed, removed };
  }

  /** Close every bot's connections (the node is stopping: its answers have ended or been handed over). */
  async close(): Promise<void> {
    this.#checks.abort();
    const closing = [...this.#held.values()].map((h) => h.close());
    for (const retiring of this.#retiring) {
      clearTimeout(retiring.timer);
      closing.push(retiring.close());
    }
    this.#retiring.clear();
    this.#held.clear();
    this.#list = [];
    this.#callbackBots = [];
    await Promise.allSettled(closing);
  }

  async #build(config: BotConfig, key: string): Promise<Held> {
    const o = this.#o;
    const proxy = o.proxy ? { proxy: o.proxy } : {};
    const auth = o.auth ?? (await o.authenticators.get(config.auth.mode, config.auth.deniedText));
    const crypto = config.callback
      ? new WecomCrypto({ token: config.callback.token, encodingAESKey: config.callback.encodingAESKey })
      : undefined;
    const own: Closable | undefined = o.answers
      ? undefined
      : new DifyClient({
          apiUrl: config.dify.apiUrl,
          apiKey: config.dify.apiKey,
          appType: config.dify.appType,
          timeoutMs: config.dify.timeoutMs,
          thinking: config.thinking,
          logger: o.logger.child({ bot: config.id }),
          ...proxy,
        });
    const answers: AnswerSource = own ?? (typeof o.answers === 'function' ? o.answers(config) : o.answers!);
    const media = new MediaFetcher({ crypto, ...proxy });
    // Where answers come from elsewhere (tests, the demo) there is no Dify app to take an opening from.
    const welcome: Welcome =
      config.welcome === 'dify' && !o.answers
        ? new DifyWelcome({
            apiUrl: config.dify.apiUrl,
            apiKey: config.dify.apiKey,
            timeoutMs: config.dify.timeoutMs,
            welcomeText: config.welcomeText,
            logger: o.logger.child({ bot: config.id }),
            ...proxy,
          })
        : textWelcome(config.welcomeText);
    const bot: ServedBot = {
      id: config.id,
      config,
      crypto,
      name: config.name,
      aibotid: config.aibotid,
      welcomeText: config.welcomeText,
      welcome: () => welcome.reply(),
      answers,
      auth,
      media,
      texts: textsOf(config),
      identity: { inputs: config.dify.inputs, bearer: config.dify.bearer },
      // A stream id also names its bot: two bots given one AES key by mistake still keep theirs apart.
      secret: config.callback?.encodingAESKey ?? config.longConnection?.secret ?? config.id,
    };
    return {
      bot,
      key,
      warm: () => welcome.warm(),
      close: async () => {
        await Promise.allSettled([own?.close?.(), media.close(), welcome.close()]);
      },
    };
  }

  #retire(held: Held): void {
    const retiring = {
      close: held.close,
      timer: setTimeout(() => {
        this.#retiring.delete(retiring);
        void held.close();
      }, this.#o.retireAfterMs),
    };
    retiring.timer.unref();
    this.#retiring.add(retiring);
  }

  /**
   * A Dify app that cannot be reached, or refuses the key, is said now rather than at the first
   * question; in the background, so that it never holds up a start, a reload or readiness.
   */
  #check(bot: ServedBot): void {
    if (this.#o.answers || this.#o.checkDify === false) return;
    const { dify } = bot.config;
    const signal = this.#checks.signal;
    const log = this.#o.logger;
    checkDifyApp({ ...dify, ...(this.#o.proxy ? { proxy: this.#o.proxy } : {}) }, signal)
      .then((check) => {
        if (signal.aborted) return;
        if (check.ok)
          log.info({ bot: bot.id, dify: dify.apiUrl, app: check.name, mode: check.mode }, 'dify app found');
        else
          log.warn(
            { bot: bot.id, dify: dify.apiUrl, code: check.code, status: check.status },
            `dify: ${check.problem}`,
          );
      })
      .catch((error: unknown) => log.warn({ bot: bot.id, err: error }, 'dify check failed'));
  }
}
