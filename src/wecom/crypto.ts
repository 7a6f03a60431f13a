// Callback crypto of the WeCom AI bot (reference/wecom-aibot.md §2, §3, §4, §5.1, §7): AES-256-CBC
// with PKCS#7 padding to 32 bytes, the random|length|msg|receiveid framing, and the signed envelope.
// Every failure to decrypt is a WecomError with a code, never a crash of node:crypto.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { WecomError } from './errors.js';
import { signature, verifySignature } from './signature.js';

/** PKCS#7 block size of the WeCom scheme: 32, not AES's 16 (§2.1, pitfall §14.1). */
const PAD_BLOCK = 32;
const AES_BLOCK = 16;
const RANDOM_BYTES = 16;
const LENGTH_BYTES = 4;
const HEADER_BYTES = RANDOM_BYTES + LENGTH_BYTES;

/** Standard base64 with `=` padding (§2.1); Node's own decoder would silently skip bad characters. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface WecomCryptoOptions {
  token: string;
  /** The 43-character EncodingAESKey from the admin console. */
  encodingAESKey: string;
  /** `""` for AI bots (§2.2): then the trailing bytes are not checked. When set, checked strictly. */
  receiveId?: string;
}

/** A query value as Koa or node:querystring give it. */
type QueryValue = string | string[] | undefined;

/** The query of a callback (§3, §4), already URL-decoded. */
export interface CallbackQuery {
  msg_signature?: QueryValue;
  /** Fallback names for the signature seen in the official plugin (§3). */
  msgsignature?: QueryValue;
  signature?: QueryValue;
  timestamp?: QueryValue;
  nonce?: QueryValue;
  echostr?: QueryValue;
}

/** The encrypted passive-reply envelope (§5.1). */
export interface ReplyEnvelope {
  encrypt: string;
  msgsignature: string;
  /** Seconds, as a JSON number (the documented form). */
  timestamp: number;
  /** The nonce of the callback being answered. */
  nonce: string;
}

export interface Decrypted {
  message: string;
  receiveId: string;
}

/** AESKey = Base64Decode(EncodingAESKey + "="), exactly 32 bytes (§2.1). */
export function decodeAESKey(encodingAESKey: string): Buffer {
  const padded = `${encodingAESKey}=`;
  const key = encodingAESKey.length === 43 && BASE64.test(padded) ? Buffer.from(padded, 'base64') : undefined;
  if (key?.length !== 32) {
    // Only the length is reported: the key itself is a secret.
    throw new WecomError('bad_key', 'EncodingAESKey must be 43 base64 characters decoding to 32 bytes', {
      length: encodingAESKey.length,
    });
  }
  return key;
}

function pad(data: Buffer): Buffer {
  // Aligned input gets a whole block of 32s (§2.1).
  const n = PAD_BLOCK - (data.length % PAD_BLOCK);
  return Buffer.concat([data, Buffer.alloc(n, n)]);
}

function unpad(data: Buffer): Buffer {
  const n = data[data.length - 1] ?? 0;
  if (n < 1 || n > PAD_BLOCK || n > data.length) {
    throw new WecomError('bad_padding', 'padding value out of range 1..32', { pad: n });
  }
  for (let i = data.length - n; i < data.length; i++) {
    if (data[i] !== n) throw new WecomError('bad_padding', 'inconsistent padding bytes', { pad: n });
  }
  return data.subarray(0, data.length - n);
}

/** The single value of a query parameter; a repeated parameter counts as malformed. */
function single(value: QueryValue): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function requireParams<K extends string>(values: Record<K, string | undefined>): Record<K, string> {
  const missing = Object.entries(values)
    .filter(([, v]) => v === undefined)
    .map(([k]) => k);
  if (missing.length > 0) {
    throw new WecomError('missing_params', `missing query parameter(s): ${missing.join(', ')}`, { missing });
  }
  return values as Record<K, string>;
}

/** The `encrypt` field of a POST body (§4); PLUGIN also accepts `Encrypt`. */
function encryptOf(body: unknown): string {
  let value = body;
  if (typeof value === 'string' || Buffer.isBuffer(value)) {
    try {
      value = JSON.parse(value.toString());
    } catch {
      throw new WecomError('bad_body', 'body is not JSON');
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WecomError('bad_body', 'body must be a JSON object with a string "encrypt"');
  }
  const record = value as Record<string, unknown>;
  const encrypt = record.encrypt ?? record.Encrypt;
  if (typeof encrypt !== 'string' || encrypt === '') {
    throw new WecomError('bad_body', 'body must be a JSON object with a string "encrypt"');
  }
  return encrypt;
}

export class WecomCrypto {
  readonly #token: string;
  readonly #key: Buffer;
  readonly #iv: Buffer;
  readonly #receiveId: string;

  constructor({ token, encodingAESKey, receiveId = '' }: WecomCryptoOptions) {
    this.#token = token;
    this.#key = decodeAESKey(encodingAESKey);
    this.#iv = this.#key.subarray(0, AES_BLOCK);
    this.#receiveId = receiveId;
  }

  /** The signature of an encrypt value under our token (§2.3). */
  sign(timestamp: string | number, nonce: string, encrypt: string): string {
    return signature(this.#token, timestamp, nonce, encrypt);
  }

  /**
   * GET URL verification (§3): checks the signature over `echostr`, then decrypts it. Returns the
   * plaintext to answer with, bare.
   */
  verifyUrl(query: CallbackQuery): string {
    const p = requireParams({
      msg_signature: single(query.msg_signature) ?? single(query.msgsignature) ?? single(query.signature),
      timestamp: single(query.timestamp),
      nonce: single(query.nonce),
      echostr: single(query.echostr),
    });
    this.#verify(p.msg_signature, p.timestamp, p.nonce, p.echostr);
    return this.decrypt(p.echostr).message;
  }

  /**
   * POST callback (§4): checks the query and body, the signature over `encrypt` (before any
   * decryption, so tampered ciphertext never reaches the cipher), then decrypts. Returns the
   * plaintext JSON text.
   */
  decryptCallback(query: CallbackQuery, body: unknown): string {
    const p = requireParams({
      msg_signature: single(query.msg_signature) ?? single(query.msgsignature) ?? single(query.signature),
      timestamp: single(query.timestamp),
      nonce: single(query.nonce),
    });
    const encrypt = encryptOf(body);
    this.#verify(p.msg_signature, p.timestamp, p.nonce, encrypt);
    return this.decrypt(encrypt).message;
  }

  /**
   * The passive reply envelope (§5.1): encrypted, signed, echoing the callback's nonce. A timestamp
   * that is not a non-negative integer falls back to now (it only has to match its own signature).
   */
  encryptReply(plaintext: string, nonce: string, timestamp?: string | number): ReplyEnvelope {
    const given = timestamp === undefined ? Number.NaN : Number(timestamp);
    const ts = Number.isSafeInteger(given) && given >= 0 ? given : Math.floor(Date.now() / 1000);
    const encrypt = this.encrypt(plaintext);
    return { encrypt, msgsignature: this.sign(ts, nonce, encrypt), timestamp: ts, nonce };
  }

  /** random(16) | len(4, BE) | msg | receiveid, padded to 32, AES-256-CBC, base64 (§2.1). */
  encrypt(plaintext: string, random: Buffer = randomBytes(RANDOM_BYTES)): string {
    if (random.length !== RANDOM_BYTES) throw new RangeError('random must be 16 bytes');
    const message = Buffer.from(plaintext, 'utf8');
    const length = Buffer.alloc(LENGTH_BYTES);
    length.writeUInt32BE(message.length, 0);
    const framed = pad(Buffer.concat([random, length, message, Buffer.from(this.#receiveId, 'utf8')]));
    const cipher = createCipheriv('aes-256-cbc', this.#key, this.#iv);
    cipher.setAutoPadding(false);
    return Buffer.concat([cipher.update(framed), cipher.final()]).toString('base64');
  }

  /** The inverse of `encrypt`; checks the receiveid only when one is configured (§2.2). */
  decrypt(b64: string): Decrypted {
    if (!BASE64.test(b64)) throw new WecomError('bad_base64', 'ciphertext is not standard base64');
    const ciphertext = Buffer.from(b64, 'base64');
    if (ciphertext.length === 0 || ciphertext.length % PAD_BLOCK !== 0) {
      throw new WecomError('bad_length', 'ciphertext length is not a positive multiple of 32', {
        length: ciphertext.length,
      });
    }
    const plain = unpad(this.#decipher(ciphertext));
    if (plain.length < HEADER_BYTES) {
      throw new WecomError('bad_length', 'decrypted data is shorter than its header', {
        length: plain.length,
      });
    }
    const declared = plain.readUInt32BE(RANDOM_BYTES);
    if (declared > plain.length - HEADER_BYTES) {
      throw new WecomError('bad_length', 'declared message length exceeds the data', {
        declared,
        available: plain.length - HEADER_BYTES,
      });
    }
    const message = plain.subarray(HEADER_BYTES, HEADER_BYTES + declared).toString('utf8');
    const receiveId = plain.subarray(HEADER_BYTES + declared).toString('utf8');
    if (this.#receiveId !== '' && receiveId !== this.#receiveId) {
      throw new WecomError('bad_receiveid', 'receiveid does not match the configured one');
    }
    return { message, receiveId };
  }

  /**
   * A downloaded image or file (§7): the same key and IV, raw ciphertext with no framing; the
   * result is the file. Only AES's 16-byte alignment is required of the length, the padding itself
   * is checked strictly (1..32).
   */
  decryptMedia(buf: Buffer): Buffer {
    if (buf.length === 0 || buf.length % AES_BLOCK !== 0) {
      throw new WecomError('bad_length', 'media ciphertext length is not a positive multiple of 16', {
        length: buf.length,
      });
    }
    return unpad(this.#decipher(buf));
  }

  #decipher(ciphertext: Buffer): Buffer {
    const decipher = createDecipheriv('aes-256-cbc', this.#key, this.#iv);
    // Node's auto-unpadding assumes 16-byte PKCS#7 and throws on WeCom's 32 (§14.1).
    decipher.setAutoPadding(false);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  }

  #verify(given: string, timestamp: string, nonce: string, encrypt: string): void {
    if (!verifySignature(this.#token, timestamp, nonce, encrypt, given)) {
      throw new WecomError('bad_signature', 'msg_signature does not match', { timestamp, nonce });
    }
  }
}
