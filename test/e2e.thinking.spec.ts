// A reasoning model behind two bots, one showing its thinking and one hiding it: the one shows it in
// WeCom's folding block above the answer, closed; the other shows the answer alone.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { dropPrefix, randomPrefix, redisUrl, startTestService, type TestService } from './support/service.js';
import { thinkingFrames } from './support/thinkingFrames.js';
import { WecomClient } from './support/wecomClient.js';

const shows = { token: 'showTok', encodingAESKey: 'sHoWtHiNkInG0123456789abcdefghijklmnopqrstu' };
const hides = { token: 'hideTok', encodingAESKey: 'hIdEtHiNkInG0123456789abcdefghijklmnopqrstu' };

describe('thinking, shown and hidden', () => {
  const prefix = randomPrefix('thinking');
  const dir = mkdtempSync(join(tmpdir(), 'wd-thinking-'));
  let dify: FakeDify;
  let node: TestService;

  beforeAll(async () => {
    dify = await startFakeDify();
    const file = join(dir, 'bots.yaml');
    writeFileSync(
      file,
      `bots:
  - id: shows
    callback: { token: ${shows.token}, encodingAesKey: ${shows.encodingAESKey} }
    dify: { apiKey: app-x, apiUrl: '${dify.url}' }
    thinking: show
  - id: hides
    callback: { token: ${hides.token}, encodingAesKey: ${hides.encodingAESKey} }
    dify: { apiKey: app-x, apiUrl: '${dify.url}' }
    thinking: hide
`,
    );
    node = await startTestService({ REDIS_URL: redisUrl, WECOM_BOTS_FILE: file }, { keyPrefix: prefix });
  });
  afterAll(async () => {
    await node?.stop();
    await dify?.stop();
    await dropPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  const ask = async (bot: typeof shows) => {
    dify.script({ kind: 'frames', frames: thinkingFrames });
    const client = new WecomClient({ baseUrl: node.url, ...bot });
    const sent = await client.text('天气如何');
    return (await client.pollUntilFinished(sent.reply!.stream!.id)).reply.stream.content;
  };

  it('shows the reasoning and the model’s own thinking in closed blocks above the answer', async () => {
    expect(await ask(shows)).toBe('<think>用户问天气，查一下。</think>\n<think>再确认</think>\n今天晴。');
  });

  it('hides both, leaving the answer', async () => {
    expect(await ask(hides)).toBe('今天晴。');
  });

  it('hidden: a tool’s progress stands in the bubble while it runs, then the answer alone', async () => {
    const ids = { conversation_id: 'c2', message_id: 'm2', task_id: 't2' };
    dify.script({
      kind: 'frames',
      frameDelayMs: 400,
      frames: [
        { event: 'agent_thought', ...ids, id: 'a1', tool: '', tool_labels: {} },
        {
          event: 'agent_thought',
          ...ids,
          id: 'a1',
          tool: 'dataset_search',
          tool_labels: { dataset_search: { zh_Hans: '查询知识库' } },
        },
        { event: 'agent_message', ...ids, answer: '查到了：' },
        { event: 'agent_message', ...ids, answer: '周五放假。' },
        { event: 'message_end', ...ids, metadata: {} },
      ],
    });
    const client = new WecomClient({ baseUrl: node.url, ...hides });
    const sent = await client.text('放假吗');
    const done = await client.pollUntilFinished(sent.reply!.stream!.id, { intervalMs: 50 });
    expect(done.reply.stream.content).toBe('查到了：周五放假。');
    expect(done.contents).toContain('正在使用工具：查询知识库…');
  });
});
