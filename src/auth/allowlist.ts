// AUTH_MODE=allowlist: only users present and enabled in the directory are let in; no token.
// Every message asks the directory (one primary-key read), so a disable takes effect at once.
import type { Directory } from './directory.js';
import type { Authenticator, AuthOutcome, AuthRequest } from './types.js';
import { grantedUser, judge } from './verdict.js';

export interface AllowlistOptions {
  directory: Directory;
  /** AUTH_DENIED_TEXT: how to get access. */
  deniedText?: string;
}

export class AllowlistAuthenticator implements Authenticator {
  readonly #options: AllowlistOptions;

  constructor(options: AllowlistOptions) {
    this.#options = options;
  }

  async authenticate(req: AuthRequest): Promise<AuthOutcome> {
    const verdict = judge(await this.#options.directory.findUser(req.userid), this.#options.deniedText);
    if (!verdict.ok) return verdict.outcome;
    return { granted: true, user: grantedUser(verdict.entry) };
  }

  ping(): Promise<void> {
    return this.#options.directory.ping();
  }

  async close(): Promise<void> {
    await this.#options.directory.close();
  }
}
