import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { open, Secret, SecretBoxError, seal } from '../../src/auth/secretBox.js';

const key = randomBytes(32);

describe('the secret column is sealed with AES-256-GCM', () => {
  it('opens what it sealed, for the same row', () => {
    const sealed = seal(key, 'p@ss wörd', 'zhangsan');
    expect(sealed).not.toContain('p@ss');
    expect(open(key, sealed, 'zhangsan').reveal()).toBe('p@ss wörd');
  });

  it('seals the same secret differently each time (random IV)', () => {
    expect(seal(key, 's', 'u')).not.toBe(seal(key, 's', 'u'));
  });

  it('refuses a wrong key, another row, or a tampered ciphertext', () => {
    const sealed = seal(key, 'secret', 'zhangsan');
    expect(() => open(randomBytes(32), sealed, 'zhangsan')).toThrow(SecretBoxError);
    expect(() => open(key, sealed, 'lisi')).toThrow(SecretBoxError);
    const raw = Buffer.from(sealed, 'base64');
    raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 1;
    expect(() => open(key, raw.toString('base64'), 'zhangsan')).toThrow(SecretBoxError);
    expect(() => open(key, 'c2hvcnQ=', 'zhangsan')).toThrow(SecretBoxError);
  });

  it('refuses a key that is not 32 bytes', () => {
    expect(() => seal(randomBytes(16), 's', 'u')).toThrow(/32 bytes/);
  });

  it('a Secret never prints itself', () => {
    const s = new Secret('hunter2');
    expect(String(s)).toBe('[redacted]');
    expect(JSON.stringify({ s })).toBe('{"s":"[redacted]"}');
    expect(inspect({ s })).not.toContain('hunter2');
    expect(s.reveal()).toBe('hunter2');
  });
});
