// A bench child: the real service as production runs it (the build in dist/, plain `node`, no
// TypeScript loader), one node, with its settings from the environment the bench gives it and its
// keys under BENCH_PREFIX. Started by nodes.ts (after `npm run build`); not for use on its own.
import { parseConfig } from '../../dist/config.js';
import { createLogger } from '../../dist/log.js';
import { startService } from '../../dist/service.js';
import { announceReady, sampleAllocations, serveParent } from './childSide.mjs';

const parsed = parseConfig(process.env);
if (!parsed.ok) {
  process.stderr.write(`${parsed.problems.join('\n')}\n`);
  process.exit(2);
}
const { config } = parsed;
const service = await startService({
  config,
  logger: createLogger(config.logLevel),
  keyPrefix: process.env.BENCH_PREFIX,
});
const allocations = await sampleAllocations(process.env.BENCH_ALLOC_PROF_DIR, config.nodeId);
serveParent({ inflight: () => service.runner.inflight }, async () => {
  await allocations?.();
  await service.shutdown();
});
announceReady({ port: service.port });
