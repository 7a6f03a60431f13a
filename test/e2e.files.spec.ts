// An agent's answer with two images from its tools (one repeated in message_end): the finished bubble
// names each with its link under the answer, once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type E2E, startE2E } from './support/e2e.js';

const ids = { conversation_id: 'c1', message_id: 'm1', task_id: 't1' };

describe('an answer with files', () => {
  let e2e: E2E;
  beforeAll(async () => {
    e2e = await startE2E({ name: 'files' });
  });
  afterAll(async () => {
    await e2e?.stop();
  });

  it('shows the answer, then each image and file as a link, once', async () => {
    e2e.dify.script({
      kind: 'frames',
      frames: [
        { event: 'agent_message', ...ids, answer: '两张图表如下。' },
        {
          event: 'message_file',
          ...ids,
          id: 'img-1',
          type: 'image',
          belongs_to: 'assistant',
          url: '/files/tools/1.png?sign=a',
        },
        {
          event: 'message_file',
          ...ids,
          id: 'img-2',
          type: 'image',
          belongs_to: 'assistant',
          url: '/files/tools/2.png?sign=b',
        },
        {
          event: 'message_end',
          ...ids,
          metadata: {},
          files: [{ id: 'img-1', type: 'image', url: '/files/tools/1.png?sign=a' }],
        },
      ],
    });
    const client = e2e.clients[0]!;
    const sent = await client.text('画两张图');
    const done = await client.pollUntilFinished(sent.reply!.stream!.id);
    const origin = new URL(e2e.dify.url).origin;
    expect(done.reply.stream.content).toBe(
      `两张图表如下。\n\n🖼 [图片 1](${origin}/files/tools/1.png?sign=a)\n🖼 [图片 2](${origin}/files/tools/2.png?sign=b)`,
    );
  });
});
