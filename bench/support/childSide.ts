// The child's half of the bench's child processes (see children.ts): announce the listening port to
// the parent over IPC, answer its named calls, stop cleanly when asked, and never outlive it.
import { performance } from 'node:perf_hooks';

export type Handler = (arg: unknown) => unknown;

export interface ReadyInfo {
  port: number;
  /** A base URL when it is not `http://127.0.0.1:<port>` (the fake Dify's ends in /v1). */
  url?: string;
}

/** What the parent may send. */
export type ParentMessage = { type: 'stop' } | { type: 'call'; id: number; name: string; arg?: unknown };

/** What the child answers. */
export type ChildMessage =
  | { type: 'ready'; info: ReadyInfo }
  | { type: 'result'; id: number; ok: true; value: unknown }
  | { type: 'result'; id: number; ok: false; error: string };

/** The process's own cost so far, for CPU per request: `user`/`system` µs, event-loop utilization. */
export interface ProcessStats {
  user: number;
  system: number;
  elu: { idle: number; active: number };
  rss: number;
}

const send = (message: ChildMessage): void => {
  process.send?.(message);
};

/**
 * Serve the parent: `handlers` by name (plus `stats`), `stop` on request or when the parent goes
 * away. The process exits after `stop`, whatever it left open.
 */
export function serveParent(handlers: Record<string, Handler>, stop: () => Promise<void>): void {
  if (!process.send) throw new Error('a bench child must be started by the bench (it needs an IPC channel)');
  const all: Record<string, Handler> = {
    stats: (): ProcessStats => {
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
  const exit = (): void => {
    if (stopping) return;
    stopping = true;
    void Promise.race([stop(), new Promise<void>((resolve) => setTimeout(resolve, 8_000).unref())])
      .catch((error: unknown) => {
        process.stderr.write(`stop failed: ${String(error)}\n`);
      })
      .finally(() => process.exit(0));
  };
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'stop') return exit();
    const handler = all[message.name];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`no handler "${message.name}"`);
        return handler(message.arg);
      })
      .then(
        (value) => send({ type: 'result', id: message.id, ok: true, value }),
        (error: unknown) => send({ type: 'result', id: message.id, ok: false, error: String(error) }),
      );
  });
  process.on('disconnect', exit);
  process.on('SIGTERM', exit);
  process.on('SIGINT', exit);
}

export function announceReady(info: ReadyInfo): void {
  send({ type: 'ready', info });
}
