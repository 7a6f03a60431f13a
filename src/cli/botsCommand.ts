// `wecom-dify bots`: the bots this deployment would serve, read from the settings as `serve` reads
// them (WECOM_BOTS_FILE, or the one bot of the environment): the check an operator runs before a
// deploy. One line per bot, its id first, then its mode, aibotid, Dify app and authentication; never
// a secret; for a long-connection bot, which node holds its connection and since when (from Redis,
// where the settings name one). A wrong file is exit 2 with one line per problem, as `serve` would
// refuse it.
import { type BotConfig, type Config, parseConfig } from '../config.js';
import { type ConnectionStatus, redisConnectionState } from '../longConnection/state.js';
import { redisFor } from '../store/open.js';
import { firstConnection } from '../store/redis.js';
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
  const held = await connectionsOf(parsed.config);
  const described = bots.map((bot) => ({
    ...describe(bot),
    ...(held.has(bot.id) ? { connection: held.get(bot.id) } : {}),
  }));
  if (values.json) {
    io.out(JSON.stringify(described, null, 2));
    return 0;
  }
  const rows = described.map((d) => [
    d.id,
    d.mode,
    `aibotid=${d.aibotid ?? '(any)'}`,
    `dify=${d.dify}`,
    `auth=${d.auth}`,
    d.name ?? '',
    d.mode === 'long-connection' ? connectionText(d.connection) : '',
  ]);
  // The table's header is left off: every line starts with a bot's id, for a reader and for grep.
  for (const line of formatTable(['', '', '', '', '', '', ''], rows).slice(1)) io.out(line);
  return 0;
}

/** What may be shown of a bot: no Token, AES key or Dify key. */
function describe(bot: BotConfig) {
  return {
    id: bot.id,
    mode: bot.mode,
    ...(bot.mode === 'callback' ? { path: `/wecom/callback/${bot.id}` } : {}),
    aibotid: bot.aibotid,
    name: bot.name,
    dify: bot.dify.apiUrl,
    appType: bot.dify.appType,
    auth: bot.auth.mode,
  };
}

/** Who holds each long-connection bot's connection, as the nodes wrote it in Redis (when there is one). */
async function connectionsOf(config: Config): Promise<Map<string, ConnectionStatus | null>> {
  const out = new Map<string, ConnectionStatus | null>();
  const ids = config.bots.filter((b) => b.mode === 'long-connection').map((b) => b.id);
  const redis = ids.length > 0 ? redisFor(config.store) : undefined;
  if (!redis) return out;
  try {
    await Promise.race([
      firstConnection(redis),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer')), 3000).unref()),
    ]);
    const state = redisConnectionState(redis, config.store.prefix);
    for (const id of ids) out.set(id, (await state.status(id)) ?? null);
  } catch {
    // Without Redis the holder is unknown: the line says so.
  } finally {
    redis.disconnect();
  }
  return out;
}

function connectionText(status: ConnectionStatus | null | undefined): string {
  if (status === undefined) return 'holder=(unknown: no Redis)';
  if (status === null) return 'holder=(none yet)';
  const since = new Date(status.since).toISOString();
  return `holder=${status.holder} since=${since} ${status.connected ? 'connected' : `not connected${status.problem ? `: ${status.problem}` : ''}`}`;
}
