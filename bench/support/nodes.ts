// The processes the end-to-end benches start: service nodes (the real service, Redis store, keys
// under the bench's own prefix), the floor server of the poll bench, and the fake Dify. Shared
// settings live here: the official sample bot's Token and key, loopback only, answers never drained
// (a bench stops its nodes at once; the prefix is dropped afterwards anyway).
import { randomBytes } from 'node:crypto';
import { dropPrefix, redisUrl, testBot } from '../../test/support/service.js';
import { type BenchChild, startChild, supportScript } from './children.js';

export { redisUrl, testBot };

/** A fresh key prefix for one bench run; dropped with `dropPrefix` when it ends. */
export const benchPrefix = (name: string): string => `wdbench:${name}:${randomBytes(4).toString('hex')}:`;

export { dropPrefix };

/** Where service children write CPU profiles: set BENCH_CPU_PROF_DIR to get them. */
const cpuProfDir = (): string | undefined => process.env.BENCH_CPU_PROF_DIR || undefined;

export interface ServiceNodeOptions {
  prefix: string;
  name: string;
  difyUrl?: string;
  /** Extra settings, e.g. LOG_LEVEL. */
  env?: Record<string, string>;
}

/**
 * The heap settings the image gives node (Dockerfile): without a limit, on a host with plenty of
 * memory, V8 lets the heap swell to hundreds of MiB before it collects. A floor runs with the same, so
 * that a ratio compares code, not garbage collectors. BENCH_NODE_FLAGS replaces them, to try others.
 */
export const heapFlags = (): string[] =>
  process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [
    '--max-old-space-size=512',
    '--max-semi-space-size=32',
    '--heap-growing-percent=100',
  ];

/** A node of the service as production runs it: the build (`npm run build` first), plain `node`. */
export function startServiceNode(o: ServiceNodeOptions): Promise<BenchChild> {
  return startChild(o.name, supportScript('serviceNode.mjs'), {
    loader: false,
    nodeFlags: heapFlags(),
    cpuProfDir: cpuProfDir(),
    env: {
      PORT: '0',
      HOST: '127.0.0.1',
      NODE_ID: o.name,
      WECOM_TOKEN: testBot.token,
      WECOM_ENCODING_AES_KEY: testBot.encodingAESKey,
      DIFY_API_KEY: 'app-bench',
      DIFY_API_URL: o.difyUrl ?? 'http://127.0.0.1:9/v1',
      REDIS_URL: redisUrl,
      AUTH_MODE: 'none',
      DRAIN_SECONDS: '0',
      // The production default: one JSON line per callback, written to /dev/null.
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info',
      BENCH_PREFIX: o.prefix,
      ...(process.env.BENCH_ALLOC_PROF_DIR ? { BENCH_ALLOC_PROF_DIR: process.env.BENCH_ALLOC_PROF_DIR } : {}),
      ...o.env,
    },
  });
}

export function startFloorNode(o: { prefix: string }): Promise<BenchChild> {
  return startChild('floor', supportScript('floorNode.ts'), {
    nodeFlags: heapFlags(),
    cpuProfDir: cpuProfDir(),
    env: {
      WECOM_TOKEN: testBot.token,
      WECOM_ENCODING_AES_KEY: testBot.encodingAESKey,
      REDIS_URL: redisUrl,
      BENCH_PREFIX: o.prefix,
    },
  });
}

export function startDifyNode(): Promise<BenchChild> {
  return startChild('fake-dify', supportScript('difyNode.ts'));
}
