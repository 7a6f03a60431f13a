// Callback crypto of the WeCom AI bot (docs/protocol/wecom.md §2, §3, §4, §5.1, §7): AES-256-CBC
// with PKCS#7 padding to 32 bytes, the random|length|msg|receiveid framing, and the signed envelope.
// Every failure to decrypt is a WecomError with a code, never a crash of node:crypto.
import { type Cipher, createCipheriv, createDecipheriv, type Decipher, randomFillSync } from 'node:crypto';
import { WecomError } from './errors.js';
import { signature, verifySignature } from './signature.js';

/** PKCS#7 block size of the WeCom scheme: 32, not AES's 16 (§2.2). */
const PAD_BLOCK = 32;
const AES_BLOCK = 16;
const RANDOM_BYTES = 16;
const LENGTH_BYTES = 4;
const HEADER_BYTES = RANDOM_BYTES + LENGTH_BYTES;

/** Standard base64 with `=` padding (§2.2), for the key, which is checked once. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes standard base64, refusing anything else. Node's decoder silently skips characters outside
 * the alphabet; a string is canonical base64 exactly when encoding its bytes gives it back, which is
 * also cheaper than a regular expression over a ciphertext on every callback.
 */
function strictBase64(text: string): Buffer | undefined {
  if (text.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/**
 * The 16 random bytes that start every message (§2.3): any bytes will do and receivers ignore them,
 * so they come from a pool refilled 256 messages at a time rather than a system call per reply.
 */
const randomPool = Buffer.allocUnsafe(RANDOM_BYTES * 256);
let randomAt = randomPool.length;
function nextRandom(): Buffer {
  if (randomAt + RANDOM_BYTES > randomPool.length) {
    randomFillSync(randomPool);
    randomAt = 0;
  }
  randomAt += RANDOM_BYTES;
  return Buffer.from(randomPool.subarray(randomAt - RANDOM_BYTES, randomAt));
}

export interface WecomCryptoOptions {
  token: string;
  /** The 43-character EncodingAESKey from the admin console. */
  encodingAESKey: string;
  /** `""` for AI bots (§2.4): then the trailing bytes are not checked. When set, checked strictly. */
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

/**
 * A file of the long connection (§12): each comes with its own key (base64 of 32 bytes), whose first
 * 16 bytes are the IV; the same cipher and 32-byte padding as the callback's media.
 */
export function decryptMediaWithKey(buf: Buffer, aesKey: string): Buffer {
  const key = Buffer.from(aesKey, 'base64');
  if (key.length !== 32) throw new WecomError('bad_key', 'the file key is not 32 bytes of base64');
  if (buf.length === 0 || buf.length % AES_BLOCK !== 0)
    throw new WecomError('bad_length', 'media ciphertext length is not a positive multiple of 16', {
      length: buf.length,
    });
  const decipher = createDecipheriv('aes-256-cbc', key, key.subarray(0, 16));
  decipher.setAutoPadding(false);
  return unpad(Buffer.concat([decipher.update(buf), decipher.final()]));
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
  // Every callback comes through here: look for a gap before building the list of them.
  let complete = true;
  for (const key in values) if (values[key] === undefined) complete = false;
  if (complete) return values as Record<K, string>;
  const missing = Object.entries(values)
    .filter(([, v]) => v === undefined)
    .map(([k]) => k);
  throw new WecomError('missing_params', `missing query parameter(s): ${missing.join(', ')}`, { missing });
}

/** The `encrypt` field of a POST body (§4.1); WeCom's plugin also accepts `Encrypt`. */
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

/**
 * AES-256-CBC under one key and IV, its cipher made once and kept open. Making a cipher costs more than
 * running one over a callback's few KB (OpenSSL looks the algorithm up each time), and every callback
 * needs one to decrypt and one to encrypt. An open CBC cipher chains each call on from the last block
 * of the one before; XOR-ing the first block with (last block ⊕ IV) undoes that, so every message is
 * exactly what a fresh cipher with the IV gives (for encryption, on the plaintext going in; for
 * decryption, on the plaintext coming out). Whole blocks only, no padding: the caller pads.
 */
class KeptCbc {
  readonly #cipher: Cipher | Decipher;
  /** The block the next call chains from: the last one out (encrypting) or in (decrypting). */
  readonly #chain: Buffer;
  readonly #iv: Buffer;
  readonly #encrypting: boolean;

  constructor(key: Buffer, iv: Buffer, encrypting: boolean) {
    this.#encrypting = encrypting;
    this.#iv = Buffer.from(iv);
    this.#chain = Buffer.from(iv);
    this.#cipher = encrypting
      ? createCipheriv('aes-256-cbc', key, iv)
      : createDecipheriv('aes-256-cbc', key, iv);
    this.#cipher.setAutoPadding(false);
  }

  /** `data` (whole blocks) enciphered or deciphered as a message of its own. Encrypting changes `data`. */
  run(data: Buffer): Buffer {
    const n = data.length;
    if (n === 0 || n % AES_BLOCK !== 0) throw new RangeError('whole AES blocks only');
    const chain = this.#chain;
    const iv = this.#iv;
    if (this.#encrypting) {
      for (let i = 0; i < AES_BLOCK; i++) data[i] = (data[i] ?? 0) ^ (chain[i] ?? 0) ^ (iv[i] ?? 0);
      const out = this.#cipher.update(data);
      out.copy(chain, 0, n - AES_BLOCK, n);
      return out;
    }
    const out = this.#cipher.update(data);
    for (let i = 0; i < AES_BLOCK; i++) out[i] = (out[i] ?? 0) ^ (chain[i] ?? 0) ^ (iv[i] ?? 0);
    data.copy(chain, 0, n - AES_BLOCK, n);
    return out;
  }
}

export class WecomCrypto {
  readonly #token: string;
  readonly #key: Buffer;
  readonly #iv: Buffer;
  readonly #receiveId: string;
  /** An AES-ECB decipher for one block at a time (`mayHaveEncrypted`), made when first needed. */
  #lastBlock: Decipher | undefined;
  /** The callbacks' ciphers, made when first needed and kept. */
  #encipher: KeptCbc | undefined;
  #decipherer: KeptCbc | undefined;

  constructor({ token, encodingAESKey, receiveId = '' }: WecomCryptoOptions) {
    this.#token = token;
    this.#key = decodeAESKey(encodingAESKey);
    this.#iv = this.#key.subarray(0, AES_BLOCK);
    this.#receiveId = receiveId;
  }

  /** The signature of an encrypt value under our token (§2.5). */
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

  /** random(16) | len(4, BE) | msg | receiveid, padded to 32, AES-256-CBC, base64 (§2.2, §2.3). */
  encrypt(plaintext: string, random: Buffer = nextRandom()): string {
    if (random.length !== RANDOM_BYTES) throw new RangeError('random must be 16 bytes');
    // Framed and padded in one buffer: this runs for every reply.
    const messageBytes = Buffer.byteLength(plaintext, 'utf8');
    const idBytes = Buffer.byteLength(this.#receiveId, 'utf8');
    const unpadded = HEADER_BYTES + messageBytes + idBytes;
    const padding = PAD_BLOCK - (unpadded % PAD_BLOCK);
    const framed = Buffer.allocUnsafe(unpadded + padding);
    random.copy(framed, 0);
    framed.writeUInt32BE(messageBytes, RANDOM_BYTES);
    framed.write(plaintext, HEADER_BYTES, 'utf8');
    framed.write(this.#receiveId, HEADER_BYTES + messageBytes, 'utf8');
    framed.fill(padding, unpadded);
    this.#encipher ??= new KeptCbc(this.#key, this.#iv, true);
    return this.#encipher.run(framed).toString('base64');
  }

  /** The inverse of `encrypt`; checks the receiveid only when one is configured (§2.4). */
  decrypt(b64: string): Decrypted {
    const ciphertext = strictBase64(b64);
    if (!ciphertext) throw new WecomError('bad_base64', 'ciphertext is not standard base64');
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
   * A downloaded image or file (§7.1): the same key and IV, raw ciphertext with no framing; the
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

  /**
   * Whether this key could have encrypted `ciphertext`, judged from its last block alone: decrypted
   * (one AES block, with a decipher kept for it), it must end in WeCom's padding (1..32 bytes, each
   * the padding's length). A wrong key passes this about once in 256 times; the signature decides.
   */
  mayHaveEncrypted(ciphertext: Buffer): boolean {
    const n = ciphertext.length;
    if (n < 2 * AES_BLOCK || n % PAD_BLOCK !== 0) return false;
    return this.mayHaveEncryptedTail(ciphertext.subarray(n - 2 * AES_BLOCK));
  }

  /** `mayHaveEncrypted`, given only the ciphertext's last two AES blocks (32 bytes). */
  mayHaveEncryptedTail(tail: Buffer): boolean {
    const n = tail.length;
    if (n !== 2 * AES_BLOCK) return false;
    const ciphertext = tail;
    this.#lastBlock ??= (() => {
      const ecb = createDecipheriv('aes-256-ecb', this.#key, null);
      ecb.setAutoPadding(false);
      return ecb;
    })();
    const block = this.#lastBlock.update(ciphertext.subarray(n - AES_BLOCK));
    // CBC: the plaintext is the block deciphered, XOR the ciphertext block before it.
    const pad = (block[AES_BLOCK - 1] ?? 0) ^ (ciphertext[n - AES_BLOCK - 1] ?? 0);
    if (pad < 1 || pad > PAD_BLOCK) return false;
    for (let i = 1; i < Math.min(pad, AES_BLOCK); i++)
      if (((block[AES_BLOCK - 1 - i] ?? 0) ^ (ciphertext[n - AES_BLOCK - 1 - i] ?? 0)) !== pad) return false;
    return true;
  }

  /** Whether our Token signed these values (§2.5). */
  signs(given: string, timestamp: string, nonce: string, encrypt: string): boolean {
    return verifySignature(this.#token, timestamp, nonce, encrypt, given);
  }

  /** Whole blocks deciphered; unpadded by the caller (Node's unpadding is 16-byte PKCS#7, WeCom pads to 32: §2.2). */
  #decipher(ciphertext: Buffer): Buffer {
    this.#decipherer ??= new KeptCbc(this.#key, this.#iv, false);
    return this.#decipherer.run(ciphertext);
  }

  #verify(given: string, timestamp: string, nonce: string, encrypt: string): void {
    if (!verifySignature(this.#token, timestamp, nonce, encrypt, given)) {
      throw new WecomError('bad_signature', 'msg_signature does not match', { timestamp, nonce });
    }
  }
}

/**
 * Which of several bots sharing one callback URL a callback is for: the one whose Token signed it.
 * Most candidates are ruled out by their key alone (`mayHaveEncrypted`, one AES block each), so that
 * twenty bots cost about one signature check, not twenty; only when no key fits (a callback whose
 * ciphertext is broken) are the signatures tried one by one, so that it is refused by its own bot.
 * `body` is the POST body as parsed (its `encrypt`), or undefined for a GET (its `echostr`).
 */
export function signerOf<T>(
  candidates: readonly T[],
  cryptoOf: (candidate: T) => WecomCrypto,
  query: CallbackQuery,
  body?: unknown,
): T | undefined {
  const given = single(query.msg_signature) ?? single(query.msgsignature) ?? single(query.signature);
  const timestamp = single(query.timestamp);
  const nonce = single(query.nonce);
  if (!given || !timestamp || !nonce) return undefined;
  let encrypt: string | undefined;
  try {
    encrypt = body === undefined ? single(query.echostr) : encryptOf(body);
  } catch {
    return undefined;
  }
  if (!encrypt) return undefined;
  const tail = lastTwoBlocks(encrypt);
  let untried = 0;
  if (tail)
    for (const candidate of candidates) {
      const crypto = cryptoOf(candidate);
      if (!crypto.mayHaveEncryptedTail(tail)) {
        untried++;
        continue;
      }
      if (crypto.signs(given, timestamp, nonce, encrypt)) return candidate;
    }
  if (tail && untried === 0) return undefined;
  for (const candidate of candidates) {
    const crypto = cryptoOf(candidate);
    if (tail && crypto.mayHaveEncryptedTail(tail)) continue; // its signature was checked above
    if (crypto.signs(given, timestamp, nonce, encrypt)) return candidate;
  }
  return undefined;
}

/**
 * The last 32 bytes of a base64 ciphertext whose length is a multiple of 32, decoded from its last
 * 48 characters only (a poll's body is some 600): undefined when it is not such a ciphertext.
 */
function lastTwoBlocks(encrypt: string): Buffer | undefined {
  if (encrypt.length % 4 !== 0 || encrypt.length < 48) return undefined;
  const padding = encrypt.endsWith('==') ? 2 : encrypt.endsWith('=') ? 1 : 0;
  const bytes = (encrypt.length / 4) * 3 - padding;
  if (bytes % PAD_BLOCK !== 0) return undefined;
  const tail = Buffer.from(encrypt.slice(-48), 'base64');
  return tail.length >= 2 * AES_BLOCK ? tail.subarray(tail.length - 2 * AES_BLOCK) : undefined;
}
