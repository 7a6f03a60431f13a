import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDirectory } from '../../src/auth/directory.js';
import { TokenCache } from '../../src/auth/tokenCache.js';
import { displayWidth } from '../../src/cli/table.js';
import { type AdminConfig, runMigrate, runUsers } from '../../src/cli/usersCommand.js';
import {
  closedPort,
  createTestDatabase,
  rawQuery,
  type TestDatabase,
  type TestRedis,
  testRedis,
  testSecretKey,
} from './support.js';

let tdb: TestDatabase;
let tr: TestRedis;
let config: AdminConfig;

beforeAll(async () => {
  tdb = await createTestDatabase();
  tr = testRedis();
  config = { auth: { mode: 'directory', mysqlUrl: tdb.url, apiTimeoutMs: 1000, secretKey: testSecretKey() } };
});
afterAll(async () => {
  await tr?.cleanup();
  await tdb?.drop();
});

async function run(args: string[], deps = {}) {
  const lines: string[] = [];
  const code = await runUsers(args, config, (l) => lines.push(l), { keyPrefix: tr.prefix, ...deps });
  return { code, out: lines.join('\n') };
}

describe('wecom-dify migrate', () => {
  it('applies the migrations once, then says it is up to date', async () => {
    const lines: string[] = [];
    expect(await runMigrate(config, (l) => lines.push(l))).toBe(0);
    expect(await runMigrate(config, (l) => lines.push(l))).toBe(0);
    expect(lines).toEqual([
      'applied: 2025_01_001_wecom_users, 2025_01_002_wecom_users_exact_userid',
      'directory is up to date',
    ]);
  });

  it('fails clearly (exit 1) when MariaDB is not there, without printing the password', async () => {
    const lines: string[] = [];
    const port = await closedPort();
    const down = { auth: { ...config.auth, mysqlUrl: `mysql://root:s3cr3t@127.0.0.1:${port}/x` } };
    expect(await runMigrate(down, (l) => lines.push(l))).toBe(1);
    expect(lines.join('\n')).toMatch(/ECONNREFUSED/);
    expect(lines.join('\n')).not.toContain('s3cr3t');
  });

  it('needs MYSQL_URL (exit 2)', async () => {
    const lines: string[] = [];
    expect(await runMigrate({ auth: { mode: 'none', apiTimeoutMs: 1 } }, (l) => lines.push(l))).toBe(2);
    expect(lines[0]).toMatch(/^MYSQL_URL/);
  });
});

describe('wecom-dify users', () => {
  it('add, list, list --json, disable and enable', async () => {
    expect(
      await run(['add', 'zhangsan', '--account', 'E1001', '--name', '张三', '--department', '研发部']),
    ).toEqual({
      code: 0,
      out: 'saved zhangsan (account E1001)',
    });
    const added = await run(['add', 'lisi', '--account', 'E1002', '--secret', 'pw-very-secret']);
    expect(added.out).toBe('saved lisi (account E1002, secret sealed)');

    const list = await run(['list']);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(/^USERID\s+ACCOUNT\s+NAME\s+DEPARTMENT\s+ENABLED\s+SECRET\s+UPDATED/);
    expect(list.out).toMatch(/zhangsan\s+E1001\s+张三\s+研发部\s+yes\s+no/);
    expect(list.out).toMatch(/lisi\s+E1002\s+yes\s+yes/);
    expect(list.out).toMatch(/2 users$/);
    // Columns line up on a terminal, Chinese names (two columns each) included.
    const [head, ...rows] = list.out.split('\n').slice(0, 3);
    const column = (line: string, text: string) => displayWidth(line.slice(0, line.indexOf(text)));
    for (const row of rows) expect(column(row!, ' yes ')).toBe(column(head!, ' ENABLED'));
    expect(list.out).not.toContain('pw-very-secret');

    const json = JSON.parse((await run(['list', '--json'])).out) as Record<string, unknown>[];
    expect(json).toHaveLength(2);
    expect(json[0]).toMatchObject({ userid: 'lisi', hasSecret: true, enabled: true });
    expect(JSON.stringify(json)).not.toContain('pw-very-secret');

    // With no Redis to reach, the cached token cannot be forgotten: the operator is told.
    expect(await run(['disable', 'zhangsan'])).toEqual({
      code: 0,
      out: "disabled zhangsan\nnote: REDIS_URL is not set, so zhangsan's cached token stays valid until it expires",
    });
    expect(JSON.parse((await run(['list', '--json'])).out)[1]).toMatchObject({
      userid: 'zhangsan',
      enabled: false,
    });
    expect(await run(['enable', 'zhangsan'])).toEqual({ code: 0, out: 'enabled zhangsan' });
    expect(await run(['disable', 'nobody'])).toEqual({ code: 1, out: 'no such user: nobody' });
  });

  it('reads the secret from standard input with --secret -', async () => {
    expect(
      (
        await run(['add', 'wangwu', '--account', 'E1003', '--secret', '-'], {
          readSecret: async () => 'from-stdin\n',
        })
      ).code,
    ).toBe(0);
    const dir = openDirectory({ mysqlUrl: tdb.url, secretKey: config.auth.secretKey });
    expect((await dir.findUser('wangwu'))?.secret?.reveal()).toBe('from-stdin');
    await dir.close();
    const raw = (await rawQuery(tdb, 'SELECT secret_enc FROM wecom_users WHERE userid = ?', ['wangwu'])) as {
      secret_enc: string;
    }[];
    expect(raw[0]?.secret_enc).not.toContain('from-stdin');
  });

  it('disable forgets the cached token, so it stops working at once', async () => {
    const redis = tr.connect();
    const cache = new TokenCache(redis, { keyPrefix: tr.prefix });
    await cache.write('lisi', 'tok-lisi', { userid: 'lisi' }, 600);
    const result = await run(['disable', 'lisi'], { redis });
    expect(result.out).toBe('disabled lisi\nforgot the cached token of lisi');
    expect((await cache.read('lisi')).status).toBe('miss');
    expect(await redis.exists(`${tr.prefix}authorization:token:tok-lisi`)).toBe(0);
  });

  it('a secret without AUTH_SECRET_KEY is refused', async () => {
    const lines: string[] = [];
    const noKey = { auth: { ...config.auth, secretKey: undefined } };
    expect(await runUsers(['add', 'x', '--account', 'y', '--secret', 's'], noKey, (l) => lines.push(l))).toBe(
      1,
    );
    expect(lines[0]).toMatch(/AUTH_SECRET_KEY/);
  });

  it('bad usage prints the usage and exits 2', async () => {
    for (const args of [
      [],
      ['frobnicate'],
      ['add', 'x'],
      ['add', '--account', 'y'],
      ['disable'],
      ['list', '--bogus'],
      ['add', 'x'.repeat(65), '--account', 'y'],
    ]) {
      const { code, out } = await run(args);
      expect(code, args.join(' ')).toBe(2);
      expect(out.length).toBeGreaterThan(0);
    }
  });
});
