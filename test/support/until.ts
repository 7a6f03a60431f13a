// Waiting for a condition where expect.poll cannot run (in hooks: it needs a test).
import { setTimeout as sleep } from 'node:timers/promises';

/** Resolves once `check` holds, asking every `everyMs`; rejects naming `what` after `timeoutMs`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  { timeoutMs = 5_000, everyMs = 20 } = {},
): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check()); ) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(everyMs);
  }
}
