// What /metrics shows before anything happened: the rate-limit counter with both scopes at 0, so
// that a rate over it is defined (and an alert on it can fire) before the first refusal.
import { describe, expect, it } from 'vitest';
import { createMetrics } from './metrics.js';

describe('metrics', () => {
  it('expose wecom_dify_rate_limited_total for both scopes from the start, counting by scope', async () => {
    const metrics = createMetrics({ defaults: false });
    const text = await metrics.registry.metrics();
    expect(text).toContain('# TYPE wecom_dify_rate_limited_total counter');
    expect(text).toContain('wecom_dify_rate_limited_total{scope="user"} 0');
    expect(text).toContain('wecom_dify_rate_limited_total{scope="conversation"} 0');
    metrics.rateLimited.inc({ scope: 'conversation' });
    expect(await metrics.registry.metrics()).toContain(
      'wecom_dify_rate_limited_total{scope="conversation"} 1',
    );
  });
});
