// AES-256-GCM for the directory's secret column: `base64(iv[12] | tag[16] | ciphertext)`, bound to
// its row by using the userid as additional data, so a ciphertext copied to another row fails to open.
// `Secret` wraps a plaintext so that logging or serialising it by accident prints "[redacted]".
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';

const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SecretBoxError extends Error {
  override readonly name = 'SecretBoxError';
}

/** A secret value that will not print itself: `reveal()` is the only way to read it. */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[redacted]';
  }
  toJSON(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return 'Secret([redacted])';
  }
}

function checkKey(key: Buffer): void {
  if (key.length !== 32) throw new SecretBoxError('the secret key must be 32 bytes (AUTH_SECRET_KEY)');
}

/** Encrypt `plaintext` for the row `aad` (the userid). */
export function seal(key: Buffer, plaintext: string, aad: string): string {
  checkKey(key);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64');
}

/** Decrypt what `seal` produced for the same row; throws SecretBoxError on a wrong key, row or tampering. */
export function open(key: Buffer, sealed: string, aad: string): Secret {
  checkKey(key);
  const raw = Buffer.from(sealed, 'base64');
  if (raw.length < IV_BYTES + TAG_BYTES) throw new SecretBoxError('sealed secret is too short');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  try {
    const pt = Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
    return new Secret(pt.toString('utf8'));
  } catch (cause) {
    throw new SecretBoxError(
      'sealed secret does not open with this key (wrong AUTH_SECRET_KEY or tampered)',
      {
        cause,
      },
    );
  }
}
