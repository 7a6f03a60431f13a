// The test suite itself: a test that asserts nothing, or only that nothing threw, passes whatever the
// code does. Every test here must reach an assertion about an outcome.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findUnassertedTests } from './support/assertions.js';

const root = new URL('..', import.meta.url).pathname;

describe('the test suite', () => {
  it('has no test that asserts nothing, or only that nothing throws', () => {
    const found = findUnassertedTests(root, ['test', 'src']).map(
      (f) => `${f.file}:${f.line} ${f.problem}: ${f.name}`,
    );
    expect(found).toEqual([]);
  });
});

describe('finding tests that cannot fail', () => {
  const dir = mkdtempSync(join(tmpdir(), 'assertions-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const findIn = (files: Record<string, string>): string[] => {
    const at = mkdtempSync(join(dir, 'case-'));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(at, name), text);
    return findUnassertedTests(at, ['.']).map((f) => `${f.name}: ${f.problem}`);
  };

  it('finds a test with no assertion, and one that only says nothing threw', () => {
    const found = findIn({
      'a.spec.ts': `import { expect, it } from 'vitest';
        it('does the work', async () => { await work(); }, 5_000);
        it('says nothing threw', () => { expect(() => work()).not.toThrow(); });
        it('resolves', async () => { await expect(work()).resolves.not.toThrow(); });
        it('asserts', () => { expect(work()).toBe(1); });
        it.skip('is skipped', () => {});
        function work() { return 1; }`,
    });
    expect(found).toEqual([
      'does the work: no assertion',
      'says nothing threw: only asserts that nothing throws',
      'resolves: only asserts that nothing throws',
    ]);
  });

  it('follows helpers in the file and in files imported by relative path, but not merely defined ones', () => {
    const found = findIn({
      'helper.ts': `import { expect } from 'vitest';
        export async function expectAnswer(x: number) { expect(x).toBe(1); }
        export function check(x: number) { return { then() { expect(x).toBe(1); } }; }
        export const noCheck = (x: number) => x;`,
      'b.spec.ts': `import { it } from 'vitest';
        import { check, expectAnswer, noCheck } from './helper.js';
        const local = () => expectAnswer(1);
        it('asserts through an imported helper', async () => { await expectAnswer(1); });
        it('asserts through a local one', () => local());
        it('asserts in a callback', () => [1].forEach((x) => { check(x).then(); }));
        it('calls only a helper that asserts nothing', () => { noCheck(1); });
        it('only builds a checker', () => { check(1); });`,
    });
    expect(found).toEqual([
      'calls only a helper that asserts nothing: no assertion',
      'only builds a checker: no assertion',
    ]);
  });
});
