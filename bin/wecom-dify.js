#!/usr/bin/env node
// The `wecom-dify` command (package.json `bin`, so `npx wecom-dify …` in a checkout): the TypeScript
// sources through tsx where they are here (a checkout, where a dist/ may be older than them), else
// the compiled dist/ (the container image, an installed package).
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
const built = new URL('../dist/cli/main.js', import.meta.url);

/** tsx's loader, registered in this process (no child: signals reach the command itself), or why not. */
async function registerTsx() {
  try {
    const { register } = await import('tsx/esm/api');
    register();
    return undefined;
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    return error;
  }
}

if (existsSync(source)) {
  const missing = await registerTsx();
  if (!missing) await import(source.href);
  else if (existsSync(built)) await import(built.href);
  else {
    process.stderr.write(
      'wecom-dify: running from the sources needs tsx, which is not installed here.\n' +
        'Install the dependencies with `npm ci` (dev dependencies included), or build once with\n' +
        '`npm run build` and run `node dist/cli/main.js <command>`.\n',
    );
    process.exit(1);
  }
} else if (existsSync(built)) await import(built.href);
else {
  process.stderr.write('wecom-dify: neither src/cli/main.ts nor dist/cli/main.js is here: run `npm run build`.\n');
  process.exit(1);
}
