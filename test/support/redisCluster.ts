// A throwaway three-master Redis Cluster on spare ports, to run the store contract where every key of
// a stream must hash to one slot. Started per suite, stopped (processes and files) in afterAll.
import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort, killProcess, spawnRedis } from './redisServer.js';

const run = promisify(execFile);

export interface RedisClusterHandle {
  nodes: { host: string; port: number }[];
  /** The password every node asks for, when started with one. */
  password?: string;
  stop(): Promise<void>;
}

/** `password`: every node requires it (`requirepass`), as a production cluster would. */
export async function startRedisCluster(options: { password?: string } = {}): Promise<RedisClusterHandle> {
  const auth = options.password ? ['--requirepass', options.password, '--masterauth', options.password] : [];
  const dir = await mkdtemp(join(tmpdir(), 'wd-cluster-'));
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((child) => killProcess(child)));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const ports: number[] = [];
    while (ports.length < 3) {
      // The cluster bus listens on port + 10000.
      const port = await freePort([10_000]);
      if (ports.includes(port)) continue;
      try {
        const cluster = ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, ...auth];
        children.push(await spawnRedis(port, dir, cluster));
        ports.push(port);
      } catch {
        // Taken between the probe and the bind by a parallel suite: pick another.
      }
    }
    const addresses = ports.map((p) => `127.0.0.1:${p}`);
    const cliAuth = options.password ? ['-a', options.password, '--no-auth-warning'] : [];
    await run('redis-cli', [...cliAuth, '--cluster', 'create', ...addresses, '--cluster-yes'], {
      timeout: 30_000,
    });
    await waitForClusterOk(ports, options.password);
    return {
      nodes: ports.map((port) => ({ host: '127.0.0.1', port })),
      ...(options.password ? { password: options.password } : {}),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function waitForClusterOk(ports: number[], password?: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  const clients = ports.map(
    (port) => new Redis({ port, host: '127.0.0.1', ...(password ? { password } : {}) }),
  );
  try {
    while (Date.now() < deadline) {
      const infos = await Promise.all(clients.map((c) => c.cluster('INFO') as Promise<string>));
      if (infos.every((info) => info.includes('cluster_state:ok'))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the Redis Cluster did not reach cluster_state:ok in time');
  } finally {
    clients.forEach((c) => {
      c.disconnect();
    });
  }
}
