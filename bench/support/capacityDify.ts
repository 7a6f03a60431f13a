// A bench child for bench/capacity.ts: the stamped Dify stand-in (stampedDify.ts) in a process of its
// own, so that the SSE frames of a thousand answers are written by another event loop than the one
// that sends and times WeCom's polls. Every delta carries ` seq@performance.now();` of THIS process;
// `clock` answers that clock, so that the parent can map a stamp onto its own.
// Started by capacity.ts; not for use on its own.
import { performance } from 'node:perf_hooks';
import { announceReady, serveParent } from './childSide.mjs';
import { type StampedDifyOptions, startStampedDify } from './stampedDify.js';

const dify = await startStampedDify({
  deltas: Number(process.env.CAPACITY_DELTAS ?? 200),
  intervalMs: Number(process.env.CAPACITY_INTERVAL_MS ?? 50),
});
serveParent(
  {
    configure: (options) => dify.configure(options as StampedDifyOptions),
    active: () => dify.active(),
    clock: () => performance.now(),
  },
  () => dify.stop(),
);
announceReady({ port: Number(new URL(dify.url).port), url: dify.url });
