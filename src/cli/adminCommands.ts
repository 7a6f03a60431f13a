// `wecom-dify migrate` and `wecom-dify users …` (usersCommand.ts) with only the settings they
// use: the directory's MYSQL_URL and AUTH_SECRET_KEY, and Redis to forget a disabled user's token.
// The bot's secrets are not needed to manage its users, so they are not asked for.
import { authSettings, parseSettings, storeSettings } from '../config.js';
import type { Io } from './io.js';
import { reportProblems } from './settings.js';
import { type AdminConfig, runMigrate, runUsers } from './usersCommand.js';

function adminConfig(io: Io): AdminConfig | number {
  const parsed = parseSettings(io.env, [
    'AUTH_MODE',
    'MYSQL_URL',
    'AUTH_SECRET_KEY',
    'AUTH_API_URL',
    'AUTH_API_TIMEOUT_MS',
    'REDIS_URL',
    'REDIS_CLUSTER_NODES',
    'REDIS_KEY_PREFIX',
    'STREAM_TTL_SECONDS',
  ]);
  if (!parsed.ok) return reportProblems(io, parsed.problems);
  return {
    auth: { ...authSettings(parsed.settings), mode: parsed.settings.AUTH_MODE },
    store: storeSettings(parsed.settings),
  };
}

export async function runMigrateCommand(args: string[], io: Io): Promise<number> {
  if (args.length > 0) {
    io.err(`migrate: unexpected argument "${args[0]}"`);
    return 2;
  }
  const config = adminConfig(io);
  if (typeof config === 'number') return config;
  return runMigrate(config, io.out, io.err);
}

export async function runUsersCommand(args: string[], io: Io): Promise<number> {
  const config = adminConfig(io);
  if (typeof config === 'number') return config;
  return runUsers(args, config, io.out, { err: io.err });
}
