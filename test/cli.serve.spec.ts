// The service's start: refused with exit code 2 and one line per problem when settings are missing or
// malformed (never printing a secret), serving when they are right.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnCli } from './support/cli.js';
import { testBot } from './support/service.js';

// A working directory without a .env, so only the given environment counts.
const cwd = mkdtempSync(join(tmpdir(), 'wd-serve-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

function run(env: Record<string, string>, untilOutput?: RegExp) {
  const child = spawnCli(['serve'], { cwd, env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
    if (untilOutput?.test(stdout)) child.kill('SIGTERM');
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

describe('wecom-dify serve', () => {
  it('with no settings exits 2 naming each missing setting', async () => {
    const { code, stderr } = await run({});
    expect(code).toBe(2);
    const lines = stderr.trim().split('\n');
    expect(lines.some((l) => l.startsWith('wecom-dify: WECOM_TOKEN:'))).toBe(true);
    expect(lines.some((l) => l.startsWith('wecom-dify: WECOM_ENCODING_AES_KEY:'))).toBe(true);
    expect(lines.some((l) => l.startsWith('wecom-dify: DIFY_API_KEY:'))).toBe(true);
  });

  it('with a malformed EncodingAESKey says what is wrong without printing it', async () => {
    const secret = 'tooShortSecretValue';
    const { code, stderr } = await run({
      WECOM_TOKEN: 't',
      WECOM_ENCODING_AES_KEY: secret,
      DIFY_API_KEY: 'app-x',
    });
    expect(code).toBe(2);
    expect(stderr).toMatch(/WECOM_ENCODING_AES_KEY: must be exactly 43 characters/);
    expect(stderr).not.toContain(secret);
  });

  it('with settings serves, and stops on SIGTERM with exit code 0', async () => {
    const { code, stdout } = await run(
      {
        WECOM_TOKEN: testBot.token,
        WECOM_ENCODING_AES_KEY: testBot.encodingAESKey,
        DIFY_API_KEY: 'app-x',
        PORT: '0',
        HOST: '127.0.0.1',
      },
      /"msg":"listening"/,
    );
    expect(stdout).toMatch(/"msg":"listening"/);
    expect(stdout).toMatch(/in this process only/);
    expect(code).toBe(0);
  });

  it('with a directory it cannot reach says so in one line, no stack, exit code 1', async () => {
    const { code, stderr } = await run({
      WECOM_TOKEN: testBot.token,
      WECOM_ENCODING_AES_KEY: testBot.encodingAESKey,
      DIFY_API_KEY: 'app-x',
      PORT: '0',
      HOST: '127.0.0.1',
      AUTH_MODE: 'allowlist',
      MYSQL_URL: 'mysql://root:pw-not-printed@127.0.0.1:1/nowhere',
    });
    expect(code).toBe(1);
    expect(stderr).toMatch(/^wecom-dify: cannot start: directory .*ECONNREFUSED/m);
    expect(stderr).not.toMatch(/\n\s+at /);
    expect(stderr).not.toContain('pw-not-printed');
  });
});
