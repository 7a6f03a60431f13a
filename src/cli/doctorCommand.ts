// `wecom-dify doctor`: before (or instead of) a start, are the settings right and is every service
// they name reachable from here? One line per check, `ok` or `problem`; exit code 0 when all pass, 1
// when a service fails, 2 when the settings do not parse (then nothing else is tried).
import { type Config, parseConfig } from '../config.js';
import { checkDify, checkDirectory, checkRedis, checkTokenService, type Outcome } from './doctorChecks.js';
import { type Io, UsageError } from './io.js';
import { commandUsage } from './usage.js';

interface Check {
  name: string;
  run: () => Promise<Outcome>;
}

export async function runDoctor(args: string[], io: Io): Promise<number> {
  if (args.length > 0)
    throw new UsageError(`doctor takes no arguments, not "${args[0]}"`, commandUsage.doctor);
  const line = (outcome: Outcome, name: string) =>
    io.out(`${(outcome.ok ? 'ok' : 'problem').padEnd(8)} ${name.padEnd(14)} ${outcome.detail}`);

  const parsed = parseConfig(io.env);
  if (!parsed.ok) {
    for (const problem of parsed.problems) line({ ok: false, detail: problem }, 'settings');
    io.out('the settings come from the environment and .env here; README.md "Settings" lists them');
    return 2;
  }
  const { config } = parsed;
  line({ ok: true, detail: summary(config) }, 'settings');

  const checks: Check[] = [];
  if (config.store.redisUrl || config.store.cluster)
    checks.push({ name: 'redis', run: () => checkRedis(config.store) });
  const mode = strongestMode(config);
  if (mode !== 'none') checks.push({ name: 'mysql', run: () => checkDirectory({ ...config.auth, mode }) });
  if (mode === 'directory')
    checks.push({ name: 'token service', run: () => checkTokenService(config.auth, config.proxy) });
  // Each bot's Dify app: named by the bot when there are several.
  for (const bot of config.bots)
    checks.push({
      name: config.botsFile ? `dify ${bot.id}` : 'dify',
      run: () => checkDify(bot, config.proxy),
    });

  // All at once, printed in order: the slowest (a timeout) sets the time, not their sum.
  const outcomes = await Promise.all(checks.map((check) => check.run()));
  outcomes.forEach((outcome, i) => {
    line(outcome, checks[i]!.name);
  });
  return outcomes.every((o) => o.ok) ? 0 : 1;
}

/** What the settings amount to, in a line: the choices that decide which services are needed. */
function summary(config: Config): string {
  const store = config.store.cluster
    ? 'Redis Cluster'
    : config.store.redisUrl
      ? 'Redis'
      : 'in memory (no REDIS_URL: one node only)';
  if (!config.botsFile) {
    const [bot] = config.bots;
    return `parsed: store ${store}, AUTH_MODE=${bot?.auth.mode}, DIFY_APP_TYPE=${bot?.dify.appType}`;
  }
  const n = config.bots.length;
  return `parsed: store ${store}, ${n} bot${n === 1 ? '' : 's'} (${config.bots.map((b) => b.id).join(', ')})`;
}

/** What the bots need of the directory: directory (and the token service) over allowlist over none. */
function strongestMode(config: Config): 'none' | 'allowlist' | 'directory' {
  const modes = new Set(config.bots.map((b) => b.auth.mode));
  return modes.has('directory') ? 'directory' : modes.has('allowlist') ? 'allowlist' : 'none';
}
