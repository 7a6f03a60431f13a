// Maps a failure while answering to the code recorded in `answer.failed` (and from there, through
// machines/texts.ts, to the sentence the user reads).
import { isKnownCode } from '../dify/errors.js';
import type { StoreError } from '../store/port.js';

const difyKinds: Record<string, string> = {
  unreachable: 'dify_unreachable',
  timeout: 'dify_timeout',
  rate_limited: 'dify_rate_limited',
  quota: 'dify_quota',
  misconfigured: 'dify_misconfigured',
  interrupted: 'dify_interrupted',
  aborted: 'stopped',
};

export interface Failure {
  code: string;
  message: string;
}

export function failureOf(error: unknown): Failure {
  const e = error as { name?: string; kind?: string; code?: string; message?: string };
  const message = String(e?.message ?? error).slice(0, 500);
  if (e?.name === 'DifyError') return { code: difyKinds[e.kind ?? ''] ?? 'dify_error', message };
  if (e?.name === 'AuthError') return { code: 'auth_unavailable', message };
  if (e?.name === 'StoreError') return { code: 'store_unavailable', message: (error as StoreError).message };
  return { code: 'internal', message };
}

/** The low-cardinality label for metrics: a code we know, or `other` for whatever a Dify sends. */
export function difyErrorCode(error: unknown): string | undefined {
  const e = error as { name?: string; code?: string };
  if (e?.name !== 'DifyError') return undefined;
  const code = String(e.code ?? 'unknown');
  return isKnownCode(code) ? code : 'other';
}

/** A failure to bring the user's image or file to Dify, as the code the user's text is chosen by. */
export function attachmentFailure(error: unknown): Failure {
  const e = error as { name?: string; code?: string; kind?: string; message?: string };
  const message = String(e?.message ?? error).slice(0, 500);
  if (e?.name === 'MediaError')
    return { code: e.code === 'too_large' ? 'attachment_too_large' : 'attachment_failed', message };
  if (e?.name === 'DifyError' && e.kind === 'failed')
    return { code: e.code === 'file_too_large' ? 'attachment_too_large' : 'attachment_unsupported', message };
  return failureOf(error);
}
