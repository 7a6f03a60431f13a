// `wecom-dify replay <id> --url <service>`: a stream of a service that keeps its streams in its own
// memory (no REDIS_URL, like the demo) replays through the service's inspector, to the same steps as
// the live fold; with the inspector's token when it has one; and every way it cannot is said plainly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fold, type StreamEvent, stateOf } from '../src/machines/index.js';
import { createMemoryStore, type StreamStore } from '../src/store/index.js';
import { runCli, tempCwd } from './support/cliRun.js';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { startTestService, type TestService, testBot } from './support/service.js';
import { WecomClient } from './support/wecomClient.js';

interface Report {
  streamId: string;
  steps: { type: string; state: string; answerLength: number; event: Record<string, unknown> }[];
  diagnosis: { state: string; finished: boolean; waiting?: { on: string; behindState?: string } };
}

const cwd = tempCwd('replay-url');
const inspectorToken = 'inspector-token-for-tests';
const answer = '内存里的回答，只有这个进程看得见。Only this process holds it.';

describe('wecom-dify replay --url (a service without Redis)', { timeout: 90_000 }, () => {
  let dify: FakeDify;
  let store: StreamStore;
  let service: TestService;
  let plain: TestService;
  let streamId: string;
  let responseCode: string;

  beforeAll(async () => {
    dify = await startFakeDify();
    dify.setDefault({ kind: 'answer', text: answer, frameDelayMs: 10 });
    store = createMemoryStore({ ttlSeconds: 600 });
    const env = { DIFY_API_URL: dify.url, DIFY_TIMEOUT_SECONDS: '5', WECOM_BOT_ID: testBot.botId };
    service = await startTestService({ ...env, INSPECTOR: '1', INSPECTOR_TOKEN: inspectorToken }, { store });
    plain = await startTestService(env);
    const wecom = new WecomClient({ baseUrl: service.url, ...testBot });
    responseCode = `rc-${Date.now()}`;
    const sent = await wecom.text('你好', {
      responseUrl: `https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=${responseCode}`,
    });
    streamId = sent.reply.stream.id;
    const { reply } = await wecom.pollUntilFinished(streamId, { intervalMs: 50 });
    expect(reply.stream.content).toBe(answer);
  });

  afterAll(async () => {
    await service?.stop();
    await plain?.stop();
    await dify?.stop();
    cwd.remove();
  });

  const withToken = { INSPECTOR_TOKEN: inspectorToken };

  it('replays the stream to the states of the live fold, step by step', async () => {
    const result = await runCli(['replay', streamId, '--url', service.url, '--json'], {
      cwd: cwd.dir,
      env: withToken,
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as Report;
    const stored = await store.read(streamId);
    expect(report.streamId).toBe(streamId);
    expect(report.steps.map((s) => s.type)).toEqual(stored.map((s) => s.event.type));
    report.steps.forEach((step, i) => {
      const live = fold(stored.slice(0, i + 1).map((s) => s.event));
      expect(step.state).toBe(stateOf(live));
      expect(step.answerLength).toBe(live.context.answer.length);
    });
    expect(report.diagnosis).toMatchObject({ state: 'completed', finished: true });
  });

  it('prints the replay as `replay` does from Redis, and never the response_url', async () => {
    const { code, stdout } = await runCli(['replay', streamId, '--url', `${service.url}/inspector/`], {
      cwd: cwd.dir,
      env: withToken,
    });
    expect(code).toBe(0);
    expect(stdout).toContain(`stream ${streamId} · zhangsan asked "你好"`);
    expect(stdout).toMatch(/^\+\d+\.\d{3}s {2}answer\.completed {2,}completed/m);
    expect(stdout).toContain(`answer ${answer.length} chars`);
    const json = await runCli(['replay', streamId, '--url', service.url, '--json'], {
      cwd: cwd.dir,
      env: withToken,
    });
    expect(json.stdout).not.toContain(responseCode);
    expect((JSON.parse(json.stdout) as Report).steps[0]?.event.responseUrl).toBe('(set, not shown)');
  });

  it('with --bot, replays the stream of that bot and refuses another bot’s, exit code 1', async () => {
    const [ours, theirs] = await Promise.all([
      runCli(['replay', streamId, '--url', service.url, '--bot', 'default'], {
        cwd: cwd.dir,
        env: withToken,
      }),
      runCli(['replay', streamId, '--url', service.url, '--bot', 'hr'], { cwd: cwd.dir, env: withToken }),
    ]);
    expect(ours.code).toBe(0);
    expect(ours.stdout.split('\n')[0]).toMatch(new RegExp(`^stream ${streamId} · .* · bot default$`));
    expect(theirs).toMatchObject({ code: 1, stdout: '' });
    expect(theirs.stderr).toBe(`wecom-dify: replay: stream ${streamId} is bot default's, not hr\n`);
  });

  it('says what a queued stream waits for, read from the service too', async () => {
    const at = Date.now();
    const opened = (id: string): StreamEvent => ({
      type: 'stream.opened',
      at,
      streamId: id,
      msgid: `m-${id}`,
      bot: testBot.botId,
      userid: 'lisi',
      chattype: 'single',
      query: '排队',
    });
    const first = `first-${at}`;
    const second = `second-${at}`;
    await store.append(first, [opened(first), { type: 'auth.granted', at, user: { id: 'lisi' } }], {
      expectedVersion: 0,
    });
    await store.append(
      second,
      [
        opened(second),
        { type: 'auth.granted', at, user: { id: 'lisi' } },
        { type: 'stream.queued', at, behind: first },
      ],
      { expectedVersion: 0 },
    );
    const { code, stdout } = await runCli(['replay', second, '--url', service.url], {
      cwd: cwd.dir,
      env: withToken,
    });
    expect(code).toBe(0);
    expect(stdout).toContain(`queued behind ${first}`);
    expect(stdout).toContain('that stream is thinking');
  });

  it('without the inspector’s token, an unknown stream, a service without the inspector: said plainly', async () => {
    const [noToken, missing, noInspector, nobody, both] = await Promise.all([
      runCli(['replay', streamId, '--url', service.url], { cwd: cwd.dir, env: {} }),
      runCli(['replay', 'no-such-stream', '--url', service.url], { cwd: cwd.dir, env: withToken }),
      runCli(['replay', streamId, '--url', plain.url], { cwd: cwd.dir, env: {} }),
      runCli(['replay', streamId, '--url', 'http://127.0.0.1:9'], { cwd: cwd.dir, env: {} }),
      runCli(['replay', streamId, '--url', service.url, '--prefix', 'wd:'], { cwd: cwd.dir, env: {} }),
    ]);
    expect(noToken).toMatchObject({ code: 1, stdout: '' });
    expect(noToken.stderr).toBe(
      `wecom-dify: replay: the inspector at ${service.url} wants its token: set INSPECTOR_TOKEN (environment or .env) as the service has it\n`,
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(
      `wecom-dify: replay: no stream no-such-stream at ${service.url}: it does not exist, or it expired\n`,
    );
    expect(noInspector.code).toBe(1);
    expect(noInspector.stderr).toContain(
      `${plain.url} does not serve the inspector: start the service with INSPECTOR=1`,
    );
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toContain('replay: cannot reach http://127.0.0.1:9: ECONNREFUSED');
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--prefix names Redis keys; --url reads from the service: give one');
  });
});
