// A message's response_url lets whoever holds it message the user for an hour. Whatever shows a stream
// outside the service (the inspector, an exported file) says the URL was there, never what it is.

export const HIDDEN_RESPONSE_URL = '(set, not shown)';

/** A copy of an event or a stream's context with its `responseUrl`, when set, replaced by a note. */
export function hideResponseUrl<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  if (!(value as { responseUrl?: unknown }).responseUrl) return value;
  return { ...value, responseUrl: HIDDEN_RESPONSE_URL };
}
