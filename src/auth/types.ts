// The port the runner calls to decide who may ask: one `Authenticator` interface, an adapter per
// AUTH_MODE (none, allowlist, directory). Denials are values; "try again later" is a thrown AuthError.
import type { GrantedUser } from '../machines/events.js';

export interface AuthRequest {
  /** The WeCom userid of the sender (`from.userid` of the callback). */
  userid: string;
  /** The bot (`aibotid`) the message came to. */
  bot: string;
}

export type DeniedReason = 'not_in_directory' | 'disabled';

export type AuthOutcome =
  | {
      granted: true;
      /** What `auth.granted` carries: `id` is the stable Dify user id. Never a secret. */
      user: GrantedUser;
      /** The user's token from the token service (directory mode): for Dify inputs or bearer, never for events or logs. */
      token?: string;
    }
  | { granted: false; reason: DeniedReason /** user-facing, from AUTH_DENIED_TEXT */; text: string };

export type GrantedOutcome = Extract<AuthOutcome, { granted: true }>;

export interface Authenticator {
  authenticate(req: AuthRequest): Promise<AuthOutcome>;
  /**
   * The outcome when it is known without asking anyone (AUTH_MODE=none lets everyone in): the first
   * reply then says the bot is thinking, not that it is checking who asks.
   */
  immediate?(req: AuthRequest): GrantedOutcome | undefined;
  /**
   * Dify refused the user's token (401): it is dropped, so that the user's next message gets a new one
   * rather than fail the same way until the token would have expired. Only where there are tokens.
   */
  tokenRejected?(userid: string, token: string): Promise<void>;
  /** Throws an AuthError when a dependency (the directory) is unreachable; for /readyz. */
  ping?(): Promise<void>;
  close(): Promise<void>;
}

export type AuthErrorCode =
  | 'token_service_unavailable'
  | 'token_service_bad_response'
  | 'directory_unavailable'
  | 'cache_unavailable';

/**
 * A transient failure: the user is told to try again later, nothing is cached as granted.
 * `message` is for logs and never contains a token or secret.
 */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  readonly code: AuthErrorCode;
  /** HTTP status of the token service's answer, when there was one. */
  readonly status?: number;

  constructor(code: AuthErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options?.status !== undefined) this.status = options.status;
  }
}

export const isAuthError = (e: unknown): e is AuthError => e instanceof AuthError;

/** The logging the auth adapters need; a pino Logger fits. */
export interface AuthLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentAuthLogger: AuthLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
