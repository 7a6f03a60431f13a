// Maps what failed while answering to the failure code `answer.failed` records (and from there, in
// machines/texts.ts, to the sentence the user reads). One table per kind of failure, each checked to
// cover every kind against the one set of failure codes.
import type { Failure, FailureCode } from '../machines/index.js';
import { type AnswerFailureKind, isAnswerFailure } from './ports.js';

const byAnswerKind = {
  unreachable: 'dify_unreachable',
  timeout: 'dify_timeout',
  rate_limited: 'dify_rate_limited',
  quota: 'dify_quota',
  misconfigured: 'dify_misconfigured',
  interrupted: 'dify_interrupted',
  aborted: 'stopped',
  not_found: 'dify_error',
  server: 'dify_error',
  failed: 'dify_error',
} as const satisfies Record<AnswerFailureKind, FailureCode>;

/** A form's answer refused: it expired or was answered already (forms are one-shot), or needs typing. */
const byFormCode: Record<string, FailureCode> = {
  human_input_form_expired: 'form_closed',
  human_input_form_submitted: 'form_closed',
  invalid_form_data: 'form_unanswerable',
};

const messageOf = (error: unknown): string =>
  String((error as { message?: unknown })?.message ?? error).slice(0, 500);

/** The failure an error stands for: the answer source's by its kind, the authenticator's, the store's. */
export function failureOf(error: unknown): Failure {
  const message = messageOf(error);
  if (isAnswerFailure(error))
    return {
      code: Object.hasOwn(byFormCode, error.code) ? byFormCode[error.code]! : byAnswerKind[error.kind],
      message,
    };
  const name = (error as { name?: unknown })?.name;
  if (name === 'AuthError') return { code: 'auth_unavailable', message };
  if (name === 'StoreError') return { code: 'store_unavailable', message };
  return { code: 'internal', message };
}

/** The low-cardinality label for metrics: a code the source knows, or `other`. */
export function answerErrorLabel(error: unknown): string | undefined {
  if (!isAnswerFailure(error)) return undefined;
  return error.known ? error.code : 'other';
}

/**
 * A failure to bring the user's image or file to Dify: too large (a MediaSource says so with the code
 * `too_large`; the source with `file_too_large`), not taken by the app, or not fetched at all.
 */
export function attachmentFailure(error: unknown): Failure {
  const message = messageOf(error);
  const e = error as { name?: string; code?: string };
  if (e?.name === 'MediaError')
    return { code: e.code === 'too_large' ? 'attachment_too_large' : 'attachment_failed', message };
  if (isAnswerFailure(error) && error.kind === 'failed')
    return {
      code: error.code === 'file_too_large' ? 'attachment_too_large' : 'attachment_unsupported',
      message,
    };
  return failureOf(error);
}
