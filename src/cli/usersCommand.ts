// `wecom-dify migrate` and `wecom-dify users …`: the directory's admin commands, as a person types
// them. The directory's operations are src/auth's; this parses the words, prints the results and opens
// the clients. They return an exit code (0 done, 1 failed, 2 usage) and write lines through `out`; a
// secret is never written.
import { parseArgs } from 'node:util';
import type { Cluster, Redis } from 'ioredis';
import { type DirectoryUser, openDirectory } from '../auth/directory.js';
import { SecretBoxError } from '../auth/secretBox.js';
import { TokenCache } from '../auth/tokenCache.js';
import { AuthError } from '../auth/types.js';
import type { Config } from '../config.js';
import { redisFor } from '../store/open.js';
import { firstConnection } from '../store/redis.js';
import { formatTable } from './table.js';

/** The directory's settings, with the environment's AUTH_MODE (which decides whether --account is needed). */
export type AdminConfig = { auth: Config['auth'] & { mode: 'none' | 'allowlist' | 'directory' } } & Partial<
  Pick<Config, 'store'>
>;

export interface AdminDeps {
  /** The token cache's Redis, to forget a disabled user's token; made from config.store when absent. */
  redis?: Redis | Cluster;
  keyPrefix?: string;
  /** Where `--secret -` reads the secret from (default: standard input). */
  readSecret?: () => Promise<string>;
  /** Where usage and problems go (standard error); `out` when absent. */
  err?: (line: string) => void;
}

const usersUsage = [
  'usage: wecom-dify users add <userid> [--account <code>] [--name <name>] [--department <dept>] [--secret <s> | --secret -] [--disabled]',
  '       wecom-dify users list [--json]',
  '       wecom-dify users disable <userid>',
  '       wecom-dify users enable <userid>',
  '  --account is the code the token service knows the user by: required when AUTH_MODE=directory.',
  '  --secret - reads the secret from standard input (keeps it out of shell history).',
];

const subcommands = ['add', 'list', 'disable', 'enable'];

/** What is wrong with a `users` command line, said for a person, or undefined when it fits. */
function usageProblem(
  command: string | undefined,
  positionals: string[],
  account: string | undefined,
  mode: AdminConfig['auth']['mode'],
): string | undefined {
  if (!command) return 'users: say what to do: add, list, disable or enable';
  if (!subcommands.includes(command))
    return `users: unknown subcommand "${command}" (add, list, disable or enable)`;
  if (command === 'list')
    return positionals.length > 0 ? `users list: unexpected argument "${positionals[0]}"` : undefined;
  if (positionals.length === 0) return `users ${command}: give the userid`;
  if (positionals.length > 1) return `users ${command}: one userid at a time, not also "${positionals[1]}"`;
  if (command === 'add' && account === undefined && mode === 'directory')
    return 'users add: --account <code> is required when AUTH_MODE=directory (the token service needs it)';
  return undefined;
}

/** The directory, or undefined when MYSQL_URL is missing, said through `err`. */
function directoryFor(config: AdminConfig, err: (line: string) => void) {
  if (!config.auth.mysqlUrl) {
    err('MYSQL_URL: required for the directory (mysql://user:pass@host:3306/db)');
    return undefined;
  }
  return openDirectory({
    mysqlUrl: config.auth.mysqlUrl,
    ...(config.auth.secretKey ? { secretKey: config.auth.secretKey } : {}),
    queryTimeoutMs: 30_000,
  });
}

/** `wecom-dify migrate`: bring the directory's schema up to date. */
export async function runMigrate(
  config: AdminConfig,
  out: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  err: (line: string) => void = out,
): Promise<number> {
  const directory = directoryFor(config, err);
  if (!directory) return 2;
  try {
    const { applied } = await directory.migrate();
    out(applied.length === 0 ? 'directory is up to date' : `applied: ${applied.join(', ')}`);
    return 0;
  } catch (error) {
    out(`migration failed: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await directory.close();
  }
}

/** `wecom-dify users add|list|disable|enable`. `args` are the words after `users`. */
export async function runUsers(
  args: string[],
  config: AdminConfig,
  out: (line: string) => void,
  deps: AdminDeps = {},
): Promise<number> {
  const [command, ...rest] = args;
  const err = deps.err ?? out;
  let parsed: ReturnType<typeof parseUsersArgs>;
  try {
    parsed = parseUsersArgs(rest);
  } catch (error) {
    err(error instanceof Error ? error.message : String(error));
    usersUsage.forEach(err);
    return 2;
  }
  const { values, positionals } = parsed;
  const userid = positionals[0];
  const problem = usageProblem(command, positionals, values.account, config.auth.mode);
  if (problem) {
    err(problem);
    usersUsage.forEach(err);
    return 2;
  }
  if (userid !== undefined && (userid.length > 64 || userid.trim() === '')) {
    err('userid must be 1 to 64 characters');
    return 2;
  }

  const directory = directoryFor(config, err);
  if (!directory) return 2;
  try {
    await directory.migrate();
    switch (command) {
      case 'add': {
        if (!userid) return 2;
        let secret = values.secret;
        if (secret === '-') secret = (await (deps.readSecret ?? readStdin)()).replace(/\r?\n$/, '');
        await directory.addUser({
          userid,
          ...(values.account !== undefined ? { account: values.account } : {}),
          ...(values.name !== undefined ? { name: values.name } : {}),
          ...(values.department !== undefined ? { department: values.department } : {}),
          ...(values.disabled ? { enabled: false } : {}),
          ...(secret !== undefined ? { secret } : {}),
        });
        const notes = [
          ...(values.account !== undefined ? [`account ${values.account}`] : []),
          ...(secret !== undefined ? ['secret sealed'] : []),
        ];
        out(`saved ${userid}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`);
        return 0;
      }
      case 'list': {
        const users = await directory.listUsers();
        if (values.json) out(JSON.stringify(users.map(toJson), null, 2));
        else usersTable(users).forEach(out);
        return 0;
      }
      default: {
        if (!userid) return 2;
        const enabled = command === 'enable';
        if (!(await directory.setEnabled(userid, enabled))) {
          err(`no such user: ${userid}`);
          return 1;
        }
        out(`${enabled ? 'enabled' : 'disabled'} ${userid}`);
        if (!enabled) await forgetToken(userid, config, out, deps);
        return 0;
      }
    }
  } catch (error) {
    if (error instanceof AuthError || error instanceof SecretBoxError) {
      err(error.message);
      return 1;
    }
    throw error;
  } finally {
    await directory.close();
  }
}

function parseUsersArgs(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      account: { type: 'string' },
      name: { type: 'string' },
      department: { type: 'string' },
      secret: { type: 'string' },
      disabled: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
}

const toJson = (u: DirectoryUser) => ({
  userid: u.userid,
  account: u.account,
  name: u.name ?? null,
  department: u.department ?? null,
  enabled: u.enabled,
  hasSecret: u.hasSecret,
  createdAt: u.createdAt.toISOString(),
  updatedAt: u.updatedAt.toISOString(),
});

function usersTable(users: DirectoryUser[]): string[] {
  const header = ['USERID', 'ACCOUNT', 'NAME', 'DEPARTMENT', 'ENABLED', 'SECRET', 'UPDATED'];
  const rows = users.map((u) => [
    u.userid,
    u.account,
    u.name ?? '',
    u.department ?? '',
    u.enabled ? 'yes' : 'no',
    u.hasSecret ? 'yes' : 'no',
    u.updatedAt.toISOString(),
  ]);
  return [...formatTable(header, rows), `${users.length} user${users.length === 1 ? '' : 's'}`];
}

/** A disabled user's cached token would keep working until it expires: forget it now, if we can. */
async function forgetToken(
  userid: string,
  config: AdminConfig,
  out: (line: string) => void,
  deps: AdminDeps,
) {
  let redis = deps.redis;
  // Else the service's own client (credentials, TLS, time-outs), once it has connected.
  const own = redis || !config.store ? undefined : redisFor(config.store);
  if (own) {
    await firstConnection(own);
    redis = own;
  }
  if (!redis) {
    // Without Redis the cached token cannot be reached: AUTH_MODE=directory lets the user in until it expires.
    if (config.auth.mode === 'directory')
      out(`note: REDIS_URL is not set, so ${userid}'s cached token stays valid until it expires`);
    return;
  }
  try {
    const cache = new TokenCache(redis, { keyPrefix: deps.keyPrefix ?? '' });
    if (await cache.revoke(userid)) out(`forgot the cached token of ${userid}`);
  } catch (error) {
    out(
      `could not forget the cached token (it expires by itself): ${error instanceof Error ? error.message : String(error)}`,
    );
  } finally {
    if (own) own.disconnect();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}
