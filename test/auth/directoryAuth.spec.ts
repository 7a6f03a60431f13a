import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Directory, openDirectory } from '../../src/auth/directory.js';
import { type AuthSettings, createAuthenticator } from '../../src/auth/factory.js';
import { TokenCache } from '../../src/auth/tokenCache.js';
import { AuthError, type Authenticator, type AuthOutcome } from '../../src/auth/types.js';
import { type FakeTokenService, startFakeTokenService } from '../support/fakeTokenService.js';
import {
  createTestDatabase,
  MYSQL_HOST,
  MYSQL_PORT,
  startTcpProxy,
  type TestDatabase,
  type TestRedis,
  testRedis,
  testSecretKey,
} from './support.js';

let tdb: TestDatabase;
let tr: TestRedis;
let redis: Redis;
let fake: FakeTokenService;
let directory: Directory;
let cache: TokenCache;
const secretKey = testSecretKey();
const opened: Authenticator[] = [];

const settings = (over: Partial<AuthSettings> = {}): AuthSettings => ({
  mode: 'directory',
  mysqlUrl: tdb.url,
  apiUrl: fake.url,
  apiTimeoutMs: 400,
  secretKey,
  deniedText: '你还不在通讯录里：请在 OA 里申请“AI 助手”权限。',
  ...over,
});

async function node(over: Partial<AuthSettings> = {}, failureBackoffMs = 300): Promise<Authenticator> {
  const a = await createAuthenticator(settings(over), {
    redis: tr.connect(),
    keyPrefix: tr.prefix,
    failureBackoffMs,
    directory: { queryTimeoutMs: 1000, connectTimeoutMs: 500 },
  });
  opened.push(a);
  return a;
}

async function failure(p: Promise<unknown>): Promise<AuthError> {
  try {
    await p;
  } catch (error) {
    if (error instanceof AuthError) return error;
    throw error;
  }
  throw new Error('expected an AuthError');
}

const tokenOf = (o: AuthOutcome) => (o.granted ? o.token : undefined);

beforeAll(async () => {
  tdb = await createTestDatabase();
  tr = testRedis();
  redis = tr.connect();
  fake = await startFakeTokenService();
  cache = new TokenCache(redis, { keyPrefix: tr.prefix });
  directory = openDirectory({ mysqlUrl: tdb.url, secretKey });
  await directory.migrate();
  await directory.addUser({
    userid: 'zhangsan',
    account: 'E1001',
    name: '张三',
    department: '研发部',
    secret: 'pw-1',
  });
  await directory.addUser({ userid: 'lisi', account: 'E1002', name: '李四' });
  await directory.addUser({ userid: 'gone', account: 'E0000', enabled: false });
});
afterAll(async () => {
  await directory?.close();
  await fake?.close();
  await tr?.cleanup();
  await tdb?.drop();
});
beforeEach(async () => {
  fake.reset();
  for (const u of ['zhangsan', 'lisi', 'gone', 'stranger']) {
    await cache.revoke(u);
    await redis.del(cache.keys.failure(u), cache.keys.lock(u));
  }
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((a) => a.close()));
});

describe('AUTH_MODE=directory: a cold cache', () => {
  it('looks the user up, asks the token service once, and stores both keys with its TTL', async () => {
    fake.user = { employeeNo: '0042' };
    const a = await node();
    const outcome = await a.authenticate({ userid: 'zhangsan', bot: 'b1' });
    expect(fake.requests).toEqual([{ userid: 'zhangsan', account: 'E1001', secret: 'pw-1' }]);
    const token = fake.issued[0];
    expect(outcome).toEqual({
      granted: true,
      user: { id: 'zhangsan', name: '张三', department: '研发部', account: 'E1001' },
      token,
    });

    // The keys of the system this replaces, exactly (after the test prefix).
    expect(await redis.get(`${tr.prefix}authorization:wechatid:zhangsan`)).toBe(token);
    const info = JSON.parse((await redis.get(`${tr.prefix}authorization:token:${token}`)) ?? '{}');
    expect(info).toMatchObject({
      userid: 'zhangsan',
      account: 'E1001',
      name: '张三',
      department: '研发部',
      employeeNo: '0042',
    });
    expect(info.expiresAt - info.issuedAt).toBe(7200_000);
    expect(JSON.stringify(info)).not.toContain('pw-1');
    for (const key of [
      `${tr.prefix}authorization:wechatid:zhangsan`,
      `${tr.prefix}authorization:token:${token}`,
    ]) {
      const ttl = await redis.ttl(key);
      expect(ttl).toBeGreaterThan(7190);
      expect(ttl).toBeLessThanOrEqual(7200);
    }
  });

  it('never puts the token or the secret into the granted user', async () => {
    const a = await node();
    const outcome = await a.authenticate({ userid: 'zhangsan', bot: 'b1' });
    expect(outcome.granted && JSON.stringify(outcome.user)).not.toContain(fake.issued[0]);
    expect(outcome.granted && JSON.stringify(outcome.user)).not.toContain('pw-1');
  });
});

describe('AUTH_MODE=directory: a warm cache', () => {
  it('uses the cached token with no token request', async () => {
    const a = await node();
    const first = await a.authenticate({ userid: 'lisi', bot: 'b1' });
    const b = await node(); // another node, same Redis
    const second = await b.authenticate({ userid: 'lisi', bot: 'b1' });
    expect(tokenOf(second)).toBe(tokenOf(first));
    expect(fake.requests).toHaveLength(1);
  });

  it('accepts a token written by the system it replaces (no expiresAt: the key TTL rules)', async () => {
    await redis.set(
      `${tr.prefix}authorization:token:legacy-tok`,
      JSON.stringify({ name: '李四', dept: 'x' }),
      'EX',
      60,
    );
    await redis.set(`${tr.prefix}authorization:wechatid:lisi`, 'legacy-tok', 'EX', 60);
    const a = await node();
    expect(await a.authenticate({ userid: 'lisi', bot: 'b1' })).toMatchObject({
      granted: true,
      token: 'legacy-tok',
      user: { id: 'lisi', name: '李四' },
    });
    expect(fake.requests).toHaveLength(0);
  });

  it('renews an expired token', async () => {
    fake.expiresIn = 1;
    const a = await node();
    const first = tokenOf(await a.authenticate({ userid: 'lisi', bot: 'b1' }));
    expect(tokenOf(await a.authenticate({ userid: 'lisi', bot: 'b1' }))).toBe(first);
    // The token's second runs out: the cache no longer holds a valid one for the user.
    await expect.poll(async () => (await cache.read('lisi')).status, { timeout: 5_000 }).toBe('miss');
    fake.expiresIn = 7200;
    const renewed = tokenOf(await a.authenticate({ userid: 'lisi', bot: 'b1' }));
    expect(renewed).not.toBe(first);
    expect(fake.requests).toHaveLength(2);
  });

  it('renews a token whose info says it has expired, even if the key is still there', async () => {
    const now = Date.now();
    await redis.set(
      `${tr.prefix}authorization:token:stale`,
      JSON.stringify({ userid: 'lisi', issuedAt: now - 7200_000, expiresAt: now - 1000 }),
      'EX',
      60,
    );
    await redis.set(`${tr.prefix}authorization:wechatid:lisi`, 'stale', 'EX', 60);
    const a = await node();
    expect(tokenOf(await a.authenticate({ userid: 'lisi', bot: 'b1' }))).toBe(fake.issued[0]);
    expect(fake.requests).toHaveLength(1);
  });

  it('renews when the token has no user info, unreadable info, or info of another user', async () => {
    const a = await node();
    const key = `${tr.prefix}authorization:wechatid:lisi`;
    await redis.set(key, 'dangling', 'EX', 60);
    await a.authenticate({ userid: 'lisi', bot: 'b1' });
    await redis.set(`${tr.prefix}authorization:token:garbage`, '{not json', 'EX', 60);
    await redis.set(key, 'garbage', 'EX', 60);
    await a.authenticate({ userid: 'lisi', bot: 'b1' });
    await redis.set(
      `${tr.prefix}authorization:token:theirs`,
      JSON.stringify({ userid: 'zhangsan' }),
      'EX',
      60,
    );
    await redis.set(key, 'theirs', 'EX', 60);
    const outcome = await a.authenticate({ userid: 'lisi', bot: 'b1' });
    expect(tokenOf(outcome)).toBe(fake.issued[2]);
    expect(fake.requests).toHaveLength(3);
  });
});

describe('AUTH_MODE=directory: a token Dify refuses', () => {
  it('is forgotten, so that the next message gets a new one from the token service', async () => {
    const a = await node();
    const refused = tokenOf(await a.authenticate({ userid: 'lisi', bot: 'b1' }))!;
    await a.tokenRejected!('lisi', refused);
    expect(await redis.exists(`${tr.prefix}authorization:wechatid:lisi`)).toBe(0);
    expect(await redis.exists(`${tr.prefix}authorization:token:${refused}`)).toBe(0);
    const b = await node(); // any node
    const fresh = tokenOf(await b.authenticate({ userid: 'lisi', bot: 'b1' }));
    expect(fresh).toBe(fake.issued[1]);
    expect(fresh).not.toBe(refused);
    expect(fake.requests).toHaveLength(2);
  });

  it('leaves alone the fresh token another node already got in its place', async () => {
    const a = await node();
    const refused = tokenOf(await a.authenticate({ userid: 'lisi', bot: 'b1' }))!;
    const b = await node();
    await b.tokenRejected!('lisi', refused);
    const fresh = tokenOf(await b.authenticate({ userid: 'lisi', bot: 'b1' }))!;
    // Node a learns late that the old token was refused too.
    await a.tokenRejected!('lisi', refused);
    expect(await redis.get(`${tr.prefix}authorization:wechatid:lisi`)).toBe(fresh);
    expect(tokenOf(await a.authenticate({ userid: 'lisi', bot: 'b1' }))).toBe(fresh);
    expect(fake.requests).toHaveLength(2);
  });
});

describe('AUTH_MODE=directory: denials', () => {
  it('a user not in the directory is denied with the configured text, and no token is asked for', async () => {
    const a = await node();
    expect(await a.authenticate({ userid: 'stranger', bot: 'b1' })).toEqual({
      granted: false,
      reason: 'not_in_directory',
      text: '你还不在通讯录里：请在 OA 里申请“AI 助手”权限。',
    });
    expect(await a.authenticate({ userid: 'gone', bot: 'b1' })).toMatchObject({
      granted: false,
      reason: 'disabled',
    });
    expect(fake.requests).toHaveLength(0);
    expect(await redis.exists(`${tr.prefix}authorization:wechatid:stranger`)).toBe(0);
  });

  it('"LISI" is not lisi: not in the directory, nor through a token cached for lisi under "LISI"', async () => {
    // What a directory that matched userids case-insensitively left in the cache.
    await redis.set(`${tr.prefix}authorization:token:lisis`, JSON.stringify({ userid: 'lisi' }), 'EX', 60);
    await redis.set(`${tr.prefix}authorization:wechatid:LISI`, 'lisis', 'EX', 60);
    const a = await node();
    expect(await a.authenticate({ userid: 'LISI', bot: 'b1' })).toMatchObject({
      granted: false,
      reason: 'not_in_directory',
    });
    expect(await a.authenticate({ userid: 'lisí', bot: 'b1' })).toMatchObject({ granted: false });
    expect(fake.requests).toHaveLength(0);
    await redis.del(`${tr.prefix}authorization:wechatid:LISI`, `${tr.prefix}authorization:token:lisis`);
  });

  it('a userid with quotes and SQL in it is just a stranger', async () => {
    const a = await node();
    for (const userid of [`' OR '1'='1`, `zhangsan'; DROP TABLE wecom_users; --`, `"lisi" -- `]) {
      expect(await a.authenticate({ userid, bot: 'b1' })).toMatchObject({
        granted: false,
        reason: 'not_in_directory',
      });
    }
    expect(fake.requests).toHaveLength(0);
    expect(await directory.findUser('zhangsan')).toBeDefined();
  });
});

describe('AUTH_MODE=directory: a failing token service', () => {
  for (const [mode, code] of [
    ['hang', 'token_service_unavailable'],
    ['error500', 'token_service_unavailable'],
    ['malformed', 'token_service_bad_response'],
  ] as const) {
    it(`${mode}: try again later, nothing cached, no tight retry, recovery after the backoff`, async () => {
      fake.mode = mode;
      // A backoff long enough that a loaded machine still makes the three calls below inside it.
      const a = await node({}, 2_000);
      const started = Date.now();
      const error = await failure(a.authenticate({ userid: 'lisi', bot: 'b1' }));
      expect(error.code).toBe(code);
      expect(Date.now() - started).toBeLessThan(1500);
      expect(await redis.exists(`${tr.prefix}authorization:wechatid:lisi`)).toBe(0);

      // Within the backoff: the same answer at once, on this node and another, with no new request.
      const b = await node({}, 2_000);
      for (const n of [a, b, a]) {
        const t0 = Date.now();
        expect((await failure(n.authenticate({ userid: 'lisi', bot: 'b1' }))).code).toBe(code);
        expect(Date.now() - t0).toBeLessThan(300); // the token service's timeout is 400 ms
      }
      expect(fake.requests).toHaveLength(1);

      fake.mode = 'ok';
      await expect.poll(() => cache.readFailure('lisi'), { timeout: 5_000 }).toBeUndefined();
      expect(await a.authenticate({ userid: 'lisi', bot: 'b1' })).toMatchObject({ granted: true });
      expect(fake.requests).toHaveLength(2);
    });
  }
});

describe('AUTH_MODE=directory: MariaDB stopped or unreachable', () => {
  it('a cold cache gives a clear directory_unavailable; a warm one still answers; it recovers when MariaDB returns', async () => {
    const proxy = await startTcpProxy(MYSQL_HOST, MYSQL_PORT);
    try {
      const a = await node({ mysqlUrl: tdb.urlVia(proxy.port) });
      await a.authenticate({ userid: 'zhangsan', bot: 'b1' });
      proxy.cut();
      const error = await failure(a.authenticate({ userid: 'lisi', bot: 'b1' }));
      expect(error.code).toBe('directory_unavailable');
      expect(error.message).toMatch(/directory lookup at 127\.0\.0\.1/);
      await expect(a.ping?.()).rejects.toMatchObject({ code: 'directory_unavailable' });
      // A user with a cached token does not need the directory.
      expect(await a.authenticate({ userid: 'zhangsan', bot: 'b1' })).toMatchObject({ granted: true });
      expect(fake.requests).toHaveLength(1);

      proxy.restore();
      expect(await a.authenticate({ userid: 'lisi', bot: 'b1' })).toMatchObject({ granted: true });
      await a.ping?.();
    } finally {
      await proxy.close();
    }
  });

  it('a directory that is down at start refuses to start with a clear error', async () => {
    const proxy = await startTcpProxy(MYSQL_HOST, MYSQL_PORT);
    proxy.cut();
    try {
      const error = await failure(node({ mysqlUrl: tdb.urlVia(proxy.port) }));
      expect(error.code).toBe('directory_unavailable');
      expect(error.message).not.toMatch(/root@/);
    } finally {
      await proxy.close();
    }
  });
});
