// The callback signature (docs/protocol/wecom.md §2.5): SHA-1 of the four values sorted as
// strings and joined with no separator, compared in constant time.
import { createHash, timingSafeEqual } from 'node:crypto';

export function signature(
  token: string,
  timestamp: string | number,
  nonce: string | number,
  encrypt: string,
): string {
  // Default sort compares UTF-16 code units, which is what every official library does.
  const joined = [token, String(timestamp), String(nonce), encrypt].sort().join('');
  return createHash('sha1').update(joined, 'utf8').digest('hex');
}

/** Whether `given` is the signature of the values. Case-sensitive lowercase hex, as WeCom sends. */
export function verifySignature(
  token: string,
  timestamp: string | number,
  nonce: string | number,
  encrypt: string,
  given: string,
): boolean {
  return constantTimeEqual(signature(token, timestamp, nonce, encrypt), given);
}

/** Compares without leaking where the strings differ; unequal lengths are simply unequal. */
function constantTimeEqual(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given, 'utf8');
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}
