// Who Dify is told is asking: its `user`, the `inputs` that carry the user's fields (DIFY_INPUTS),
// and in DIFY_BEARER=user_token mode the bearer to call Dify with. Pure: the runner calls it with
// the outcome of authentication.
import { AuthError, type GrantedOutcome } from './types.js';

export type InputSource = 'userid' | 'id' | 'name' | 'department' | 'token';

export interface DifyIdentityConfig {
  /** Dify input variable name → the field of the user it carries (DIFY_INPUTS). */
  inputs: Record<string, InputSource>;
  /** `app_key`: the app's key as bearer; `user_token`: the user's token (DIFY_BEARER). */
  bearer: 'app_key' | 'user_token';
}

export interface DifyIdentity {
  /** Dify's `user`: the directory's stable id (the WeCom userid in mode none). */
  user: string;
  inputs: Record<string, string>;
  /** Only in user_token mode: the bearer to use instead of the app key. Never log it. */
  bearer?: string;
}

/**
 * @param userid the WeCom userid the message came from.
 * A field the user does not have becomes '' so the inputs always have the configured shape.
 * Throws AuthError('token_service_bad_response') in user_token mode when there is no token.
 */
export function difyIdentity(
  outcome: GrantedOutcome,
  config: DifyIdentityConfig,
  userid: string,
): DifyIdentity {
  const { user, token } = outcome;
  const field = (source: InputSource): string => {
    switch (source) {
      case 'userid':
        return userid;
      case 'id':
        return user.id;
      case 'name':
        return user.name ?? '';
      case 'department':
        return user.department ?? '';
      case 'token':
        return token ?? '';
    }
  };
  const inputs = Object.fromEntries(
    Object.entries(config.inputs).map(([name, source]) => [name, field(source)]),
  );
  if (config.bearer === 'user_token') {
    if (!token)
      throw new AuthError('token_service_bad_response', 'DIFY_BEARER=user_token but the user has no token');
    return { user: user.id, inputs, bearer: token };
  }
  return { user: user.id, inputs };
}
