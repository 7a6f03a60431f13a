// Per-user identity end to end, through HTTP: two service instances with AUTH_MODE=directory on the
// real MariaDB (reached through a proxy the test can cut) and Redis, a fake token service and a fake
// Dify. WeCom is played by the official @wecom/crypto package.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDirectory } from '../src/auth/directory.js';
import { TokenCache } from '../src/auth/tokenCache.js';
import { defaultTexts } from '../src/machines/texts.js';
import {
  createTestDatabase,
  MYSQL_HOST,
  MYSQL_PORT,
  rawQuery,
  startTcpProxy,
  type TcpProxy,
  type TestDatabase,
} from './auth/support.js';
import { type E2E, startE2E } from './support/e2e.js';
import { type FakeTokenService, startFakeTokenService } from './support/fakeTokenService.js';
import { redisUrl } from './support/service.js';
import type { WecomClient } from './support/wecomClient.js';

const deniedText = '你还没有开通 AI 助手，请在 IT 服务台申请（分机 8000）。';
const run = randomBytes(3).toString('hex');
/** Userids of this run only: the auth cache keys are shared (`authorization:*`), not prefixed. */
const user = (name: string) => `${name}-${run}`;

/** The shared auth keys this run wrote (its users' tokens), removed when every suite here is done. */
afterAll(async () => {
  const redis = new Redis(redisUrl);
  const keys = await redis.keys(`*${run}*`);
  const tokenKeys = (await Promise.all(keys.map((k) => (k.includes('wechatid') ? redis.get(k) : null))))
    .filter((t): t is string => t !== null)
    .map((t) => `authorization:token:${t}`);
  if (keys.length + tokenKeys.length) await redis.del(...keys, ...tokenKeys);
  redis.disconnect();
});

describe('directory authentication through HTTP, on two nodes', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let tokens: FakeTokenService;
  let e: E2E;
  let toA: WecomClient;
  let toB: WecomClient;

  beforeAll(async () => {
    db = await createTestDatabase();
    proxy = await startTcpProxy(MYSQL_HOST, MYSQL_PORT);
    tokens = await startFakeTokenService({ delayMs: 100 });
    const mysqlUrl = db.url.replace(`:${MYSQL_PORT}/`, `:${proxy.port}/`);
    e = await startE2E({
      name: 'auth',
      nodes: 2,
      env: {
        AUTH_MODE: 'directory',
        MYSQL_URL: mysqlUrl,
        AUTH_API_URL: tokens.url,
        AUTH_DENIED_TEXT: deniedText,
        DIFY_INPUTS: JSON.stringify({ user_name: 'name', dept: 'department', auth_token: 'token' }),
      },
    });
    [toA, toB] = [e.clients[0]!, e.clients[1]!];
    const directory = openDirectory({ mysqlUrl: db.url });
    await directory.addUser({
      userid: user('zhangsan'),
      account: 'E1001',
      name: '张三',
      department: '研发部',
    });
    await directory.addUser({ userid: user('lisi'), account: 'E1002', name: '李四' });
    await directory.addUser({ userid: user('old'), account: 'E1003', enabled: false });
    await directory.close();
  });
  afterAll(async () => {
    await e?.stop();
    await tokens?.close();
    await proxy?.close();
    await db?.drop();
  });

  const runsOf = (userid: string) =>
    e.dify.runs().filter((r) => (r.body as { user?: string }).user === userid);

  it('20 concurrent messages of one user on two nodes: one token request, every answer, and Dify knows who asks', async () => {
    e.dify.setDefault({ kind: 'answer', text: '你好，张三。' });
    const userid = user('zhangsan');
    const sent = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? toB : toA).text(`@助手 问题 ${i}`, { userid, chatid: `chat-${run}-${i}` }),
      ),
    );
    const done = await Promise.all(
      sent.map((s, i) => (i % 2 ? toA : toB).pollUntilFinished(s.reply.stream.id, { intervalMs: 50 })),
    );
    for (const d of done) expect(d.reply.stream.content).toBe('你好，张三。');
    expect(tokens.requests).toHaveLength(1);
    expect(tokens.requests[0]).toEqual({ userid, account: 'E1001' });
    const runs = runsOf(userid);
    expect(runs).toHaveLength(20);
    for (const r of runs)
      expect((r.body as { inputs: unknown }).inputs).toEqual({
        user_name: '张三',
        dept: '研发部',
        auth_token: tokens.issued[0],
      });
    // The next message uses the cached token: no request.
    const again = await toA.text('再问一次', { userid });
    await toB.pollUntilFinished(again.reply.stream.id, { intervalMs: 50 });
    expect(tokens.requests).toHaveLength(1);
  });

  it('a user outside the directory, a disabled one, and one whose id is SQL: the configured text, and Dify never hears', async () => {
    const runs = e.dify.runs().length;
    const requests = tokens.requests.length;
    for (const userid of [user('stranger'), user('old'), `x'); DROP TABLE wecom_users; -- ${run}`]) {
      const sent = await toA.text('让我用一下', { userid });
      const { reply } = await toB.pollUntilFinished(sent.reply.stream.id, { intervalMs: 50 });
      expect(reply.stream.content).toBe(deniedText);
    }
    expect(e.dify.runs().length).toBe(runs);
    expect(tokens.requests.length).toBe(requests);
    expect(await rawQuery(db, 'SELECT COUNT(*) AS n FROM wecom_users')).toEqual([{ n: 3 }]);
  });

  it('a token service that fails: "try again later", and nothing is cached', async () => {
    tokens.mode = 'error500';
    try {
      const userid = user('lisi');
      const sent = await toB.text('在吗', { userid });
      const { reply } = await toA.pollUntilFinished(sent.reply.stream.id, { intervalMs: 50 });
      expect(reply.stream.content).toBe(defaultTexts.failures.auth_unavailable);
      expect(runsOf(userid)).toHaveLength(0);
      const redis = new Redis(redisUrl);
      expect(await redis.exists(`authorization:wechatid:${userid}`)).toBe(0);
      redis.disconnect();
    } finally {
      tokens.mode = 'ok';
    }
  });

  it('MariaDB unreachable: a clear answer for a user it must look up, none lost for one already cached, and recovery', async () => {
    const cached = user('zhangsan');
    const cold = `${user('lisi')}`;
    proxy.cut();
    try {
      const [coldSent, warmSent] = await Promise.all([
        toA.text('数据库挂了吗', { userid: cold, chatid: `cold-${run}` }),
        toB.text('我还能问吗', { userid: cached, chatid: `warm-${run}` }),
      ]);
      const [coldDone, warmDone] = await Promise.all([
        toB.pollUntilFinished(coldSent.reply.stream.id, { intervalMs: 50 }),
        toA.pollUntilFinished(warmSent.reply.stream.id, { intervalMs: 50 }),
      ]);
      expect(coldDone.reply.stream.content).toBe(defaultTexts.failures.auth_unavailable);
      expect(warmDone.reply.stream.content).toBe('你好，张三。');
      expect((await fetch(`${e.nodes[0]!.url}/readyz`)).status).toBe(503);
    } finally {
      proxy.restore();
    }
    await expect
      .poll(async () => (await fetch(`${e.nodes[0]!.url}/readyz`)).status, { timeout: 10_000 })
      .toBe(200);
    // Once no failure is held against the user (a token-service failure would be, for 5 s), they are
    // let in.
    const redis = new Redis(redisUrl);
    try {
      const cache = new TokenCache(redis, { ownPrefix: e.prefix });
      await expect.poll(() => cache.readFailure(cold), { timeout: 10_000 }).toBeUndefined();
    } finally {
      redis.disconnect();
    }
    const sent = await toA.text('现在呢', { userid: cold });
    const { reply } = await toB.pollUntilFinished(sent.reply.stream.id, { intervalMs: 50 });
    expect(reply.stream.content).toBe('你好，张三。');
  }, 30_000);
});

describe('DIFY_BEARER=user_token: Dify is called with the user’s token', () => {
  let db: TestDatabase;
  let tokens: FakeTokenService;
  let e: E2E;

  beforeAll(async () => {
    db = await createTestDatabase();
    tokens = await startFakeTokenService();
    e = await startE2E({
      name: 'bearer',
      env: { AUTH_MODE: 'directory', MYSQL_URL: db.url, AUTH_API_URL: tokens.url, DIFY_BEARER: 'user_token' },
    });
    const directory = openDirectory({ mysqlUrl: db.url });
    await directory.addUser({ userid: user('wangwu'), account: 'E2001' });
    await directory.close();
  });
  afterAll(async () => {
    await e?.stop();
    await tokens?.close();
    await db?.drop();
  });

  it('sends the token as the bearer, never the app key', async () => {
    const sent = await e.clients[0]!.text('用我的身份', { userid: user('wangwu') });
    await e.clients[0]!.pollUntilFinished(sent.reply.stream.id, { intervalMs: 50 });
    const [run0] = e.dify.runs();
    expect(run0?.headers.authorization).toBe(`Bearer ${tokens.issued[0]}`);
  });
});
