// Long-connection mode with no WeCom at all: the WeCom long-connection simulator that `chat --ws` and
// `demo --long-connection` play takes the subscribe of the service's bot (and refuses any other), pushes
// a question and hands back the answer's frames, growing to the finished one, and the rest of a long
// answer as a message of its own; `chat --ws --say` answers through a real service that dials it; and
// the demo runs the whole loop in that mode.
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type AnswerFrame, type SimulatorEvent, WecomWsSimulator } from '../src/cli/wecomWsSimulator.js';
import { demoAnswer } from '../src/demo/script.js';
import { spawnCli } from './support/cli.js';
import { runCli, tempCwd } from './support/cliRun.js';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { dropPrefix, randomPrefix, redisUrl, startTestService } from './support/service.js';

const BOT_ID = 'aib-sim-test';
const SECRET = 'the-simulator-secret';
const WELCOME = '欢迎！这是长连接模式的欢迎语。';
const answer = '长连接里的回答：一帧一帧地长出来，最后一帧 finish。';

const cwd = tempCwd('chat-ws');

/** The real service in long-connection mode, dialling `url` as bot `botId`, on its own Redis prefix. */
async function serviceDialling(url: string, dify: FakeDify, botId = BOT_ID, secret = SECRET) {
  const keyPrefix = randomPrefix('chat-ws');
  const service = await startTestService(
    {
      WECOM_MODE: 'long-connection',
      WECOM_BOT_ID: botId,
      WECOM_BOT_SECRET: secret,
      WECOM_WS_URL: url,
      WECOM_WS_FRAME_INTERVAL_MS: '100',
      WELCOME_TEXT: WELCOME,
      REDIS_URL: redisUrl,
      DIFY_API_URL: dify.url,
      DIFY_TIMEOUT_SECONDS: '5',
    },
    { keyPrefix },
  );
  return {
    service,
    async stop() {
      await service.stop();
      await dropPrefix(keyPrefix);
    },
  };
}

async function collect(frames: AsyncIterable<AnswerFrame>): Promise<AnswerFrame[]> {
  const all: AnswerFrame[] = [];
  for await (const frame of frames) all.push(frame);
  return all;
}

const streamsOf = (frames: AnswerFrame[]) => frames.flatMap((f) => (f.kind === 'stream' ? [f] : []));

let dify: FakeDify;

beforeAll(async () => {
  dify = await startFakeDify();
  dify.setDefault({ kind: 'answer', text: answer, frameDelayMs: 30 });
});

afterAll(async () => {
  await dify?.stop();
  cwd.remove();
});

describe('the WeCom long-connection simulator, with the real service subscribed', { timeout: 60_000 }, () => {
  let simulator: WecomWsSimulator;
  let running: Awaited<ReturnType<typeof serviceDialling>>;
  const events: SimulatorEvent[] = [];

  beforeAll(async () => {
    simulator = await WecomWsSimulator.listen({
      botId: BOT_ID,
      secret: SECRET,
      onEvent: (event) => events.push(event),
    });
    running = await serviceDialling(simulator.url, dify);
    expect(await simulator.waitForSubscriber({ timeoutMs: 10_000 })).toBe(true);
  });

  afterAll(async () => {
    await running?.stop();
    await simulator?.close();
  });

  it('takes the subscribe of its bot', () => {
    expect(simulator.subscribed).toBe(true);
    expect(events).toContainEqual({ kind: 'subscribed', again: false });
  });

  it('a question comes back as frames of one stream whose content grows, ending at finish:true', async () => {
    const frames = streamsOf(await collect(simulator.ask('长连接好用吗', { userid: 'zhangsan' })));
    expect(new Set(frames.map((f) => f.id)).size).toBe(1);
    expect(frames.at(-1)).toMatchObject({ finish: true, content: answer });
    expect(frames.filter((f) => f.finish)).toHaveLength(1);
    const grown = frames.map((f) => f.content).filter((c) => answer.startsWith(c) && c !== '');
    for (let i = 1; i < grown.length; i++) expect(grown[i]!.startsWith(grown[i - 1]!)).toBe(true);
    expect(dify.runs().at(-1)?.body).toMatchObject({ query: '长连接好用吗', user: 'zhangsan' });
  });

  it('an answer longer than the bubble: the bubble’s head, then the rest as a message to the same user', async () => {
    const long = Array.from({ length: 600 }, (_, i) => `第${i}行：气泡放不下这么长的回答。\n`).join('');
    dify.script({
      kind: 'answer',
      pieces: long.match(/[^\n]*\n/gu)!,
      chunking: 'frame',
      framesPerChunk: 100,
    });
    const frames = await collect(simulator.ask('长一点', { userid: 'lisi' }));
    const last = streamsOf(frames).at(-1);
    expect(last?.finish).toBe(true);
    expect(last?.content).toContain('（回答太长，这里只显示了前面部分，完整内容稍后单独发送。）');
    const rest = frames.filter((f) => f.kind === 'message');
    expect(rest).toHaveLength(1);
    expect(rest[0]).toMatchObject({ kind: 'message', markdown: expect.stringContaining('第599行') });
  });

  it('enter_chat is answered with the welcome', async () => {
    expect(await simulator.welcome('zhangsan')).toBe(WELCOME);
  });

  it('refuses a subscribe with another Secret with errcode 40058, and says so', async () => {
    const socket = new WebSocket(simulator.url);
    try {
      await once(socket, 'open');
      const acked = once(socket, 'message');
      socket.send(
        JSON.stringify({
          cmd: 'aibot_subscribe',
          headers: { req_id: 'aibot_subscribe_1_abcd' },
          body: { bot_id: BOT_ID, secret: 'not-the-secret' },
        }),
      );
      const [data] = await acked;
      expect(JSON.parse(String(data))).toEqual({
        headers: { req_id: 'aibot_subscribe_1_abcd' },
        errcode: 40058,
        errmsg: 'invalid bot_id or secret',
      });
      expect(events).toContainEqual({ kind: 'refused', botId: BOT_ID });
      // The service's connection is untouched.
      expect(simulator.subscribed).toBe(true);
    } finally {
      socket.terminate();
    }
  });

  it('with no service subscribed, says how to start one', async () => {
    const idle = await WecomWsSimulator.listen({ botId: 'idle-bot', secret: 's' });
    try {
      expect(() => idle.ask('hi', { userid: 'zhangsan' })).toThrow(
        `no service has subscribed yet: start it with WECOM_MODE=long-connection WECOM_BOT_ID=idle-bot WECOM_BOT_SECRET=s WECOM_WS_URL=${idle.url}`,
      );
      await expect(idle.welcome('zhangsan')).rejects.toMatchObject({ code: 'not_subscribed' });
    } finally {
      await idle.close();
    }
  });
});

describe('wecom-dify chat --ws', { timeout: 90_000 }, () => {
  it('plays WeCom’s server: prints how to point a service at it, waits for it, and answers --say', async () => {
    const child = spawnCli(['chat', '--ws', '--port', '0', '--say', '你好'], { cwd: cwd.dir, env: {} });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const seen = (pattern: RegExp) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(stdout);
          if (match) resolve(match);
        };
        child.stdout.on('data', check);
        child.on('close', () => reject(new Error(`chat exited early: ${stdout}${stderr}`)));
        check();
      });
    let running: Awaited<ReturnType<typeof serviceDialling>> | undefined;
    try {
      // No BotID or Secret in the environment: both made up, and printed with the URL.
      const [, botId, secret, url] = await seen(
        /WECOM_MODE=long-connection WECOM_BOT_ID=(\S+) WECOM_BOT_SECRET=(\S+) WECOM_WS_URL=(ws:\/\/127\.0\.0\.1:\d+) npx wecom-dify serve\n/,
      );
      await seen(/Waiting for the service to subscribe/);
      running = await serviceDialling(url!, dify, botId, secret);
      expect(await exited).toBe(0);
      expect(stderr).toBe('');
      expect(stdout).toContain('you › 你好\n');
      expect(stdout).toContain('bot › ');
      expect(stdout).toContain(answer);
      expect(stdout).toMatch(/\(finished in \S+, \d+ frames?, stream \S+\)/);
      expect(dify.runs().at(-1)?.body).toMatchObject({ query: '你好', user: 'sim-user' });
    } finally {
      child.kill('SIGTERM');
      await exited;
      await running?.stop();
    }
  });

  it('flags of the callback do not go with --ws, nor --port without it: a usage error, exit 2', async () => {
    const mixed = await runCli(['chat', '--ws', '--token', 'T', '--say', 'hi'], { cwd: cwd.dir });
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain('--token does not go with --ws');
    const port = await runCli(['chat', '--port', '8765', '--say', 'hi'], { cwd: cwd.dir });
    expect(port.code).toBe(2);
    expect(port.stderr).toContain('--port goes with --ws');
  });
});

describe('wecom-dify demo --long-connection', { timeout: 90_000 }, () => {
  it('runs the service on a long connection to the simulator in the same process and answers --say', async () => {
    const { code, stdout, stderr } = await runCli(
      ['demo', '--long-connection', '--port', '0', '--say', '你好'],
      {
        cwd: cwd.dir,
      },
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/service {5}http:\/\/127\.0\.0\.1:\d+ {2}\(bot default, long connection/);
    expect(stdout).toMatch(/wecom {7}ws:\/\/127\.0\.0\.1:\d+ {2}\(the WeCom long-connection simulator/);
    expect(stdout).toContain('you › 你好');
    expect(stdout).toContain(demoAnswer('你好'));
    expect(stdout).toMatch(/\(finished in \S+, \d+ frames?, stream \S+\)/);
    expect(stdout).toMatch(/replay it: npx wecom-dify replay \S+ --url http:\/\/127\.0\.0\.1:\d+\n/);
    expect(stdout.trimEnd().endsWith('demo: stopping')).toBe(true);
  });
});
