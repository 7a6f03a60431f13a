// The Redis side of directory auth, keeping the keys of the system this replaces (other systems
// still read them):
//   authorization:wechatid:{userid} → token
//   authorization:token:{token}     → user info JSON
// both with the TTL the token service gave. Plus two keys of our own, under `wd:`: a short lock so
// that one node at a time asks the token service for a user, and a failure marker so that a failing
// token service is not asked again for that user until a short backoff has passed, on any node.
// Every key is a single-key command, so this works on Redis Cluster unchanged.
import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { z } from 'zod';
import { AuthError, type AuthErrorCode } from './types.js';

/**
 * The user info stored at `authorization:token:{token}`. Loose: other systems (and the system this
 * replaces) may write and read more fields. Ours: `userid`, `account`, `name`, `department`,
 * `issuedAt` and `expiresAt` (epoch ms), plus the token service's own `user` fields at the top level.
 */
const cachedUserInfoSchema = z.looseObject({
  userid: z.string().optional(),
  account: z.string().optional(),
  name: z.string().optional(),
  department: z.string().optional(),
  issuedAt: z.number().optional(),
  expiresAt: z.number().optional(),
});
export type CachedUserInfo = z.infer<typeof cachedUserInfoSchema>;

export type CacheRead =
  | { status: 'hit'; token: string; info: CachedUserInfo }
  | { status: 'miss'; why: 'no_token' | 'no_info' | 'invalid' | 'expired' | 'other_user' };

const failureSchema = z.object({
  code: z.enum([
    'token_service_unavailable',
    'token_service_bad_response',
    'directory_unavailable',
    'cache_unavailable',
  ]),
  message: z.string(),
});
export type RecordedFailure = z.infer<typeof failureSchema>;

export interface TokenCacheOptions {
  /** Prepended to every key; '' in production so the keys are exactly the shared ones. Tests use a random one. */
  keyPrefix?: string;
  /** Of our own keys (the lock and the failure marker): REDIS_KEY_PREFIX, `wd:` by default. */
  ownPrefix?: string | undefined;
  /**
   * Renew a token this long before it expires (capped at a tenth of its lifetime), so that an
   * answer that takes a while does not run with a token that dies half way. Default 30 s.
   */
  renewBeforeMs?: number;
}

/** Delete a key only if it still holds the given value (a lock still ours, a token not yet replaced). */
const DELETE_IF = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export class TokenCache {
  readonly #redis: Redis | Cluster;
  readonly #prefix: string;
  readonly #own: string;
  readonly #renewBeforeMs: number;

  constructor(redis: Redis | Cluster, options: TokenCacheOptions = {}) {
    this.#redis = redis;
    this.#prefix = options.keyPrefix ?? '';
    this.#own = `${this.#prefix}${options.ownPrefix ?? 'wd:'}`;
    this.#renewBeforeMs = options.renewBeforeMs ?? 30_000;
  }

  readonly keys = {
    wechatid: (userid: string) => `${this.#prefix}authorization:wechatid:${userid}`,
    token: (token: string) => `${this.#prefix}authorization:token:${token}`,
    lock: (userid: string) => `${this.#own}auth:lock:${userid}`,
    failure: (userid: string) => `${this.#own}auth:fail:${userid}`,
  };

  /** The cached token of a user, if it is there, belongs to them and has not (nearly) expired. */
  async read(userid: string, now = Date.now()): Promise<CacheRead> {
    const token = await this.#do('read', () => this.#redis.get(this.keys.wechatid(userid)));
    if (!token) return { status: 'miss', why: 'no_token' };
    const raw = await this.#do('read', () => this.#redis.get(this.keys.token(token)));
    if (!raw) return { status: 'miss', why: 'no_info' };
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return { status: 'miss', why: 'invalid' };
    }
    const parsed = cachedUserInfoSchema.safeParse(json);
    if (!parsed.success) return { status: 'miss', why: 'invalid' };
    const info = parsed.data;
    if (info.userid !== undefined && info.userid !== userid) return { status: 'miss', why: 'other_user' };
    if (info.expiresAt !== undefined) {
      const lifetime =
        info.issuedAt !== undefined ? info.expiresAt - info.issuedAt : Number.POSITIVE_INFINITY;
      const margin = Math.min(this.#renewBeforeMs, Math.max(0, lifetime / 10));
      if (info.expiresAt - margin <= now) return { status: 'miss', why: 'expired' };
    }
    // No expiresAt (written by another system): the key's own TTL is the expiry.
    return { status: 'hit', token, info };
  }

  /** Store both keys with the token's TTL: the info first, so a reader never finds a pointer to nothing. */
  async write(userid: string, token: string, info: CachedUserInfo, ttlSeconds: number): Promise<void> {
    const ttl = Math.max(1, Math.floor(ttlSeconds));
    await this.#do('write', () => this.#redis.set(this.keys.token(token), JSON.stringify(info), 'EX', ttl));
    await this.#do('write', () => this.#redis.set(this.keys.wechatid(userid), token, 'EX', ttl));
  }

  /** Forget a user's cached token (on disable): both keys. */
  async revoke(userid: string): Promise<boolean> {
    const token = await this.#do('revoke', () => this.#redis.get(this.keys.wechatid(userid)));
    if (!token) return false;
    await this.#do('revoke', () => this.#redis.del(this.keys.token(token)));
    await this.#do('revoke', () => this.#redis.del(this.keys.wechatid(userid)));
    return true;
  }

  /**
   * Forget a token Dify refused: its info, and the user's pointer to it unless the pointer already
   * names another token (another node may have just got a fresh one). True when the pointer went.
   */
  async forget(userid: string, token: string): Promise<boolean> {
    await this.#do('forget', () => this.#redis.del(this.keys.token(token)));
    const deleted = await this.#do('forget', () =>
      this.#redis.eval(DELETE_IF, 1, this.keys.wechatid(userid), token),
    );
    return deleted === 1;
  }

  /** `SET NX PX`: the nonce to unlock with when this caller got the lock, else undefined. */
  async tryLock(userid: string, ttlMs: number): Promise<string | undefined> {
    const nonce = randomBytes(12).toString('base64url');
    const ok = await this.#do('lock', () =>
      this.#redis.set(this.keys.lock(userid), nonce, 'PX', ttlMs, 'NX'),
    );
    return ok === 'OK' ? nonce : undefined;
  }

  /** Release the lock only if it is still ours (it may have expired and been taken). */
  async unlock(userid: string, nonce: string): Promise<void> {
    await this.#do('unlock', () => this.#redis.eval(DELETE_IF, 1, this.keys.lock(userid), nonce));
  }

  async recordFailure(userid: string, failure: RecordedFailure, ttlMs: number): Promise<void> {
    await this.#do('write', () =>
      this.#redis.set(this.keys.failure(userid), JSON.stringify(failure), 'PX', Math.max(1, ttlMs)),
    );
  }

  async readFailure(userid: string): Promise<RecordedFailure | undefined> {
    const raw = await this.#do('read', () => this.#redis.get(this.keys.failure(userid)));
    if (!raw) return undefined;
    try {
      const parsed = failureSchema.safeParse(JSON.parse(raw));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  async #do<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      const code: AuthErrorCode = 'cache_unavailable';
      // No `cause`: ioredis errors carry the command's arguments, and a key may hold a token.
      throw new AuthError(code, `token cache ${what} failed: ${detail}`);
    }
  }
}
