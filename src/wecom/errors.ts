// The one error type of the WeCom callback layer: a stable `code` the HTTP edge maps to an answer,
// and context to log. Never carries a secret (Token, EncodingAESKey) or the plaintext of a message.
// Sections cited below are those of docs/protocol/wecom.md.

export type WecomErrorCode =
  /** msg_signature does not match sha1(sort(token, timestamp, nonce, encrypt)) (§2.5). */
  | 'bad_signature'
  /** The ciphertext is not standard base64. */
  | 'bad_base64'
  /** The ciphertext or the decrypted layout has an impossible length (§2.3). */
  | 'bad_length'
  /** The PKCS#7 padding (to 32 bytes) is not valid (§2.2). */
  | 'bad_padding'
  /** The trailing receiveid differs from the configured one (§2.4). */
  | 'bad_receiveid'
  /** The EncodingAESKey does not decode to 32 bytes (§2.1). */
  | 'bad_key'
  /** A required query parameter is missing (§3, §4). */
  | 'missing_params'
  /** The POST body is not an object with a string `encrypt` (§4.1). */
  | 'bad_body'
  /** The decrypted plaintext is not JSON (§6). */
  | 'bad_json'
  /** The decrypted JSON lacks a required field or has one of the wrong type (§6). */
  | 'bad_message'
  /** The callback's `aibotid` is not the configured bot (§4.4). */
  | 'wrong_bot';

/** Every failure of the WeCom layer is one of these. */
export class WecomError extends Error {
  override readonly name = 'WecomError';
  constructor(
    readonly code: WecomErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
