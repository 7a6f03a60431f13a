import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Secret } from '../../src/auth/secretBox.js';
import { createTokenService, type TokenService } from '../../src/auth/tokenService.js';
import { AuthError } from '../../src/auth/types.js';
import { type FakeTokenService, startFakeTokenService } from '../support/fakeTokenService.js';
import { closedPort } from './support.js';

let fake: FakeTokenService;
let client: TokenService;

beforeAll(async () => {
  fake = await startFakeTokenService();
  client = createTokenService({ url: fake.url, timeoutMs: 300 });
});
afterAll(async () => {
  await client.close();
  await fake.close();
});
beforeEach(() => fake.reset());

async function failure(p: Promise<unknown>): Promise<AuthError> {
  try {
    await p;
  } catch (error) {
    if (error instanceof AuthError) return error;
    throw error;
  }
  throw new Error('expected an AuthError');
}

describe('the token service contract', () => {
  it('POSTs {userid, account} and reads {token, expires_in, user}', async () => {
    fake.user = { employeeNo: '0042' };
    const issued = await client.issue({ userid: 'zhangsan', account: 'E1001' });
    expect(fake.requests).toEqual([{ userid: 'zhangsan', account: 'E1001' }]);
    expect(issued).toEqual({ token: fake.issued[0], expiresInSeconds: 7200, user: { employeeNo: '0042' } });
  });

  it('sends the secret only when the directory holds one', async () => {
    await client.issue({ userid: 'lisi', account: 'E1002', secret: new Secret('pw') });
    expect(fake.requests[0]).toEqual({ userid: 'lisi', account: 'E1002', secret: 'pw' });
  });

  it('a service that does not answer in time is unavailable, after the timeout and not much later', async () => {
    fake.mode = 'hang';
    const started = Date.now();
    const error = await failure(client.issue({ userid: 'u', account: 'a' }));
    expect(error.code).toBe('token_service_unavailable');
    expect(error.message).toMatch(/within 300 ms/);
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('a 500 is unavailable', async () => {
    fake.mode = 'error500';
    const error = await failure(client.issue({ userid: 'u', account: 'a' }));
    expect(error).toMatchObject({ code: 'token_service_unavailable', status: 500 });
  });

  it('malformed JSON is a bad response', async () => {
    fake.mode = 'malformed';
    const error = await failure(client.issue({ userid: 'u', account: 'a' }));
    expect(error).toMatchObject({ code: 'token_service_bad_response', status: 200 });
  });

  it('JSON without expires_in is a bad response naming the field, not the token', async () => {
    fake.mode = 'badshape';
    const error = await failure(client.issue({ userid: 'u', account: 'a' }));
    expect(error.code).toBe('token_service_bad_response');
    expect(error.message).toMatch(/expires_in/);
    expect(error.message).not.toContain('tok-without-expiry');
  });

  it('a 4xx is a bad response', async () => {
    fake.mode = 'error400';
    const error = await failure(client.issue({ userid: 'u', account: 'a' }));
    expect(error).toMatchObject({ code: 'token_service_bad_response', status: 400 });
  });

  it('a service that is not there is unavailable, at once', async () => {
    const down = createTokenService({ url: `http://127.0.0.1:${await closedPort()}/token`, timeoutMs: 2000 });
    const started = Date.now();
    const error = await failure(down.issue({ userid: 'u', account: 'a' }));
    expect(error.code).toBe('token_service_unavailable');
    expect(error.message).toMatch(/ECONNREFUSED/);
    expect(Date.now() - started).toBeLessThan(1000);
    await down.close();
  });
});
