// What an operator sees: /metrics moves after a real message through HTTP, its labels never carry a
// user, message or stream id, and /readyz follows Redis going away and coming back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { type RedisServer, startRedisServer } from './support/redisServer.js';
import { startTestService, type TestService, testBot } from './support/service.js';
import { randomMsgid, WecomClient } from './support/wecomClient.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

describe('metrics and readiness', () => {
  let redis: RedisServer;
  let dify: FakeDify;
  let service: TestService;
  let wecom: WecomClient;

  beforeAll(async () => {
    redis = await startRedisServer();
    dify = await startFakeDify();
    service = await startTestService({
      REDIS_URL: `redis://127.0.0.1:${redis.port}`,
      DIFY_API_URL: dify.url,
      WECOM_BOT_ID: testBot.botId,
    });
    wecom = new WecomClient({ baseUrl: service.url, ...testBot });
  });
  afterAll(async () => {
    await service?.stop();
    await dify?.stop();
    await redis?.dispose();
  });

  const scrape = async () => {
    const res = await fetch(`${service.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    return parse(await res.text());
  };
  const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
    samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);

  it('appear and move after a real message, and carry no user, message or stream id', async () => {
    const before = await scrape();
    expect(value(before, 'wecom_dify_streams_opened_total')).toBe(0);
    expect(before.some((s) => s.name.startsWith('process_'))).toBe(true);
    expect(before.some((s) => s.name.startsWith('nodejs_eventloop_lag'))).toBe(true);

    const userid = 'metrics-user-7f3a';
    const msgid = randomMsgid();
    dify.script([
      { kind: 'answer', text: '指标测试的回答', frameDelayMs: 20 },
      { kind: 'error', status: 400, code: 'provider_quota_exceeded' },
    ]);
    const sent = await wecom.text('指标', { userid, msgid });
    const streamId: string = sent.reply.stream.id;
    await wecom.text('指标', { userid, msgid }); // WeCom's retry
    await wecom.pollUntilFinished(streamId, { intervalMs: 30 });
    const failed = await wecom.text('额度', { userid });
    await wecom.pollUntilFinished(failed.reply.stream.id, { intervalMs: 30 });
    await wecom.event('enter_chat', {}, { userid });
    await expect.poll(async () => value(await scrape(), 'wecom_dify_streams_finished_total')).toBe(2);

    const after = await scrape();
    expect(value(after, 'wecom_dify_callbacks_total', { msgtype: 'text', outcome: 'accepted' })).toBe(2);
    expect(value(after, 'wecom_dify_callbacks_total', { msgtype: 'text', outcome: 'duplicate' })).toBe(1);
    expect(
      value(after, 'wecom_dify_callbacks_total', { msgtype: 'stream', outcome: 'polled' }),
    ).toBeGreaterThan(1);
    expect(value(after, 'wecom_dify_callbacks_total', { msgtype: 'event', outcome: 'welcomed' })).toBe(1);
    expect(value(after, 'wecom_dify_dedup_hits_total')).toBe(1);
    expect(value(after, 'wecom_dify_streams_opened_total')).toBe(2);
    expect(value(after, 'wecom_dify_streams_finished_total', { state: 'completed' })).toBe(1);
    expect(value(after, 'wecom_dify_streams_finished_total', { state: 'error' })).toBe(1);
    expect(value(after, 'wecom_dify_dify_errors_total', { code: 'provider_quota_exceeded' })).toBe(1);
    expect(value(after, 'wecom_dify_first_token_seconds_count')).toBe(1);
    expect(value(after, 'wecom_dify_completion_seconds_count')).toBe(1);
    expect(value(after, 'wecom_dify_poll_duration_seconds_count')).toBeGreaterThan(1);
    expect(value(after, 'wecom_dify_inflight_answers')).toBe(0);

    // Low cardinality: no label anywhere names the user, the message or the stream.
    const labelValues = after.flatMap((s) => Object.values(s.labels));
    for (const id of [userid, msgid, streamId]) expect(labelValues.some((v) => v.includes(id))).toBe(false);
    const ours = after.filter((s) => s.name.startsWith('wecom_dify_'));
    for (const s of ours)
      for (const v of Object.values(s.labels)) expect(v).toMatch(/^[a-z_0-9.+]+$|^\+Inf$/);
  });

  it('a hostile callback is counted as rejected', async () => {
    const before = value(await scrape(), 'wecom_dify_callbacks_total', { outcome: 'rejected' });
    const res = await wecom.postRaw('msg_signature=0&timestamp=1&nonce=2', '{"encrypt":"AAAA"}');
    expect(res.status).toBe(401);
    expect(value(await scrape(), 'wecom_dify_callbacks_total', { outcome: 'rejected' })).toBe(before + 1);
  });

  it('/readyz turns false when Redis is stopped, names the store, and turns true when it is back', async () => {
    const ok = await fetch(`${service.url}/readyz`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ status: 'ready', checks: { store: 'ok' } });

    await redis.stop();
    try {
      const down = await fetch(`${service.url}/readyz`);
      expect(down.status).toBe(503);
      const body = (await down.json()) as { checks: { store: string } };
      expect(body.checks.store).toMatch(/^failed/);
      // The process itself is fine: liveness stays green, so nothing restarts it for Redis's sake.
      expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
      const errorsBefore = value(await scrape(), 'wecom_dify_callbacks_total', { outcome: 'error' });
      expect((await wecom.text('Redis 停了')).status).toBe(503);
      const after = await scrape();
      expect(value(after, 'wecom_dify_callbacks_total', { outcome: 'error' })).toBe(errorsBefore + 1);
      expect(value(after, 'wecom_dify_store_errors_total', { op: 'accept' })).toBeGreaterThan(0);
    } finally {
      await redis.start();
    }
    await expect
      .poll(async () => (await fetch(`${service.url}/readyz`)).status, { timeout: 10_000, interval: 200 })
      .toBe(200);
  });
});
