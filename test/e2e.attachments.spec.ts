// What users send besides text (docs/protocol/wecom.md §6, §7): an image, a file, a mixed message
// and a quote. WeCom's download links answer with the file encrypted under the bot's key and expire
// after five minutes; the service downloads, decrypts and uploads them to Dify, and asks with them.
import { createCipheriv, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultTexts } from '../src/machines/texts.js';
import { type E2E, startE2E } from './support/e2e.js';
import type { FakeDify } from './support/fakeDify.js';
import { type TestService, testBot } from './support/service.js';
import type { WecomClient } from './support/wecomClient.js';

const f = defaultTexts.failures;

/** WeCom's media encryption (§7.1): the callback key, IV = key[0:16], PKCS#7 to 32 bytes, no framing. */
function encryptMedia(data: Buffer): Buffer {
  const key = Buffer.from(`${testBot.encodingAESKey}=`, 'base64');
  const pad = 32 - (data.length % 32);
  const cipher = createCipheriv('aes-256-cbc', key, key.subarray(0, 16)).setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.concat([data, Buffer.alloc(pad, pad)])), cipher.final()]);
}

const png = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), randomBytes(3000)]);
const pdf = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(5000)]);

describe('images, files and quotes reach Dify', () => {
  let e: E2E;
  let dify: FakeDify;
  let service: TestService;
  let wecom: WecomClient;
  let media: Server;
  let mediaUrl: string;

  beforeAll(async () => {
    // A stand-in for WeCom's media download: encrypted bytes; a missing name is an expired link.
    media = createServer((req, res) => {
      if (req.url === '/image') res.end(encryptMedia(png));
      else if (req.url === '/report') {
        res.setHeader(
          'content-disposition',
          `attachment; filename*=UTF-8''${encodeURIComponent('季度报告.pdf')}`,
        );
        res.end(encryptMedia(pdf));
      } else {
        res.statusCode = 404;
        res.end('expired');
      }
    });
    await new Promise<void>((resolve) => media.listen(0, '127.0.0.1', resolve));
    mediaUrl = `http://127.0.0.1:${(media.address() as AddressInfo).port}`;
    e = await startE2E({ name: 'media' });
    ({ dify } = e);
    service = e.nodes[0]!;
    wecom = e.clients[0]!;
  });
  afterAll(async () => {
    await e?.stop();
    await new Promise((resolve) => media?.close(resolve));
  });

  const uploads = () => dify.requests.filter((r) => r.path === '/v1/files/upload');
  const lastRun = () => dify.runs().at(-1)!.body as Record<string, unknown>;

  it('an image alone: decrypted, uploaded for the user, and asked about', async () => {
    dify.setDefault({ kind: 'answer', text: '这是一张图片。' });
    const before = uploads().length;
    const sent = await wecom.message(
      { msgtype: 'image', image: { url: `${mediaUrl}/image` } },
      { userid: 'img-user' },
    );
    const { reply } = await wecom.pollUntilFinished(sent.reply.stream.id, { intervalMs: 50 });
    expect(reply.stream.content).toBe('这是一张图片。');
    const upload = uploads()[before]!;
    expect(upload.rawBytes.includes(png)).toBe(true);
    expect(upload.rawBody).toMatch(/name="user"\r\n\r\nimg-user/);
    expect(upload.rawBody).toMatch(/filename="image\.png"/);
    expect(lastRun()).toMatchObject({
      query: defaultTexts.imageQuestion,
      user: 'img-user',
      files: [{ type: 'image', transfer_method: 'local_file' }],
    });
    const files = lastRun().files as Array<{ upload_file_id: string }>;
    expect(files[0]!.upload_file_id).toMatch(/^[0-9a-f-]{36}$/);
    const types = (await service.store.read(sent.reply.stream.id)).map((e) => e.event.type);
    expect(types).toContain('files.uploaded');
  });

  it('a group mixed message: its text without the mention, with its image', async () => {
    const sent = await wecom.message(
      {
        msgtype: 'mixed',
        mixed: {
          msg_item: [
            { msgtype: 'text', text: { content: '@助手 这张图里是什么？' } },
            { msgtype: 'image', image: { url: `${mediaUrl}/image` } },
          ],
        },
      },
      { userid: 'mixed-user', chatid: 'chat-mixed' },
    );
    await wecom.pollUntilFinished(sent.reply.stream.id, { intervalMs: 50 });
    expect(lastRun()).toMatchObject({ query: '这张图里是什么？', files: [{ type: 'image' }] });
  });

  it('a file keeps its name and goes as a document', async () => {
    const before = uploads().length;
    const sent = await wecom.message(
      { msgtype: 'file', file: { url: `${mediaUrl}/report` } },
      { userid: 'file-user' },
    );
    await wecom.pollUntilFinished(sent.reply.stream.id, { intervalMs: 50 });
    expect(uploads()[before]!.rawBytes.includes(pdf)).toBe(true);
    expect(uploads()[before]!.rawBody).toContain('季度报告.pdf');
    expect(lastRun()).toMatchObject({ query: defaultTexts.fileQuestion, files: [{ type: 'document' }] });
  });

  it('an expired link: the user is asked to send it again, and Dify is not asked', async () => {
    const runs = dify.runs().length;
    const sent = await wecom.message({ msgtype: 'image', image: { url: `${mediaUrl}/gone` } });
    const { reply } = await wecom.pollUntilFinished(sent.reply.stream.id, { intervalMs: 50 });
    expect(reply.stream.content).toBe(f.attachment_failed);
    expect(dify.runs().length).toBe(runs);
  });

  it('a file Dify does not take: the user is told plainly', async () => {
    dify.script({ kind: 'error', status: 415, code: 'unsupported_file_type', message: '' }, 'upload');
    const sent = await wecom.message({ msgtype: 'file', file: { url: `${mediaUrl}/report` } });
    const { reply } = await wecom.pollUntilFinished(sent.reply.stream.id, { intervalMs: 50 });
    expect(reply.stream.content).toBe(f.attachment_unsupported);
  });

  it('a quoted message is context for the question', async () => {
    const sent = await wecom.message(
      {
        msgtype: 'text',
        text: { content: '这段是什么意思？' },
        quote: { msgtype: 'text', text: { content: '上善若水。\n水善利万物而不争。' } },
      },
      { userid: 'quote-user2' },
    );
    await wecom.pollUntilFinished(sent.reply.stream.id, { intervalMs: 50 });
    expect(lastRun().query).toBe('> 上善若水。\n> 水善利万物而不争。\n\n这段是什么意思？');
  });
});
