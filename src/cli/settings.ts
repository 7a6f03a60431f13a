// The few settings a tool needs, read with config.parseSettings, and the Redis store the tools read:
// a problem is reported one line per setting, as `serve` does, with exit code 2.
import { parseSettings, storeSettings } from '../config.js';
import { type OpenedStore, openStore } from '../store/index.js';
import { StoreError } from '../store/port.js';
import type { Io } from './io.js';

/** Prints each problem on its own line; returns the exit code for it. */
export function reportProblems(io: Io, problems: readonly string[], hint?: string): number {
  for (const problem of problems) io.err(problem);
  if (hint) io.err(hint);
  return 2;
}

/**
 * The store a running service writes to, for `streams`, `replay` and `export`. Redis only: the
 * in-memory store of a service lives inside its process, and no other process can read it.
 */
function openSharedStore(
  io: Io,
  command: string,
  prefixFlag: string | undefined,
): (OpenedStore & { prefix: string }) | number {
  const parsed = parseSettings(io.env, [
    'REDIS_URL',
    'REDIS_CLUSTER_NODES',
    'REDIS_KEY_PREFIX',
    'STREAM_TTL_SECONDS',
  ]);
  if (!parsed.ok) return reportProblems(io, parsed.problems);
  const s = parsed.settings;
  if (!s.REDIS_URL && !s.REDIS_CLUSTER_NODES) {
    return reportProblems(io, [
      `REDIS_URL: required: \`wecom-dify ${command}\` reads the streams in Redis (set REDIS_URL or REDIS_CLUSTER_NODES as the service has them); a service without Redis keeps its streams in its own memory, which no other process can read${command === 'replay' ? ' (`replay <streamId> --url <service>` reads them through its inspector)' : ''}`,
    ]);
  }
  // --prefix wins over REDIS_KEY_PREFIX: a tool may look at another deployment's keys.
  const prefix = prefixFlag ?? s.REDIS_KEY_PREFIX;
  // A lost connection surfaces as a StoreError from the first command; nothing to log meanwhile.
  const opened = openStore(storeSettings(s), {
    prefix,
    onError: () => undefined,
    onIndexError: () => undefined,
  });
  return { ...opened, prefix };
}

/**
 * Runs `use` with the shared store (openSharedStore), closes it after, and says a store failure as
 * `command: …`, exit code 1: what `streams`, `replay` and `export` all do around their reading.
 */
export async function withSharedStore(
  io: Io,
  command: string,
  prefixFlag: string | undefined,
  use: (opened: OpenedStore & { prefix: string }) => Promise<number>,
): Promise<number> {
  const opened = openSharedStore(io, command, prefixFlag);
  if (typeof opened === 'number') return opened;
  try {
    return await use(opened);
  } catch (error) {
    if (error instanceof StoreError) {
      io.err(`${command}: ${error.message}`);
      return 1;
    }
    throw error;
  } finally {
    await opened.store.close();
  }
}

/** Stream ids are url-safe; a brace would name another key slot (store/keys.ts), so it is refused here. */
export const isStreamId = (id: string): boolean => /^[^\s{}]{1,128}$/.test(id);
