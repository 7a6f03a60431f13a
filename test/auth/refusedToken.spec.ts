// DIFY_BEARER=user_token end to end: when Dify refuses a user's token (401), the token is forgotten,
// and the user's next message is answered with a new one rather than refused until the old expires.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDirectory } from '../../src/auth/directory.js';
import { defaultTexts } from '../../src/machines/texts.js';
import { type E2E, startE2E } from '../support/e2e.js';
import { type FakeTokenService, startFakeTokenService } from '../support/fakeTokenService.js';
import { redisUrl } from '../support/service.js';
import { createTestDatabase, type TestDatabase } from './support.js';

/** Userids of this run only: the auth cache keys are shared (`authorization:*`), not prefixed. */
const userid = `wangwu-${randomBytes(3).toString('hex')}`;

describe('DIFY_BEARER=user_token: a token Dify refuses', () => {
  let db: TestDatabase;
  let tokens: FakeTokenService;
  let e: E2E;

  beforeAll(async () => {
    db = await createTestDatabase();
    tokens = await startFakeTokenService();
    e = await startE2E({
      name: 'refused',
      env: { AUTH_MODE: 'directory', MYSQL_URL: db.url, AUTH_API_URL: tokens.url, DIFY_BEARER: 'user_token' },
    });
    const directory = openDirectory({ mysqlUrl: db.url });
    await directory.addUser({ userid, account: 'E2001' });
    await directory.close();
  });
  afterAll(async () => {
    await e?.stop();
    const redis = new Redis(redisUrl);
    await redis.del(
      `authorization:wechatid:${userid}`,
      ...tokens.issued.map((t) => `authorization:token:${t}`),
    );
    redis.disconnect();
    await tokens?.close();
    await db?.drop();
  });

  it('is forgotten: the next message gets a new token from the token service, and its answer', async () => {
    const wecom = e.clients[0]!;
    e.dify.script({ kind: 'error', status: 401, code: 'unauthorized' });
    const first = await wecom.text('用我的身份', { userid });
    const failed = await wecom.pollUntilFinished(first.reply.stream.id, { intervalMs: 50 });
    expect(failed.reply.stream.content).toBe(defaultTexts.failures.dify_misconfigured);

    e.dify.setDefault({ kind: 'answer', text: '你好，王五。' });
    const second = await wecom.text('再试一次', { userid });
    const answered = await wecom.pollUntilFinished(second.reply.stream.id, { intervalMs: 50 });
    expect(answered.reply.stream.content).toBe('你好，王五。');
    // The fake Dify answers any bearer: what shows the old token is gone is the bearer of the second run.
    expect(tokens.requests).toHaveLength(2);
    const bearers = e.dify.runs().map((r) => r.headers.authorization);
    expect(bearers).toEqual([`Bearer ${tokens.issued[0]}`, `Bearer ${tokens.issued[1]}`]);
  });
});
