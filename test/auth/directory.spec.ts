import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Directory, openDirectory } from '../../src/auth/directory.js';
import { AuthError } from '../../src/auth/types.js';
import {
  closedPort,
  createTestDatabase,
  MYSQL_HOST,
  MYSQL_PORT,
  rawQuery,
  startTcpProxy,
  type TestDatabase,
  testSecretKey,
} from './support.js';

let tdb: TestDatabase;
let directory: Directory;
const secretKey = testSecretKey();

beforeAll(async () => {
  tdb = await createTestDatabase();
  directory = openDirectory({ mysqlUrl: tdb.url, secretKey });
  await directory.migrate();
});
afterAll(async () => {
  await directory?.close();
  await tdb?.drop();
});

async function failure(p: Promise<unknown>): Promise<AuthError> {
  try {
    await p;
  } catch (error) {
    if (error instanceof AuthError) return error;
    throw error;
  }
  throw new Error('expected an AuthError');
}

describe('the directory in MariaDB', () => {
  it('migrations run once: a second run applies nothing', async () => {
    expect((await directory.migrate()).applied).toEqual([]);
    const tables = (await rawQuery(tdb, 'SHOW TABLES')) as Record<string, string>[];
    expect(tables.map((t) => Object.values(t)[0])).toContain('wecom_users');
  });

  it('adds, finds, updates (upsert), lists, disables and enables a user', async () => {
    await directory.addUser({ userid: 'zhangsan', account: 'E1001', name: '张三', department: '研发部' });
    const found = await directory.findUser('zhangsan');
    expect(found).toMatchObject({
      userid: 'zhangsan',
      account: 'E1001',
      name: '张三',
      department: '研发部',
      enabled: true,
      hasSecret: false,
    });
    expect(found?.createdAt).toBeInstanceOf(Date);

    // An update changes what it names and keeps the rest.
    await directory.addUser({ userid: 'zhangsan', account: 'E1001b', name: '张三丰' });
    expect(await directory.findUser('zhangsan')).toMatchObject({
      account: 'E1001b',
      name: '张三丰',
      department: '研发部',
    });
    await directory.addUser({ userid: 'zhangsan', account: 'E1001b', department: '' });
    expect(await directory.findUser('zhangsan')).toMatchObject({ name: '张三丰' });
    expect((await directory.findUser('zhangsan'))?.department).toBeUndefined();

    expect(await directory.setEnabled('zhangsan', false)).toBe(true);
    expect((await directory.findUser('zhangsan'))?.enabled).toBe(false);
    expect(await directory.setEnabled('zhangsan', false)).toBe(true);
    expect(await directory.setEnabled('zhangsan', true)).toBe(true);
    expect(await directory.setEnabled('nobody', true)).toBe(false);

    await directory.addUser({ userid: 'aaa', account: 'E0001' });
    expect((await directory.listUsers()).map((u) => u.userid)).toEqual(['aaa', 'zhangsan']);
    expect(await directory.findUser('nobody')).toBeUndefined();
  });

  it('keeps the secret sealed at rest and opens it on lookup, wrapped', async () => {
    await directory.addUser({ userid: 'lisi', account: 'E1002', secret: 'very-secret-pw' });
    const rows = (await rawQuery(tdb, 'SELECT secret_enc FROM wecom_users WHERE userid = ?', ['lisi'])) as {
      secret_enc: string;
    }[];
    expect(rows[0]?.secret_enc).toBeTruthy();
    expect(rows[0]?.secret_enc).not.toContain('very-secret-pw');
    const found = await directory.findUser('lisi');
    expect(found?.hasSecret).toBe(true);
    expect(found?.secret?.reveal()).toBe('very-secret-pw');
    expect(JSON.stringify(found)).not.toContain('very-secret-pw');
    // An upsert without a secret keeps the one there.
    await directory.addUser({ userid: 'lisi', account: 'E1002', name: '李四' });
    expect((await directory.findUser('lisi'))?.secret?.reveal()).toBe('very-secret-pw');
    expect((await directory.listUsers()).find((u) => u.userid === 'lisi')).not.toHaveProperty('secret');
  });

  it('a sealed secret copied onto another row does not open', async () => {
    await directory.addUser({ userid: 'wangwu', account: 'E1003' });
    await rawQuery(
      tdb,
      "UPDATE wecom_users SET secret_enc = (SELECT s FROM (SELECT secret_enc AS s FROM wecom_users WHERE userid = 'lisi') t) WHERE userid = 'wangwu'",
    );
    const error = await failure(directory.findUser('wangwu'));
    expect(error.code).toBe('directory_unavailable');
    expect(error.message).not.toContain('very-secret-pw');
    await rawQuery(tdb, "UPDATE wecom_users SET secret_enc = NULL WHERE userid = 'wangwu'");
  });

  it('a userid with quotes and SQL in it is data, never SQL', async () => {
    const evil = `o'brien"; DROP TABLE wecom_users; --`;
    await directory.addUser({ userid: evil, account: `x' OR '1'='1`, name: `"; DELETE FROM wecom_users; #` });
    expect(await directory.findUser(evil)).toMatchObject({ userid: evil, account: `x' OR '1'='1` });
    expect(await directory.findUser(`' OR '1'='1`)).toBeUndefined();
    expect(await directory.findUser(`zhangsan' -- `)).toBeUndefined();
    expect(await directory.setEnabled(`' OR 1=1 -- `, false)).toBe(false);
    const users = await directory.listUsers();
    expect(users.map((u) => u.userid)).toContain(evil);
    expect(users.every((u) => u.userid === evil || u.enabled)).toBe(true);
  });

  it('a database that is not there is a clear directory_unavailable, fast', async () => {
    const port = await closedPort();
    const down = openDirectory({ mysqlUrl: tdb.urlVia(port) });
    const started = Date.now();
    const error = await failure(down.findUser('zhangsan'));
    expect(error.code).toBe('directory_unavailable');
    expect(error.message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}/${tdb.name}.*ECONNREFUSED`));
    expect(Date.now() - started).toBeLessThan(2000);
    await down.close();
  });

  it('a database that goes away answers clearly, and the directory recovers by itself when it returns', async () => {
    const proxy = await startTcpProxy(MYSQL_HOST, MYSQL_PORT);
    const viaProxy = openDirectory({
      mysqlUrl: tdb.urlVia(proxy.port),
      queryTimeoutMs: 1000,
      connectTimeoutMs: 500,
    });
    try {
      expect((await viaProxy.findUser('zhangsan'))?.userid).toBe('zhangsan');

      proxy.cut();
      const error = await failure(viaProxy.findUser('zhangsan'));
      expect(error.code).toBe('directory_unavailable');
      await expect(viaProxy.ping()).rejects.toBeInstanceOf(AuthError);

      proxy.blackhole();
      const started = Date.now();
      expect((await failure(viaProxy.findUser('zhangsan'))).code).toBe('directory_unavailable');
      expect(Date.now() - started).toBeLessThan(1800);

      proxy.restore();
      expect((await viaProxy.findUser('zhangsan'))?.userid).toBe('zhangsan');
      await viaProxy.ping();
    } finally {
      await viaProxy.close();
      await proxy.close();
    }
  });
});
