// The one place that turns a directory entry (or its absence) into a verdict, shared by the
// allowlist and directory modes so both let in, name and deny users the same way.
import type { GrantedUser } from '../machines/events.js';
import { defaultTexts } from '../machines/texts.js';
import type { DirectoryUser } from './directory.js';
import type { AuthOutcome } from './types.js';

export type DeniedOutcome = Extract<AuthOutcome, { granted: false }>;

export type Verdict<T extends DirectoryUser> = { ok: true; entry: T } | { ok: false; outcome: DeniedOutcome };

export function judge<T extends DirectoryUser>(
  entry: T | undefined,
  deniedText: string | undefined,
): Verdict<T> {
  const text = deniedText ?? defaultTexts.denied;
  if (!entry) return { ok: false, outcome: { granted: false, reason: 'not_in_directory', text } };
  if (!entry.enabled) return { ok: false, outcome: { granted: false, reason: 'disabled', text } };
  return { ok: true, entry };
}

/** What `auth.granted` carries: the directory's userid as the stable Dify id, and nothing secret. */
export function grantedUser(fields: {
  userid: string;
  account?: string;
  name?: string;
  department?: string;
}): GrantedUser {
  return {
    id: fields.userid,
    ...(fields.name ? { name: fields.name } : {}),
    ...(fields.department ? { department: fields.department } : {}),
    ...(fields.account ? { account: fields.account } : {}),
  };
}
