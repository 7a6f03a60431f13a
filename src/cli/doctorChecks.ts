// What `wecom-dify doctor` checks, one service at a time: can this machine reach what the settings
// name, as the service would (same clients, same credentials, same proxy)? Each check answers with one
// line of text and never throws; none of them changes anything (no token is asked for).
import { sql } from 'kysely';
import { request } from 'undici';
import { describeMysqlUrl, openDirectory } from '../auth/directory.js';
import type { BotConfig, Config } from '../config.js';
import { checkDifyApp } from '../dify/appCheck.js';
import { discard, outboundAgent } from '../outbound.js';
import { redisFor } from '../store/open.js';
import { firstConnection } from '../store/redis.js';

export interface Outcome {
  ok: boolean;
  detail: string;
}

const ok = (detail: string): Outcome => ({ ok: true, detail });
const problem = (detail: string): Outcome => ({ ok: false, detail });
const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Where Redis is, for a line of output: never its password. */
function describeRedis(store: Config['store']): string {
  if (store.cluster) return `cluster ${store.cluster.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  try {
    const url = new URL(store.redisUrl ?? '');
    return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  } catch {
    return '(unparseable REDIS_URL)';
  }
}

/** A PING, on the client the service would make. */
export async function checkRedis(store: Config['store']): Promise<Outcome> {
  const where = describeRedis(store);
  // The connection's own error (ECONNREFUSED, WRONGPASS…) says more than the failed PING.
  let lastError: Error | undefined;
  const redis = redisFor(store, (error) => {
    lastError = error;
  });
  if (!redis) return problem('no REDIS_URL or REDIS_CLUSTER_NODES');
  try {
    await firstConnection(redis);
    const started = Date.now();
    await redis.ping();
    return ok(`${where}: PING answered in ${Date.now() - started} ms`);
  } catch (error) {
    return problem(`${where}: ${lastError?.message ?? messageOf(error)}`);
  } finally {
    redis.disconnect();
  }
}

/** The directory's table, read as the service reads it; missing tables are created at start. */
export async function checkDirectory(
  auth: Config['auth'] & { mode: 'none' | 'allowlist' | 'directory' },
): Promise<Outcome> {
  if (!auth.mysqlUrl) return problem('MYSQL_URL is not set');
  const where = describeMysqlUrl(auth.mysqlUrl);
  const directory = openDirectory({ mysqlUrl: auth.mysqlUrl, poolSize: 1 });
  try {
    // ping: under the directory's own deadline, and its failures already name the database.
    await directory.ping();
  } catch (error) {
    const cause = (error as { cause?: { code?: unknown } }).cause;
    await directory.close().catch(() => undefined);
    if (cause?.code === 'ER_NO_SUCH_TABLE')
      return ok(`${where}: reachable; its tables are created at the first start (or by wecom-dify migrate)`);
    return problem(messageOf(error));
  }
  try {
    const row = await directory.db
      .selectFrom('wecom_users')
      .select((eb) => [
        eb.fn.countAll<number>().as('users'),
        eb.fn.sum<number>('enabled').as('enabled'),
        sql<number>`sum(enabled and account = '')`.as('noAccount'),
      ])
      .executeTakeFirst();
    const users = Number(row?.users ?? 0);
    const enabled = Number(row?.enabled ?? 0);
    const noAccount = Number(row?.noAccount ?? 0);
    let note = '';
    if (auth.mode !== 'none' && enabled === 0) note = ': nobody may ask yet (wecom-dify users add <userid>)';
    else if (auth.mode === 'directory' && noAccount > 0)
      note = `; ${noAccount} enabled without an account, which the token service needs (users add <userid> --account <code>)`;
    return ok(`${where}: ${users} user${users === 1 ? '' : 's'}, ${enabled} enabled${note}`);
  } catch (error) {
    return problem(`${where}: ${messageOf(error)}`);
  } finally {
    await directory.close().catch(() => undefined);
  }
}

/** Any HTTP answer to a HEAD means the token service is there; no token is asked for. */
export async function checkTokenService(auth: Config['auth'], proxy: Config['proxy']): Promise<Outcome> {
  if (!auth.apiUrl) return problem('AUTH_API_URL is not set');
  const agent = outboundAgent(proxy, { connect: { timeout: auth.apiTimeoutMs } });
  try {
    const res = await request(auth.apiUrl, {
      method: 'HEAD',
      dispatcher: agent,
      signal: AbortSignal.timeout(auth.apiTimeoutMs),
    });
    discard(res.body);
    return ok(`${auth.apiUrl}: reachable (HTTP ${res.statusCode} to a HEAD; no token asked for)`);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const reason =
      error instanceof Error && error.name === 'TimeoutError'
        ? `no answer within AUTH_API_TIMEOUT_MS (${auth.apiTimeoutMs} ms)`
        : `${messageOf(error)}${typeof code === 'string' && !messageOf(error).includes(code) ? ` (${code})` : ''}`;
    return problem(`cannot reach ${auth.apiUrl}: ${reason}`);
  } finally {
    await agent.close().catch(() => undefined);
  }
}

/** GET /info with a bot's app key: the app's name and mode, or why not. */
export async function checkDify(bot: BotConfig, proxy: Config['proxy']): Promise<Outcome> {
  const check = await checkDifyApp({ ...bot.dify, proxy });
  if (!check.ok) return problem(check.problem);
  return ok(`${bot.dify.apiUrl}: app "${check.name}"${check.mode ? `, mode ${check.mode}` : ''}`);
}
