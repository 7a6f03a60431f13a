// Builds the Authenticator AUTH_MODE asks for, with its directory (migrated at start), token
// service client and Redis token cache.
import type { Cluster, Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { ProxySettings } from '../outbound.js';
import { AllowlistAuthenticator } from './allowlist.js';
import type { Directory, DirectoryOptions } from './directory.js';
import { DirectoryAuthenticator, type DirectoryAuthOptions } from './directoryAuth.js';
import { NoneAuthenticator } from './none.js';
import { TokenCache } from './tokenCache.js';
import { createTokenService } from './tokenService.js';
import { type Authenticator, type AuthLogger, silentAuthLogger } from './types.js';

export interface AuthDeps {
  /** The token cache's Redis; required for AUTH_MODE=directory. */
  redis?: Redis | Cluster | undefined;
  logger?: AuthLogger;
  /** Prefix for the auth keys; '' (the default) in production, random in tests. */
  keyPrefix?: string;
  /** REDIS_KEY_PREFIX: of the auth keys that are ours (lock, failure back-off), not the shared ones. */
  ownKeyPrefix?: string;
  /** Run the directory migrations before answering (default true). */
  migrate?: boolean;
  /** See DirectoryAuthOptions.failureBackoffMs. */
  failureBackoffMs?: number;
  /** HTTP_PROXY / HTTPS_PROXY / NO_PROXY for the token service. */
  proxy?: ProxySettings;
  /** See DirectoryAuthOptions.onTokenRequest. */
  onTokenRequest?: DirectoryAuthOptions['onTokenRequest'];
  /** Connect and query deadlines of the directory. */
  directory?: Pick<DirectoryOptions, 'connectTimeoutMs' | 'queryTimeoutMs' | 'poolSize'>;
}

export async function createAuthenticator(
  config: Config['auth'],
  deps: AuthDeps = {},
): Promise<Authenticator> {
  const logger = deps.logger ?? silentAuthLogger;
  if (config.mode === 'none') return new NoneAuthenticator();

  if (!config.mysqlUrl) throw new Error(`AUTH_MODE=${config.mode} needs MYSQL_URL`);
  if (config.mode === 'directory') {
    if (!config.apiUrl) throw new Error('AUTH_MODE=directory needs AUTH_API_URL');
    if (!deps.redis)
      throw new Error(
        'AUTH_MODE=directory needs Redis (REDIS_URL or REDIS_CLUSTER_NODES) for its token cache',
      );
  }
  const queryTimeoutMs = deps.directory?.queryTimeoutMs ?? 3000;
  // Loaded only here: the MySQL driver and the query builder weigh some 25 MB of memory, which a
  // node with AUTH_MODE=none does not carry.
  const { openDirectory } = await import('./directory.js');
  const directory: Directory = openDirectory({
    mysqlUrl: config.mysqlUrl,
    ...(config.secretKey ? { secretKey: config.secretKey } : {}),
    ...deps.directory,
    queryTimeoutMs,
  });
  if (deps.migrate ?? true) {
    try {
      const { applied } = await directory.migrate();
      if (applied.length > 0) logger.info({ applied }, 'directory migrated');
    } catch (error) {
      await directory.close();
      throw error;
    }
  }
  if (config.mode === 'allowlist')
    return new AllowlistAuthenticator({
      directory,
      ...(config.deniedText ? { deniedText: config.deniedText } : {}),
    });

  // Checked above; repeated for the type checker.
  if (!config.apiUrl || !deps.redis) throw new Error('unreachable');
  return new DirectoryAuthenticator({
    directory,
    tokenService: createTokenService({
      url: config.apiUrl,
      timeoutMs: config.apiTimeoutMs,
      proxy: deps.proxy,
    }),
    cache: new TokenCache(deps.redis, { keyPrefix: deps.keyPrefix ?? '', ownPrefix: deps.ownKeyPrefix }),
    logger,
    ...(config.deniedText ? { deniedText: config.deniedText } : {}),
    ...(deps.failureBackoffMs !== undefined ? { failureBackoffMs: deps.failureBackoffMs } : {}),
    ...(deps.onTokenRequest ? { onTokenRequest: deps.onTokenRequest } : {}),
    // The elected node needs at most a directory read and a token request.
    lockMs: queryTimeoutMs + config.apiTimeoutMs + 2000,
  });
}
