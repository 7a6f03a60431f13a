// The README is part of the product: its settings table names every setting the service reads, and
// nothing else, and its commands exist.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { commandUsage } from '../src/cli/usage.js';
import { settingNames } from '../src/config.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const guide = readFileSync(new URL('../docs/operations.md', import.meta.url), 'utf8');
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  scripts: Record<string, string>;
};

/** The names in the first column of a document's settings table (`A` / `B` rows name two). */
function settingsIn(doc: string, heading: string): string[] {
  const start = doc.indexOf(heading);
  const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
  return section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .flatMap((line) => [...(line.split('|')[1] ?? '').matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]!));
}

describe('README', () => {
  it('lists every setting, and only the settings there are', () => {
    expect(settingsIn(readme, '## Settings').sort()).toEqual([...settingNames].sort());
  });

  it('names npm scripts that exist: demo, start, test, bench, soak', () => {
    for (const script of ['demo', 'start', 'test', 'bench', 'soak']) {
      expect(readme).toContain(`npm ${script === 'test' || script === 'start' ? '' : 'run '}${script}`);
      expect(pkg.scripts[script]).toBeDefined();
    }
  });

  it('shows only commands the wecom-dify command has', () => {
    const named = [...readme.matchAll(/`wecom-dify (\w+)/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(5);
    for (const command of named) expect(Object.keys(commandUsage)).toContain(command);
  });
});

describe('the operator\u2019s guide (docs/operations.md)', () => {
  it('lists every setting, and only the settings there are', () => {
    expect(settingsIn(guide, '## 4. Settings').sort()).toEqual([...settingNames].sort());
  });

  it('shows only commands the wecom-dify command has', () => {
    for (const m of guide.matchAll(/`wecom-dify (\w+)/g)) expect(Object.keys(commandUsage)).toContain(m[1]);
  });
});
