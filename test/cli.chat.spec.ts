// `wecom-dify chat`, the WeCom simulator, as a child process against a running instance: it sends the
// encrypted callback, polls until finish:true and prints the answer; and it says plainly, exit code 1,
// when the instance cannot be reached, refuses it, or answers with a signature that does not match.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WecomCrypto } from '../src/wecom/index.js';
import { closedPort } from './auth/support.js';
import { runCli, tempCwd } from './support/cliRun.js';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { randomPrefix, startTestService, type TestService, testBot } from './support/service.js';

const cwd = tempCwd('chat');
const keys = { WECOM_TOKEN: testBot.token, WECOM_ENCODING_AES_KEY: testBot.encodingAESKey };
const answer = '你好！我是测试里的 Dify。Streaming, piece by piece.';

describe('wecom-dify chat', { timeout: 90_000 }, () => {
  let dify: FakeDify;
  let service: TestService;

  beforeAll(async () => {
    dify = await startFakeDify();
    dify.setDefault({ kind: 'answer', text: answer, frameDelayMs: 30 });
    // The in-memory store: the simulator talks HTTP to whatever instance it is pointed at.
    service = await startTestService(
      { DIFY_API_URL: dify.url, DIFY_TIMEOUT_SECONDS: '5' },
      { keyPrefix: randomPrefix('cli-chat') },
    );
  });

  afterAll(async () => {
    await service?.stop();
    await dify?.stop();
    cwd.remove();
  });

  it('--say sends the question as WeCom does, polls, prints the answer as it grows and exits 0', async () => {
    const { code, stdout, stderr } = await runCli(
      ['chat', '--url', service.url, '--interval', '200ms', '--say', '你好'],
      {
        cwd: cwd.dir,
        env: keys,
      },
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('you › 你好\n');
    expect(stdout).toContain('bot › ');
    // Printed as it grew: the extensions append to what was shown, so the answer reads whole.
    expect(stdout).toContain(answer);
    expect(stdout).toMatch(/\(finished in \S+, \d+ polls?, stream \S+\)/);
    const run = dify.runs().at(-1);
    expect(run?.body).toMatchObject({ query: '你好', user: 'sim-user' });
  });

  it('an answer longer than the bubble: the bubble’s head, then the rest as the message WeCom would show', async () => {
    const long = Array.from({ length: 600 }, (_, i) => `第${i}行：气泡放不下这么长的回答。\n`).join('');
    dify.script({
      kind: 'answer',
      pieces: long.match(/[^\n]*\n/gu)!,
      chunking: 'frame',
      framesPerChunk: 100,
    });
    const { code, stdout } = await runCli(
      ['chat', '--url', service.url, '--interval', '100ms', '--say', '长一点'],
      {
        cwd: cwd.dir,
        env: keys,
      },
    );
    expect(code).toBe(0);
    expect(stdout).toContain('（回答太长，这里只显示了前面部分，完整内容稍后单独发送。）');
    expect(stdout).toContain('（接上文）');
    expect(stdout).toContain('第599行');
    expect(stdout).not.toContain('(nothing came)');
  });

  it('prints the card a finished bubble carries, and /click N presses a button: the run goes on', async () => {
    dify.script({
      kind: 'answer',
      flavour: 'chatflow',
      text: '请确认。',
      humanInput: {
        title: '发布审批',
        content: '发布吗？',
        expiresInS: 3600,
        resumeText: '已{action}，发布了。',
      },
    });
    const { code, stdout } = await runCli(
      ['chat', '--url', service.url, '--interval', '100ms', '--say', '发布', '--say', '/click 1'],
      { cwd: cwd.dir, env: keys },
    );
    expect(code).toBe(0);
    expect(stdout).toContain('请确认。\n\n发布吗？');
    expect(stdout).toMatch(/\[发布审批 · 请在 \d\d-\d\d \d\d:\d\d 前选择 · 请选择：\] ⟦1 同意⟧ ⟦2 拒绝⟧/);
    expect(stdout).toContain('(the card now reads) [发布审批 · sim-user 选择了「同意」] ⟦1 同意⟧');
    expect(stdout).toContain('bot › 已同意，发布了。');
  });

  it('/click with no card to press says so, exit code 1', async () => {
    const { code, stderr } = await runCli(['chat', '--url', service.url, '--say', '/click 2'], {
      cwd: cwd.dir,
      env: keys,
    });
    expect(code).toBe(1);
    expect(stderr).toContain("no button 2 on the last answer's card");
  });

  it('asks several questions in turn, as a member of a group, with the Token and key as flags', async () => {
    const { code, stdout } = await runCli(
      [
        'chat',
        '--url',
        service.url,
        '--token',
        testBot.token,
        '--key',
        testBot.encodingAESKey,
        '--user',
        'lisi',
        '--chat',
        'group-7',
        '--interval',
        '200ms',
        '--say',
        '@机器人 第一个问题',
        '--say',
        '/help',
      ],
      { cwd: cwd.dir, env: {} },
    );
    expect(code).toBe(0);
    expect(stdout).toContain('you › @机器人 第一个问题');
    expect(stdout).toContain(answer);
    expect(stdout).toContain('you › /help');
    expect(stdout).toContain('/new');
    // WeCom leaves the @mention in group text; the service strips it before asking Dify.
    const run = dify.runs().find((r) => (r.body as { user?: string }).user === 'lisi');
    expect(run?.body).toMatchObject({ query: '第一个问题' });
  });

  it('reads questions from standard input, one a line, until EOF', async () => {
    const { code, stdout } = await runCli(['chat', '--url', service.url, '--interval', '200ms'], {
      cwd: cwd.dir,
      env: keys,
      input: '你好\n\n/help\n',
    });
    expect(code).toBe(0);
    expect(stdout).toContain('you › 你好\n');
    expect(stdout).toContain(answer);
    expect(stdout).toContain('you › /help\n');
  });

  it('a refused connection is printed clearly, exit code 1', async () => {
    const port = await closedPort();
    const { code, stderr } = await runCli(['chat', '--url', `http://127.0.0.1:${port}`, '--say', 'hi'], {
      cwd: cwd.dir,
      env: keys,
    });
    expect(code).toBe(1);
    expect(stderr).toBe(
      `wecom-dify: chat: cannot reach http://127.0.0.1:${port}/wecom/callback: connection refused\n`,
    );
  });

  it('a wrong Token is refused by the instance: the non-200 answer is printed, exit code 1', async () => {
    const { code, stderr } = await runCli(
      ['chat', '--url', service.url, '--token', 'not-the-token', '--say', 'hi'],
      {
        cwd: cwd.dir,
        env: keys,
      },
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(/^wecom-dify: chat: http:\/\/\S+\/wecom\/callback answered HTTP 4\d\d/);
  });

  describe('against a server whose reply is signed with another Token', () => {
    let impostor: Server;
    let url: string;

    beforeAll(async () => {
      const other = new WecomCrypto({ token: 'another-token', encodingAESKey: testBot.encodingAESKey });
      impostor = createServer((req, res) => {
        const nonce = new URL(req.url ?? '/', 'http://x').searchParams.get('nonce') ?? '';
        const reply = { msgtype: 'stream', stream: { id: 's-1', finish: true, content: 'trust me' } };
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(JSON.stringify(other.encryptReply(JSON.stringify(reply), nonce)));
      });
      await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(impostor.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((resolve) => impostor.close(() => resolve())));

    it('refuses the reply and prints why, exit code 1', async () => {
      const { code, stdout, stderr } = await runCli(['chat', '--url', url, '--say', 'hi'], {
        cwd: cwd.dir,
        env: keys,
      });
      expect(code).toBe(1);
      expect(stderr).toContain('wecom-dify: chat: the reply’s msgsignature does not match its content');
      expect(stdout).not.toContain('trust me');
    });
  });

  it('without the bot’s Token and key: one line per missing setting, exit code 2', async () => {
    const { code, stderr } = await runCli(['chat', '--url', service.url, '--say', 'hi'], {
      cwd: cwd.dir,
      env: {},
    });
    expect(code).toBe(2);
    const lines = stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^wecom-dify: WECOM_TOKEN: required/);
    expect(lines[1]).toMatch(/^wecom-dify: WECOM_ENCODING_AES_KEY: required/);
    expect(lines[2]).toContain('--token and --key');
    const badKey = await runCli(['chat', '--key', 'short', '--say', 'hi'], { cwd: cwd.dir, env: keys });
    expect(badKey.code).toBe(2);
    expect(badKey.stderr).toContain('WECOM_ENCODING_AES_KEY: must be exactly 43 characters');
    expect(badKey.stderr).not.toContain('short');
  });
});
