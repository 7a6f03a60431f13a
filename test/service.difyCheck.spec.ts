// At start the service asks Dify for its app (GET /info) and says what it found in the log: the app's
// name and mode, or one warning naming the URL and the problem (unreachable, a refused key). Either
// way the service starts and is ready: Dify is not its dependency to be up, only to answer.
import { afterAll, describe, expect, it } from 'vitest';
import { closedPort } from './auth/support.js';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { logLines } from './support/logLines.js';
import { startTestService, type TestService } from './support/service.js';

type Line = Record<string, unknown>;

const started: TestService[] = [];
const difys: FakeDify[] = [];
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
  await Promise.all(difys.map((d) => d.stop()));
});

/** A service on the given Dify, its log lines collected as they come. */
async function serviceOn(env: Record<string, string>) {
  const { lines, sink } = logLines<Line>();
  const service = await startTestService({ LOG_LEVEL: 'info', ...env }, { logTo: sink });
  started.push(service);
  const about = () => lines.find((l) => typeof l.msg === 'string' && /^dify/.test(l.msg));
  await expect.poll(about, { timeout: 15_000 }).toBeDefined();
  expect((await fetch(`${service.url}/readyz`)).status).toBe(200);
  return about()!;
}

describe('the Dify check at start', () => {
  it('logs the app’s name and mode when Dify answers', async () => {
    const dify = await startFakeDify({ apiKey: 'app-right-key' });
    difys.push(dify);
    const line = await serviceOn({ DIFY_API_URL: dify.url, DIFY_API_KEY: 'app-right-key' });
    expect(line).toMatchObject({
      level: 30,
      msg: 'dify app found',
      app: 'Fake Dify app',
      mode: 'advanced-chat',
    });
    expect(line.dify).toBe(dify.url);
  });

  it('warns in one line, naming the URL, when Dify refuses the key', async () => {
    const dify = await startFakeDify({ apiKey: 'app-right-key' });
    difys.push(dify);
    const line = await serviceOn({ DIFY_API_URL: dify.url, DIFY_API_KEY: 'app-wrong-key' });
    expect(line).toMatchObject({ level: 40, code: 'unauthorized', status: 401 });
    expect(line.msg).toBe(
      `dify: Dify at ${dify.url} refused the API key (401 unauthorized): DIFY_API_KEY is wrong, or belongs to another Dify`,
    );
    expect(JSON.stringify(line)).not.toContain('app-wrong-key');
  });

  it('warns in one line, naming the URL, when Dify cannot be reached', async () => {
    const url = `http://127.0.0.1:${await closedPort()}/v1`;
    const line = await serviceOn({ DIFY_API_URL: url });
    expect(line).toMatchObject({ level: 40, code: 'unreachable' });
    expect(line.msg).toMatch(new RegExp(`^dify: cannot reach Dify at ${url}: .*ECONNREFUSED`));
  });
});
