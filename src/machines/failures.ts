// Every way an answer can fail, as one closed set of codes: what `answer.failed` records, what each
// table keyed by a failure (the user's text, the metrics, the inspector's labels) must cover, checked
// by the type system (`satisfies Record<FailureCode, …>`), so that a code nobody mapped is a compile
// error, never a silent default.

export const failureCodes = [
  'dify_unreachable',
  'dify_timeout',
  'dify_rate_limited',
  'dify_quota',
  'dify_misconfigured',
  'dify_interrupted',
  'dify_error',
  'auth_unavailable',
  'stopped',
  'takeover_exhausted',
  'answer_timeout',
  'store_unavailable',
  'attachment_failed',
  'attachment_too_large',
  'attachment_unsupported',
  'form_closed',
  'form_unanswerable',
  'denied',
  'rate_limited',
  'internal',
] as const;

export type FailureCode = (typeof failureCodes)[number];

const known: ReadonlySet<string> = new Set(failureCodes);

export const isFailureCode = (code: string): code is FailureCode => known.has(code);

/** A failure as `answer.failed` records it: its code, and a message for operators (never shown). */
export interface Failure {
  code: FailureCode;
  message: string;
}
