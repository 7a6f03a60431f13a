// The child's half of the bench's child processes (see children.ts): announce the listening port to
// the parent over IPC, answer its named calls, stop cleanly when asked, and never outlive it. Plain
// JavaScript (typed by childSide.d.mts), so that a child can run without the TypeScript loader: the
// service node runs the build, as in production, and its memory is the service's own.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

/** @param {import('./childSide.d.mts').ChildMessage} message */
const send = (message) => {
  process.send?.(message);
};

/**
 * Serve the parent: `handlers` by name (plus `stats`), `stop` on request or when the parent goes
 * away. The process exits after `stop`, whatever it left open.
 * @type {typeof import('./childSide.d.mts').serveParent}
 */
export function serveParent(handlers, stop) {
  if (!process.send) throw new Error('a bench child must be started by the bench (it needs an IPC channel)');
  /** @type {Record<string, import('./childSide.d.mts').Handler>} */
  const all = {
    stats: () => {
      const cpu = process.cpuUsage();
      const elu = performance.eventLoopUtilization();
      return {
        user: cpu.user,
        system: cpu.system,
        elu: { idle: elu.idle, active: elu.active },
        rss: process.memoryUsage.rss(),
      };
    },
    ...handlers,
  };
  let stopping = false;
  const exit = () => {
    if (stopping) return;
    stopping = true;
    void Promise.race([stop(), new Promise((resolve) => setTimeout(resolve, 8_000).unref())])
      .catch((error) => {
        process.stderr.write(`stop failed: ${String(error)}\n`);
      })
      .finally(() => process.exit(0));
  };
  process.on('message', (/** @type {import('./childSide.d.mts').ParentMessage} */ message) => {
    if (message.type === 'stop') return exit();
    const handler = all[message.name];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`no handler "${message.name}"`);
        return handler(message.arg);
      })
      .then(
        (value) => send({ type: 'result', id: message.id, ok: true, value }),
        (error) => send({ type: 'result', id: message.id, ok: false, error: String(error) }),
      );
  });
  process.on('disconnect', exit);
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
}

/** @type {typeof import('./childSide.d.mts').announceReady} */
export function announceReady(info) {
  send({ type: 'ready', info });
}

/**
 * With a folder named, sample what the process allocates (garbage included: what the collector must
 * clear) until the returned function is called, which writes `<dir>/<name>.heapprofile` (open it in
 * Chrome DevTools, Memory tab). Without one, nothing.
 * @type {typeof import('./childSide.d.mts').sampleAllocations}
 */
export async function sampleAllocations(dir, name) {
  if (!dir) return undefined;
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.enable');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 32 * 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return async () => {
    const { profile } = await session.post('HeapProfiler.stopSampling');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.heapprofile`), JSON.stringify(profile));
    session.disconnect();
  };
}
