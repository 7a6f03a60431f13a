// AUTH_MODE=none: everyone is let in, and Dify sees the WeCom userid as its user.
import type { Authenticator, AuthOutcome, AuthRequest, GrantedOutcome } from './types.js';

export class NoneAuthenticator implements Authenticator {
  async authenticate(req: AuthRequest): Promise<AuthOutcome> {
    return this.immediate(req);
  }

  immediate(req: AuthRequest): GrantedOutcome {
    return { granted: true, user: { id: req.userid } };
  }

  async close(): Promise<void> {}
}
