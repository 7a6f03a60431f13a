// A signed callback proves WeCom sent it, not when: a captured one sent again after its msgid's dedup
// expired would be answered, and Dify asked, again. Its `timestamp` must be within
// CALLBACK_MAX_SKEW_SECONDS of the node's clock, and how far off it is shows in the metrics and the
// logs before a skewed clock starts refusing real traffic.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { logLines } from './support/logLines.js';
import {
  dropPrefix,
  randomPrefix,
  redisUrl,
  startTestService,
  type TestService,
  testBot,
} from './support/service.js';
import { randomMsgid, WecomClient } from './support/wecomClient.js';

type Line = Record<string, unknown>;

const now = () => Math.floor(Date.now() / 1000);
/** A timestamp `seconds` before now (after it when negative). */
const ago = (seconds: number) => String(now() - seconds);

describe('the timestamp of a signed callback', () => {
  const prefix = randomPrefix('freshness');
  const { lines, sink } = logLines<Line>();
  let dify: FakeDify;
  let service: TestService;
  let wecom: WecomClient;

  beforeAll(async () => {
    dify = await startFakeDify();
    service = await startTestService(
      { REDIS_URL: redisUrl, DIFY_API_URL: dify.url, WECOM_BOT_ID: testBot.botId, LOG_LEVEL: 'info' },
      { keyPrefix: prefix, logTo: sink },
    );
    wecom = new WecomClient({ baseUrl: service.url, ...testBot });
  });
  afterAll(async () => {
    await service?.stop();
    await dify?.stop();
    await dropPrefix(prefix);
  });

  const skewGauge = async (): Promise<number> => {
    const text = await (await fetch(`${service.url}/metrics`)).text();
    const value = /^wecom_dify_callback_clock_skew_seconds (\S+)$/m.exec(text)?.[1];
    if (value === undefined) throw new Error('no wecom_dify_callback_clock_skew_seconds in /metrics');
    return Number(value);
  };

  it('1 or 9999999999 is refused with 401: no reply, the msgid not taken, Dify never asked', async () => {
    const msgid = randomMsgid();
    for (const timestamp of ['1', '9999999999']) {
      const replayed = await wecom.text('再答一遍', { msgid, userid: 'replayed', timestamp });
      expect(replayed.status).toBe(401);
      expect(replayed.raw).toBe('stale timestamp');
      expect(replayed.reply).toBeUndefined();
    }
    // The refusals say how far off the timestamps were, in seconds.
    const refusals = lines.filter((l) => l.code === 'stale_timestamp');
    expect(refusals).toHaveLength(2);
    expect(refusals[0]).toMatchObject({ level: 40, status: 401 });
    expect(String(refusals[0]?.msg)).toMatch(/timestamp 1 is \d{10} s in the past \(tolerance 300 s\)/);
    expect(String(refusals[1]?.msg)).toMatch(/timestamp 9999999999 is \d+ s in the future/);

    // The same message, fresh, is new to the node: the refused ones left nothing behind.
    const fresh = await wecom.text('再答一遍', { msgid, userid: 'replayed' });
    expect(fresh.status).toBe(200);
    await wecom.pollUntilFinished(fresh.reply.stream.id, { userid: 'replayed', intervalMs: 50 });
    const outcomes = lines.filter((l) => l.msg === 'callback').map((l) => l.outcome);
    expect(outcomes.filter((o) => o === 'rejected:stale_timestamp')).toHaveLength(2);
    expect(lines.filter((l) => l.msg === 'callback' && l.msgid === msgid).map((l) => l.outcome)).toEqual([
      'accepted',
    ]);
    expect(dify.runs().filter((r) => (r.body as { user?: string })?.user?.includes('replayed'))).toHaveLength(
      1,
    );
  });

  it('the URL check is held to it too', async () => {
    for (const timestamp of ['1', '9999999999']) {
      const check = await wecom.verifyUrl('1616140317555161061', { timestamp });
      expect(check.status).toBe(401);
      expect(check.body).toBe('stale timestamp');
    }
    const check = await wecom.verifyUrl('1616140317555161061', { timestamp: ago(30) });
    expect(check).toMatchObject({ status: 200, body: '1616140317555161061' });
  });

  it('within the tolerance, either way, it is accepted, and the skew shows in /metrics', async () => {
    const behind = await wecom.event('enter_chat', {}, { userid: 'skewed', timestamp: ago(100) });
    expect(behind.status).toBe(200);
    expect(behind.reply).toMatchObject({ msgtype: 'text' });
    const seen = await skewGauge();
    expect(seen).toBeGreaterThanOrEqual(99);
    expect(seen).toBeLessThan(103);

    const ahead = await wecom.poll('no-such-stream', { userid: 'skewed', timestamp: ago(-60) });
    expect(ahead.status).toBe(200);
    const now = await skewGauge();
    expect(now).toBeGreaterThan(-61);
    expect(now).toBeLessThan(-57);
  });

  it('past half the tolerance a warning names the skew, at most once a minute', async () => {
    const warnings = () => lines.filter((l) => String(l.msg).startsWith('callback clock skew'));
    expect(warnings()).toHaveLength(0);
    for (let i = 0; i < 3; i++) {
      const late = await wecom.event('enter_chat', {}, { userid: 'skewed', timestamp: ago(200) });
      expect(late.status).toBe(200);
    }
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatchObject({ level: 40, maxSkewSeconds: 300 });
    expect(warnings()[0]?.skewSeconds).toBeGreaterThanOrEqual(199);
  });

  it('every callback line names the bot', async () => {
    await wecom.event('enter_chat', {}, { userid: 'named' });
    const line = lines.find((l) => l.msg === 'callback' && l.userid === 'named');
    expect(line).toMatchObject({ aibotid: testBot.botId, outcome: 'welcomed' });
  });
});

describe('CALLBACK_MAX_SKEW_SECONDS', () => {
  const required = { WECOM_TOKEN: 't', WECOM_ENCODING_AES_KEY: testBot.encodingAESKey, DIFY_API_KEY: 'k' };

  it('is 300 s by default', () => {
    const result = parseConfig(required);
    expect(result.ok && result.config.wecom.maxSkewSeconds).toBe(300);
  });

  it('may not pass the dedup window (STREAM_TTL_SECONDS): a replay is refused or deduplicated', () => {
    const over = parseConfig({ ...required, CALLBACK_MAX_SKEW_SECONDS: '600', STREAM_TTL_SECONDS: '300' });
    expect(over.ok).toBe(false);
    if (!over.ok)
      expect(over.problems.join('\n')).toMatch(/^CALLBACK_MAX_SKEW_SECONDS: .*STREAM_TTL_SECONDS/m);
    const equal = parseConfig({ ...required, CALLBACK_MAX_SKEW_SECONDS: '300', STREAM_TTL_SECONDS: '300' });
    expect(equal.ok).toBe(true);
  });
});
