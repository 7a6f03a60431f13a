// `wecom-dify bots`: the check an operator runs before a deploy. One line per bot, its id first, with
// no secret; a wrong file is exit 2 with one line per problem, naming each variable not set.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runInProcess } from './support/cliInProcess.js';
import { runCli, tempCwd } from './support/cliRun.js';

const cwd = tempCwd('bots');
afterAll(() => cwd.remove());

const file = join(cwd.dir, 'bots.yaml');
writeFileSync(
  file,
  `bots:
  - id: hr
    name: HR 助手
    aibotid: aib-hr-123
    callback:
      token: \${HR_TOKEN}
      encodingAesKey: \${HR_KEY}
    dify: { apiUrl: 'https://hr.example.com/v1', apiKey: '\${HR_DIFY}' }
    auth: { mode: allowlist }
  - id: it
    callback: { token: '\${IT_TOKEN}', encodingAesKey: '\${IT_KEY}' }
    dify:
      apiKey: \${IT_DIFY}
`,
);
const secrets = {
  HR_TOKEN: 'hr-token-secret',
  HR_KEY: 'H'.repeat(43),
  HR_DIFY: 'app-hr-secret',
  IT_TOKEN: 'it-token-secret',
  IT_KEY: 'I'.repeat(43),
  IT_DIFY: 'app-it-secret',
};
const env = { WECOM_BOTS_FILE: file, MYSQL_URL: 'mysql://root@127.0.0.1:3306/test', ...secrets };

describe('wecom-dify bots', () => {
  it('lists each bot on a line starting with its id: mode, aibotid, Dify, auth; never a secret', async () => {
    const { code, stdout, stderr } = await runCli(['bots'], { cwd: cwd.dir, env });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^hr\s+callback\s+aibotid=aib-hr-123\s+dify=https:\/\/hr\.example\.com\/v1\s+auth=allowlist\s+HR 助手$/,
    );
    expect(lines[1]).toMatch(
      /^it\s+callback\s+aibotid=\(any\)\s+dify=https:\/\/api\.dify\.ai\/v1\s+auth=none$/,
    );
    for (const secret of Object.values(secrets)) expect(stdout).not.toContain(secret);
  });

  it('--json gives the same, as data', async () => {
    const { code, stdout } = await runInProcess(['bots', '--json'], env);
    expect(code).toBe(0);
    const bots = JSON.parse(stdout) as Array<Record<string, unknown>>;
    expect(bots.map((b) => [b.id, b.mode, b.path, b.auth])).toEqual([
      ['hr', 'callback', '/wecom/callback/hr', 'allowlist'],
      ['it', 'callback', '/wecom/callback/it', 'none'],
    ]);
    for (const secret of Object.values(secrets)) expect(stdout).not.toContain(secret);
  });

  it('without a bots file, lists the one bot of the environment as default', async () => {
    const { code, stdout } = await runCli(['bots'], {
      cwd: cwd.dir,
      env: {
        WECOM_TOKEN: 't',
        WECOM_ENCODING_AES_KEY: 'E'.repeat(43),
        DIFY_API_KEY: 'app-e',
        WECOM_BOT_ID: 'aib-1',
      },
    });
    expect(code).toBe(0);
    expect(stdout.trimEnd()).toMatch(
      /^default\s+callback\s+aibotid=aib-1\s+dify=https:\/\/api\.dify\.ai\/v1\s+auth=none$/,
    );
  });

  it('exits 2 naming each variable not set and each other problem, one line each', async () => {
    const { code, stdout, stderr } = await runInProcess(['bots'], {
      ...env,
      IT_KEY: '',
      IT_DIFY: '',
      MYSQL_URL: '',
    });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toEqual([
      'wecom-dify: WECOM_BOTS_FILE: bots[0] (hr).auth.mode: allowlist needs MYSQL_URL (the directory)',
      `wecom-dify: WECOM_BOTS_FILE: bots[1] (it).callback.encodingAesKey: \${IT_KEY} is not set in the environment`,
      `wecom-dify: WECOM_BOTS_FILE: bots[1] (it).dify.apiKey: \${IT_DIFY} is not set in the environment`,
      'wecom-dify: the bots are not valid: serve would not start',
    ]);
    for (const secret of Object.values(secrets)) expect(stderr).not.toContain(secret);
  });

  it('exits 2 when the file cannot be read', async () => {
    const { code, stderr } = await runInProcess(['bots'], { WECOM_BOTS_FILE: join(cwd.dir, 'missing.yaml') });
    expect(code).toBe(2);
    expect(stderr).toContain(`WECOM_BOTS_FILE: cannot read ${join(cwd.dir, 'missing.yaml')} (ENOENT)`);
  });
});

describe('wecom-dify bots, a long-connection bot', () => {
  it('names the node that holds its connection, and since when, from Redis', async () => {
    const { Redis } = await import('ioredis');
    const { redisConnectionState } = await import('../src/longConnection/state.js');
    const { dropPrefix, randomPrefix, redisUrl } = await import('./support/service.js');
    const prefix = randomPrefix('botsws');
    const redis = new Redis(redisUrl);
    const since = Date.UTC(2026, 10, 29, 8, 0, 0);
    try {
      await redisConnectionState(redis, prefix).setStatus('ws', { holder: 'node-7', connected: true, since });
      const wsFile = join(cwd.dir, 'ws.yaml');
      writeFileSync(
        wsFile,
        `bots:\n  - id: ws\n    longConnection:\n      botId: aib-ws-1\n      secret: \${WS_SECRET}\n    dify:\n      apiKey: app-ws\n`,
      );
      const { code, stdout } = await runCli(['bots'], {
        cwd: cwd.dir,
        env: {
          WECOM_BOTS_FILE: wsFile,
          WS_SECRET: 'ws-secret-value',
          REDIS_URL: redisUrl,
          REDIS_KEY_PREFIX: prefix,
        },
      });
      expect(code).toBe(0);
      expect(stdout.trimEnd()).toMatch(
        /^ws\s+long-connection\s+aibotid=aib-ws-1\s+dify=\S+\s+auth=none\s+holder=node-7 since=2026-11-29T08:00:00\.000Z connected$/,
      );
      expect(stdout).not.toContain('ws-secret-value');
    } finally {
      redis.disconnect();
      await dropPrefix(prefix);
    }
  });
});
