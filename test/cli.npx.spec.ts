// The `wecom-dify` command as a new user meets it in a checkout after `npm ci`, with nothing built:
// `npx wecom-dify …` finds the package's own `bin` and runs it. The launcher behind that bin runs the
// sources through tsx, the compiled dist/ where there are no sources (the image, a package), and says
// what to do when it can run neither.
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { root } from './support/cli.js';
import { tempCwd } from './support/cliRun.js';
import { runCommand } from './support/shell.js';

const npmCache = tempCwd('npm-cache');
const scratch = tempCwd('launcher');
afterAll(() => {
  npmCache.remove();
  scratch.remove();
});

const run = (command: string, args: string[], cwd: string) =>
  runCommand(command, args, { cwd, npmCache: npmCache.dir });

/** A folder holding the launcher as bin/wecom-dify.js, and the given files beside it. */
function launcherIn(name: string, files: Record<string, string>): string {
  const dir = join(scratch.dir, name);
  mkdirSync(join(dir, 'bin'), { recursive: true });
  copyFileSync(join(root, 'bin/wecom-dify.js'), join(dir, 'bin/wecom-dify.js'));
  chmodSync(join(dir, 'bin/wecom-dify.js'), 0o755);
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe('running the wecom-dify command', { timeout: 90_000 }, () => {
  it('`npx wecom-dify help` in the checkout prints the usage, with no build', async () => {
    const { code, stdout, stderr } = await run('npx', ['wecom-dify', 'help'], root);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^usage: wecom-dify <command> \[options\]\n/);
    expect(stdout).toContain('wecom-dify replay <streamId>');
  });

  it('`npx wecom-dify <command> --help` prints that command’s usage', async () => {
    const { code, stdout } = await run('npx', ['wecom-dify', 'streams', '--help'], root);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^usage: wecom-dify streams /);
  });

  it('the launcher runs the compiled dist/ where there are no sources (the image, a package)', async () => {
    const dir = launcherIn('built', {
      'dist/cli/main.js':
        'process.stdout.write("dist ran with " + process.argv.slice(2).join(" ") + "\\n");\n',
    });
    const { code, stdout } = await run(process.execPath, [join(dir, 'bin/wecom-dify.js'), 'help'], dir);
    expect(code).toBe(0);
    expect(stdout).toBe('dist ran with help\n');
  });

  it('says what to do when the sources are there but tsx is not, and nothing is built', async () => {
    const dir = launcherIn('no-tsx', { 'src/cli/main.ts': 'const x: number = 1;\nconsole.log(x);\n' });
    const { code, stdout, stderr } = await run(
      process.execPath,
      [join(dir, 'bin/wecom-dify.js'), 'help'],
      dir,
    );
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain('wecom-dify: running from the sources needs tsx, which is not installed here');
    expect(stderr).toContain('npm run build');
  });
});
