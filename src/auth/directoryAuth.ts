// AUTH_MODE=directory, the flow of the system this replaces: the user's token from the Redis cache
// when it is there and valid; otherwise the directory says whether the user may ask at all, the token
// service issues a token, and both Redis keys are written with its TTL.
//
// One token request per user however many messages and nodes: in a node, concurrent calls share one
// promise; across nodes, a `SET NX PX` lock elects the node that asks, and the others poll the cache
// until it has written the token (bounded). A token-service failure is recorded in Redis for a short
// backoff, during which every node answers that user "try again later" without calling the service.
import type { Directory } from './directory.js';
import type { Secret } from './secretBox.js';
import type { CachedUserInfo, TokenCache } from './tokenCache.js';
import type { TokenService } from './tokenService.js';
import {
  AuthError,
  type Authenticator,
  type AuthLogger,
  type AuthOutcome,
  type AuthRequest,
  silentAuthLogger,
} from './types.js';
import { grantedUser, judge } from './verdict.js';

export interface DirectoryAuthOptions {
  directory: Directory;
  tokenService: TokenService;
  cache: TokenCache;
  deniedText?: string;
  logger?: AuthLogger;
  /** After a token-service failure, that user's requests fail fast for this long (default 5000 ms). */
  failureBackoffMs?: number;
  /** How long the elected node may take (directory + token service); the lock's TTL (default 10000 ms). */
  lockMs?: number;
  /** How often a waiting node looks at the cache (default 25 ms). */
  pollMs?: number;
  /** Told of every token-service request's outcome, for metrics: `ok`, or the AuthError code. */
  onTokenRequest?: (outcome: 'ok' | 'token_service_unavailable' | 'token_service_bad_response') => void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class DirectoryAuthenticator implements Authenticator {
  readonly #o: Required<Omit<DirectoryAuthOptions, 'deniedText' | 'onTokenRequest'>> &
    Pick<DirectoryAuthOptions, 'deniedText' | 'onTokenRequest'>;
  /** userid → the renewal this node is running for them. */
  readonly #inflight = new Map<string, Promise<AuthOutcome>>();

  constructor(options: DirectoryAuthOptions) {
    this.#o = {
      logger: silentAuthLogger,
      failureBackoffMs: 5000,
      lockMs: 10_000,
      pollMs: 25,
      ...options,
    };
  }

  async authenticate(req: AuthRequest): Promise<AuthOutcome> {
    const cached = await this.#o.cache.read(req.userid);
    if (cached.status === 'hit') return granted(req.userid, cached.token, cached.info);
    this.#o.logger.debug({ userid: req.userid, why: cached.why }, 'no valid cached token');
    let pending = this.#inflight.get(req.userid);
    if (!pending) {
      pending = this.#renew(req.userid).finally(() => this.#inflight.delete(req.userid));
      this.#inflight.set(req.userid, pending);
    }
    return pending;
  }

  /** Elect one node to ask the token service; wait for it otherwise. */
  async #renew(userid: string): Promise<AuthOutcome> {
    const { cache, lockMs, pollMs } = this.#o;
    // A waiter gives up a little after the elected node's lock would have run out.
    const deadline = Date.now() + lockMs + 1000;
    for (;;) {
      const failure = await cache.readFailure(userid);
      if (failure) throw new AuthError(failure.code, `${failure.message} (recent failure; not retried yet)`);
      const nonce = await cache.tryLock(userid, lockMs);
      if (nonce) {
        try {
          return await this.#issue(userid);
        } finally {
          await cache.unlock(userid, nonce).catch((error: unknown) => {
            // The lock runs out by itself; a failed unlock only delays other nodes until then.
            this.#o.logger.warn({ userid, err: String(error) }, 'could not release the token lock');
          });
        }
      }
      await sleep(pollMs);
      const cached = await cache.read(userid);
      if (cached.status === 'hit') return granted(userid, cached.token, cached.info);
      if (Date.now() > deadline)
        throw new AuthError(
          'token_service_unavailable',
          'timed out waiting for another node to obtain the token',
        );
    }
  }

  /** Holding the lock: the directory decides, the token service issues, the cache remembers. */
  async #issue(userid: string): Promise<AuthOutcome> {
    const { cache, directory, tokenService, logger } = this.#o;
    // The node that held the lock before us may have just written it.
    const cached = await cache.read(userid);
    if (cached.status === 'hit') return granted(userid, cached.token, cached.info);

    const verdict = judge(await directory.findUser(userid), this.#o.deniedText);
    if (!verdict.ok) {
      logger.info({ userid, reason: verdict.outcome.reason }, 'auth denied');
      return verdict.outcome;
    }
    const entry = verdict.entry;
    const started = Date.now();
    let issued: Awaited<ReturnType<TokenService['issue']>>;
    try {
      const secret: Secret | undefined = entry.secret;
      issued = await tokenService.issue({
        userid: entry.userid,
        account: entry.account,
        ...(secret ? { secret } : {}),
      });
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      if (error.code === 'token_service_unavailable' || error.code === 'token_service_bad_response')
        this.#o.onTokenRequest?.(error.code);
      logger.warn(
        { userid, code: error.code, status: error.status, ms: Date.now() - started, err: error.message },
        'token service failed; backing off',
      );
      await cache
        .recordFailure(userid, { code: error.code, message: error.message }, this.#o.failureBackoffMs)
        .catch(() => undefined);
      throw error;
    }
    this.#o.onTokenRequest?.('ok');
    const now = Date.now();
    const info: CachedUserInfo = {
      // The service's own user fields first, so ours (which other systems rely on) win a clash.
      ...(issued.user ?? {}),
      userid: entry.userid,
      account: entry.account,
      ...(entry.name ? { name: entry.name } : {}),
      ...(entry.department ? { department: entry.department } : {}),
      issuedAt: now,
      expiresAt: now + issued.expiresInSeconds * 1000,
    };
    // Keyed by the userid WeCom sent, which is what every reader (ours and the other systems') looks up.
    await cache.write(userid, issued.token, info, issued.expiresInSeconds);
    logger.info({ userid, expiresIn: issued.expiresInSeconds, ms: now - started }, 'token issued');
    return granted(userid, issued.token, info);
  }

  async tokenRejected(userid: string, token: string): Promise<void> {
    const dropped = await this.#o.cache.forget(userid, token);
    this.#o.logger.info({ userid, dropped }, 'token refused by Dify: forgotten');
  }

  ping(): Promise<void> {
    return this.#o.directory.ping();
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#o.directory.close(), this.#o.tokenService.close()]);
  }
}

function granted(userid: string, token: string, info: CachedUserInfo): AuthOutcome {
  return {
    granted: true,
    user: grantedUser({
      userid: info.userid ?? userid,
      ...(info.account ? { account: info.account } : {}),
      ...(info.name ? { name: info.name } : {}),
      ...(info.department ? { department: info.department } : {}),
    }),
    token,
  };
}
