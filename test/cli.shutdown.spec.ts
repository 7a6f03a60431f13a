// `wecom-dify serve` stops on SIGTERM or SIGINT whatever becomes of its standard output: a reader that
// went away (`| tee` killed by the same Ctrl-C), or one that stays open and stops reading (a stuck log
// shipper). A second signal ends it at once. Real processes: only they show a node that will not exit.
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { spawnCli } from './support/cli.js';
import { freePort } from './support/redisServer.js';
import { testBot } from './support/service.js';
import { WecomClient } from './support/wecomClient.js';

const cwd = mkdtempSync(join(tmpdir(), 'wd-shutdown-'));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

const DRAIN_SECONDS = 1;
/** What the operations guide promises: gone within DRAIN_SECONDS and a few seconds more. */
const exitBoundMs = (DRAIN_SECONDS + 5) * 1000;

interface Node {
  child: ChildProcessWithoutNullStreams;
  url: string;
  /** Resolves with the exit code, or with `hung` when the node is still there after `ms`. */
  exitWithin(ms: number): Promise<number | null | 'hung'>;
}

const started: ChildProcessWithoutNullStreams[] = [];
afterEach(() => {
  for (const child of started.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Starts a node without reading its standard output: the test decides what becomes of it. */
async function startNode(env: Record<string, string> = {}): Promise<Node> {
  const port = await freePort();
  const child = spawnCli(['serve'], {
    cwd,
    env: {
      HOST: '127.0.0.1',
      PORT: String(port),
      WECOM_TOKEN: testBot.token,
      WECOM_ENCODING_AES_KEY: testBot.encodingAESKey,
      WECOM_BOT_ID: testBot.botId,
      DIFY_API_KEY: 'app-test',
      DIFY_API_URL: 'http://127.0.0.1:9/v1',
      DRAIN_SECONDS: String(DRAIN_SECONDS),
      LOG_LEVEL: 'info',
      ...env,
    },
  });
  started.push(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  await until(
    () =>
      fetch(`${url}/healthz`).then(
        (res) => res.ok,
        () => false,
      ),
    20_000,
    () => stderr,
  );
  return {
    child,
    url,
    exitWithin: async (ms) => {
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        exited,
        new Promise<'hung'>((resolve) => {
          timer = setTimeout(() => resolve('hung'), ms);
        }),
      ]);
      clearTimeout(timer);
      return outcome;
    },
  };
}

async function until(check: () => Promise<boolean>, ms: number, why: () => string = () => ''): Promise<void> {
  for (const deadline = Date.now() + ms; !(await check()); ) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms ${why().slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Makes the node log about `bytes`: callbacks for another bot are refused with a warning that names
 * the bot id they carry, so a long id makes a long line.
 */
async function makeItLog(node: Node, bytes: number): Promise<void> {
  const lineBytes = 256 * 1024;
  const stranger = new WecomClient({ baseUrl: node.url, ...testBot, botId: 'B'.repeat(lineBytes) });
  for (let sent = 0; sent < bytes; sent += lineBytes) {
    const { status } = await stranger.text('hello');
    expect(status).toBe(403);
  }
}

/** A Dify that accepts connections and never answers: an answer stays in progress. */
async function silentDify() {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/v1`,
    connected: () => sockets.size > 0,
    stop: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('wecom-dify serve stops whatever its standard output does', () => {
  it('a reader that reads gets every line, up to "stopped"', async () => {
    const node = await startNode();
    let out = '';
    node.child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    node.child.kill('SIGTERM');
    expect(await node.exitWithin(exitBoundMs)).toBe(0);
    const messages = out
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line).msg);
    expect(messages).toEqual(expect.arrayContaining(['listening', 'shutting down', 'draining', 'drained']));
    expect(messages.at(-1)).toBe('stopped');
  });

  it('a reader that went away (the pipe is broken): SIGINT stops the node, exit code 0', async () => {
    const node = await startNode();
    node.child.stdout.destroy();
    node.child.kill('SIGINT');
    expect(await node.exitWithin(exitBoundMs)).toBe(0);
  });

  it('a reader that stopped reading after more than 1 MB of log: the node serves on and SIGTERM stops it', async () => {
    const node = await startNode();
    node.child.stdout.pause();
    await makeItLog(node, 1.5 * 1024 * 1024);
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
    node.child.kill('SIGTERM');
    expect(await node.exitWithin(exitBoundMs)).toBe(0);
  });

  it('a second SIGINT exits at once, during a drain, with a stuck log reader', async () => {
    const dify = await silentDify();
    try {
      const node = await startNode({ DIFY_API_URL: dify.url, DRAIN_SECONDS: '60' });
      node.child.stdout.pause();
      await makeItLog(node, 1.5 * 1024 * 1024);
      const wecom = new WecomClient({ baseUrl: node.url, ...testBot });
      expect((await wecom.text('a question that takes long')).status).toBe(200);
      await until(async () => dify.connected(), 5000);
      node.child.kill('SIGINT');
      await until(
        async () =>
          ((await fetch(`${node.url}/readyz`).then((r) => r.json())) as { draining?: boolean }).draining ===
          true,
        5000,
      );
      node.child.kill('SIGINT');
      expect(await node.exitWithin(2000)).toBe(1);
    } finally {
      await dify.stop();
    }
  });

  it('a reader that stalls: lines past the limit are dropped, and the log says how many once it reads again', async () => {
    const node = await startNode();
    node.child.stdout.pause();
    await makeItLog(node, 12 * 1024 * 1024);
    let out = '';
    node.child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    node.child.stdout.resume();
    await until(async () => /"msg":"log lines dropped/.test(out), 5000);
    const note = JSON.parse(
      out.split('\n').find((line) => line.includes('"msg":"log lines dropped')) ?? '{}',
    );
    expect(note).toMatchObject({ level: 40 });
    expect(note.dropped).toBeGreaterThan(0);
    node.child.kill('SIGTERM');
    expect(await node.exitWithin(exitBoundMs)).toBe(0);
  });
});
