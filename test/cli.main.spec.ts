// The `wecom-dify` command's dispatch, as a child process: help, usage errors (stderr, exit code 2),
// and the directory's admin commands needing only their own settings, not the bot's secrets.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { closedPort, createTestDatabase } from './auth/support.js';
import { runCli, tempCwd } from './support/cliRun.js';
import { redisUrl } from './support/service.js';

const cwd = tempCwd('main');
afterAll(() => cwd.remove());
const run = (args: string[], env: Record<string, string> = {}) => runCli(args, { cwd: cwd.dir, env });

describe('wecom-dify', { timeout: 60_000 }, () => {
  it('help lists every command on standard output', async () => {
    const { code, stdout } = await run(['help']);
    expect(code).toBe(0);
    for (const command of [
      'serve',
      'migrate',
      'doctor',
      'users',
      'streams',
      'replay',
      'export',
      'chat',
      'demo',
      'help',
    ])
      expect(stdout).toMatch(new RegExp(`^ {2}wecom-dify ${command}\\b`, 'm'));
  });

  it('<command> --help shows that command’s usage', async () => {
    const { code, stdout } = await run(['streams', '--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^usage: wecom-dify streams \[--unfinished\]/);
  });

  it('no command, or an unknown one: the usage on standard error, exit code 2', async () => {
    const [none, unknown] = await Promise.all([run([]), run(['frobnicate'])]);
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/^usage: wecom-dify <command>/);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /^wecom-dify: unknown command "frobnicate"\n\nusage: wecom-dify <command>/,
    );
  });

  it('migrate and users need MYSQL_URL, and neither the WeCom nor the Dify secrets', async () => {
    for (const args of [['migrate'], ['users', 'list']]) {
      const { code, stdout, stderr } = await run(args);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toBe(
        'wecom-dify: MYSQL_URL: required for the directory (mysql://user:pass@host:3306/db)\n',
      );
    }
  });

  it('a malformed admin setting is one line naming it, exit code 2, its value never printed', async () => {
    const secret = 'not-base64-32-bytes';
    const { code, stderr } = await run(['users', 'list'], {
      MYSQL_URL: 'mysql://u:p@127.0.0.1:1/db',
      AUTH_SECRET_KEY: secret,
    });
    expect(code).toBe(2);
    expect(stderr).toBe(
      'wecom-dify: AUTH_SECRET_KEY: must be 32 bytes in base64 (openssl rand -base64 32)\n',
    );
    expect(stderr).not.toContain(secret);
  });

  it('users takes one Redis, as the service does: both named is one line, exit code 2', async () => {
    const { code, stdout, stderr } = await run(['users', 'list'], {
      MYSQL_URL: 'mysql://u:p@127.0.0.1:1/db',
      REDIS_URL: 'redis://127.0.0.1:1',
      REDIS_CLUSTER_NODES: '127.0.0.1:7000',
    });
    expect(code).toBe(2);
    expect(stderr).toBe('wecom-dify: REDIS_CLUSTER_NODES: set REDIS_URL or REDIS_CLUSTER_NODES, not both\n');
    expect(stdout).toBe('');
  });

  it('users with a wrong sub-command shows the users usage on standard error, exit code 2', async () => {
    const { code, stdout, stderr } = await run(['users', 'rename', 'x'], {
      MYSQL_URL: 'mysql://u:p@127.0.0.1:1/db',
    });
    expect(code).toBe(2);
    expect(stderr).toContain('usage: wecom-dify users add <userid>');
    expect(stdout).toBe('');
  });

  it('migrate and users manage the directory on the real MariaDB with MYSQL_URL alone; disable forgets the cached token', async () => {
    const db = await createTestDatabase();
    // Its own userid: the token cache's keys are the shared, unprefixed ones.
    const alice = `alice-${randomBytes(4).toString('hex')}`;
    try {
      const env = { MYSQL_URL: db.url };
      const migrated = await run(['migrate'], env);
      expect(migrated.stderr).toBe('');
      expect(migrated.code).toBe(0);
      expect(migrated.stdout).toMatch(/^applied: /);
      expect((await run(['migrate'], env)).stdout).toBe('directory is up to date\n');
      const added = await run(['users', 'add', alice, '--account', 'A001', '--name', '爱丽丝'], env);
      expect(added.code).toBe(0);
      expect(added.stdout).toBe(`saved ${alice} (account A001)\n`);
      const listed = await run(['users', 'list', '--json'], env);
      expect(JSON.parse(listed.stdout)).toMatchObject([
        { userid: alice, account: 'A001', name: '爱丽丝', enabled: true },
      ]);
      // Disabling forgets the user's cached token (the shared keys of the system replaced), at once.
      const redis = new Redis(redisUrl);
      const token = `tok-${randomBytes(6).toString('hex')}`;
      await redis.set(`authorization:wechatid:${alice}`, token, 'EX', 60);
      await redis.set(`authorization:token:${token}`, JSON.stringify({ userid: alice }), 'EX', 60);
      try {
        const disabled = await run(['users', 'disable', alice], { ...env, REDIS_URL: redisUrl });
        expect(disabled.code).toBe(0);
        expect(disabled.stdout).toBe(`disabled ${alice}\nforgot the cached token of ${alice}\n`);
        expect(await redis.exists(`authorization:wechatid:${alice}`, `authorization:token:${token}`)).toBe(0);
      } finally {
        await redis.del(`authorization:wechatid:${alice}`, `authorization:token:${token}`);
        redis.disconnect();
      }
      // A Redis that does not answer: the user is disabled all the same, and told what it means.
      const cut = await run(['users', 'disable', alice], {
        ...env,
        REDIS_URL: `redis://127.0.0.1:${await closedPort()}`,
      });
      expect(cut.code).toBe(0);
      expect(cut.stdout).toContain(
        `disabled ${alice}\ncould not forget the cached token (it expires by itself): `,
      );
    } finally {
      await db.drop();
    }
  });
});
