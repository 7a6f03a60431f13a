// The README is part of the product: its settings table names every setting the service reads, and
// nothing else, its commands exist, and the bots files it shows are ones the service takes.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseBotsFile } from '../src/botsFile.js';
import { commandUsage } from '../src/cli/usage.js';
import { botDefaultsOf, settingNames } from '../src/config.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const guide = readFileSync(new URL('../docs/operations.md', import.meta.url), 'utf8');
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  scripts: Record<string, string>;
};

/** The text of a document's `## ` section, from its heading to the next (or the end). */
function sectionOf(doc: string, heading: string): string {
  const start = doc.indexOf(heading);
  if (start < 0) throw new Error(`no section ${heading}`);
  const end = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, end < 0 ? undefined : end);
}

/** The names in the first column of a document's settings table (`A` / `B` rows name two). */
function settingsIn(doc: string, heading: string): string[] {
  return sectionOf(doc, heading)
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .flatMap((line) => [...(line.split('|')[1] ?? '').matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]!));
}

/** The synopses of a command's usage: each `wecom-dify …` line with the option lines under it. */
function synopses(usage: string): string[] {
  const found: string[] = [];
  for (const line of usage.split('\n')) {
    if (line.startsWith('wecom-dify ')) found.push(line.split(/\s{2,}/)[0]!);
    else if (/^\s+\[/.test(line) && found.length > 0) found.push(`${found.pop()!} ${line.trim()}`);
  }
  return found.map((s) => s.replace(/\s+/g, ' ').trim());
}

/** The bots files a document shows: its YAML blocks that start with `bots:`. */
const botsFilesIn = (doc: string) => [...doc.matchAll(/```yaml\n(bots:\n[\s\S]*?)```/g)].map((m) => m[1]!);

/** The bot settings of an environment that sets none: the defaults. */
const botDefaults = botDefaultsOf({});

/** A bots file parsed with every variable it names set to a value of the right shape. */
function parseShownBotsFile(text: string) {
  const names = [...text.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]!);
  const env = Object.fromEntries(names.map((n) => [n, 'A'.repeat(43)]));
  return parseBotsFile(text, env, botDefaults, {
    mysqlUrl: 'mysql://u:p@db:3306/wecom_dify',
    authApiUrl: 'https://auth.example.com/token',
  });
}

/** Problems of a bots file, with every variable it names set to a value of the right shape. */
function botsFileProblems(text: string): string[] {
  const result = parseShownBotsFile(text);
  return result.ok ? [] : result.problems;
}

/** The modes of the bots of each bots file a document shows. */
const modesIn = (doc: string) =>
  botsFilesIn(doc).map((file) => {
    const result = parseShownBotsFile(file);
    return result.ok ? result.bots.map((b) => b.mode) : [];
  });
const mixesModes = (modes: string[]) => modes.includes('callback') && modes.includes('long-connection');

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

  it('its bots file is one the service takes', () => {
    const files = botsFilesIn(readme);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) expect(botsFileProblems(file)).toEqual([]);
  });

  it('shows a bots file that mixes a callback bot and a long-connection bot', () => {
    expect(modesIn(readme).some(mixesModes)).toBe(true);
  });
});

describe('the operator\u2019s guide (docs/operations.md)', () => {
  it('lists every setting, and only the settings there are', () => {
    expect(settingsIn(guide, '## 4. Settings').sort()).toEqual([...settingNames].sort());
  });

  it('shows only commands the wecom-dify command has', () => {
    for (const m of guide.matchAll(/`wecom-dify (\w+)/g)) expect(Object.keys(commandUsage)).toContain(m[1]);
  });

  it('its command reference gives every command as its usage does', () => {
    // A `|` inside a table cell is written `\|`.
    const reference = sectionOf(guide, '## 16. Command reference')
      .replaceAll('\\|', '|')
      .replace(/[ \t]+/g, ' ');
    const missing = Object.values(commandUsage)
      .flatMap(synopses)
      .filter((synopsis) => !reference.includes(`\`${synopsis}\``));
    expect(missing).toEqual([]);
  });

  it('its bots files are ones the service takes', () => {
    const files = botsFilesIn(guide);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) expect(botsFileProblems(file)).toEqual([]);
  });

  it('shows a bots file that mixes a callback bot and a long-connection bot', () => {
    expect(modesIn(guide).some(mixesModes)).toBe(true);
  });
});

// The repository stands alone: what it needs of the protocols is in docs/protocol/, and nothing in it
// points at notes, designs or issue trackers outside it. The test data kept beside the repository
// (../shared/fixtures) is the one outside path allowed: tests read it, and skip when it is absent.

const root = new URL('../', import.meta.url);
const checkedRoots = [
  'src',
  'test',
  'bench',
  'docs',
  'deploy',
  'scripts',
  'README.md',
  'Dockerfile',
  'docker-compose.yml',
];

/** Every text file under the checked roots, as a path relative to the repository. */
function checkedFiles(): string[] {
  const files: string[] = [];
  for (const top of checkedRoots) {
    const path = fileURLToPath(new URL(top, root));
    if (!existsSync(path)) continue;
    if (!statSync(path).isDirectory()) files.push(top);
    else
      for (const entry of readdirSync(path, { recursive: true, withFileTypes: true }))
        if (entry.isFile()) files.push(relative(fileURLToPath(root), join(entry.parentPath, entry.name)));
  }
  return files.map((f) => f.split(sep).join('/')).sort();
}

const read = (file: string): string => readFileSync(new URL(file, root), 'utf8');

/** What may not be cited: the patterns are written so that this file does not match them itself. */
const outsideCitations: Array<{ what: string; pattern: RegExp }> = [
  {
    what: 'a reference note outside the repository',
    pattern: /(?<![\w-])reference\/|\b(?:wecom-aibot|dify-api)\.md/,
  },
  { what: 'the design file outside the repository', pattern: /\bDESIGN\.md/ },
  { what: 'an issue number', pattern: /\bissues? #?\d+|\bissue ["\u201c]|\bI#\d+/i },
  {
    what: 'a path in ../shared other than its fixtures',
    pattern: /\.\.\/shared\/(?!fixtures\b)/,
  },
];

/** The `## N.` and `### N.M` sections of a protocol note. */
function sectionsOf(note: string): Set<string> {
  const sections = new Set<string>();
  for (const m of note.matchAll(/^## (\d+)\. |^### (\d+\.\d+) /gm)) sections.add((m[1] ?? m[2])!);
  return sections;
}

const notes = ['wecom', 'dify'] as const;
type Note = (typeof notes)[number];
const noteSections = new Map<Note, Set<string>>(
  notes.map((n) => [n, sectionsOf(read(`docs/protocol/${n}.md`))] as const),
);

const mentionPattern = /\bprotocol\/(wecom|dify)\.md/g;
const sectionPattern = /§(\d+(?:\.\d+)?)(?:\s*[–-]\s*§?(\d+(?:\.\d+)?))?/g;

interface Citation {
  where: string;
  text: string;
  /** The note it means; undefined when the file names none. */
  note: Note | undefined;
  /** The note's name stands right before the `§` (`docs/protocol/wecom.md §5.3`). */
  direct: boolean;
  sections: string[];
}

/**
 * The `§` citations of a file, each resolved to the note it means: the note named nearest before it,
 * else the first one the file names after it; in a note itself, that note.
 */
function citationsIn(file: string, text: string): Citation[] {
  const mentions = [...text.matchAll(mentionPattern)].map((m) => ({
    end: m.index + m[0].length,
    note: m[1] as Note,
  }));
  const own = /^docs\/protocol\/(wecom|dify)\.md$/.exec(file)?.[1] as Note | undefined;
  return [...text.matchAll(sectionPattern)].map((m) => {
    const before = mentions.filter((x) => x.end <= m.index).at(-1);
    return {
      where: `${file}:${text.slice(0, m.index).split('\n').length}`,
      text: m[0],
      note: own ?? before?.note ?? mentions[0]?.note,
      direct: before !== undefined && text.slice(before.end, m.index).trim() === '',
      sections: m[2] ? [m[1]!, m[2]] : [m[1]!],
    };
  });
}

describe('the repository stands alone', () => {
  const files = checkedFiles();

  it('finds the files it checks', () => {
    expect(files).toContain('README.md');
    expect(files).toContain('docs/protocol/wecom.md');
    expect(files.filter((f) => f.startsWith('src/')).length).toBeGreaterThan(20);
  });

  it('cites no note, design or issue outside it, and no shared path but the fixtures', () => {
    const found: string[] = [];
    for (const file of files) {
      read(file)
        .split('\n')
        .forEach((line, i) => {
          for (const { what, pattern } of outsideCitations)
            if (pattern.test(line)) found.push(`${file}:${i + 1} cites ${what}: ${line.trim()}`);
        });
    }
    expect(found).toEqual([]);
  });

  it('numbers the sections of each protocol note in order under their chapters', () => {
    for (const n of notes) {
      let chapter = 0;
      const problems: string[] = [];
      for (const m of read(`docs/protocol/${n}.md`).matchAll(/^## (\d+)\. |^### (\d+)\.(\d+) /gm)) {
        if (m[1]) {
          if (Number(m[1]) !== chapter + 1) problems.push(`## ${m[1]} after ## ${chapter}`);
          chapter = Number(m[1]);
        } else if (Number(m[2]) !== chapter) problems.push(`### ${m[2]}.${m[3]} under ## ${chapter}`);
      }
      expect(problems, `docs/protocol/${n}.md`).toEqual([]);
      expect(chapter, `docs/protocol/${n}.md has numbered chapters`).toBeGreaterThan(5);
    }
  });

  it('cites only sections that exist, and names the protocol note every § citation means', () => {
    const problems: string[] = [];
    let checked = 0;
    for (const file of files) {
      for (const c of citationsIn(file, read(file))) {
        if (!c.note) {
          problems.push(`${c.where}: ${c.text} names no docs/protocol note`);
          continue;
        }
        checked++;
        for (const s of c.sections)
          if (!noteSections.get(c.note)!.has(s))
            problems.push(`${c.where}: docs/protocol/${c.note}.md has no §${s}`);
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(100);
  });
});
