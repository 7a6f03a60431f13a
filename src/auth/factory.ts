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
import { createTokenService, type TokenService } from './tokenService.js';
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

/** The settings of one authenticator: its mode and denial text, and the deployment's directory. */
export type AuthSettings = Config['auth'] & {
  mode: 'none' | 'allowlist' | 'directory';
  deniedText?: string | undefined;
};

/** One authenticator, with a directory and token service of its own (tools, tests). */
export async function createAuthenticator(config: AuthSettings, deps: AuthDeps = {}): Promise<Authenticator> {
  const shared = new Authenticators(config, deps);
  const authenticator = await shared.get(config.mode, config.deniedText).catch(async (error: unknown) => {
    await shared.close();
    throw error;
  });
  // Its own: closing it closes what it was built on.
  const { immediate, tokenRejected } = authenticator;
  return {
    authenticate: (req) => authenticator.authenticate(req),
    ...(immediate ? { immediate: (req) => immediate.call(authenticator, req) } : {}),
    ...(tokenRejected ? { tokenRejected: (u, t) => tokenRejected.call(authenticator, u, t) } : {}),
    ...(config.mode === 'none' ? {} : { ping: () => shared.ping() }),
    close: () => shared.close(),
  } satisfies Authenticator;
}

/**
 * The authenticators of a deployment's bots: one per mode and denial text, sharing one directory
 * (opened and migrated once, when a bot first needs it), one token service client and one token
 * cache. Closing it closes those.
 */
export class Authenticators {
  readonly #settings: Config['auth'];
  readonly #deps: AuthDeps;
  readonly #made = new Map<string, Promise<Authenticator>>();
  #directory: Promise<Directory> | undefined;
  #tokenService: TokenService | undefined;

  constructor(settings: Config['auth'], deps: AuthDeps = {}) {
    this.#settings = settings;
    this.#deps = deps;
  }

  /** The authenticator of a mode (made once); throws when the deployment lacks what it needs. */
  get(mode: AuthSettings['mode'], deniedText?: string): Promise<Authenticator> {
    const key = `${mode}\n${deniedText ?? ''}`;
    let made = this.#made.get(key);
    if (!made) {
      made = this.#make(mode, deniedText);
      // A failure is not kept: the next bot (or a reload) tries again.
      made.catch(() => this.#made.delete(key));
      this.#made.set(key, made);
    }
    return made;
  }

  /** Whether the directory answers, when a bot uses it. */
  async ping(): Promise<void> {
    if (this.#directory) await (await this.#directory).ping();
  }

  /** Whether any bot's authenticator needs the directory (for readiness). */
  get usesDirectory(): boolean {
    return this.#directory !== undefined;
  }

  async close(): Promise<void> {
    const directory = await this.#directory?.catch(() => undefined);
    await Promise.allSettled([directory?.close(), this.#tokenService?.close()]);
  }

  async #make(mode: AuthSettings['mode'], deniedText: string | undefined): Promise<Authenticator> {
    const config = this.#settings;
    const deps = this.#deps;
    const logger = deps.logger ?? silentAuthLogger;
    if (mode === 'none') return new NoneAuthenticator();
    if (!config.mysqlUrl) throw new Error(`AUTH_MODE=${mode} needs MYSQL_URL`);
    if (mode === 'directory') {
      if (!config.apiUrl) throw new Error('AUTH_MODE=directory needs AUTH_API_URL');
      if (!deps.redis)
        throw new Error(
          'AUTH_MODE=directory needs Redis (REDIS_URL or REDIS_CLUSTER_NODES) for its token cache',
        );
    }
    const directory = await this.#openDirectory();
    // Shared: the deployment closes them, not a bot's authenticator.
    const kept = { ...directory, close: async () => {} } as Directory;
    if (mode === 'allowlist')
      return new AllowlistAuthenticator({ directory: kept, ...(deniedText ? { deniedText } : {}) });
    if (!config.apiUrl || !deps.redis) throw new Error('unreachable');
    this.#tokenService ??= createTokenService({
      url: config.apiUrl,
      timeoutMs: config.apiTimeoutMs,
      proxy: deps.proxy,
    });
    const tokenService = this.#tokenService;
    const queryTimeoutMs = deps.directory?.queryTimeoutMs ?? 3000;
    return new DirectoryAuthenticator({
      directory: kept,
      tokenService: { ...tokenService, close: async () => {} } as TokenService,
      cache: new TokenCache(deps.redis, { keyPrefix: deps.keyPrefix ?? '', ownPrefix: deps.ownKeyPrefix }),
      logger,
      ...(deniedText ? { deniedText } : {}),
      ...(deps.failureBackoffMs !== undefined ? { failureBackoffMs: deps.failureBackoffMs } : {}),
      ...(deps.onTokenRequest ? { onTokenRequest: deps.onTokenRequest } : {}),
      // The elected node needs at most a directory read and a token request.
      lockMs: queryTimeoutMs + config.apiTimeoutMs + 2000,
    });
  }

  #openDirectory(): Promise<Directory> {
    this.#directory ??= (async () => {
      const config = this.#settings;
      const deps = this.#deps;
      const logger = deps.logger ?? silentAuthLogger;
      // Loaded only here: the MySQL driver and the query builder weigh some 25 MB of memory, which a
      // node whose bots all use AUTH_MODE=none does not carry.
      const { openDirectory } = await import('./directory.js');
      const directory = openDirectory({
        mysqlUrl: config.mysqlUrl as string,
        ...(config.secretKey ? { secretKey: config.secretKey } : {}),
        ...deps.directory,
        queryTimeoutMs: deps.directory?.queryTimeoutMs ?? 3000,
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
      return directory;
    })();
    // A directory that could not be opened is tried again by the next bot that needs it.
    this.#directory.catch(() => {
      this.#directory = undefined;
    });
    return this.#directory;
  }
}
