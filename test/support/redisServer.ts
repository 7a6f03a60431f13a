// A throwaway redis-server on a spare port, for tests that must stop, pause and restart Redis to see
// the store fail and recover. Nothing is persisted; every process started here is stopped by `stop()`
// (and killed on exit should a test run die first).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface RedisServer {
  port: number;
  /** Stops the server (SIGTERM, then SIGKILL); `start()` brings it back on the same port (empty unless persisted). */
  stop(): Promise<void>;
  /** Stops it for good and removes its files. */
  dispose(): Promise<void>;
  start(): Promise<void>;
  /** Crashes it (SIGKILL). */
  kill(): Promise<void>;
  /** Freezes it (SIGSTOP): connections stay open and commands hang, as with a stuck Redis. */
  pause(): void;
  resume(): void;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Whether a TCP port can be bound on 127.0.0.1 right now. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A free port in 20000..44999 whose `port + offsets` are free too (the cluster bus is port + 10000). */
export async function freePort(offsets: number[] = []): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 25_000);
    const all = [port, ...offsets.map((o) => port + o)];
    if ((await Promise.all(all.map(portIsFree))).every(Boolean)) return port;
  }
  throw new Error('no free port found');
}

/** Starts `redis-server` in the foreground and resolves once it answers PING. */
export async function spawnRedis(port: number, dir: string, extra: string[] = []): Promise<ChildProcess> {
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
  ];
  const child = spawn('redis-server', [...args, '--daemonize', 'no', ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  running.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.once('exit', () => running.delete(child));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited: ${stderr.trim()}`);
    const probe = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      enableReadyCheck: false,
      retryStrategy: () => null,
    });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') return child;
    } catch (error) {
      // Up, and asking for the password it was started with (requirepass): that is an answer too.
      if (String(error).includes('NOAUTH')) return child;
      // otherwise not up yet
    } finally {
      probe.disconnect();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await killProcess(child);
  throw new Error(`redis-server on ${port} did not start in time`);
}

/** Stops a process and waits for it to be gone, SIGKILL after a grace period. */
export async function killProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGCONT');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}

/**
 * `persist`: an append-only file synced on every write, so that a stop and start keeps the data, as
 * a production Redis restarting would; without it a restarted server is empty.
 */
export async function startRedisServer(options: { persist?: boolean } = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'wd-redis-'));
  const extra = options.persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : [];
  let port = 0;
  let child: ChildProcess | undefined;
  // Another suite may grab the port between the probe and the bind: try a few.
  for (let attempt = 0; !child; attempt++) {
    port = await freePort();
    try {
      child = await spawnRedis(port, dir, extra);
    } catch (error) {
      if (attempt >= 4) throw error;
    }
  }
  let current: ChildProcess | undefined = child;
  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    if (current) await killProcess(current, signal);
    current = undefined;
  };
  return {
    port,
    async start() {
      if (current) return;
      await mkdir(dir, { recursive: true });
      current = await spawnRedis(port, dir, extra);
    },
    stop: async () => {
      await halt('SIGTERM');
      if (!options.persist) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    },
    async dispose() {
      await halt('SIGKILL');
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    },
    kill: () => halt('SIGKILL'),
    pause() {
      current?.kill('SIGSTOP');
    },
    resume() {
      current?.kill('SIGCONT');
    },
  };
}
