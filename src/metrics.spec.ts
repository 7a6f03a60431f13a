// What /metrics shows of a bot before anything happened to it: its rate-limit counter with both
// scopes at 0, its takeovers and streams at 0, so that a rate over them is defined (and an alert on
// it can fire) before the first refusal.
import { describe, expect, it } from 'vitest';
import { announceBot, createMetrics } from './metrics.js';

describe('metrics', () => {
  it('expose each bot’s wecom_dify_rate_limited_total for both scopes from when it is served, counting by scope', async () => {
    const metrics = createMetrics({ defaults: false });
    announceBot(metrics, 'hr');
    announceBot(metrics, 'it');
    const text = await metrics.registry.metrics();
    expect(text).toContain('# TYPE wecom_dify_rate_limited_total counter');
    for (const bot of ['hr', 'it']) {
      expect(text).toContain(`wecom_dify_rate_limited_total{bot="${bot}",scope="user"} 0`);
      expect(text).toContain(`wecom_dify_rate_limited_total{bot="${bot}",scope="conversation"} 0`);
      expect(text).toContain(`wecom_dify_takeovers_total{bot="${bot}"} 0`);
    }
    metrics.rateLimited.inc({ bot: 'hr', scope: 'conversation' });
    const after = await metrics.registry.metrics();
    expect(after).toContain('wecom_dify_rate_limited_total{bot="hr",scope="conversation"} 1');
    expect(after).toContain('wecom_dify_rate_limited_total{bot="it",scope="conversation"} 0');
  });

  it('count callbacks and polls by bot', async () => {
    const metrics = createMetrics({ defaults: false });
    metrics.countCallback('hr', 'stream', 'polled');
    metrics.countCallback('hr', 'stream', 'polled');
    metrics.countCallback('', 'unparsed', 'rejected:bad_signature');
    metrics.observePoll('hr', 0.002);
    const text = await metrics.registry.metrics();
    expect(text).toContain('wecom_dify_callbacks_total{bot="hr",msgtype="stream",outcome="polled"} 2');
    expect(text).toContain(
      'wecom_dify_callbacks_total{bot="",msgtype="unparsed",outcome="rejected:bad_signature"} 1',
    );
    expect(text).toContain('wecom_dify_poll_duration_seconds_count{bot="hr"} 1');
  });
});
