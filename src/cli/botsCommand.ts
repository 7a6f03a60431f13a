// `wecom-dify bots`: the bots this deployment would serve, read from the settings as `serve` reads
// them (WECOM_BOTS_FILE, or the one bot of the environment): the check an operator runs before a
// deploy. One line per bot, its id first, then its mode, aibotid, Dify app and authentication; never
// a secret. A wrong file is exit 2 with one line per problem, as `serve` would refuse it.
import { type BotConfig, parseConfig } from '../config.js';
import { parseCommandArgs } from './args.js';
import { type Io, UsageError } from './io.js';
import { reportProblems } from './settings.js';
import { formatTable } from './table.js';
import { commandUsage } from './usage.js';

export async function runBots(args: string[], io: Io): Promise<number> {
  const usage = commandUsage.bots;
  const { values, positionals } = parseCommandArgs(args, { json: { type: 'boolean' } }, usage);
  if (positionals.length > 0) throw new UsageError(`bots takes no arguments, not "${positionals[0]}"`, usage);
  const parsed = parseConfig(io.env);
  if (!parsed.ok) return reportProblems(io, parsed.problems, 'the bots are not valid: serve would not start');
  const { bots } = parsed.config;
  if (values.json) {
    io.out(JSON.stringify(bots.map(describe), null, 2));
    return 0;
  }
  const rows = bots.map((bot) => {
    const d = describe(bot);
    return [
      d.id,
      d.mode,
      `aibotid=${d.aibotid ?? '(any)'}`,
      `dify=${d.dify}`,
      `auth=${d.auth}`,
      d.name ?? '',
    ];
  });
  // The table's header is left off: every line starts with a bot's id, for a reader and for grep.
  for (const line of formatTable(['', '', '', '', '', ''], rows).slice(1)) io.out(line);
  return 0;
}

/** What may be shown of a bot: no Token, AES key or Dify key. */
function describe(bot: BotConfig) {
  return {
    id: bot.id,
    mode: 'callback',
    path: `/wecom/callback/${bot.id}`,
    aibotid: bot.aibotid,
    name: bot.name,
    dify: bot.dify.apiUrl,
    appType: bot.dify.appType,
    auth: bot.auth.mode,
  };
}
