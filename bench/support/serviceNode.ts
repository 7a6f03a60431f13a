// A bench child: the real service (startService, Redis store, the real Koa app and runner), one node,
// with its settings from the environment the bench gives it and its keys under BENCH_PREFIX.
// Started by nodes.ts; not for use on its own.
import { parseConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startService } from '../../src/service.js';
import { announceReady, serveParent } from './childSide.js';

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
serveParent({ inflight: () => service.runner.inflight }, () => service.shutdown());
announceReady({ port: service.port });
