// An answer with images and files from Dify (a tool's drawings, a workflow's outputs): the finished
// bubble shows the images it can (WeCom's msg_item: base64 and MD5, PNG or JPEG, at most ten, each
// within ANSWER_IMAGE_MAX_BYTES), fetched from the Dify server only; every other file is named under
// the answer with its link, an image with why it is not shown. Never dropped; recorded for replay.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKnown } from '../src/machines/events.js';
import { defaultTexts } from '../src/machines/texts.js';
import { runInProcess } from './support/cliInProcess.js';
import { type E2E, startE2E } from './support/e2e.js';
import { redisUrl } from './support/service.js';

const ids = { conversation_id: 'c1', message_id: 'm1', task_id: 't1' };
/** A real 1×1 PNG, and a JPEG's first bytes: what the bubble can show. */
const png = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  'base64',
);
const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(60, 7)]);
const gif = Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1');
const big = Buffer.concat([png.subarray(0, 8), Buffer.alloc(8192, 1)]);
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

describe('an answer with images and files', () => {
  let e2e: E2E;
  beforeAll(async () => {
    e2e = await startE2E({ name: 'files', env: { ANSWER_IMAGE_MAX_BYTES: '4096' } });
    e2e.dify.serve('/files/tools/1.png', png);
    e2e.dify.serve('/files/tools/2.jpg', jpeg, 'image/jpeg');
    e2e.dify.serve('/files/tools/big.png', big);
    e2e.dify.serve('/files/tools/anim.gif', gif, 'image/gif');
  });
  afterAll(async () => {
    await e2e?.stop();
  });

  it('shows the images it can in the bubble, and names the rest with their links and why', async () => {
    const file = (id: string, type: string, url: string) => ({
      event: 'message_file',
      ...ids,
      id,
      type,
      belongs_to: 'assistant',
      url,
    });
    e2e.dify.script({
      kind: 'frames',
      frames: [
        { event: 'agent_message', ...ids, answer: '图表如下。' },
        file('img-1', 'image', '/files/tools/1.png?sign=a'),
        file('img-2', 'image', '/files/tools/2.jpg?sign=b'),
        file('img-3', 'image', '/files/tools/big.png?sign=c'),
        file('img-4', 'image', '/files/tools/anim.gif?sign=d'),
        file('img-5', 'image', 'https://img.example.com/elsewhere.png'),
        {
          event: 'message_end',
          ...ids,
          metadata: {},
          files: [
            // The first image again: still shown once.
            { id: 'img-1', type: 'image', url: '/files/tools/1.png?sign=a' },
            { id: 'doc-1', type: 'document', filename: '报告.pdf', url: '/files/tools/r.pdf?sign=e' },
          ],
        },
      ],
    });
    const client = e2e.clients[0]!;
    const sent = await client.text('画几张图');
    const id: string = sent.reply!.stream!.id;
    const done = await client.pollUntilFinished(id);
    const origin = new URL(e2e.dify.url).origin;
    const t = defaultTexts.imageNotShown;
    expect(done.reply.stream.content).toBe(
      [
        '图表如下。',
        '',
        `🖼 [图片](${origin}/files/tools/big.png?sign=c)${t.too_large}`,
        `🖼 [图片](${origin}/files/tools/anim.gif?sign=d)${t.format}`,
        '🖼 [图片](https://img.example.com/elsewhere.png)',
        `📎 [报告.pdf](${origin}/files/tools/r.pdf?sign=e)`,
      ].join('\n'),
    );
    expect(done.reply.stream.msg_item).toEqual([
      { msgtype: 'image', image: { base64: png.toString('base64'), md5: md5(png) } },
      { msgtype: 'image', image: { base64: jpeg.toString('base64'), md5: md5(jpeg) } },
    ]);
    // Only the Dify server was asked for files: the image elsewhere was not fetched.
    expect(
      e2e.dify.requests
        .filter((r) => r.path.startsWith('/files/'))
        .map((r) => r.path)
        .sort(),
    ).toEqual(['/files/tools/1.png', '/files/tools/2.jpg', '/files/tools/anim.gif', '/files/tools/big.png']);
    // Recorded: what was shown and what was named, without the bytes.
    const events = (await e2e.nodes[0]!.store.read(id)).map((s) => s.event).filter(isKnown);
    const attached = events.find((ev) => ev.type === 'answer.attached');
    expect(attached).toMatchObject({
      files: [
        { type: 'image', shown: true, bytes: png.length, md5: md5(png) },
        { type: 'image', shown: true, bytes: jpeg.length, md5: md5(jpeg) },
        { type: 'image', shown: false, reason: 'too_large' },
        { type: 'image', shown: false, reason: 'format' },
        { type: 'image', shown: false, reason: 'foreign' },
        { type: 'file', shown: false, name: '报告.pdf' },
      ],
    });
    expect(JSON.stringify(attached)).not.toContain(png.toString('base64'));
    // And replay says so.
    const { stdout } = await runInProcess(['replay', id], {
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: e2e.prefix,
    });
    expect(stdout).toMatch(
      /answer\.attached .* shows 2 images \(\d+ B, 64 B\) · names image \(too_large\), image \(format\), image \(foreign\), file "报告\.pdf"/,
    );
    expect(stdout).toContain(
      'the bubble shows 2 image(s); names 4 file(s) with a link (too_large, format, foreign)',
    );
  });

  it('names an image Dify cannot give (gone, or too slow) instead of dropping it', async () => {
    e2e.dify.script({
      kind: 'frames',
      frames: [
        { event: 'message', ...ids, answer: '见图。' },
        {
          event: 'message_file',
          ...ids,
          id: 'x',
          type: 'image',
          belongs_to: 'assistant',
          url: '/files/gone.png',
        },
        { event: 'message_end', ...ids, metadata: {} },
      ],
    });
    const client = e2e.clients[0]!;
    const sent = await client.text('再画一张');
    const done = await client.pollUntilFinished(sent.reply!.stream!.id);
    const origin = new URL(e2e.dify.url).origin;
    expect(done.reply.stream.content).toBe(
      `见图。\n\n🖼 [图片](${origin}/files/gone.png)${defaultTexts.imageNotShown.failed}`,
    );
    expect(done.reply.stream.msg_item).toBeUndefined();
  });
});
