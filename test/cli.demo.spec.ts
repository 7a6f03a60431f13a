// `wecom-dify demo` (`npm run demo`) as a child process: with no settings and no external service it
// starts, prints the inspector's address, answers a scripted question through the whole loop, and
// exits cleanly: after --say, at EOF, and when told to with SIGTERM. Every command it prints runs as
// printed, pasted into a terminal in the checkout.
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { demoAnswer, demoForm, demoSuggestions } from '../src/demo/script.js';
import { root, spawnCli } from './support/cli.js';
import { runCli, tempCwd } from './support/cliRun.js';
import { runLine } from './support/shell.js';

const cwd = tempCwd('demo');
// Settings that would break `serve`: the demo builds its own and reads none of these.
writeFileSync(
  join(cwd.dir, '.env'),
  'WECOM_ENCODING_AES_KEY=bad\nREDIS_URL=redis://127.0.0.1:1\nDIFY_API_URL=http://127.0.0.1:9/v1\n',
);
const npmCache = tempCwd('demo-npm-cache');
afterAll(() => {
  cwd.remove();
  npmCache.remove();
});

const inspectorLine = /inspector {3}(http:\/\/127\.0\.0\.1:(\d+))\/inspector/;

describe('wecom-dify demo', { timeout: 90_000 }, () => {
  it('answers one scripted question via --say, prints the inspector address, and exits 0', async () => {
    const { code, stdout, stderr } = await runCli(['demo', '--port', '0', '--say', '你好'], { cwd: cwd.dir });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(inspectorLine);
    expect(stdout).toContain('you › 你好');
    expect(stdout).toContain(demoAnswer('你好'));
    expect(stdout).toMatch(/\(finished in \S+, \d+ polls?, stream \S+\)/);
    // The questions the stand-in suggests, as the buttons under the answer.
    expect(stdout).toContain(`[你可能还想问] ${demoSuggestions.map((q, i) => `⟦${i + 1} ${q}⟧`).join(' ')}`);
    expect(stdout.trimEnd().endsWith('demo: stopping')).toBe(true);
  });

  it('shows buttons: an approval pauses on a form, and /click 1 answers it', async () => {
    const { code, stdout, stderr } = await runCli(
      ['demo', '--port', '0', '--say', '帮我审批一份报销单', '--say', '/click 1', '--say', '/click 2'],
      { cwd: cwd.dir },
    );
    expect(code).toBe(1);
    expect(stdout).toContain(`${demoForm.before}\n\n${demoForm.content}`);
    expect(stdout).toMatch(/\[报销审批 · 请在 [^\]]+\] ⟦1 提交⟧ ⟦2 作废⟧/);
    expect(stdout).toContain('(the card now reads) [报销审批 · demo-user 选择了「提交」] ⟦1 提交⟧');
    expect(stdout).toContain(`bot › ${demoForm.after('submit')}`);
    // The card now holds the choice alone: no second button, and the run is not resumed again.
    expect(stderr).toContain("no button 2 on the last answer's card");
    expect(stdout).not.toContain(demoForm.after('discard'));
  });

  it('falls back to a free port when the one asked for is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const { code, stdout, stderr } = await runCli(['demo', '--port', String(port), '--say', 'inspector?'], {
        cwd: cwd.dir,
      });
      expect(code).toBe(0);
      expect(stderr).toBe(`wecom-dify: demo: port ${port} is taken; using a free one\n`);
      expect(Number(inspectorLine.exec(stdout)?.[2])).not.toBe(port);
      expect(stdout).toContain(demoAnswer('inspector?'));
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it('reads questions from standard input and exits 0 at EOF', async () => {
    const { code, stdout } = await runCli(['demo', '--port', '0'], { cwd: cwd.dir, input: 'hello\n' });
    expect(code).toBe(0);
    expect(stdout).toContain('you › hello');
    expect(stdout).toContain(demoAnswer('hello'));
  });

  it('serves until SIGTERM, even in the middle of an answer, then closes everything and exits 0', async () => {
    const child = spawnCli(['demo', '--port', '0'], { cwd: cwd.dir, env: {} });
    let stdout = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const seen = (what: (out: string) => boolean) =>
      new Promise<void>((resolve, reject) => {
        const check = () => (what(stdout) ? resolve() : undefined);
        child.stdout.on('data', check);
        child.on('exit', () => reject(new Error(`demo exited early: ${stdout}`)));
        check();
      });
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    await seen((out) => out.includes('Type a question'));
    const base = inspectorLine.exec(stdout)?.[1];
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    // Stdin stays open: only the signal ends this demo.
    child.stdin.write('你好\n');
    await seen((out) => out.includes('bot › '));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout).toContain('demo: stopping');
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });

  it('the commands it prints run as printed in the checkout: chat against it, and replay of its streams', async () => {
    const child = spawnCli(['demo', '--port', '0'], { cwd: cwd.dir, env: {} });
    let stdout = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const seen = (pattern: RegExp) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${pattern} in 30 s: ${stdout}`)), 30_000);
        const check = () => {
          const match = pattern.exec(stdout);
          if (!match) return;
          clearTimeout(timer);
          resolve(match);
        };
        child.stdout.on('data', check);
        child.on('exit', () => reject(new Error(`demo exited early: ${stdout}`)));
        check();
      });
    try {
      const chatLine = (await seen(/from another terminal: (npx wecom-dify chat [^\n]+)\n/))[1]!;
      child.stdin.write('你好\n');
      const [, replayLine, streamId] = await seen(/replay it: (npx wecom-dify replay (\S+) --url \S+)\n/);

      const replay = await runLine(replayLine!, { cwd: root, npmCache: npmCache.dir });
      expect(replay.stderr).toBe('');
      expect(replay.code).toBe(0);
      expect(replay.stdout).toContain(`stream ${streamId} · demo-user asked "你好"`);
      expect(replay.stdout).toContain('final state: completed');

      const chat = await runLine(`${chatLine} --say hello`, { cwd: root, npmCache: npmCache.dir });
      expect(chat.code).toBe(0);
      expect(chat.stdout).toContain(demoAnswer('hello'));
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
