// WeCom played by the official @wecom/crypto package against the real service over HTTP:
// URL verification, a message, a poll, events, and every kind of hostile input.
import { decrypt, encrypt, getSignature } from '@wecom/crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  dropPrefix,
  randomPrefix,
  redisUrl,
  startTestService,
  type TestService,
  testBot,
} from './support/service.js';
import { WecomClient } from './support/wecomClient.js';

describe('the WeCom callback over HTTP', () => {
  const prefix = randomPrefix('callback');
  let service: TestService;
  let wecom: WecomClient;

  beforeAll(async () => {
    service = await startTestService(
      { REDIS_URL: redisUrl, WECOM_BOT_ID: testBot.botId },
      { keyPrefix: prefix },
    );
    wecom = new WecomClient({ baseUrl: service.url, ...testBot });
  });
  afterAll(async () => {
    await service?.stop();
    await dropPrefix(prefix);
  });

  const signedQuery = (
    encrypted: string,
    nonce = 'nonce123',
    timestamp = String(Math.floor(Date.now() / 1000)),
  ) =>
    new URLSearchParams({
      msg_signature: getSignature(testBot.token, timestamp, nonce, encrypted),
      timestamp,
      nonce,
    }).toString();

  const post = (query: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${service.url}/wecom/callback?${query}`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', ...headers },
    });

  it('answers URL verification with the bare echostr plaintext', async () => {
    const result = await wecom.verifyUrl('1616140317555161061');
    expect(result.status).toBe(200);
    expect(result.body).toBe('1616140317555161061');
  });

  it('refuses URL verification with a wrong signature', async () => {
    const echostr = encrypt(testBot.encodingAESKey, '123', '');
    const query = new URLSearchParams({ msg_signature: 'f'.repeat(40), timestamp: '1', nonce: '2', echostr });
    const res = await fetch(`${service.url}/wecom/callback?${query}`);
    expect(res.status).toBe(401);
    expect(await res.text()).not.toMatch(/at .*\.ts/);
  });

  it('answers a text message at once with a stream placeholder, encrypted with the callback nonce', async () => {
    const nonce = 'n-' + Math.random().toString(36).slice(2);
    const timestamp = String(Math.floor(Date.now() / 1000));
    const plaintext = JSON.stringify({
      msgid: `m-${Date.now()}`,
      aibotid: testBot.botId,
      chattype: 'single',
      from: { userid: 'zhangsan' },
      response_url: 'https://example.invalid/r',
      msgtype: 'text',
      text: { content: '你好' },
    });
    const encrypted = encrypt(testBot.encodingAESKey, plaintext, '');
    const res = await post(signedQuery(encrypted, nonce, timestamp), JSON.stringify({ encrypt: encrypted }));
    expect(res.status).toBe(200);
    const envelope = JSON.parse(await res.text());
    expect(envelope.nonce).toBe(nonce);
    expect(envelope.msgsignature).toBe(
      getSignature(testBot.token, String(envelope.timestamp), envelope.nonce, envelope.encrypt),
    );
    const reply = JSON.parse(decrypt(testBot.encodingAESKey, envelope.encrypt).message);
    expect(reply.msgtype).toBe('stream');
    expect(reply.stream.id).toMatch(/^[\w-]{16,}$/);
    expect(reply.stream.finish).toBe(false);
    expect(reply.stream.content.trim().length).toBeGreaterThan(0);
  });

  it('answers a poll for an unknown stream with finish:true and an expiry notice', async () => {
    const reply = await wecom.poll('no-such-stream', { userid: 'zhangsan' });
    expect(reply.reply.stream).toMatchObject({ id: 'no-such-stream', finish: true });
    expect(reply.reply.stream.content).toContain('过期');
  });

  it('answers a poll for an id no stream can have (braces, huge) the same way, not with an error', async () => {
    for (const id of ['{x}', 'a}b{c', 'x'.repeat(5000)]) {
      const reply = await wecom.poll(id, { userid: 'zhangsan' });
      expect(reply.status).toBe(200);
      expect(reply.reply.stream).toMatchObject({ id, finish: true });
    }
  });

  it('welcomes a user who opens the chat with the configured text', async () => {
    const result = await wecom.event('enter_chat', {}, { userid: 'zhangsan' });
    expect(result.status).toBe(200);
    expect(result.reply).toEqual({ msgtype: 'text', text: { content: service.config.bots[0]!.welcomeText } });
  });

  it('answers a feedback event with an empty reply', async () => {
    const result = await wecom.event('feedback_event', { id: 'F1', type: 1 }, { userid: 'zhangsan' });
    expect(result.status).toBe(200);
    expect(result.reply).toEqual({});
  });

  it('answers an unknown message type harmlessly', async () => {
    const result = await wecom.send({
      msgid: `m-${Date.now()}-x`,
      aibotid: testBot.botId,
      chattype: 'single',
      from: { userid: 'zhangsan' },
      msgtype: 'hologram',
      hologram: { depth: 3 },
    });
    expect(result.status).toBe(200);
    expect(result.reply).toEqual({});
  });

  describe('hostile input gets a 4xx, no stack, and the service keeps serving', () => {
    const valid = () => {
      const plaintext = JSON.stringify({
        msgid: `m-${Math.random()}`,
        aibotid: testBot.botId,
        chattype: 'single',
        from: { userid: 'u1' },
        msgtype: 'text',
        text: { content: 'hi' },
      });
      return encrypt(testBot.encodingAESKey, plaintext, '');
    };
    const cases: [string, () => Promise<Response>, number][] = [
      [
        'a wrong signature',
        () => {
          const e = valid();
          return post(`msg_signature=${'0'.repeat(40)}&timestamp=1&nonce=2`, JSON.stringify({ encrypt: e }));
        },
        401,
      ],
      ['missing query parameters', () => post('', JSON.stringify({ encrypt: valid() })), 400],
      [
        'a tampered ciphertext',
        () => {
          const e = valid();
          const bytes = Buffer.from(e, 'base64');
          bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
          const tampered = bytes.toString('base64');
          return post(signedQuery(tampered), JSON.stringify({ encrypt: tampered }));
        },
        400,
      ],
      ['a body that is not JSON', () => post(signedQuery('x'), 'this is not json'), 400],
      ['a body without encrypt', () => post(signedQuery('x'), JSON.stringify({ hello: 1 })), 400],
      [
        'a body over 1 MiB',
        () => {
          const big = 'A'.repeat(2 * 1024 * 1024);
          return post(signedQuery(big), JSON.stringify({ encrypt: big }));
        },
        413,
      ],
      [
        'plaintext JSON that lacks fields',
        () => {
          const e = encrypt(testBot.encodingAESKey, JSON.stringify({ msgtype: 'text' }), '');
          return post(signedQuery(e), JSON.stringify({ encrypt: e }));
        },
        400,
      ],
      [
        'plaintext that is not JSON',
        () => {
          const e = encrypt(testBot.encodingAESKey, 'not json at all', '');
          return post(signedQuery(e), JSON.stringify({ encrypt: e }));
        },
        400,
      ],
      [
        'an aibotid other than WECOM_BOT_ID',
        () => {
          const e = encrypt(
            testBot.encodingAESKey,
            JSON.stringify({
              msgid: 'm-other-bot',
              aibotid: 'SOMEONE_ELSE',
              chattype: 'single',
              from: { userid: 'u1' },
              msgtype: 'text',
              text: { content: 'hi' },
            }),
            '',
          );
          return post(signedQuery(e), JSON.stringify({ encrypt: e }));
        },
        403,
      ],
    ];
    for (const [name, send, status] of cases) {
      it(`${name} → ${status}`, async () => {
        const res = await send();
        expect(res.status).toBe(status);
        const text = await res.text();
        expect(text).not.toMatch(/\n\s+at /);
        expect(text.length).toBeLessThan(200);
        // Still serving.
        const health = await fetch(`${service.url}/healthz`);
        expect(health.status).toBe(200);
      });
    }
  });

  it('reports readiness of the store', async () => {
    const res = await fetch(`${service.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ready', checks: { store: 'ok' } });
  });
});
