// The inspector's static files (HTML, CSS, JS), served from the `assets` folder beside this module:
// `src/http/inspector/assets` under tsx, `dist/http/inspector/assets` once built (scripts/copy-assets.mjs).
// Nothing comes from a CDN, so the inspector works with no internet.
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';

const assetsDir = join(import.meta.dirname, 'assets');

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
};

export interface Asset {
  type: string;
  body: Buffer;
}

/**
 * One file of the folder by its plain name, or undefined when there is no such file. A name with
 * a path separator, a leading dot or an unknown extension is never looked up, so nothing outside
 * the folder can be read.
 */
export async function readAsset(name: string, dir: string = assetsDir): Promise<Asset | undefined> {
  if (!/^[\w-][\w.-]*$/.test(name)) return undefined;
  const type = contentTypes[extname(name)];
  if (!type) return undefined;
  try {
    return { type, body: await readFile(join(dir, name)) };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
