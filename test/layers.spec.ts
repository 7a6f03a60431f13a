// The layering (docs/design-notes.md, "Layers") is a lint rule in biome.json: this runs Biome with that
// configuration on one-line files placed in each folder, and checks which imports it refuses. A
// pattern that stopped matching would let every import through; this notices.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const biome = join(root, 'node_modules', '.bin', 'biome');

/** [the importing file, what it imports, whether the layering allows it] */
const cases: [string, string, boolean][] = [
  ['src/machines/a.ts', './fold.js', true],
  ['src/machines/b.ts', '../store/port.js', false],
  ['src/machines/c.ts', '../config.js', false],
  ['src/diagnosis/a.ts', '../machines/index.js', false],
  ['src/demo/a.ts', '../config.js', false],
  ['src/a.ts', './log.js', true],
  ['src/b.ts', './store/port.js', false],
  ['src/c.ts', './machines/texts.js', true],
  ['src/wecom/a.ts', '../outbound.js', true],
  ['src/wecom/b.ts', '../store/port.js', false],
  ['src/dify/a.ts', '../machines/index.js', false],
  ['src/limits/a.ts', '../config.js', true],
  ['src/auth/a.ts', '../machines/events.js', true],
  ['src/auth/b.ts', '../store/port.js', false],
  ['src/auth/c.ts', '../cli/table.js', false],
  ['src/store/a.ts', '../machines/index.js', true],
  ['src/store/b.ts', '../runner/lease.js', false],
  ['src/runner/a.ts', '../store/port.js', true],
  ['src/runner/b.ts', '../auth/index.js', true],
  ['src/runner/c.ts', '../http/app.js', false],
  ['src/runner/d.ts', '../service.js', false],
  ['src/http/a.ts', '../runner/runner.js', true],
  ['src/http/b.ts', '../dify/index.js', false],
  ['src/http/inspector/a.ts', '../../diagnosis/stuck.js', true],
  ['src/http/inspector/b.ts', '../../cli/table.js', false],
  ['src/bots/a.ts', '../dify/index.js', true],
  ['src/bots/b.ts', '../http/app.js', false],
  ['src/bots/c.ts', '../service.js', false],
  ['src/longConnection/a.ts', '../runner/runner.js', true],
  ['src/longConnection/b.ts', '../http/app.js', false],
  ['src/longConnection/c.ts', '../dify/index.js', false],
  ['src/cli/a.ts', '../service.js', true],
  ['src/cli/b.ts', '../runner/runner.js', true],
  ['src/cli/c.ts', '../http/inspector/index.js', false],
  ['src/service.ts', './cli/main.js', false],
  ['src/cli/d.spec.ts', '../../test/support/cliRun.js', false],
  ['src/limits/b.spec.ts', '../../test/support/redisKeys.js', false],
];

let dir: string;
let refused: Set<string>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wd-layers-'));
  copyFileSync(join(root, 'biome.json'), join(dir, 'biome.json'));
  for (const [file, from] of cases) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), `export * from '${from}';\n`);
  }
  // Biome exits 1 when it finds something, which is the point: read its report either way.
  const run = await promisify(execFile)(biome, ['lint', '--reporter=json', '--max-diagnostics=none', '.'], {
    cwd: dir,
  }).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
  const report = JSON.parse(run.stdout) as {
    diagnostics: { category: string; location: { path: string } }[];
  };
  refused = new Set(
    report.diagnostics
      .filter((d) => d.category === 'lint/style/noRestrictedImports')
      .map((d) => d.location.path),
  );
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the layering lint rule', () => {
  it.each(cases)('%s importing %s: allowed %s', (file, _from, allowed) => {
    expect(refused.has(file)).toBe(!allowed);
  });
});
