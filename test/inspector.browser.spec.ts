// The inspector in a real browser: headless Chromium driven by playwright-core against the real
// service (INSPECTOR=1, in-memory store), with a stream created by a real WeCom message answered by
// the fake Dify. Loads the list, opens the stream, checks the chart, steps through the events, and
// keeps a screenshot. Skipped, saying so, where /usr/bin/chromium is absent.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { streamMachine } from '../src/machines/streamMachine.js';
import { defaultTexts } from '../src/machines/texts.js';
import { type FakeDify, startFakeDify } from './support/fakeDify.js';
import { startTestService, type TestService, testBot } from './support/service.js';
import { WecomClient } from './support/wecomClient.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const title = haveChromium
  ? 'the inspector in headless Chromium'
  : `the inspector in headless Chromium (SKIPPED: ${CHROMIUM} is absent; install chromium to run it)`;

const TOKEN = 'browser-inspector-token';
const PIECES = ['Hello ', 'from the ', 'fake Dify: ', 'this answer ', 'grows ', 'piece by piece.'];
const ANSWER = PIECES.join('');
const screenshotPath = join('test-results', 'inspector.png');

// What the test touches of the page's elements, in the browser: the tests are checked with Node's
// types, which have no DOM.
interface InPageElement {
  textContent: string | null;
  getAttribute(name: string): string | null;
}
interface RangeInput {
  value: string;
  dispatchEvent(event: Event): boolean;
}

describe.skipIf(!haveChromium)(title, () => {
  let dify: FakeDify;
  let service: TestService;
  let wecom: WecomClient;
  let context: BrowserContext;
  let page: Page;
  let userDataDir: string;
  let streamId: string;
  const requests: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    dify = await startFakeDify();
    dify.setDefault({ kind: 'answer', pieces: PIECES, frameDelayMs: 60 });
    // Flushing every few ms keeps each piece its own `answer.delta`, so there is a growth to step through.
    service = await startTestService(
      { INSPECTOR: '1', INSPECTOR_TOKEN: TOKEN, DIFY_API_URL: dify.url, WECOM_BOT_ID: testBot.botId },
      { pieces: { flushMs: 5 } },
    );
    wecom = new WecomClient({ baseUrl: service.url, ...testBot });
    const sent = await wecom.text('What does the inspector show?', { userid: 'inspector-user' });
    expect(sent.status).toBe(200);
    streamId = sent.reply.stream.id;
    const outcome = await wecom.pollUntilFinished(streamId, { intervalMs: 50, userid: 'inspector-user' });
    expect(outcome.reply.stream.content).toBe(ANSWER);

    // playwright-core takes the fresh profile folder itself (it refuses --user-data-dir in `args`).
    userDataDir = mkdtempSync(join(tmpdir(), 'wd-inspector-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1440, height: 1000 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('request', (request) => requests.push(request.url()));
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
  });

  afterAll(async () => {
    await context?.close();
    await service?.stop();
    await dify?.stop();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  const text = async (selector: string) => (await page.locator(selector).textContent()) ?? '';
  const shown = async () => ({
    state: await text('#step-state'),
    content: await text('#bubble-content'),
    finish: await text('#bubble-finish'),
    current: await page.locator('#chart .node.current').getAttribute('data-state'),
  });

  it('lists the stream, and a new one appears without a reload', async () => {
    await page.goto(`${service.url}/inspector?token=${TOKEN}`);
    const row = page.locator(`#streams tbody tr[data-stream-id="${streamId}"]`);
    await row.waitFor();
    await expect.poll(() => row.textContent()).toMatch(/inspector-user.*completed/);
    // A deployment without a bots file serves one bot, `default`.
    expect(await row.locator('td.bot').textContent()).toBe('default');
    // The owner hands its lease back once the answer is complete.
    await expect.poll(() => row.locator('td').last().textContent()).toBe('–');

    const second = await wecom.text('And a second question?', { userid: 'second-user' });
    const secondRow = page.locator(`#streams tbody tr[data-stream-id="${second.reply.stream.id}"]`);
    await secondRow.waitFor({ timeout: 5000 });
    expect(await secondRow.textContent()).toContain('second-user');
    await wecom.pollUntilFinished(second.reply.stream.id, { intervalMs: 50, userid: 'second-user' });
  });

  it('shows one bot’s streams when the page names it, and every bot’s once “all bots” is picked', async () => {
    await page.goto(`${service.url}/inspector?token=${TOKEN}&bot=other`);
    await expect.poll(() => page.locator('#empty').textContent()).toBe('No streams of bot other yet.');
    expect(await page.locator('#empty').isVisible()).toBe(true);
    expect(await page.locator('#streams tbody tr').count()).toBe(0);
    expect(await page.locator('#bot-filter').inputValue()).toBe('other');

    await page.locator('#bot-filter').selectOption({ label: 'all bots' });
    await page.locator(`#streams tbody tr[data-stream-id="${streamId}"]`).waitFor();
    expect(new URL(page.url()).searchParams.has('bot')).toBe(false);
    // The bots the list has shown are the filter's choices.
    await expect
      .poll(() => page.locator('#bot-filter option').allTextContents())
      .toEqual(['all bots', 'default', 'other']);
  });

  it('opens the stream: its chart has every state of the machine, the current one highlighted', async () => {
    await page.locator(`#streams tbody tr[data-stream-id="${streamId}"]`).click();
    await page.locator('#timeline li').first().waitFor();
    expect(await text('#stream-id')).toBe(streamId);
    // The link names the stream, and the page opens on its header.
    expect(new URL(page.url()).hash).toBe(`#stream=${encodeURIComponent(streamId)}`);
    expect(await page.evaluate('scrollY')).toBe(0);
    expect(await page.locator('#stream-id').isVisible()).toBe(true);
    expect(await text('#stream-meta')).toContain('bot default · user inspector-user');
    const drawn = await page
      .locator('#chart .node')
      .evaluateAll((nodes: InPageElement[]) => nodes.map((n) => n.getAttribute('data-state')));
    // Every state a stream can be in has its box; the running ones are framed by their group.
    expect(drawn.sort()).toEqual([
      'authenticating',
      'completed',
      'error',
      'idle',
      'queued',
      'streaming',
      'thinking',
      'waiting',
    ]);
    const groups = await page
      .locator('#chart .group')
      .evaluateAll((nodes: InPageElement[]) => nodes.map((n) => n.getAttribute('data-group')));
    expect(groups).toEqual(Object.keys(streamMachine.root.states).filter((s) => s === 'running'));
    expect(await page.locator('#chart .node.current').count()).toBe(1);
    // It opens on the newest event.
    expect(await shown()).toEqual({
      state: 'completed',
      content: ANSWER,
      finish: 'finish: true',
      current: 'completed',
    });
    expect(await page.locator('#chart .edge.taken').getAttribute('data-from')).toBe('streaming');
    expect(await text('#question')).toBe('What does the inspector show?');
  });

  it('steps back and forth with the buttons, the arrow keys and the slider', async () => {
    const count = await page.locator('#timeline li').count();
    expect(count).toBeGreaterThanOrEqual(6);

    await page.locator('#step-prev').click();
    expect(await shown()).toEqual({
      state: 'streaming',
      content: ANSWER,
      finish: 'finish: false',
      current: 'streaming',
    });

    await page.keyboard.press('Home');
    expect(await shown()).toEqual({
      state: 'authenticating',
      content: defaultTexts.authenticating,
      finish: 'finish: false',
      current: 'authenticating',
    });
    expect(await page.locator('#step-prev').isDisabled()).toBe(true);
    await page.keyboard.press('ArrowRight');
    expect(await shown()).toMatchObject({
      state: 'thinking',
      content: defaultTexts.thinking,
      current: 'thinking',
    });

    // Forward to the end: the bubble only grows, a prefix of the answer at each step, then finishes.
    const seen: string[] = [];
    for (let i = 2; i < count; i++) {
      await page.locator('#step-next').click();
      const now = await shown();
      expect(now.current).toBe(now.state);
      if (now.state === 'streaming') seen.push(now.content);
    }
    expect(seen.length).toBeGreaterThanOrEqual(2);
    for (const [i, content] of seen.entries()) {
      expect(ANSWER.startsWith(content)).toBe(true);
      if (i > 0) expect(content.length).toBeGreaterThanOrEqual(seen[i - 1]!.length);
    }
    expect(seen[0]!.length).toBeLessThan(ANSWER.length);
    expect(await shown()).toMatchObject({ state: 'completed', content: ANSWER, finish: 'finish: true' });
    expect(await page.locator('#step-next').isDisabled()).toBe(true);

    await page.keyboard.press('ArrowLeft');
    expect((await shown()).state).toBe('streaming');

    // The slider: the first delta is the first step in `streaming` with the first piece shown.
    const firstDelta = await page
      .locator('#timeline li')
      .evaluateAll((items: InPageElement[]) =>
        items.findIndex((li) => li.textContent?.includes('→ streaming')),
      );
    expect(firstDelta).toBeGreaterThan(1);
    await page.locator('#step-slider').evaluate((input: RangeInput, value) => {
      input.value = String(value);
      input.dispatchEvent(new Event('input', { bubbles: true }));
    }, firstDelta);
    const atDelta = await shown();
    expect(atDelta).toMatchObject({ state: 'streaming', current: 'streaming', finish: 'finish: false' });
    expect(atDelta.content.length).toBeGreaterThan(0);
    expect(ANSWER.startsWith(atDelta.content)).toBe(true);
    expect(await text('#step-count')).toMatch(new RegExp(`^step ${firstDelta + 1} of ${count}`));
    expect(await page.locator('#timeline li.current').getAttribute('data-seq')).toBe(String(firstDelta + 1));
    const taken = page.locator('#chart .edge.taken');
    expect([await taken.getAttribute('data-from'), await taken.getAttribute('data-to')]).toEqual([
      'thinking',
      'streaming',
    ]);
  });

  it('looks right in a screenshot, and fetched nothing but its own server', async () => {
    // One step on into the stream, so that the picture shows a bubble mid-answer.
    await page.keyboard.press('ArrowRight');
    await mkdir('test-results', { recursive: true });
    await page.screenshot({ path: screenshotPath, fullPage: true });
    const png = readFileSync(screenshotPath);
    expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(
      true,
    );
    expect(png.readUInt32BE(16)).toBe(1440);
    expect(png.readUInt32BE(20)).toBeGreaterThan(600);
    expect(png.length).toBeGreaterThan(30_000);

    expect(requests.length).toBeGreaterThan(3);
    expect(requests.filter((url) => !url.startsWith(`${service.url}/`) && !url.startsWith('data:'))).toEqual(
      [],
    );
    expect(pageErrors).toEqual([]);
  });
});
