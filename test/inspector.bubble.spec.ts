// The inspector's bubble shows what the WeCom user sees, in headless Chromium: the answer's markdown
// drawn as elements and never as HTML from the answer, `<think>` folded (open and moving while it is
// unclosed), a bubble closed early and what went to the user apart from it; and a stream link opens
// on the stream's header. The streams are seeded into an in-memory store behind the inspector's own
// routes. Skipped, saying so, where /usr/bin/chromium is absent.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Router from '@koa/router';
import Koa from 'koa';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountInspector } from '../src/http/inspector/index.js';
import { silentLogger } from '../src/log.js';
import type { StreamEvent } from '../src/machines/events.js';
import {
  at,
  bubbleClosed,
  completed,
  deliverySent,
  delta,
  difyStarted,
  granted,
  inputRequired,
  opened,
  sampleForm,
} from '../src/machines/specification.js';
import { defaultTexts } from '../src/machines/texts.js';
import { createMemoryStore } from '../src/store/memory.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const title = haveChromium
  ? 'the inspector’s bubble in headless Chromium'
  : `the inspector’s bubble in headless Chromium (SKIPPED: ${CHROMIUM} is absent; install chromium to run it)`;

const TOKEN = 'bubble-inspector-token';
const VIEWPORT = { width: 1440, height: 900 };

/** Everything the bubble draws, an HTML payload among it: none of it may become an element. */
const PAYLOAD = '<img src=x onerror=alert(1)> <script>alert(2)</script>';
const ANSWER_PIECES = [
  '<think>推',
  '理</think>\n',
  '## 结论\n',
  'This is **bold** and *italic*, ',
  'see [the docs](https://example.com/docs?a=1&b=2) ',
  'or [this](javascript:alert(3)).\n\n',
  `${PAYLOAD}\n\n`,
  '```js\nconst ok = 1 < 2;\n```\n',
  '- one\n',
  '  - nested\n',
  '- two\n\n',
  '> quoted\n',
];

/** A stream that thought, then answered `pieces` one delta each, and completed. */
function answered(streamId: string, pieces: string[], query: string): StreamEvent[] {
  const t = Date.now() - 60_000;
  return [
    at(t, opened({ streamId, bot: 'default', userid: 'bubble-user', query })),
    at(t + 10, granted({ id: 'bubble-user' })),
    at(t + 40, difyStarted()),
    ...pieces.map((piece, i) => at(t + 100 + i * 50, delta(piece))),
    at(t + 100 + pieces.length * 50, completed({ total_tokens: 99 })),
  ];
}

/** A stream whose bubble WeCom's window closed after its first piece; the rest went by response_url. */
function closedEarly(streamId: string): StreamEvent[] {
  const t = Date.now() - 30_000;
  return [
    at(t, opened({ streamId, bot: 'default', userid: 'bubble-user', query: '一个很长的问题' })),
    at(t + 10, granted({ id: 'bubble-user' })),
    at(t + 40, difyStarted()),
    at(t + 100, delta('第一部分')),
    at(t + 5_000, { ...bubbleClosed('window', `第一部分${defaultTexts.windowClosed}`), shown: 4 }),
    at(t + 6_000, delta('第二部分')),
    at(t + 6_100, completed()),
    at(t + 6_200, deliverySent(120)),
  ];
}

/** A stream that paused on a form with a payload for a title, after showing an image: card and image. */
function withCardAndImage(streamId: string): StreamEvent[] {
  const t = Date.now() - 20_000;
  return [
    at(t, opened({ streamId, bot: 'default', userid: 'bubble-user', query: '审批' })),
    at(t + 10, granted({ id: 'bubble-user' })),
    at(t + 100, delta('请审批。')),
    at(t + 200, inputRequired(sampleForm({ title: PAYLOAD.slice(0, 26) }))),
  ];
}
function withImages(streamId: string): StreamEvent[] {
  const t = Date.now() - 10_000;
  return [
    at(t, opened({ streamId, bot: 'default', userid: 'bubble-user', query: '画图' })),
    at(t + 10, granted({ id: 'bubble-user' })),
    at(t + 100, delta('图如下。')),
    at(t + 150, {
      type: 'answer.attached',
      at: t + 150,
      files: [
        {
          type: 'image',
          url: 'https://dify.example/files/1.png?sign=a',
          name: 'chart.png',
          shown: true,
          bytes: 68,
        },
      ],
    }),
    at(t + 160, completed()),
  ];
}

// What the test touches in the browser: the tests are checked with Node's types, which have no DOM.
interface InPageElement {
  textContent: string | null;
  open?: boolean;
  getAttribute(name: string): string | null;
}

describe.skipIf(!haveChromium)(title, () => {
  let server: Server;
  let base: string;
  let context: BrowserContext;
  let page: Page;
  let userDataDir: string;
  const dialogs: string[] = [];
  const requests: string[] = [];
  const pageErrors: string[] = [];
  const markdownId = 'bubble-markdown';
  const closedId = 'bubble-closed-early';
  const cardId = 'bubble-with-card';
  const imagesId = 'bubble-with-images';

  beforeAll(async () => {
    const store = createMemoryStore({ ttlSeconds: 3600 });
    await store.append(markdownId, answered(markdownId, ANSWER_PIECES, `${PAYLOAD} 问题`), {
      expectedVersion: 0,
    });
    await store.append(closedId, closedEarly(closedId), { expectedVersion: 0 });
    await store.append(cardId, withCardAndImage(cardId), { expectedVersion: 0 });
    await store.append(imagesId, withImages(imagesId), { expectedVersion: 0 });
    const router = new Router();
    mountInspector(router, { store, logger: silentLogger, token: TOKEN });
    const app = new Koa();
    app.use(router.routes());
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    // playwright-core takes the fresh profile folder itself (it refuses --user-data-dir in `args`).
    userDataDir = mkdtempSync(join(tmpdir(), 'wd-bubble-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: VIEWPORT,
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
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on('request', (request) => requests.push(request.url()));
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
  });

  afterAll(async () => {
    await context?.close();
    await new Promise((resolve) => server?.close(resolve));
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  const pageUrl = (hash = '') => `${base}/inspector?token=${TOKEN}${hash}`;
  const text = async (selector: string) => (await page.locator(selector).textContent()) ?? '';

  /** The renderer itself, as the page imports it: each text's bubble, serialized. */
  async function render(texts: string[]): Promise<string[]> {
    const module = `${base}/inspector/assets/markdown.js?token=${TOKEN}`;
    // A string, not a function: the test runner rewrites `import()` in the test's own code.
    return (await page.evaluate(`(async () => {
      const { renderMarkdown } = await import(${JSON.stringify(module)});
      return ${JSON.stringify(texts)}.map((text) => {
        const div = document.createElement('div');
        div.append(renderMarkdown(text));
        return div.innerHTML;
      });
    })()`)) as string[];
  }

  /** Whether the element is wholly inside the viewport. */
  async function inView(selector: string): Promise<boolean> {
    const box = await page.locator(selector).boundingBox();
    return !!box && box.y >= 0 && box.y + box.height <= VIEWPORT.height;
  }

  it('draws WeCom’s markdown as elements, and anything else as text', async () => {
    await page.goto(pageUrl());
    await page.locator(`#streams tbody tr[data-stream-id="${markdownId}"]`).waitFor();
    const link = (href: string, label: string) =>
      `<a href="${href}" target="_blank" rel="noopener noreferrer">${label}</a>`;
    const cases: [string, string][] = [
      [
        '**bold** and *italic* and __also__',
        '<p><strong>bold</strong> and <em>italic</em> and <strong>also</strong></p>',
      ],
      ['***both***', '<p><strong><em>both</em></strong></p>'],
      ['# One\n### Three', '<h1>One</h1><h3>Three</h3>'],
      ['a line\nthe next\n\na paragraph', '<p>a line<br>the next</p><p>a paragraph</p>'],
      ['`a < b` and ``x ` y``', '<p><code>a &lt; b</code> and <code>x ` y</code></p>'],
      [
        '```python\nif a < b:\n    pass\n```',
        '<pre><code data-lang="python">if a &lt; b:\n    pass</code></pre>',
      ],
      ['```\nstill streaming', '<pre><code>still streaming</code></pre>'],
      ['- a\n  - b\n- c', '<ul><li><p>a</p><ul><li><p>b</p></li></ul></li><li><p>c</p></li></ul>'],
      ['3. three\n4. four', '<ol start="3"><li><p>three</p></li><li><p>four</p></li></ol>'],
      [
        '> one\n>> two\n>>> three',
        '<blockquote><p>one</p><blockquote><p>two</p><blockquote><p>three</p></blockquote></blockquote></blockquote>',
      ],
      [
        '[docs](https://example.com/a?b=1&c=2)',
        `<p>${link('https://example.com/a?b=1&amp;c=2', 'docs')}</p>`,
      ],
      ['see https://example.com/x.', `<p>see ${link('https://example.com/x', 'https://example.com/x')}.</p>`],
      [
        '[x](javascript:alert(1)) [y](/inspector/api/streams)',
        '<p><span class="link-off" title="javascript:alert(1)">x</span> <span class="link-off" title="/inspector/api/streams">y</span></p>',
      ],
      ['![chart](https://example.com/c.png)', `<p>${link('https://example.com/c.png', '🖼 chart')}</p>`],
      [
        '<font color="warning">hot</font> <font color="red">red</font>',
        '<p><span class="font-warning">hot</span> &lt;font color="red"&gt;red&lt;/font&gt;</p>',
      ],
      [
        '| a | b |\n|:--|--:|\n| 1 | 2 |',
        '<table><thead><tr><th class="align-left">a</th><th class="align-right">b</th></tr></thead><tbody><tr><td class="align-left">1</td><td class="align-right">2</td></tr></tbody></table>',
      ],
      ['above\n\n---\nbelow', '<p>above</p><hr><p>below</p>'],
      ['snake_case_name, **unclosed and \\*escaped\\*', '<p>snake_case_name, **unclosed and *escaped*</p>'],
      [PAYLOAD, '<p>&lt;img src=x onerror=alert(1)&gt; &lt;script&gt;alert(2)&lt;/script&gt;</p>'],
      [
        '<think>推理</think>答案',
        '<details class="think"><summary>思考过程</summary><div class="think-body"><p>推理</p></div></details><p>答案</p>',
      ],
      [
        '<think>还在想',
        '<details class="think thinking" open=""><summary>思考过程<span class="thinking-dots" title="思考中"><i></i><i></i><i></i></span></summary><div class="think-body"><p>还在想</p></div></details>',
      ],
    ];
    expect(await render(cases.map(([input]) => input))).toEqual(cases.map(([, html]) => html));
    // A hostile answer cannot exhaust the stack: deep quotes and runs of delimiters still render.
    const [deep, stars] = await render(['>'.repeat(5000), `${'*'.repeat(20_000)}x`]);
    expect(deep).toContain('<blockquote>');
    expect(stars).toContain('x');
  });

  it('shows the answer in the bubble as WeCom does: thinking folded, markdown drawn, HTML as text', async () => {
    await page.goto(pageUrl(`#stream=${markdownId}`));
    await expect.poll(() => text('#stream-id')).toBe(markdownId);
    const bubble = page.locator('#bubble-content');
    await bubble.locator('pre code').waitFor();

    const think = bubble.locator('details.think');
    expect(await think.count()).toBe(1);
    expect(await think.evaluate((d: InPageElement) => d.open)).toBe(false);
    expect(await think.locator('summary').textContent()).toBe('思考过程');
    expect(await think.locator('.think-body').textContent()).toBe('推理');
    expect(await bubble.locator('h2').textContent()).toBe('结论');
    expect(await bubble.locator('strong').allTextContents()).toEqual(['bold']);
    expect(await bubble.locator('em').allTextContents()).toEqual(['italic']);
    const links = await bubble
      .locator('a')
      .evaluateAll((as: InPageElement[]) =>
        as.map((a) => [
          a.getAttribute('href'),
          a.getAttribute('target'),
          a.getAttribute('rel'),
          a.textContent,
        ]),
      );
    expect(links).toEqual([
      ['https://example.com/docs?a=1&b=2', '_blank', 'noopener noreferrer', 'the docs'],
    ]);
    expect(await bubble.locator('.link-off').textContent()).toBe('this');
    expect(await bubble.locator('pre code').textContent()).toBe('const ok = 1 < 2;');
    expect(await bubble.locator(':scope > ul > li').count()).toBe(2);
    expect(await bubble.locator('ul ul > li').textContent()).toBe('nested');
    expect(await bubble.locator('blockquote').textContent()).toBe('quoted');

    // The payload is there, as text; nothing of it became an element, here or in the question.
    expect(await bubble.textContent()).toContain(PAYLOAD);
    expect(await text('#question')).toBe(`${PAYLOAD} 问题`);
    expect(await page.locator('.chat img, .chat script, .chat [onerror]').count()).toBe(0);

    // Unfolded, the thinking block stays so while the page polls the stream: one poll waits for the
    // one before it to be drawn, so the second answer means the first was.
    await think.locator('summary').click();
    await expect.poll(() => think.evaluate((d: InPageElement) => d.open)).toBe(true);
    const polled = (res: { url(): string }) => res.url().endsWith(`/api/streams/${markdownId}`);
    await page.waitForResponse(polled);
    await page.waitForResponse(polled);
    expect(await bubble.locator('details.think').evaluate((d: InPageElement) => d.open)).toBe(true);
    await think.locator('summary').click();
    await expect.poll(() => think.evaluate((d: InPageElement) => d.open)).toBe(false);
  });

  it('shows an unclosed <think> open, with a moving indicator, as WeCom keeps it thinking', async () => {
    // The step after the first delta: `<think>推`.
    await page.locator('#timeline li[data-seq="4"]').click();
    const think = page.locator('#bubble-content details.think');
    await expect.poll(() => think.getAttribute('class')).toBe('think thinking');
    expect(await think.evaluate((d: InPageElement) => d.open)).toBe(true);
    expect(await think.locator('.think-body').textContent()).toBe('推');
    expect(await think.locator('.thinking-dots i').count()).toBe(3);
    const animation = await think
      .locator('.thinking-dots i')
      .first()
      .evaluate(
        (i) =>
          (
            globalThis as unknown as { getComputedStyle(e: unknown): { animationName: string } }
          ).getComputedStyle(i).animationName,
      );
    expect(animation).toBe('think-pulse');

    // Closed at the next step, it folds.
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => think.getAttribute('class')).toBe('think');
    expect(await think.evaluate((d: InPageElement) => d.open)).toBe(false);
  });

  it('shows the closing text of a bubble closed early, and what went to the user apart from it', async () => {
    await page.locator(`#streams tbody tr[data-stream-id="${closedId}"]`).click();
    await expect.poll(() => text('#stream-id')).toBe(closedId);
    await page.locator('#apart').waitFor();
    expect(await text('#bubble-content')).toBe(`第一部分…（回答仍在生成，完整内容稍后单独发送。）`);
    expect(await text('#bubble-closed')).toMatch(
      /closed early at \+5\.\d\d s, WeCom’s polling window was ending, with the text above: it shows the first 4 of 8 characters/,
    );
    expect(await text('#apart-what')).toContain('the rest of the answer, 4 characters after the first 4');
    expect(await text('#apart-status')).toMatch(/^sent at \+6\.\d\d s \(120 bytes by response_url\)$/);

    // Before the window closed there was neither.
    await page.locator('#timeline li[data-seq="4"]').click();
    await expect.poll(() => page.locator('#apart').isHidden()).toBe(true);
    expect(await page.locator('#bubble-closed').isHidden()).toBe(true);
    expect(await text('#bubble-content')).toBe('第一部分');
    // Closed, and owed: the answer is still to come.
    await page.locator('#timeline li[data-seq="5"]').click();
    await expect.poll(() => text('#apart-status')).toBe('to follow once the answer is complete');
  });

  it('shows the card a waiting stream ends with, its buttons drawn, its title as text', async () => {
    await page.goto(pageUrl(`#stream=${cardId}`));
    await expect.poll(() => text('#stream-id')).toBe(cardId);
    await page.locator('#bubble-card').waitFor();
    expect(await text('#step-state')).toBe('waiting');
    expect(await text('#card-title')).toBe(PAYLOAD.slice(0, 26));
    expect(await page.locator('#card-buttons .card-button').allTextContents()).toEqual(['同意', '拒绝']);
    expect(await page.locator('#bubble-card img').count()).toBe(0);
    // Before the pause there was no card.
    await page.locator('#timeline li[data-seq="3"]').click();
    await expect.poll(() => page.locator('#bubble-card').isHidden()).toBe(true);
  });

  it('shows the images a finished bubble carries, by name and size', async () => {
    await page.goto(pageUrl(`#stream=${imagesId}`));
    await expect.poll(() => text('#stream-id')).toBe(imagesId);
    await expect
      .poll(() => page.locator('#bubble-images .image').allTextContents())
      .toEqual(['🖼 chart.png · 68 B']);
    expect(await text('#bubble-content')).toBe('图如下。');
  });

  it('opens a stream link on the stream’s header, not scrolled down to its newest event', async () => {
    for (const hash of [`#stream=${encodeURIComponent(markdownId)}`, `#${markdownId}`]) {
      await page.goto('about:blank');
      await page.goto(pageUrl(hash));
      await expect.poll(() => text('#stream-id')).toBe(markdownId);
      await page.locator('#timeline li.current').waitFor();
      // The page is long enough to scroll: the newest event is below the fold.
      expect(await page.evaluate('document.documentElement.scrollHeight > innerHeight')).toBe(true);
      expect(await inView('#timeline li.current')).toBe(false);
      expect(await inView('#stream-id')).toBe(true);
      expect(await page.evaluate('scrollY')).toBe(0);
    }

    // Scrolled down in one stream, a click on another opens that one at its header.
    await page.evaluate('scrollTo(0, document.documentElement.scrollHeight)');
    await expect.poll(() => inView('#stream-id')).toBe(false);
    await page.locator(`#streams tbody tr[data-stream-id="${closedId}"]`).click();
    await expect.poll(() => text('#stream-id')).toBe(closedId);
    await expect.poll(() => inView('#stream-id')).toBe(true);
    expect(new URL(page.url()).hash).toBe(`#stream=${closedId}`);

    // Stepping with the keys moves the timeline, not the page.
    await page.keyboard.press('Home');
    await page.keyboard.press('End');
    expect(await inView('#stream-id')).toBe(true);
  });

  it('fired no dialog, fetched nothing but its own server, and logged no error', () => {
    expect(dialogs).toEqual([]);
    expect(requests.filter((url) => !url.startsWith(`${base}/`) && url !== 'about:blank')).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
