// Small numeric helpers shared by the benches: quantiles of latency samples, the one-line summary each
// report prints (p50/p99/max and the count), and the "met"/"MISSED" verdict against a target.

export interface Summary {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** The q-quantile of ascending samples (nearest rank, never interpolated). */
function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted.at(-1) ?? Number.NaN,
  };
}

/** `p50 1.23 ms, p99 4.56 ms, max 7.89 ms (n=300)` */
export function formatMs(s: Summary, digits = 2): string {
  const ms = (v: number) => `${v.toFixed(digits)} ms`;
  return `p50 ${ms(s.p50)}, p99 ${ms(s.p99)}, max ${ms(s.max)} (n=${s.count})`;
}

export const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Milliseconds since an arbitrary origin, sub-millisecond, monotonic. */
export const now = (): number => performance.now();
