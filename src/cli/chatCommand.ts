// `wecom-dify chat`: the WeCom simulator against any running instance, with that instance's Token and
// EncodingAESKey (flags, or WECOM_TOKEN / WECOM_ENCODING_AES_KEY from the environment or .env), or as
// one bot of WECOM_BOTS_FILE (`--bot hr`: its credentials and aibotid, on its own path).
import { type BotConfig, loadBots, parseSettings } from '../config.js';
import { durationFlag, parseCommandArgs } from './args.js';
import { askAll, type ChatSessionOptions, converse, POLL_EVERY_MS, POLL_FOR_MS } from './chatSession.js';
import { startDeliveryReceiver } from './deliveries.js';
import { type Io, UsageError } from './io.js';
import { reportProblems } from './settings.js';
import { WecomSimulator } from './simulator.js';
import { commandUsage } from './usage.js';

/** The `aibotid` when neither --aibotid, the bot nor WECOM_BOT_ID says otherwise. */
const DEFAULT_BOT_ID = 'wecom-dify-sim';
const DEFAULT_USER = 'sim-user';

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
    },
    usage,
  );
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, usage);
  const intervalMs = durationFlag(values.interval, '--interval', usage) ?? POLL_EVERY_MS;
  const timeoutMs = durationFlag(values.timeout, '--timeout', usage) ?? POLL_FOR_MS;

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
  const credentials = chosen
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

/**
 * The bot of WECOM_BOTS_FILE to talk to: the one `--bot` names, or the file's only one; undefined
 * when there is no file (the environment's Token and key are used), an exit code when it cannot be.
 */
function botOf(
  id: string | undefined,
  flagged: boolean,
  io: Io,
  usage: string,
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
    throw new UsageError(`WECOM_BOTS_FILE lists several bots: say which with --bot (${ids})`, usage);
  }
  const bot = loaded.bots.find((b) => b.id === id);
  if (!bot) throw new UsageError(`--bot ${id}: no such bot in WECOM_BOTS_FILE (${ids})`, usage);
  return bot;
}
