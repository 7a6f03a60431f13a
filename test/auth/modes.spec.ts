import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDirectory } from '../../src/auth/directory.js';
import { type AuthSettings, createAuthenticator } from '../../src/auth/factory.js';
import { defaultTexts } from '../../src/machines/texts.js';
import { createTestDatabase, type TestDatabase } from './support.js';

let tdb: TestDatabase;

const auth = (over: Partial<AuthSettings>): AuthSettings => ({
  mode: 'none',
  apiTimeoutMs: 1000,
  ...over,
});

beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb?.drop();
});

describe('AUTH_MODE=none', () => {
  it('lets everyone in, and Dify sees the WeCom userid', async () => {
    const a = await createAuthenticator(auth({ mode: 'none' }));
    expect(await a.authenticate({ userid: 'anyone', bot: 'b1' })).toEqual({
      granted: true,
      user: { id: 'anyone' },
    });
    await a.close();
  });
});

describe('AUTH_MODE=allowlist', () => {
  it('migrates at start, lets in enabled users and denies the rest with the configured text', async () => {
    const a = await createAuthenticator(
      auth({ mode: 'allowlist', mysqlUrl: tdb.url, deniedText: '请联系 IT 开通（分机 8000）' }),
    );
    const dir = openDirectory({ mysqlUrl: tdb.url });
    await dir.addUser({ userid: 'zhangsan', account: 'E1001', name: '张三', department: '研发部' });
    await dir.addUser({ userid: 'gone', account: 'E0000', enabled: false });

    expect(await a.authenticate({ userid: 'zhangsan', bot: 'b1' })).toEqual({
      granted: true,
      user: { id: 'zhangsan', name: '张三', department: '研发部', account: 'E1001' },
    });
    expect(await a.authenticate({ userid: 'stranger', bot: 'b1' })).toEqual({
      granted: false,
      reason: 'not_in_directory',
      text: '请联系 IT 开通（分机 8000）',
    });
    expect(await a.authenticate({ userid: 'gone', bot: 'b1' })).toMatchObject({
      granted: false,
      reason: 'disabled',
    });

    // A disable takes effect on the next message.
    await dir.setEnabled('zhangsan', false);
    expect(await a.authenticate({ userid: 'zhangsan', bot: 'b1' })).toMatchObject({
      granted: false,
      reason: 'disabled',
    });
    await a.ping?.();
    await dir.close();
    await a.close();
  });

  it('says the default "how to get access" text when none is configured', async () => {
    const a = await createAuthenticator(auth({ mode: 'allowlist', mysqlUrl: tdb.url }));
    expect(await a.authenticate({ userid: 'stranger', bot: 'b1' })).toMatchObject({
      text: defaultTexts.denied,
    });
    await a.close();
  });

  it('refuses to start without what it needs', async () => {
    await expect(createAuthenticator(auth({ mode: 'allowlist' }))).rejects.toThrow(/MYSQL_URL/);
    await expect(
      createAuthenticator(auth({ mode: 'directory', mysqlUrl: tdb.url, apiUrl: 'http://x' })),
    ).rejects.toThrow(/Redis/);
  });
});
