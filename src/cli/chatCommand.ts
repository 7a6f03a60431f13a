// `wecom-dify chat`: the WeCom simulator against any running instance, with that instance's Token and
// EncodingAESKey (flags, or WECOM_TOKEN / WECOM_ENCODING_AES_KEY from the environment or .env).
import { parseSettings } from '../config.js';
import { durationFlag, parseCommandArgs } from './args.js';
import { askAll, type ChatSessionOptions, converse, POLL_EVERY_MS, POLL_FOR_MS } from './chatSession.js';
import { startDeliveryReceiver } from './deliveries.js';
import { type Io, UsageError } from './io.js';
import { reportProblems } from './settings.js';
import { WecomSimulator } from './simulator.js';
import { commandUsage } from './usage.js';

/** The `aibotid` when neither --bot nor WECOM_BOT_ID says otherwise. */
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
      interval: { type: 'string' },
      timeout: { type: 'string' },
      say: { type: 'string', multiple: true },
    },
    usage,
  );
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, usage);
  const intervalMs = durationFlag(values.interval, '--interval', usage) ?? POLL_EVERY_MS;
  const timeoutMs = durationFlag(values.timeout, '--timeout', usage) ?? POLL_FOR_MS;

  // Flags win over the environment, and are checked by the same rules.
  const env = {
    ...io.env,
    ...(values.token !== undefined ? { WECOM_TOKEN: values.token } : {}),
    ...(values.key !== undefined ? { WECOM_ENCODING_AES_KEY: values.key } : {}),
  };
  const parsed = parseSettings(env, ['WECOM_TOKEN', 'WECOM_ENCODING_AES_KEY', 'WECOM_BOT_ID', 'PORT']);
  if (!parsed.ok) {
    return reportProblems(
      io,
      parsed.problems,
      'chat needs the bot\u2019s Token and EncodingAESKey: --token and --key, or WECOM_TOKEN and WECOM_ENCODING_AES_KEY (environment or .env)',
    );
  }
  const s = parsed.settings;
  const url = values.url ?? `http://127.0.0.1:${s.PORT}`;
  if (!/^https?:\/\/[^/\s]+/.test(url))
    throw new UsageError(`--url must be an http:// or https:// URL, not "${url}"`, usage);

  const simulator = new WecomSimulator({
    baseUrl: url,
    token: s.WECOM_TOKEN,
    encodingAESKey: s.WECOM_ENCODING_AES_KEY,
    botId: values.bot ?? s.WECOM_BOT_ID ?? DEFAULT_BOT_ID,
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
