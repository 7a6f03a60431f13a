// Service nodes as real processes (`wecom-dify serve` from source), for what only processes show: a
// node killed with SIGKILL mid-answer, a node told to stop with SIGTERM. Each node gets its own port
// and NODE_ID and shares the test's Redis key prefix with its siblings. Every node started here is
// killed when the test process exits, should a test fail to stop it.
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnCli } from './cli.js';
import { freePort } from './redisServer.js';
import { testBot } from './service.js';

export interface NodeProcess {
  id: string;
  url: string;
  port: number;
  child: ChildProcessWithoutNullStreams;
  /** Everything it logged so far (pino JSON lines). */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal) and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

const alive = new Set<ChildProcessWithoutNullStreams>();
process.once('exit', () => {
  for (const child of alive) child.kill('SIGKILL');
});

const cwd = mkdtempSync(join(tmpdir(), 'wd-nodes-'));

/** Starts one node and resolves once it listens. */
export async function startNode(id: string, env: Record<string, string>): Promise<NodeProcess> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    try {
      return await spawnNode(id, port, env);
    } catch (error) {
      // Another suite may have taken the port between the probe and the bind.
      if (attempt >= 3) throw error;
    }
  }
}

async function spawnNode(id: string, port: number, env: Record<string, string>): Promise<NodeProcess> {
  const child = spawnCli(['serve'], {
    cwd,
    env: {
      HOST: '127.0.0.1',
      PORT: String(port),
      NODE_ID: id,
      WECOM_TOKEN: testBot.token,
      WECOM_ENCODING_AES_KEY: testBot.encodingAESKey,
      WECOM_BOT_ID: testBot.botId,
      DIFY_API_KEY: 'app-test',
      LOG_LEVEL: 'info',
      ...env,
    },
  });
  alive.add(child);
  let output = '';
  child.stdout.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      alive.delete(child);
      resolve({ code, signal });
    });
  });
  // Ready when /healthz answers (whatever LOG_LEVEL says), or failed when it exits first.
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  let listening = false;
  for (const deadline = Date.now() + 20_000; !gone && !listening && Date.now() < deadline; ) {
    listening = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (res) => res.ok,
      () => false,
    );
    if (!listening) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (!listening) {
    child.kill('SIGKILL');
    throw new Error(`node ${id} did not start on port ${port}:\n${output.slice(-2000)}`);
  }
  return {
    id,
    url: `http://127.0.0.1:${port}`,
    port,
    child,
    output: () => output,
    exited,
    kill: (signal = 'SIGTERM') => {
      child.kill(signal);
    },
  };
}

/**
 * Stops every node that is still running (SIGKILL after a grace period), and fails if any of them
 * ever reached the process's last-resort handler of an unhandled rejection: a promise the code left
 * to fail unseen is a defect, whatever the test was about.
 */
export async function stopNodes(nodes: NodeProcess[]): Promise<void> {
  await Promise.all(
    nodes.map(async (node) => {
      if (node.child.exitCode !== null || node.child.signalCode !== null) return;
      node.kill('SIGTERM');
      const timer = setTimeout(() => node.kill('SIGKILL'), 10_000);
      await node.exited;
      clearTimeout(timer);
    }),
  );
  for (const node of nodes) {
    const line = node
      .output()
      .split('\n')
      .find((l) => l.includes('unhandled rejection'));
    if (line) throw new Error(`node ${node.id} left a promise unhandled: ${line.slice(0, 500)}`);
  }
}
