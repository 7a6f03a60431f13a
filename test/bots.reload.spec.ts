// Adding, changing and removing a bot without dropping answers. A `serve` process reads its bots file
// again on SIGHUP: a valid file takes effect for new callbacks, an invalid one is refused with its
// problems logged and the bots stay as they were. In-process, an answer already running when its
// bot changes finishes with the bot it started with.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBots } from '../src/config.js';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { type NodeProcess, startNode, stopNodes } from './support/nodes.js';
import { dropPrefix, randomPrefix, redisUrl, startTestService, type TestService } from './support/service.js';
import { until } from './support/until.js';
import { WecomClient } from './support/wecomClient.js';

const hr = { token: 'hrTokenR', encodingAESKey: 'hRrEl0ad456789abcdefghijklmnopqrstuvwxyzABC' };
const sales = { token: 'salesTok', encodingAESKey: 'sAlEs0ad456789abcdefghijklmnopqrstuvwxyzABC' };
const secrets = {
  HR_WECOM_TOKEN: hr.token,
  HR_WECOM_AES_KEY: hr.encodingAESKey,
  SALES_WECOM_TOKEN: sales.token,
  SALES_WECOM_AES_KEY: sales.encodingAESKey,
  DIFY_KEY: 'app-reload',
};

const entry = (id: string, difyUrl: string, extra = '') => `
  - id: ${id}
    callback:
      token: \${${id.toUpperCase()}_WECOM_TOKEN}
      encodingAesKey: \${${id.toUpperCase()}_WECOM_AES_KEY}
    dify:
      apiUrl: ${difyUrl}
      apiKey: \${DIFY_KEY}${extra}
`;

const as = (baseUrl: string, bot: typeof hr, id: string) =>
  new WecomClient({ baseUrl, ...bot, path: `/wecom/callback/${id}` });

describe('SIGHUP reads the bots file again', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wd-reload-'));
  const file = join(dir, 'bots.yaml');
  let dify: FakeDify;
  let node: NodeProcess;
  const logLines = () =>
    node
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; [k: string]: unknown });

  beforeAll(async () => {
    dify = await startFakeDify({ apiKey: 'app-reload' });
    dify.setDefault({ kind: 'answer', echo: '答：{query}' });
    writeFileSync(file, `bots:${entry('hr', dify.url)}`);
    node = await startNode('reload-node', { WECOM_BOTS_FILE: file, ...secrets });
  });
  afterAll(async () => {
    if (node) await stopNodes([node]);
    await dify?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('adds a bot from a valid file, for new callbacks', async () => {
    expect((await as(node.url, sales, 'sales').text('在吗', { userid: 'u1' })).status).toBe(404);
    writeFileSync(file, `bots:${entry('hr', dify.url)}${entry('sales', dify.url)}`);
    node.kill('SIGHUP');
    await until('the bots are reloaded', () => logLines().some((l) => l.msg === 'bots reloaded'), {
      timeoutMs: 10_000,
    });
    expect(logLines().find((l) => l.msg === 'bots reloaded')).toMatchObject({
      bots: ['hr', 'sales'],
      added: ['sales'],
      changed: [],
      removed: [],
    });
    const asked = await as(node.url, sales, 'sales').text('报价单在哪', { userid: 'u1' });
    expect(asked.status).toBe(200);
    const done = await as(node.url, sales, 'sales').pollUntilFinished(asked.reply!.stream!.id, {
      userid: 'u1',
    });
    expect(done.reply.stream.content).toBe('答：报价单在哪');
    // hr is untouched, on its own path and on the shared one.
    expect((await as(node.url, hr, 'hr').text('还在吗', { userid: 'u2' })).status).toBe(200);
    expect(
      (await new WecomClient({ baseUrl: node.url, ...hr }).text('还在吗', { userid: 'u2' })).status,
    ).toBe(200);
  });

  it('refuses an invalid file with one log line per problem, and keeps the bots it had', async () => {
    writeFileSync(
      file,
      `bots:${entry('hr', dify.url, '\n    colour: blue')}${entry('sales', dify.url)}  - id: ops\n    callback:\n      token: \${OPS_TOKEN_NOT_SET}\n      encodingAesKey: short\n    dify:\n      apiKey: x\n`,
    );
    node.kill('SIGHUP');
    await until(
      'the reload is refused',
      () => logLines().some((l) => l.msg.startsWith('bots file not reloaded')),
      {
        timeoutMs: 10_000,
      },
    );
    const refused = logLines()
      .filter((l) => l.msg.startsWith('bots file refused: '))
      .map((l) => l.msg);
    expect(refused).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/bots\[0\] \(hr\): unknown setting\(s\) colour/),
        expect.stringMatching(/bots\[2\] \(ops\)\.callback\.token: \$\{OPS_TOKEN_NOT_SET\} is not set/),
        expect.stringMatching(/bots\[2\] \(ops\)\.callback\.encodingAesKey: must be exactly 43 characters/),
      ]),
    );
    // No secret of a bot reaches the log.
    for (const secret of [hr.token, hr.encodingAESKey, sales.token, sales.encodingAESKey, 'app-reload'])
      expect(node.output()).not.toContain(secret);
    // Both bots are still served, ops is not.
    expect((await as(node.url, sales, 'sales').text('还在吗', { userid: 'u3' })).status).toBe(200);
    expect((await as(node.url, hr, 'hr').text('还在吗', { userid: 'u3' })).status).toBe(200);
    expect((await as(node.url, hr, 'ops').text('还在吗', { userid: 'u3' })).status).toBe(404);
  });
});

describe('a bot changed or removed while it answers', () => {
  const prefix = randomPrefix('reload');
  const dir = mkdtempSync(join(tmpdir(), 'wd-reload-'));
  const file = join(dir, 'bots.yaml');
  let before: FakeDify;
  let after: FakeDify;
  let service: TestService;
  const env = () => ({ REDIS_URL: redisUrl, WECOM_BOTS_FILE: file, ...secrets });

  beforeAll(async () => {
    before = await startFakeDify({ apiKey: 'app-reload' });
    after = await startFakeDify({ apiKey: 'app-reload' });
    after.setDefault({ kind: 'answer', echo: '新的 Dify 答：{query}' });
    writeFileSync(file, `bots:${entry('hr', before.url)}${entry('sales', before.url)}`);
    service = await startTestService(env(), { keyPrefix: prefix });
  });
  afterAll(async () => {
    await service?.stop();
    await Promise.all([before?.stop(), after?.stop()]);
    await dropPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('finishes a running answer with the Dify it started with; new questions go to the new one', async () => {
    const long = Array.from({ length: 30 }, (_, i) => `第${i + 1}句。`);
    before.script({ kind: 'answer', pieces: long, frameDelayMs: 40 });
    const client = as(service.url, hr, 'hr');
    const running = await client.text('旧问题', { userid: 'u1' });
    const streamId = running.reply!.stream!.id;
    await until('the answer is under way', () => before.activeTasks().length > 0);

    // hr now points at another Dify, sales is gone.
    writeFileSync(file, `bots:${entry('hr', after.url)}`);
    const loaded = loadBots(env());
    if (!loaded.ok) throw new Error(loaded.problems.join('\n'));
    expect(await service.reloadBots(loaded.bots)).toEqual({ added: [], changed: ['hr'], removed: ['sales'] });

    const done = await client.pollUntilFinished(streamId, { userid: 'u1', timeoutMs: 20_000 });
    expect(done.reply.stream.content).toBe(long.join(''));
    const fresh = await client.text('新问题', { userid: 'u2' });
    const freshDone = await client.pollUntilFinished(fresh.reply!.stream!.id, { userid: 'u2' });
    expect(freshDone.reply.stream.content).toBe('新的 Dify 答：新问题');
    expect(before.runs().map((r) => (r.body as { query: string }).query)).toEqual(['旧问题']);
    expect((await as(service.url, sales, 'sales').text('在吗', { userid: 'u3' })).status).toBe(404);
  });
});
