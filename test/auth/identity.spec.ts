import { describe, expect, it } from 'vitest';
import { difyIdentity } from '../../src/auth/identity.js';
import { AuthError, type GrantedOutcome } from '../../src/auth/types.js';

const outcome: GrantedOutcome = {
  granted: true,
  user: { id: 'zhangsan', name: '张三', department: '研发部', account: 'E1001' },
  token: 'tok-123',
};

describe('who Dify is told is asking', () => {
  it('user is the stable id; inputs carry the configured fields', () => {
    const id = difyIdentity(
      outcome,
      {
        inputs: { user_name: 'name', dept: 'department', uid: 'userid', sid: 'id', auth_token: 'token' },
        bearer: 'app_key',
      },
      'ZhangSan',
    );
    expect(id).toEqual({
      user: 'zhangsan',
      inputs: { user_name: '张三', dept: '研发部', uid: 'ZhangSan', sid: 'zhangsan', auth_token: 'tok-123' },
    });
    expect(id.bearer).toBeUndefined();
  });

  it('a field the user lacks becomes an empty string', () => {
    const id = difyIdentity(
      { granted: true, user: { id: 'u1' } },
      { inputs: { n: 'name', t: 'token' }, bearer: 'app_key' },
      'u1',
    );
    expect(id.inputs).toEqual({ n: '', t: '' });
  });

  it('user_token mode sends the user token as the bearer', () => {
    expect(difyIdentity(outcome, { inputs: {}, bearer: 'user_token' }, 'zhangsan').bearer).toBe('tok-123');
  });

  it('user_token mode without a token is a try-again-later error, not an anonymous call', () => {
    expect(() =>
      difyIdentity({ granted: true, user: { id: 'u1' } }, { inputs: {}, bearer: 'user_token' }, 'u1'),
    ).toThrow(AuthError);
  });
});
