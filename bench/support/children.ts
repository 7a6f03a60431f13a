// The parent's half of the bench's child processes: each server under test runs in a process of its
// own (`node --import tsx <script>`, or plain `node` for the service, which runs the build), so that what is measured is one server's event loop, not the
// load generator's. A child says when it listens, answers named calls, and is always stopped: by
// `stop()`, and as a last resort by a SIGKILL when the bench process exits.
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tsxLoader } from '../../test/support/cli.js';
import type { ChildMessage, ParentMessage, ProcessStats, ReadyInfo } from './childSide.mjs';

export type { ProcessStats };

export interface BenchChild {
  name: string;
  pid: number;
  port: number;
  /** `http://127.0.0.1:<port>`, or the URL the child announced. */
  url: string;
  call<T>(name: string, arg?: unknown): Promise<T>;
  stats(): Promise<ProcessStats>;
  /** Asks the child to stop, and kills it if it has not exited within `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartChildOptions {
  env?: Record<string, string>;
  /** Where to write a V8 CPU profile of the child (`--cpu-prof`); none when unset. */
  cpuProfDir?: string | undefined;
  /** Run the script with the TypeScript loader (tsx). Default true; a plain `.mjs` runs without. */
  loader?: boolean;
  /** More flags for node (`--max-old-space-size=512`). */
  nodeFlags?: string[];
  readyTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** The scripts in bench/support, by file name. */
export const supportScript = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

export async function startChild(
  name: string,
  script: string,
  options: StartChildOptions = {},
): Promise<BenchChild> {
  const execArgv = [
    ...(options.loader === false ? [] : ['--import', tsxLoader]),
    ...(options.nodeFlags ?? []),
  ];
  // One folder per child: the tsx loader's worker thread writes a profile of its own beside the main one.
  if (options.cpuProfDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${join(options.cpuProfDir, name)}`);
  // stdout (the service's JSON log lines) goes to /dev/null: written, as in production, never read.
  const child = fork(script, [], {
    execArgv,
    env: { PATH: process.env.PATH ?? '', ...options.env },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  live.add(child);
  const stderr: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr.push(chunk);
    if (stderr.length > 50) stderr.shift();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then(() => live.delete(child));

  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (message: ChildMessage) => {
    if (message.type !== 'result') return;
    const waiting = pending.get(message.id);
    pending.delete(message.id);
    if (message.ok) waiting?.resolve(message.value);
    else waiting?.reject(new Error(`${name}: ${message.error}`));
  });
  void exited.then((code) => {
    for (const waiting of pending.values()) waiting.reject(new Error(`${name} exited (${code})`));
    pending.clear();
  });

  const info = await new Promise<ReadyInfo>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start in time: ${stderr.join('').slice(-2000)}`)),
      options.readyTimeoutMs ?? 20_000,
    );
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') {
        clearTimeout(timer);
        resolve(message.info);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before it listened: ${stderr.join('').slice(-2000)}`));
    });
  }).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });

  const call = <T>(callName: string, arg?: unknown): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: (v) => resolve(v as T), reject });
      child.send({ type: 'call', id, name: callName, arg } satisfies ParentMessage);
    });

  let stopping: Promise<void> | undefined;
  return {
    name,
    pid: child.pid ?? 0,
    port: info.port,
    url: info.url ?? `http://127.0.0.1:${info.port}`,
    call,
    stats: () => call<ProcessStats>('stats'),
    stop(graceMs = 12_000) {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        if (child.connected) child.send({ type: 'stop' } satisfies ParentMessage);
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}

/** Stops every child given, whichever fail. */
export async function stopAll(children: Array<BenchChild | undefined>): Promise<void> {
  await Promise.allSettled(children.map((c) => c?.stop()));
}

/** How busy a child was between two `stats()`: CPU as a share of one core, and its event loop's utilization. */
export function busyBetween(before: ProcessStats, after: ProcessStats, seconds: number): string {
  const cpu = (after.user + after.system - before.user - before.system) / 1e6 / seconds;
  const active = after.elu.active - before.elu.active;
  const idle = after.elu.idle - before.elu.idle;
  return `CPU ${(cpu * 100).toFixed(0)}% of a core, event loop ${((100 * active) / (active + idle)).toFixed(0)}% busy`;
}

/** The CPUs a process may run on, as `taskset` lists them ("0-3"); undefined where it cannot tell. */
export function cpusOf(pid: number): string | undefined {
  try {
    const out = execFileSync('taskset', ['-cp', String(pid)], { encoding: 'utf8' });
    return out.split(':').at(-1)?.trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Pin a process, all its threads (the GC's and libuv's included), to some CPUs, with `taskset`; false
 * where that cannot be done (no taskset, not Linux). So that "a core" means one core.
 */
export function pinToCpus(pid: number, cpus: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** How a bench placed its processes on the machine's CPUs, and how to give Redis its own back. */
export interface Placement {
  /** What to print: who runs where. */
  description: string;
  /** Give Redis the CPUs it had (a no-op when it was not pinned). */
  restore(): void;
}

/**
 * "Per core" means one core: with two CPUs or more, the servers measured get the last CPU to
 * themselves (their GC and libuv threads too), and everything else, this process and Redis included,
 * shares the others. Unpinned where that cannot be done (one CPU, no taskset) or `pin` is false.
 */
export async function placeOnCpus(
  servers: ReadonlyArray<{ pid: number }>,
  others: ReadonlyArray<{ pid: number }>,
  redis: { info(section: 'server'): Promise<string> },
  o: { pin: boolean; servers: string; others: string },
): Promise<Placement> {
  const lastCpu = cpus().length - 1;
  const rest = lastCpu > 1 ? `0-${lastCpu - 1}` : '0';
  const unpinned = {
    description: `no process is pinned to a CPU: ${o.servers}, ${o.others} and Redis share them`,
    restore() {},
  };
  if (lastCpu < 1 || !o.pin) return unpinned;
  const pinned =
    servers.every((s) => pinToCpus(s.pid, String(lastCpu))) &&
    [...others, { pid: process.pid }].every((p) => pinToCpus(p.pid, rest));
  if (!pinned) return unpinned;
  const redisPid = Number((await redis.info('server')).match(/process_id:(\d+)/)?.[1] ?? 0);
  const redisCpus = redisPid ? cpusOf(redisPid) : undefined;
  const redisPinned = redisCpus !== undefined && pinToCpus(redisPid, rest);
  return {
    description: redisPinned
      ? `${o.servers} on CPU ${lastCpu} alone; ${o.others} and Redis on CPU ${rest}`
      : `${o.servers} on CPU ${lastCpu} alone; ${o.others} on CPU ${rest} (Redis could not be pinned: it may share CPU ${lastCpu})`,
    restore: () => {
      if (redisPinned && redisCpus) pinToCpus(redisPid, redisCpus);
    },
  };
}
