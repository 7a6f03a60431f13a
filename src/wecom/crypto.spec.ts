// The callback crypto against the official vectors (docs/protocol/wecom.md §12) and against the
// official @wecom/crypto package as an oracle, both ways, plus every way a callback can be broken.
import { createCipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as official from '@wecom/crypto';
import { describe, expect, it, vi } from 'vitest';
import { decodeAESKey, signerOf, WecomCrypto } from './crypto.js';
import { WecomError, type WecomErrorCode } from './errors.js';
import { signature, verifySignature } from './signature.js';

// Spy on node:crypto's constant-time compare while keeping the real implementation.
vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) };
});
const nodeCrypto = await import('node:crypto');

interface Vector {
  name: string;
  token: string;
  encodingAESKey: string;
  msg_signature: string;
  timestamp: string;
  nonce: string;
  encrypt: string;
  plaintext: string;
  receiveid: string;
}

const vectorsUrl = new URL('../../../shared/fixtures/wecom/vectors.json', import.meta.url);
const haveVectors = existsSync(fileURLToPath(vectorsUrl));
const vectors: Vector[] = haveVectors
  ? (JSON.parse(readFileSync(vectorsUrl, 'utf8')) as { vectors: Vector[] }).vectors
  : [];

const TOKEN = 'QDG6eK';
const KEY = 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C';
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

const randomKey = (): string => Array.from(randomBytes(43), (b) => ALNUM[b % ALNUM.length]).join('');

/** Random text mixing ASCII, CJK, emoji (surrogate pairs), combining marks and control characters. */
function randomText(maxChars: number): string {
  const pools = [
    'abcXYZ019 {}":,\\/',
    '你好世界企业微信机器人',
    '😀🎉👍🏽🚀',
    'e\u0301\u00e9',
    '\n\t\u0000\u001f',
  ];
  const n = Math.floor(Math.random() * (maxChars + 1));
  let out = '';
  for (let i = 0; i < n; i++) {
    const pool = Array.from(pools[Math.floor(Math.random() * pools.length)] ?? '');
    out += pool[Math.floor(Math.random() * pool.length)] ?? '';
  }
  return out;
}

/** Encrypts an already framed-and-padded buffer, for hand-made malformed inputs. */
function rawEncrypt(encodingAESKey: string, plain: Buffer): string {
  const key = Buffer.from(`${encodingAESKey}=`, 'base64');
  const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(plain), cipher.final()]).toString('base64');
}

/** Asserts a typed failure, and that neither the message nor the details leak a secret. */
function expectWecomError(
  fn: () => unknown,
  code: WecomErrorCode,
  secrets: string[] = [TOKEN, KEY],
): WecomError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(WecomError);
  const error = caught as WecomError;
  expect(error.code).toBe(code);
  const text = `${error.message} ${JSON.stringify(error.details)}`;
  for (const secret of secrets) expect(text).not.toContain(secret);
  return error;
}

const signedQuery = (token: string, encrypt: string, timestamp = '1700000000', nonce = 'n0nce') => ({
  msg_signature: official.getSignature(token, timestamp, nonce, encrypt),
  timestamp,
  nonce,
});

describe.skipIf(!haveVectors)(
  'the official vectors (skipped: the fixtures folder ../shared/fixtures is absent in this clone)',
  () => {
    for (const v of vectors) {
      describe(v.name, () => {
        it('has the documented signature', () => {
          expect(signature(v.token, v.timestamp, v.nonce, v.encrypt)).toBe(v.msg_signature);
          expect(verifySignature(v.token, v.timestamp, v.nonce, v.encrypt, v.msg_signature)).toBe(true);
        });

        it('decrypts to the documented plaintext and receiveid', () => {
          const crypto = new WecomCrypto({ token: v.token, encodingAESKey: v.encodingAESKey });
          expect(crypto.decrypt(v.encrypt)).toEqual({ message: v.plaintext, receiveId: v.receiveid });
        });

        it('checks a configured receiveid strictly', () => {
          const strict = new WecomCrypto({
            token: v.token,
            encodingAESKey: v.encodingAESKey,
            receiveId: v.receiveid,
          });
          expect(strict.decrypt(v.encrypt).message).toBe(v.plaintext);
          const other = new WecomCrypto({
            token: v.token,
            encodingAESKey: v.encodingAESKey,
            receiveId: 'wwOTHER',
          });
          expectWecomError(() => other.decrypt(v.encrypt), 'bad_receiveid', [v.token, v.encodingAESKey]);
        });

        if (v.name.includes('verify-url')) {
          it('passes URL verification, returning the bare echostr plaintext', () => {
            const crypto = new WecomCrypto({ token: v.token, encodingAESKey: v.encodingAESKey });
            const query = {
              msg_signature: v.msg_signature,
              timestamp: v.timestamp,
              nonce: v.nonce,
              echostr: v.encrypt,
            };
            expect(crypto.verifyUrl(query)).toBe(v.plaintext);
          });
        } else {
          it('passes as a callback body, under `encrypt` and under `Encrypt`', () => {
            const crypto = new WecomCrypto({ token: v.token, encodingAESKey: v.encodingAESKey });
            const query = { msg_signature: v.msg_signature, timestamp: v.timestamp, nonce: v.nonce };
            expect(crypto.decryptCallback(query, { encrypt: v.encrypt, agentid: '218' })).toBe(v.plaintext);
            expect(crypto.decryptCallback(query, { Encrypt: v.encrypt })).toBe(v.plaintext);
          });
        }

        if (v.receiveid === '') {
          it('is reproduced byte for byte from random "0123456789abcdef"', () => {
            const crypto = new WecomCrypto({ token: v.token, encodingAESKey: v.encodingAESKey });
            expect(crypto.encrypt(v.plaintext, Buffer.from('0123456789abcdef'))).toBe(v.encrypt);
          });
        }
      });
    }
  },
);

describe('interoperability with the official @wecom/crypto', () => {
  it('what we encrypt, it decrypts, and the other way round, for hundreds of random messages', () => {
    for (let i = 0; i < 400; i++) {
      const key = i % 4 === 0 ? randomKey() : KEY;
      const crypto = new WecomCrypto({ token: TOKEN, encodingAESKey: key });
      const message = randomText(i < 300 ? 40 : 600);

      const ours = crypto.encrypt(message);
      expect(Buffer.from(ours, 'base64').length % 32).toBe(0);
      expect(official.decrypt(key, ours)).toMatchObject({ message, id: '' });

      const theirs = official.encrypt(key, message, '');
      expect(crypto.decrypt(theirs)).toEqual({ message, receiveId: '' });
    }
  });

  it('keeps its ciphers across messages: each one, in any order, as a fresh cipher makes it', () => {
    // One instance, as a node keeps one per bot: encryptions, decryptions, broken ciphertexts and
    // media interleaved, every result checked against the official library or a fresh node cipher.
    const crypto = new WecomCrypto({ token: TOKEN, encodingAESKey: KEY });
    const padded = (data: Buffer): Buffer => {
      const pad = 32 - (data.length % 32);
      return Buffer.concat([data, Buffer.alloc(pad, pad)]);
    };
    for (let i = 0; i < 600; i++) {
      const message = randomText(1 + (i % 7) * 90);
      switch (i % 5) {
        case 0:
        case 1: {
          const random = randomBytes(16);
          const ours = crypto.encrypt(message, Buffer.from(random));
          expect(official.decrypt(KEY, ours)).toMatchObject({ message, id: '' });
          const length = Buffer.alloc(4);
          length.writeUInt32BE(Buffer.byteLength(message));
          const framed = padded(Buffer.concat([random, length, Buffer.from(message)]));
          expect(ours).toBe(rawEncrypt(KEY, framed));
          break;
        }
        case 2:
          expect(crypto.decrypt(official.encrypt(KEY, message, '')).message).toBe(message);
          break;
        case 3: {
          const broken = Buffer.from(official.encrypt(KEY, message, ''), 'base64');
          broken[broken.length - 1] = (broken[broken.length - 1] ?? 0) ^ 0x5a;
          try {
            crypto.decrypt(broken.toString('base64'));
          } catch (error) {
            expect(error).toBeInstanceOf(WecomError);
          }
          break;
        }
        default: {
          const file = randomBytes(i % 64);
          const encrypted = Buffer.from(rawEncrypt(KEY, padded(file)), 'base64');
          expect(crypto.decryptMedia(encrypted)).toEqual(file);
        }
      }
    }
  });

  it('pads to 32-byte blocks with every pad length 1..32, a full block when aligned', () => {
    const crypto = new WecomCrypto({ token: TOKEN, encodingAESKey: KEY });
    const seen = new Set<number>();
    for (let len = 0; len < 64; len++) {
      const message = 'x'.repeat(len);
      const pad = 32 - ((20 + len) % 32);
      seen.add(pad);
      const random = randomBytes(16);
      const ours = crypto.encrypt(message, random);
      // Same random, same bytes: our framing and padding are exactly the official ones.
      expect(ours).toBe(official.encrypt(KEY, message, '', random));
      expect(Buffer.from(ours, 'base64').length).toBe(20 + len + pad);
      expect(crypto.decrypt(official.encrypt(KEY, message, '')).message).toBe(message);
    }
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 32 }, (_, i) => i + 1));
  });

  it('handles multi-byte text whose byte length, not character length, sets the frame', () => {
    const crypto = new WecomCrypto({ token: TOKEN, encodingAESKey: KEY });
    for (const message of ['你好', '😀'.repeat(33), `{"text":{"content":"@机器人 你好 👍🏽"}}`, '']) {
      expect(official.decrypt(KEY, crypto.encrypt(message)).message).toBe(message);
      expect(crypto.decrypt(official.encrypt(KEY, message, '')).message).toBe(message);
    }
  });

  it('decrypts a callback the official library signed and encrypted', () => {
    const crypto = new WecomCrypto({ token: TOKEN, encodingAESKey: KEY });
    const json = JSON.stringify({ msgid: 'm1', msgtype: 'text', text: { content: '你好 😀' } });
    const encrypt = official.encrypt(KEY, json, '');
    expect(crypto.decryptCallback(signedQuery(TOKEN, encrypt), { encrypt })).toBe(json);
    // A raw JSON body (string or Buffer) is accepted too.
    expect(crypto.decryptCallback(signedQuery(TOKEN, encrypt), JSON.stringify({ encrypt }))).toBe(json);
    expect(
      crypto.decryptCallback(signedQuery(TOKEN, encrypt), Buffer.from(JSON.stringify({ encrypt }))),
    ).toBe(json);
  });

  it('passes a URL verification the official library made, under each signature name', () => {
    const crypto = new WecomCrypto({ token: TOKEN, encodingAESKey: KEY });
    const echostr = official.encrypt(KEY, '1616140317555161061', '');
    const { msg_signature, timestamp, nonce } = signedQuery(TOKEN, echostr);
    expect(crypto.verifyUrl({ msg_signature, timestamp, nonce, echostr })).toBe('1616140317555161061');
    expect(crypto.verifyUrl({ msgsignature: msg_signature, timestamp, nonce, echostr })).toBe(
      '1616140317555161061',
    );
    expect(crypto.verifyUrl({ signature: msg_signature, timestamp, nonce, echostr })).toBe(
      '1616140317555161061',
    );
  });

  it('builds a reply envelope the official library verifies and decrypts (§5.1)', () => {
    const crypto = new WecomCrypto({ token: TOKEN, encodingAESKey: KEY });
    const plain = JSON.stringify({
      msgtype: 'stream',
      stream: { id: 's1', finish: false, content: '思考中…' },
    });
    const reply = crypto.encryptReply(plain, 'the-nonce', '1700000000');
    expect(reply.timestamp).toBe(1700000000);
    expect(reply.nonce).toBe('the-nonce');
    expect(reply.msgsignature).toBe(official.getSignature(TOKEN, 1700000000, 'the-nonce', reply.encrypt));
    expect(official.decrypt(KEY, reply.encrypt)).toMatchObject({ message: plain, id: '' });
    // JSON puts the timestamp as a number.
    expect(JSON.parse(JSON.stringify(reply)).timestamp).toBeTypeOf('number');
  });

  it('stamps a reply with the current time in seconds by default', () => {
    const crypto = new WecomCrypto({ token: TOKEN, encodingAESKey: KEY });
    const before = Math.floor(Date.now() / 1000);
    const reply = crypto.encryptReply('{}', 'n');
    expect(reply.timestamp).toBeGreaterThanOrEqual(before);
    expect(reply.timestamp).toBeLessThanOrEqual(before + 2);
    expect(reply.msgsignature).toBe(official.getSignature(TOKEN, reply.timestamp, 'n', reply.encrypt));
    expect(crypto.encryptReply('{}', 'n', 'not-a-time').timestamp).toBeGreaterThanOrEqual(before);
  });

  it('decrypts with a configured receiveid and encrypts with it', () => {
    const crypto = new WecomCrypto({ token: TOKEN, encodingAESKey: KEY, receiveId: 'ww1436e0e65a779aee' });
    expect(official.decrypt(KEY, crypto.encrypt('hi'))).toMatchObject({
      message: 'hi',
      id: 'ww1436e0e65a779aee',
    });
    expect(crypto.decrypt(official.encrypt(KEY, 'hi', 'ww1436e0e65a779aee')).message).toBe('hi');
    expectWecomError(() => crypto.decrypt(official.encrypt(KEY, 'hi', '')), 'bad_receiveid');
  });

  it('ignores the trailing receiveid when none is configured (AI bots, §2.4)', () => {
    const crypto = new WecomCrypto({ token: TOKEN, encodingAESKey: KEY });
    expect(crypto.decrypt(official.encrypt(KEY, 'hi', 'some-corp'))).toEqual({
      message: 'hi',
      receiveId: 'some-corp',
    });
  });
});

describe('the signature (§2.5)', () => {
  it('is the SHA-1 of the sorted values, as the official library computes it', () => {
    for (let i = 0; i < 50; i++) {
      const args = [
        randomText(10),
        String(1_700_000_000 + i),
        randomText(8),
        randomBytes(40).toString('base64'),
      ] as const;
      expect(signature(...args)).toBe(official.getSignature(...args));
    }
  });

  it('rejects a signature that differs in one character, or in length, without throwing', () => {
    const good = signature(TOKEN, '1', '2', 'abc');
    const flipped = (good[0] === 'a' ? 'b' : 'a') + good.slice(1);
    expect(verifySignature(TOKEN, '1', '2', 'abc', good)).toBe(true);
    expect(verifySignature(TOKEN, '1', '2', 'abc', flipped)).toBe(false);
    expect(verifySignature(TOKEN, '1', '2', 'abc', good.slice(1))).toBe(false);
    expect(verifySignature(TOKEN, '1', '2', 'abc', '')).toBe(false);
    expect(verifySignature(TOKEN, '1', '2', 'abc', `${good}0`)).toBe(false);
  });

  it('compares in constant time with crypto.timingSafeEqual', () => {
    const spy = vi.mocked(nodeCrypto.timingSafeEqual);
    spy.mockClear();
    const good = signature(TOKEN, '1', '2', 'abc');
    expect(verifySignature(TOKEN, '1', '2', 'abc', good)).toBe(true);
    expect(spy).toHaveBeenCalledTimes(1);
  });
});

describe('broken callbacks are typed errors, never crashes', () => {
  const crypto = new WecomCrypto({ token: TOKEN, encodingAESKey: KEY });

  it('rejects a bad signature before decrypting anything', () => {
    const encrypt = official.encrypt(KEY, '{}', '');
    const query = {
      ...signedQuery(TOKEN, encrypt),
      msg_signature: signature('other-token', '1700000000', 'n0nce', encrypt),
    };
    expectWecomError(() => crypto.decryptCallback(query, { encrypt }), 'bad_signature');
    // Tampered ciphertext under the original signature is a signature failure, not a padding one.
    const tampered = Buffer.from(encrypt, 'base64');
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 0xff;
    expectWecomError(
      () => crypto.decryptCallback(signedQuery(TOKEN, encrypt), { encrypt: tampered.toString('base64') }),
      'bad_signature',
    );
    const echostr = official.encrypt(KEY, '123', '');
    expectWecomError(
      () => crypto.verifyUrl({ ...signedQuery(TOKEN, echostr), echostr: official.encrypt(KEY, '123', '') }),
      'bad_signature',
    );
  });

  it('names the missing query parameters', () => {
    expect(expectWecomError(() => crypto.verifyUrl({}), 'missing_params').details).toEqual({
      missing: ['msg_signature', 'timestamp', 'nonce', 'echostr'],
    });
    const encrypt = official.encrypt(KEY, '{}', '');
    const { msg_signature, timestamp } = signedQuery(TOKEN, encrypt);
    const error = expectWecomError(
      () => crypto.decryptCallback({ msg_signature, timestamp }, { encrypt }),
      'missing_params',
    );
    expect(error.message).toContain('nonce');
    // A repeated parameter is not a single value.
    expectWecomError(
      () =>
        crypto.decryptCallback(
          { msg_signature: [msg_signature, msg_signature], timestamp, nonce: 'n0nce' },
          { encrypt },
        ),
      'missing_params',
    );
  });

  it('rejects a body that is not an object with a string encrypt', () => {
    const query = signedQuery(TOKEN, 'x');
    for (const body of [undefined, null, 42, [], {}, { encrypt: 1 }, { encrypt: '' }, 'not json', '[1]']) {
      expectWecomError(() => crypto.decryptCallback(query, body), 'bad_body');
    }
  });

  it('rejects ciphertext that is not standard base64', () => {
    for (const bad of ['not base64!!', 'abc', 'YWJj ZGVm', 'YW=j', '-_-_', 'YWJjZA']) {
      expectWecomError(() => crypto.decrypt(bad), 'bad_base64');
    }
  });

  it('rejects truncated ciphertext by its length', () => {
    const full = Buffer.from(official.encrypt(KEY, 'hello world '.repeat(10), ''), 'base64');
    for (const length of [0, 16, 31, 48, full.length - 16]) {
      expectWecomError(() => crypto.decrypt(full.subarray(0, length).toString('base64')), 'bad_length');
    }
  });

  it('rejects a padding value outside 1..32 and inconsistent padding bytes', () => {
    const frame = (tail: number[]) => {
      const body = Buffer.concat([randomBytes(16), Buffer.from([0, 0, 0, 2]), Buffer.from('{}')]);
      const filler = Buffer.alloc(64 - body.length - tail.length, 7);
      return rawEncrypt(KEY, Buffer.concat([body, filler, Buffer.from(tail)]));
    };
    expectWecomError(() => crypto.decrypt(frame([0])), 'bad_padding');
    expectWecomError(() => crypto.decrypt(frame([33])), 'bad_padding');
    expectWecomError(() => crypto.decrypt(frame([255])), 'bad_padding');
    expectWecomError(() => crypto.decrypt(frame([4, 4, 4])), 'bad_padding');
    expectWecomError(() => crypto.decrypt(frame([3, 2, 3])), 'bad_padding');
    // The same frame padded properly decrypts.
    expect(crypto.decrypt(frame([3, 3, 3])).message).toBe('{}');
  });

  it('rejects a declared length beyond the data, and data shorter than its header', () => {
    const tooLong = Buffer.concat([
      randomBytes(16),
      Buffer.from([0, 0, 3, 232]),
      Buffer.from('{}'),
      Buffer.alloc(10, 10),
    ]);
    expectWecomError(() => crypto.decrypt(rawEncrypt(KEY, tooLong)), 'bad_length');
    const huge = Buffer.concat([randomBytes(16), Buffer.from([255, 255, 255, 255]), Buffer.alloc(12, 12)]);
    expectWecomError(() => crypto.decrypt(rawEncrypt(KEY, huge)), 'bad_length');
    const short = Buffer.concat([randomBytes(16), Buffer.alloc(16, 16)]);
    expectWecomError(() => crypto.decrypt(rawEncrypt(KEY, short)), 'bad_length');
    expectWecomError(() => crypto.decrypt(rawEncrypt(KEY, Buffer.alloc(32, 32))), 'bad_length');
  });

  it('answers tampered ciphertext with a WecomError or garbage, never another exception', () => {
    const codes = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const bytes = Buffer.from(official.encrypt(KEY, randomText(60), ''), 'base64');
      const at = Math.floor(Math.random() * bytes.length);
      bytes[at] = (bytes[at] ?? 0) ^ (1 + Math.floor(Math.random() * 255));
      try {
        crypto.decrypt(bytes.toString('base64'));
        codes.add('ok');
      } catch (error) {
        expect(error).toBeInstanceOf(WecomError);
        codes.add((error as WecomError).code);
      }
    }
    expect(codes.has('bad_padding')).toBe(true);
    for (const code of codes) expect(['ok', 'bad_padding', 'bad_length']).toContain(code);
  });

  it('rejects an EncodingAESKey that is not 43 base64 characters of 32 bytes, without echoing it', () => {
    const bads = ['short', `${KEY}A`, `${KEY.slice(0, 42)}!`, `${KEY.slice(0, 42)}=`, ''];
    for (const encodingAESKey of bads) {
      expectWecomError(() => new WecomCrypto({ token: TOKEN, encodingAESKey }), 'bad_key', [
        TOKEN,
        ...bads.filter(Boolean),
      ]);
    }
    expect(decodeAESKey(KEY)).toHaveLength(32);
  });
});

describe('media decryption (§7.1)', () => {
  const crypto = new WecomCrypto({ token: TOKEN, encodingAESKey: KEY });
  const key = Buffer.from(`${KEY}=`, 'base64');

  /** How the server encrypts a download: PKCS#7 to 32, no framing. */
  function encryptMedia(file: Buffer): Buffer {
    const pad = 32 - (file.length % 32);
    const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
    cipher.setAutoPadding(false);
    return Buffer.concat([cipher.update(Buffer.concat([file, Buffer.alloc(pad, pad)])), cipher.final()]);
  }

  it('gives back the file for every length around the block size', () => {
    for (let length = 0; length <= 96; length++) {
      const file = randomBytes(length);
      expect(crypto.decryptMedia(encryptMedia(file)).equals(file)).toBe(true);
    }
    const big = randomBytes(1024 * 1024 + 7);
    expect(crypto.decryptMedia(encryptMedia(big)).equals(big)).toBe(true);
  });

  it('rejects a download that is empty, unaligned or badly padded', () => {
    expectWecomError(() => crypto.decryptMedia(Buffer.alloc(0)), 'bad_length');
    expectWecomError(() => crypto.decryptMedia(randomBytes(33)), 'bad_length');
    const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
    cipher.setAutoPadding(false);
    const badPad = Buffer.concat([cipher.update(Buffer.alloc(32, 40)), cipher.final()]);
    expectWecomError(() => crypto.decryptMedia(badPad), 'bad_padding');
  });
});

describe('which bot signed a callback on the shared URL', () => {
  const alnum = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const randomKey = () => Array.from(randomBytes(43), (b) => alnum[b % alnum.length]).join('');
  const bots = Array.from({ length: 20 }, (_, i) => ({
    id: `bot-${i}`,
    token: `token${i}`,
    encodingAESKey: randomKey(),
  }));
  const cryptos = new Map(bots.map((b) => [b, new WecomCrypto(b)]));
  const cryptoOf = (b: (typeof bots)[number]) => cryptos.get(b)!;
  /** A callback as the official library makes it for `bot`. */
  const signed = (bot: (typeof bots)[number], plaintext: string) => {
    const encrypt = official.encrypt(bot.encodingAESKey, plaintext, '');
    const timestamp = '1700000000';
    const nonce = 'n0nce';
    return {
      query: { msg_signature: official.getSignature(bot.token, timestamp, nonce, encrypt), timestamp, nonce },
      encrypt,
    };
  };

  it('finds the bot whose Token signed it, for every bot and every message length', () => {
    for (const [i, bot] of bots.entries()) {
      for (const length of [1, 31, 32, 33, 500]) {
        const { query, encrypt } = signed(bot, 'x'.repeat(length + i));
        expect(signerOf(bots, cryptoOf, query, { encrypt })?.id).toBe(bot.id);
        // A GET's echostr the same way.
        expect(signerOf(bots, cryptoOf, { ...query, echostr: encrypt })?.id).toBe(bot.id);
      }
    }
  });

  it("rules most bots out by their key alone: another bot's key rarely fits the padding", () => {
    const [a, b] = bots;
    let fits = 0;
    for (let n = 0; n < 2000; n++) {
      const encrypt = official.encrypt(a!.encodingAESKey, `message ${n}`, '');
      expect(cryptoOf(a!).mayHaveEncrypted(Buffer.from(encrypt, 'base64'))).toBe(true);
      if (cryptoOf(b!).mayHaveEncrypted(Buffer.from(encrypt, 'base64'))) fits++;
    }
    // About 1 in 256 by chance (a last byte of 1, whose padding is itself).
    expect(fits).toBeLessThan(40);
  });

  it("finds the signer of a broken ciphertext too, so that it is refused by that bot's own check", () => {
    const bot = bots[7]!;
    const { encrypt } = signed(bot, '{"msgtype":"text"}');
    const bytes = Buffer.from(encrypt, 'base64');
    bytes[bytes.length - 1]! ^= 0x55;
    const tampered = bytes.toString('base64');
    const query = {
      msg_signature: official.getSignature(bot.token, '1700000000', 'n', tampered),
      timestamp: '1700000000',
      nonce: 'n',
    };
    expect(signerOf(bots, cryptoOf, query, { encrypt: tampered })?.id).toBe(bot.id);
    expect(() => cryptoOf(bot).decryptCallback(query, { encrypt: tampered })).toThrow(WecomError);
  });

  it('finds none for a Token no bot has, a missing parameter or a body without encrypt', () => {
    const stranger = { id: 'x', token: 'nobody', encodingAESKey: bots[3]!.encodingAESKey };
    const { query, encrypt } = signed(stranger, 'hello');
    expect(signerOf(bots, cryptoOf, query, { encrypt })).toBeUndefined();
    const good = signed(bots[2]!, 'hello');
    expect(
      signerOf(bots, cryptoOf, { ...good.query, nonce: undefined }, { encrypt: good.encrypt }),
    ).toBeUndefined();
    expect(signerOf(bots, cryptoOf, good.query, { other: 1 })).toBeUndefined();
    expect(signerOf(bots, cryptoOf, good.query, 'not an object')).toBeUndefined();
  });
});

describe('a file of the long connection, with its own key', () => {
  it('decrypts as the official SDK does, for every length around the block size', async () => {
    const { decryptFile } = await import('@wecom/aibot-node-sdk');
    const { decryptMediaWithKey } = await import('./crypto.js');
    const key = randomBytes(32);
    const aesKey = key.toString('base64');
    for (const length of [1, 15, 16, 31, 32, 33, 1000]) {
      const file = randomBytes(length);
      const pad = 32 - (length % 32);
      const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
      cipher.setAutoPadding(false);
      const encrypted = Buffer.concat([
        cipher.update(Buffer.concat([file, Buffer.alloc(pad, pad)])),
        cipher.final(),
      ]);
      expect(decryptMediaWithKey(encrypted, aesKey)).toEqual(file);
      expect(decryptFile(encrypted, aesKey)).toEqual(file);
    }
    expect(() => decryptMediaWithKey(Buffer.alloc(32), 'c2hvcnQ=')).toThrow(WecomError);
  });
});
