// The cost of an answer does not grow with its length: the service's CPU per Dify delta while answers
// stream, for answers that are short (a few hundred bytes when measured) and for answers that are
// already ~17 KB long (their first delta carries the bulk), measured alike on one service node. Each
// piece of an answer is written as itself (its text appended), never the answer again, so the two
// should cost the same per delta. Nobody polls here: a poll's reply is the answer, so polls of a long
// answer cost more by nature; this is the owner's work alone.
// Runs inside `npm run bench`, or alone: node --import tsx bench/length.bench.ts
import { pathToFileURL } from 'node:url';
import type { BenchChild } from './support/children.js';
import { startChild, stopAll, supportScript } from './support/children.js';
import { benchPrefix, dropPrefix, startServiceNode } from './support/nodes.js';
import { now, sleep, verdict } from './support/stats.js';
import { benchClient, openPool, openReply, post, prepare, textMessage } from './support/wecomLoad.js';

const STREAMS = 300;
const DELTAS = 200;
const INTERVAL_MS = 50;
const LONG_PREFIX_BYTES = 17 * 1024;
/** After the answers started (all of them, staggered over a second), before measuring. */
const SETTLE_MS = 2_500;
const WINDOW_MS = 6_000;
/** A long answer may cost this much more per delta, and no more. */
const TARGET_RATIO = 1.15;

interface Phase {
  label: string;
  cpuMicros: number;
  deltas: number;
}

async function phase(
  label: string,
  prefixBytes: number,
  service: BenchChild,
  dify: BenchChild,
  round: number,
): Promise<Phase> {
  await dify.call('configure', { deltas: DELTAS, intervalMs: INTERVAL_MS, prefixBytes });
  const client = benchClient();
  const pool = openPool(service.url, 32);
  try {
    const started = now();
    const sent = Array.from({ length: STREAMS }, async (_, i) => {
      await sleep((i * 1000) / STREAMS);
      const p = prepare(client, textMessage('请回答', `len-${round}-${i}`));
      const { status, body } = await post(pool, p);
      if (status !== 200 || !openReply(body, p.nonce).stream?.id)
        throw new Error(`a message was answered with ${status}: ${body.slice(0, 160)}`);
    });
    await Promise.all(sent);
    await sleep(Math.max(0, started + SETTLE_MS - now()));
    const before = await service.stats();
    const t0 = now();
    await sleep(WINDOW_MS);
    const after = await service.stats();
    const seconds = (now() - t0) / 1000;
    // Every stream is mid-answer through the window: STREAMS × its rate of deltas.
    const deltas = STREAMS * (1000 / INTERVAL_MS) * seconds;
    // Let these answers end before the next phase starts (they end ~10 s after they began).
    const deadline = now() + 60_000;
    while ((await service.call<number>('inflight')) > 0) {
      if (now() > deadline) throw new Error('answers still in flight a minute after they should have ended');
      await sleep(250);
    }
    return { label, cpuMicros: after.user + after.system - before.user - before.system, deltas };
  } finally {
    await pool.close();
  }
}

export async function benchLength(): Promise<string> {
  const prefix = benchPrefix('length');
  let dify: BenchChild | undefined;
  let service: BenchChild | undefined;
  try {
    dify = await startChild('length-dify', supportScript('capacityDify.ts'), {
      env: { CAPACITY_DELTAS: String(DELTAS), CAPACITY_INTERVAL_MS: String(INTERVAL_MS) },
    });
    service = await startServiceNode({ prefix, name: 'length-node', difyUrl: dify.url });
    // Short and long in turn, twice, so that drift on a busy machine hits both alike.
    const phases: Phase[] = [];
    for (let round = 0; round < 2; round++) {
      phases.push(await phase('short', 0, service, dify, 2 * round));
      phases.push(await phase('long', LONG_PREFIX_BYTES, service, dify, 2 * round + 1));
    }
    const per = (label: string) => {
      const mine = phases.filter((p) => p.label === label);
      return mine.reduce((s, p) => s + p.cpuMicros, 0) / mine.reduce((s, p) => s + p.deltas, 0);
    };
    const short = per('short');
    const long = per('long');
    const ratio = long / short;
    return [
      `cost per delta by answer length: one service node, ${STREAMS} answers streaming at ${1000 / INTERVAL_MS} ` +
        `deltas/s, nobody polling; answers of a few hundred bytes vs answers already ~${LONG_PREFIX_BYTES / 1024} KB long ` +
        `(2 rounds × ${WINDOW_MS / 1000} s each)`,
      `  short answers: ${short.toFixed(1)} µs of the service's CPU per delta`,
      `  long answers:  ${long.toFixed(1)} µs per delta`,
      `  long / short = ${ratio.toFixed(2)}; target ≤ ${TARGET_RATIO}: ${verdict(ratio <= TARGET_RATIO)}`,
    ].join('\n');
  } finally {
    await stopAll([service, dify]);
    await dropPrefix(prefix);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(`${await benchLength()}\n`);
}
