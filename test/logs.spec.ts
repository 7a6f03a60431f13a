// What an operator reads: one JSON line per callback (a poll answered as usual only at debug) and one
// per stream outcome, each with the stream id, the msgid, the user and durations; never a secret, never
// the user's words at info level.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { logLines } from './support/logLines.js';
import { type ResponseUrlReceiver, startResponseUrlReceiver } from './support/responseUrl.js';
import {
  dropPrefix,
  randomPrefix,
  redisUrl,
  startTestService,
  type TestService,
  testBot,
} from './support/service.js';
import { WecomClient } from './support/wecomClient.js';

type Line = Record<string, unknown>;

describe('logs', () => {
  const prefix = randomPrefix('logs');
  const { lines, sink, raw } = logLines<Line>();
  let dify: FakeDify;
  let receiver: ResponseUrlReceiver;
  let service: TestService;
  let wecom: WecomClient;
  const secretQuestion = '我的工资条密码是 hunter2-秘密';

  beforeAll(async () => {
    dify = await startFakeDify();
    receiver = await startResponseUrlReceiver();
    service = await startTestService(
      {
        REDIS_URL: redisUrl,
        DIFY_API_URL: dify.url,
        DIFY_API_KEY: 'app-SECRETKEY0123456789',
        WECOM_BOT_ID: testBot.botId,
        LOG_LEVEL: 'info',
        STREAM_WINDOW_SECONDS: '5',
        WINDOW_MARGIN_SECONDS: '2',
      },
      { keyPrefix: prefix, logTo: sink },
    );
    wecom = new WecomClient({ baseUrl: service.url, ...testBot });
  });
  afterAll(async () => {
    await service?.stop();
    await Promise.all([dify?.stop(), receiver?.stop()]);
    await dropPrefix(prefix);
  });

  it('one line per message and one per outcome, with ids and durations, and no secret or question', async () => {
    dify.script({ kind: 'answer', pieces: ['答案', '很长', '很慢', '终于', '完了'], frameDelayMs: 900 });
    const responseUrl = receiver.url();
    const sent = await wecom.text(secretQuestion, { userid: 'log-user', responseUrl });
    const streamId: string = sent.reply.stream.id;
    await wecom.pollUntilFinished(streamId, { intervalMs: 200, userid: 'log-user' });
    await expect
      .poll(() => lines.some((l) => l.msg === 'stream outcome' && l.streamId === streamId), {
        timeout: 10_000,
      })
      .toBe(true);

    const callbacks = lines.filter((l) => l.msg === 'callback' && l.streamId === streamId);
    const accepted = callbacks.find((l) => l.outcome === 'accepted')!;
    expect(accepted).toMatchObject({ msgid: sent.msgid, userid: 'log-user', msgtype: 'text' });
    expect(typeof accepted.durationMs).toBe('number');
    // The answer took several polls; answered as usual, they are lines at `debug` only (http.callbackLog.spec).
    expect(callbacks.filter((l) => l.msgtype === 'stream')).toEqual([]);

    const outcome = lines.find((l) => l.msg === 'stream outcome' && l.streamId === streamId)!;
    expect(outcome).toMatchObject({
      msgid: sent.msgid,
      userid: 'log-user',
      state: 'completed',
      delivery: 'sent',
    });
    expect(typeof outcome.durationMs).toBe('number');
    expect(typeof outcome.firstTextMs).toBe('number');

    for (const secret of [
      secretQuestion,
      'hunter2',
      testBot.token,
      testBot.encodingAESKey,
      'app-SECRETKEY0123456789',
    ])
      expect(raw()).not.toContain(secret);
    expect(raw()).not.toContain(responseUrl);
  }, 20_000);
});
