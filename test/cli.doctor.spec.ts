// `wecom-dify doctor`: the settings and every service they name, one line each, against the real
// Redis and MariaDB, a fake token service and a fake Dify. Exit code 0 when all pass, 1 when a
// service fails (a refused Dify key, a Dify or Redis that is not there), 2 when the settings do not
// parse. It asks the token service for no token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runUsers } from '../src/cli/usersCommand.js';
import { closedPort, createTestDatabase, type TestDatabase } from './auth/support.js';
import { runCli, tempCwd } from './support/cliRun.js';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { type FakeTokenService, startFakeTokenService } from './support/fakeTokenService.js';
import { redisUrl, testBot } from './support/service.js';

const cwd = tempCwd('doctor');
const difyKey = 'app-doctor-key';

describe('wecom-dify doctor', { timeout: 60_000 }, () => {
  let tdb: TestDatabase;
  let dify: FakeDify;
  let tokens: FakeTokenService;
  let env: Record<string, string>;

  beforeAll(async () => {
    [tdb, dify, tokens] = await Promise.all([
      createTestDatabase(),
      startFakeDify({ apiKey: difyKey }),
      startFakeTokenService(),
    ]);
    const config = { auth: { mode: 'directory' as const, mysqlUrl: tdb.url, apiTimeoutMs: 1000 } };
    expect(await runUsers(['add', 'zhangsan', '--account', 'E1'], config, () => undefined)).toBe(0);
    env = {
      WECOM_TOKEN: testBot.token,
      WECOM_ENCODING_AES_KEY: testBot.encodingAESKey,
      DIFY_API_URL: dify.url,
      DIFY_API_KEY: difyKey,
      REDIS_URL: redisUrl,
      AUTH_MODE: 'directory',
      MYSQL_URL: tdb.url,
      AUTH_API_URL: tokens.url,
    };
  });
  afterAll(async () => {
    await Promise.all([tdb?.drop(), dify?.stop(), tokens?.close()]);
    cwd.remove();
  });

  const doctor = (overrides: Record<string, string> = {}) =>
    runCli(['doctor'], { cwd: cwd.dir, env: { ...env, ...overrides } });
  const lineOf = (stdout: string, name: string) =>
    stdout.split('\n').find((line) => new RegExp(`^\\S+ +${name} {2,}`).test(line));

  it('all well: one ok line per check, exit 0, and no token asked for', async () => {
    const { code, stdout, stderr } = await doctor();
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.trimEnd().split('\n')).toEqual([
      'ok       settings       parsed: store Redis, AUTH_MODE=directory, DIFY_APP_TYPE=chat',
      expect.stringMatching(/^ok {7}redis {10}redis:\/\/127\.0\.0\.1:6379: PING answered in \d+ ms$/),
      expect.stringMatching(/^ok {7}mysql {10}127\.0\.0\.1:3306\/\w+: 1 user, 1 enabled$/),
      `ok       token service  ${tokens.url}: reachable (HTTP 405 to a HEAD; no token asked for)`,
      `ok       dify           ${dify.url}: app "Fake Dify app", mode advanced-chat`,
    ]);
    expect(tokens.requests).toEqual([]);
  });

  it('a wrong Dify key: the dify line says the key was refused, exit 1', async () => {
    const { code, stdout } = await doctor({ DIFY_API_KEY: 'app-wrong-key' });
    expect(code).toBe(1);
    expect(lineOf(stdout, 'dify')).toBe(
      `problem  dify           Dify at ${dify.url} refused the API key (401 unauthorized): DIFY_API_KEY is wrong, or belongs to another Dify`,
    );
    expect(lineOf(stdout, 'redis')).toMatch(/^ok /);
    expect(stdout).not.toContain('app-wrong-key');
  });

  it('a Dify, a Redis and a MariaDB that are not there: one problem line each, exit 1', async () => {
    const port = await closedPort();
    const { code, stdout } = await doctor({
      DIFY_API_URL: `http://127.0.0.1:${port}/v1`,
      REDIS_URL: `redis://127.0.0.1:${port}`,
      MYSQL_URL: `mysql://root:s3cr3t@127.0.0.1:${port}/x`,
    });
    expect(code).toBe(1);
    expect(lineOf(stdout, 'dify')).toMatch(
      new RegExp(`^problem  dify +cannot reach Dify at http://127.0.0.1:${port}/v1: .*ECONNREFUSED`),
    );
    expect(lineOf(stdout, 'redis')).toMatch(
      new RegExp(`^problem  redis +redis://127.0.0.1:${port}: .*ECONNREFUSED`),
    );
    expect(lineOf(stdout, 'mysql')).toMatch(
      /^problem {2}mysql +directory ping at 127\.0\.0\.1:\d+\/x failed/,
    );
    expect(lineOf(stdout, 'token service')).toMatch(/^ok /);
    expect(stdout).not.toContain('s3cr3t');
  });

  it('only what the settings name is checked: no Redis, MySQL or token service with AUTH_MODE=none', async () => {
    const { code, stdout } = await doctor({
      AUTH_MODE: 'none',
      REDIS_URL: '',
      MYSQL_URL: '',
      AUTH_API_URL: '',
    });
    expect(code).toBe(0);
    expect(stdout.trimEnd().split('\n')).toEqual([
      'ok       settings       parsed: store in memory (no REDIS_URL: one node only), AUTH_MODE=none, DIFY_APP_TYPE=chat',
      `ok       dify           ${dify.url}: app "Fake Dify app", mode advanced-chat`,
    ]);
  });

  it('settings that do not parse: one line each, nothing else tried, exit 2', async () => {
    const { code, stdout } = await doctor({ WECOM_ENCODING_AES_KEY: 'short', AUTH_API_URL: '' });
    expect(code).toBe(2);
    expect(stdout).toContain(
      'problem  settings       WECOM_ENCODING_AES_KEY: must be exactly 43 characters of A-Z, a-z and 0-9\n',
    );
    expect(stdout).toContain('problem  settings       AUTH_API_URL: required when AUTH_MODE=directory\n');
    expect(lineOf(stdout, 'dify')).toBeUndefined();
  });
});
