// `wecom-dify chat`: the WeCom simulator against any running instance, with that instance's Token and
// EncodingAESKey (flags, or WECOM_TOKEN / WECOM_ENCODING_AES_KEY from the environment or .env), or as
// one bot of WECOM_BOTS_FILE (`--bot hr`: its credentials and aibotid, on its own path). With `--ws` it
// plays WeCom's long-connection server instead: a service in WECOM_MODE=long-connection dials it with
// the bot's BotID and Secret (WECOM_BOT_ID / WECOM_BOT_SECRET, a long-connection bot of the file, or
// made up here and printed), and the chat goes over that connection.
import { randomBytes } from 'node:crypto';
import { type BotConfig, loadBots, parseSettings } from '../config.js';
import { durationFlag, parseCommandArgs } from './args.js';
import {
  askAll,
  type ChatSessionOptions,
  type ConnectionChatOptions,
  converse,
  POLL_EVERY_MS,
  POLL_FOR_MS,
} from './chatSession.js';
import { startDeliveryReceiver } from './deliveries.js';
import { formatDuration } from './duration.js';
import { type Io, UsageError } from './io.js';
import { reportProblems } from './settings.js';
import { WecomSimulator } from './simulator.js';
import { commandUsage } from './usage.js';
import { type SimulatorEvent, WecomWsSimulator } from './wecomWsSimulator.js';

/** The `aibotid` when neither --aibotid, the bot nor WECOM_BOT_ID says otherwise. */
const DEFAULT_BOT_ID = 'wecom-dify-sim';
const DEFAULT_USER = 'sim-user';
/** Where `chat --ws` listens unless --port says otherwise: a port a service can be pointed at once. */
const DEFAULT_WS_PORT = 8765;

export async function runChat(args: string[], io: Io): Promise<number> {
  const usage = commandUsage.chat;
  const { values, positionals } = parseCommandArgs(
    args,
    {
      url: { type: 'string' },
      token: { type: 'string' },
      key: { type: 'string' },
      user: { type: 'string' },
      chat: { type: 'string' },
      bot: { type: 'string' },
      aibotid: { type: 'string' },
      interval: { type: 'string' },
      timeout: { type: 'string' },
      say: { type: 'string', multiple: true },
      ws: { type: 'boolean' },
      port: { type: 'string' },
    },
    usage,
  );
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, usage);
  const intervalMs = durationFlag(values.interval, '--interval', usage) ?? POLL_EVERY_MS;
  const timeoutMs = durationFlag(values.timeout, '--timeout', usage) ?? POLL_FOR_MS;
  if (values.ws) return chatOverConnection(values, timeoutMs, io, usage);
  if (values.port !== undefined)
    throw new UsageError('--port goes with --ws (where the simulator listens); the service is --url', usage);

  const chosen = botOf(values.bot, values.token !== undefined || values.key !== undefined, io, usage);
  if (typeof chosen === 'number') return chosen;
  // Flags win over the environment, and are checked by the same rules.
  const env = {
    ...io.env,
    ...(values.token !== undefined ? { WECOM_TOKEN: values.token } : {}),
    ...(values.key !== undefined ? { WECOM_ENCODING_AES_KEY: values.key } : {}),
  };
  const parsed = parseSettings(env, ['WECOM_TOKEN', 'WECOM_ENCODING_AES_KEY', 'WECOM_BOT_ID', 'PORT']);
  const hint =
    'chat needs the bot\u2019s Token and EncodingAESKey: --token and --key, or WECOM_TOKEN and WECOM_ENCODING_AES_KEY (environment or .env), or --bot <id> of WECOM_BOTS_FILE';
  if (!parsed.ok) return reportProblems(io, parsed.problems, hint);
  const s = parsed.settings;
  if (chosen && !chosen.callback)
    throw new UsageError(
      `--bot ${chosen.id} is a long-connection bot: it has no callback URL to talk to`,
      usage,
    );
  const credentials = chosen?.callback
    ? { token: chosen.callback.token, encodingAESKey: chosen.callback.encodingAESKey }
    : s.WECOM_TOKEN && s.WECOM_ENCODING_AES_KEY
      ? { token: s.WECOM_TOKEN, encodingAESKey: s.WECOM_ENCODING_AES_KEY }
      : undefined;
  if (!credentials)
    return reportProblems(
      io,
      [
        ...(s.WECOM_TOKEN ? [] : ['WECOM_TOKEN: required']),
        ...(s.WECOM_ENCODING_AES_KEY ? [] : ['WECOM_ENCODING_AES_KEY: required']),
      ],
      hint,
    );
  const url = values.url ?? `http://127.0.0.1:${s.PORT}`;
  if (!/^https?:\/\/[^/\s]+/.test(url))
    throw new UsageError(`--url must be an http:// or https:// URL, not "${url}"`, usage);

  const simulator = new WecomSimulator({
    baseUrl: url,
    ...credentials,
    botId: values.aibotid ?? chosen?.aibotid ?? s.WECOM_BOT_ID ?? DEFAULT_BOT_ID,
    ...(chosen ? { path: `/wecom/callback/${chosen.id}` } : {}),
  });
  // An instance on this machine can POST back what its bubble cannot show; one elsewhere cannot reach us.
  const local = /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:|\/|$)/.test(url);
  const deliveries = local ? await startDeliveryReceiver() : undefined;
  const session: ChatSessionOptions = {
    simulator,
    ...(deliveries ? { deliveries } : {}),
    sender: { userid: values.user ?? DEFAULT_USER, ...(values.chat ? { chatid: values.chat } : {}) },
    intervalMs,
    timeoutMs,
    write: io.write,
    fail: io.err,
  };
  try {
    if (values.say && values.say.length > 0) return await askAll(values.say, session);
    if (io.interactive) {
      const where = values.chat ? `in group ${values.chat}` : 'in a single chat';
      io.out(
        `WeCom simulator → ${simulator.url} as ${session.sender.userid} ${where}. Ctrl-D or Ctrl-C ends.`,
      );
    }
    return await converse(io.stdin, io.interactive ? io.stdout : undefined, session);
  } finally {
    await deliveries?.close();
  }
}

interface ConnectionChatFlags {
  url?: string | undefined;
  token?: string | undefined;
  key?: string | undefined;
  interval?: string | undefined;
  user?: string | undefined;
  chat?: string | undefined;
  bot?: string | undefined;
  aibotid?: string | undefined;
  port?: string | undefined;
  say?: string[] | undefined;
}

/** `chat --ws`: WeCom's long-connection server here, the service dialling it, the chat over that. */
async function chatOverConnection(
  flags: ConnectionChatFlags,
  timeoutMs: number,
  io: Io,
  usage: string,
): Promise<number> {
  for (const flag of ['url', 'token', 'key', 'interval'] as const)
    if (flags[flag] !== undefined)
      throw new UsageError(
        `--${flag} does not go with --ws: the service dials the simulator and pushes its answers`,
        usage,
      );
  const port = flags.port === undefined ? DEFAULT_WS_PORT : Number(flags.port);
  if (flags.port !== undefined && (!/^\d+$/.test(flags.port) || port > 65535))
    throw new UsageError(`--port takes a port number, not "${flags.port}"`, usage);
  const bot = connectionBotOf(flags.bot, io, usage);
  if (typeof bot === 'number') return bot;

  let refused: string | undefined;
  const onEvent = (event: SimulatorEvent) => {
    if (event.kind === 'refused') {
      // The SDK tries again and again: said once per BotID tried, not at every attempt.
      if (refused === event.botId) return;
      refused = event.botId;
      const what = event.botId === bot.botId ? 'with another Secret' : `as bot ${event.botId}`;
      io.err(
        `chat: a service tried to subscribe ${what}: refused (errcode 40058); it must use BotID ${bot.botId} and its Secret`,
      );
    } else if (event.kind === 'closed')
      io.err(
        'chat: the service\u2019s connection closed (a service still running subscribes again by itself)',
      );
    else if (event.kind === 'replaced')
      io.err(
        `chat: another service subscribed as bot ${bot.botId}: the one before was disconnected, as WeCom does`,
      );
    else if (event.again) io.err('chat: the service subscribed again');
  };
  let simulator: WecomWsSimulator;
  try {
    simulator = await WecomWsSimulator.listen({
      port,
      botId: bot.botId,
      secret: bot.secret,
      aibotid: flags.aibotid ?? bot.aibotid,
      startHint: bot.settings,
      onEvent,
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    io.err(
      `chat: port ${port} is taken (another chat --ws?): choose another with --port, or --port 0 for any`,
    );
    return 1;
  }
  try {
    io.out(
      `WeCom long-connection simulator on ${simulator.url}, bot ${bot.botId}${bot.madeUp ? ' (its BotID and Secret made up for this run)' : ''}.`,
    );
    io.out('Point a service at it, e.g. from another terminal in the checkout (with its Dify settings):');
    io.out(`  ${bot.settings(simulator.url)} npx wecom-dify serve`);
    const note = bot.note?.(simulator.url);
    if (note) io.out(`  (${note})`);
    io.out('Waiting for the service to subscribe…');
    if (!(await simulator.waitForSubscriber({ timeoutMs }))) {
      io.err(`chat: no service subscribed within ${formatDuration(timeoutMs)}`);
      return 1;
    }
    const sender = { userid: flags.user ?? DEFAULT_USER, ...(flags.chat ? { chatid: flags.chat } : {}) };
    const session: ConnectionChatOptions = {
      connection: simulator,
      sender,
      timeoutMs,
      write: io.write,
      fail: io.err,
    };
    if (flags.say && flags.say.length > 0) {
      io.out('Subscribed.');
      return await askAll(flags.say, session);
    }
    const where = flags.chat ? `in group ${flags.chat}` : 'in a single chat';
    io.out(`Subscribed: you are ${sender.userid} ${where}. Ctrl-D or Ctrl-C ends.`);
    // Opening a single chat is WeCom's enter_chat: the service answers with its welcome.
    if (io.interactive && !flags.chat) {
      try {
        io.out(`bot › ${await simulator.welcome(sender.userid)}`);
      } catch (error) {
        io.err(`chat: ${(error as Error).message}`);
      }
    }
    return await converse(io.stdin, io.interactive ? io.stdout : undefined, session);
  } finally {
    await simulator.close();
  }
}

/** The bot a service subscribes as, and how to start that service against the simulator. */
interface ConnectionBot {
  botId: string;
  secret: string;
  aibotid: string;
  /** Made up here: nobody else knows them until printed. */
  madeUp: boolean;
  /** The settings that point a service at the simulator's URL, as shell words. */
  settings(url: string): string;
  /** What else to do for it, if anything. */
  note?(url: string): string | undefined;
}

/**
 * For `chat --ws`: the long-connection bot of WECOM_BOTS_FILE (`--bot`, or its only one), else the
 * BotID and Secret of WECOM_BOT_ID / WECOM_BOT_SECRET, each made up when unset; an exit code when
 * the settings are wrong.
 */
function connectionBotOf(id: string | undefined, io: Io, usage: string): ConnectionBot | number {
  const chosen = botOf(id, false, io, usage, (b) => b.mode === 'long-connection');
  if (typeof chosen === 'number') return chosen;
  if (chosen) {
    const lc = chosen.longConnection;
    if (!lc)
      throw new UsageError(
        `--bot ${chosen.id} is a callback bot: --ws plays WeCom\u2019s long connection (without --ws, chat talks to its callback URL)`,
        usage,
      );
    const file = io.env.WECOM_BOTS_FILE ?? '';
    return {
      botId: lc.botId,
      secret: lc.secret,
      aibotid: chosen.aibotid ?? lc.botId,
      madeUp: false,
      settings: (url) => `WECOM_BOTS_FILE=${shellWord(file)} WECOM_WS_URL=${url}`,
      // A bot's own `url:` wins over WECOM_WS_URL: then the file itself must name the simulator.
      note(url) {
        const loaded = loadBots({ ...io.env, WECOM_WS_URL: url });
        const follows = loaded.ok && loaded.bots.find((b) => b.id === chosen.id)?.longConnection?.url === url;
        return follows ? undefined : `bot ${chosen.id} names a url of its own in ${file}: set it to ${url}`;
      },
    };
  }
  const parsed = parseSettings(io.env, ['WECOM_BOT_ID', 'WECOM_BOT_SECRET']);
  if (!parsed.ok) return reportProblems(io, parsed.problems);
  const botId = parsed.settings.WECOM_BOT_ID ?? `sim-bot-${randomBytes(4).toString('hex')}`;
  const secret = parsed.settings.WECOM_BOT_SECRET ?? randomBytes(16).toString('hex');
  return {
    botId,
    secret,
    aibotid: botId,
    madeUp: !parsed.settings.WECOM_BOT_ID || !parsed.settings.WECOM_BOT_SECRET,
    settings: (url) =>
      `WECOM_MODE=long-connection WECOM_BOT_ID=${shellWord(botId)} WECOM_BOT_SECRET=${shellWord(secret)} WECOM_WS_URL=${url}`,
  };
}

/** A value as one word of a POSIX shell command line. */
function shellWord(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * The bot of WECOM_BOTS_FILE to talk to: the one `--bot` names, or the file's only one (or its only
 * one that `fits`); undefined when there is no file (the environment's credentials are used), an exit
 * code when it cannot be.
 */
function botOf(
  id: string | undefined,
  flagged: boolean,
  io: Io,
  usage: string,
  fits?: (bot: BotConfig) => boolean,
): BotConfig | undefined | number {
  if (!io.env.WECOM_BOTS_FILE || flagged) {
    if (id !== undefined && id !== 'default' && !flagged)
      throw new UsageError(
        `--bot ${id}: no WECOM_BOTS_FILE lists bots here (the one bot is "default")`,
        usage,
      );
    return undefined;
  }
  const loaded = loadBots(io.env);
  if (!loaded.ok) return reportProblems(io, loaded.problems);
  const ids = loaded.bots.map((b) => b.id).join(', ');
  if (id === undefined) {
    if (loaded.bots.length === 1) return loaded.bots[0];
    const fitting = fits ? loaded.bots.filter(fits) : [];
    if (fitting.length === 1) return fitting[0];
    throw new UsageError(`WECOM_BOTS_FILE lists several bots: say which with --bot (${ids})`, usage);
  }
  const bot = loaded.bots.find((b) => b.id === id);
  if (!bot) throw new UsageError(`--bot ${id}: no such bot in WECOM_BOTS_FILE (${ids})`, usage);
  return bot;
}
