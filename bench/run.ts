// `npm run bench`: every performance figure the project sets a target for, with the target and whether
// it was met, in one bounded run on this machine (loopback only; real Redis at 127.0.0.1:6379 and MariaDB
// at 127.0.0.1:3306, each bench under its own random key prefix or database, removed afterwards).
// A missed target is reported, not fatal: the exit code is non-zero only when a bench crashed.
// BENCH_CPU_PROF_DIR=<dir> writes a V8 CPU profile of every server child process there, and
// BENCH_ALLOC_PROF_DIR=<dir> a sampled allocation profile of every service node (garbage included);
// BENCH_ONLY=poll,auth runs only the benches whose names contain one of those words. The poll bench
// gives the server it measures a CPU of its own (BENCH_PIN=0 leaves every process unpinned).
// Service nodes (and the poll bench's floor) run with the image's heap flags; BENCH_NODE_FLAGS="…"
// gives them others, e.g. BENCH_NODE_FLAGS="--max-old-space-size=512" to see V8's own heap growth.
import { cpus, loadavg, totalmem } from 'node:os';
import { Redis } from 'ioredis';
import { benchAuth } from './auth.bench.js';
import { benchBots } from './bots.bench.js';
import { benchCapacity } from './capacity.js';
import { benchDeltaVisible } from './deltaVisible.bench.js';
import { benchFirstReply } from './firstReply.bench.js';
import { benchFrames } from './frames.bench.js';
import { benchLength } from './length.bench.js';
import { benchPoll } from './poll.bench.js';
import { benchStore } from './store.bench.js';
import { redisUrl } from './support/nodes.js';

const only = process.env.BENCH_ONLY?.split(',').filter(Boolean);
const benches: Array<[name: string, run: () => Promise<string>]> = (
  [
    ['store', benchStore],
    ['auth', benchAuth],
    ['poll throughput', benchPoll],
    ['many bots', benchBots],
    ['first reply', benchFirstReply],
    ['delta to visible', benchDeltaVisible],
    ['long connection frames', benchFrames],
    ['length', benchLength],
    ['capacity', benchCapacity],
  ] as Array<[name: string, run: () => Promise<string>]>
).filter(([name]) => !only || only.some((word) => name.includes(word)));

async function redisVersion(): Promise<string> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    return /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
  } catch (error) {
    return `unreachable (${(error as Error).message})`;
  } finally {
    redis.disconnect();
  }
}

const cores = cpus();
/** The machine may be shared: the load average tells a reader whether other work ran beside a bench. */
const load = (): string =>
  `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;
const started = performance.now();
process.stdout.write(
  [
    `wecom-dify bench, ${new Date().toISOString()}`,
    `machine: ${cores.length} CPUs (${cores[0]?.model.trim() ?? 'unknown'}), ` +
      `${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform} ${process.arch}; ` +
      `node ${process.version}; redis ${await redisVersion()}; ${load()}`,
    '',
  ].join('\n') + '\n',
);

const crashed: string[] = [];
for (const [name, run] of benches) {
  const t0 = performance.now();
  try {
    const report = await run();
    const took = ((performance.now() - t0) / 1000).toFixed(1);
    process.stdout.write(`${report}\n  (${name}: ${took} s; after it, ${load()})\n\n`);
  } catch (error) {
    crashed.push(name);
    process.stdout.write(`${name}: CRASHED\n${(error as Error).stack ?? String(error)}\n\n`);
  }
}
process.stdout.write(
  `total ${((performance.now() - started) / 1000).toFixed(1)} s` +
    (crashed.length ? `; crashed: ${crashed.join(', ')}` : '; every bench ran') +
    '\n',
);
// Benches close what they open; exiting here also ends any child a crash left behind (children.ts).
process.exit(crashed.length > 0 ? 1 : 0);
