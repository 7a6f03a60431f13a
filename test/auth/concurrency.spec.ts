import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDirectory } from '../../src/auth/directory.js';
import { createAuthenticator } from '../../src/auth/factory.js';
import type { Authenticator, AuthOutcome } from '../../src/auth/types.js';
import { type FakeTokenService, startFakeTokenService } from '../support/fakeTokenService.js';
import { createTestDatabase, type TestDatabase, type TestRedis, testRedis } from './support.js';

let tdb: TestDatabase;
let tr: TestRedis;
let fake: FakeTokenService;
const nodes: Authenticator[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  tr = testRedis();
  fake = await startFakeTokenService();
  const dir = openDirectory({ mysqlUrl: tdb.url });
  await dir.migrate();
  await dir.addUser({ userid: 'zhangsan', account: 'E1001', name: '张三' });
  await dir.addUser({ userid: 'wangwu', account: 'E1003' });
  await dir.close();
});
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  await fake?.close();
  await tr?.cleanup();
  await tdb?.drop();
});

/** Two service instances: each its own Redis connection, MySQL pool and token-service client. */
async function twoNodes(): Promise<Authenticator[]> {
  const made = await Promise.all(
    [0, 1].map(() =>
      createAuthenticator(
        { mode: 'directory', mysqlUrl: tdb.url, apiUrl: fake.url, apiTimeoutMs: 2000 },
        { redis: tr.connect(), keyPrefix: tr.prefix },
      ),
    ),
  );
  nodes.push(...made);
  return made;
}

describe('one user, many messages, two nodes', () => {
  it('20 concurrent messages across two instances cause one token request, and all get the same token', async () => {
    fake.delayMs = 150; // long enough that every message arrives while the token is being fetched
    const [a, b] = await twoNodes();
    if (!a || !b) throw new Error('no nodes');
    const calls: Promise<AuthOutcome>[] = [];
    for (let i = 0; i < 10; i++) {
      calls.push(a.authenticate({ userid: 'zhangsan', bot: 'b1' }));
      calls.push(b.authenticate({ userid: 'zhangsan', bot: 'b1' }));
    }
    const outcomes = await Promise.all(calls);
    expect(fake.requests).toHaveLength(1);
    const tokens = new Set(outcomes.map((o) => (o.granted ? o.token : 'denied')));
    expect([...tokens]).toEqual([fake.issued[0]]);
  });

  it('20 concurrent messages of a user not in the directory are all denied, with no token request', async () => {
    fake.reset();
    const [a, b] = await twoNodes();
    if (!a || !b) throw new Error('no nodes');
    const calls: Promise<AuthOutcome>[] = [];
    for (let i = 0; i < 10; i++) {
      calls.push(a.authenticate({ userid: 'stranger', bot: 'b1' }));
      calls.push(b.authenticate({ userid: 'stranger', bot: 'b1' }));
    }
    const outcomes = await Promise.all(calls);
    expect(outcomes.every((o) => !o.granted && o.reason === 'not_in_directory')).toBe(true);
    expect(fake.requests).toHaveLength(0);
  });

  it('a failing token service is asked once for 20 concurrent messages, and all of them are told to try later', async () => {
    fake.reset();
    fake.mode = 'error500';
    fake.delayMs = 150;
    const [a, b] = await twoNodes();
    if (!a || !b) throw new Error('no nodes');
    const calls: Promise<AuthOutcome>[] = [];
    for (let i = 0; i < 10; i++) {
      calls.push(a.authenticate({ userid: 'wangwu', bot: 'b1' }));
      calls.push(b.authenticate({ userid: 'wangwu', bot: 'b1' }));
    }
    const settled = await Promise.allSettled(calls);
    const codes = settled.map((s) =>
      s.status === 'rejected' ? (s.reason as { code?: string }).code : 'granted',
    );
    expect(new Set(codes)).toEqual(new Set(['token_service_unavailable']));
    expect(fake.requests).toHaveLength(1);
  });
});
