// What bench/capacity.ts reads besides its own timings: the service's GET /metrics (as Prometheus
// would, so the figures are the ones an operator sees: heap, resident memory, event-loop lag, the
// server-side poll histogram), the machine's CPU from os.cpus(), and Redis's own CPU and memory.
import { cpus } from 'node:os';
import type { Redis } from 'ioredis';
import { request } from 'undici';

/** One scrape: `name` or `name{labels}` → value, exactly as the exposition writes them. */
export type Scrape = Map<string, number>;

export async function scrape(baseUrl: string): Promise<Scrape> {
  const res = await request(`${baseUrl}/metrics`, { headersTimeout: 10_000, bodyTimeout: 10_000 });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}`);
  const values: Scrape = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    const value = Number(line.slice(space + 1));
    if (Number.isFinite(value) || line.endsWith('Inf')) values.set(line.slice(0, space), value);
  }
  return values;
}

/**
 * The q-quantile of what a histogram observed between two scrapes, as the upper bound of the bucket
 * it falls in (seconds); undefined when nothing was observed.
 */
export function bucketQuantile(before: Scrape, after: Scrape, name: string, q: number): number | undefined {
  const buckets: Array<{ le: number; count: number }> = [];
  for (const [key, value] of after) {
    const m = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\}$`).exec(key);
    if (!m?.[1]) continue;
    const le = m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]);
    buckets.push({ le, count: value - (before.get(key) ?? 0) });
  }
  buckets.sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.count ?? 0;
  if (total <= 0) return undefined;
  return buckets.find((b) => b.count >= q * total)?.le;
}

/** The machine's CPU time so far, all cores, ms: busy and total. */
export interface MachineCpu {
  busy: number;
  total: number;
  cores: number;
}

export function machineCpu(): MachineCpu {
  let busy = 0;
  let total = 0;
  const all = cpus();
  for (const { times } of all) {
    const sum = times.user + times.nice + times.sys + times.idle + times.irq;
    total += sum;
    busy += sum - times.idle;
  }
  return { busy, total, cores: all.length };
}

/** Share of the whole machine (every core) that was busy between two readings, 0..1. */
export const machineBusy = (a: MachineCpu, b: MachineCpu): number =>
  b.total > a.total ? (b.busy - a.busy) / (b.total - a.total) : 0;

/** Redis's own CPU so far (user + system, seconds) and its memory, from INFO. */
export async function redisGauges(redis: Redis): Promise<{ cpuSeconds: number; usedMemory: number }> {
  const info = await redis.info();
  const field = (name: string): number => Number(new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1] ?? 0);
  return { cpuSeconds: field('used_cpu_user') + field('used_cpu_sys'), usedMemory: field('used_memory') };
}

/** The bytes Redis holds for these keys (MEMORY USAGE, every nested value counted); 0 for a missing key. */
export async function memoryOf(redis: Redis, keys: readonly string[]): Promise<number> {
  let bytes = 0;
  for (const key of keys) {
    const used = (await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) as number | null;
    bytes += used ?? 0;
  }
  return bytes;
}
