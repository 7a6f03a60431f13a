// tsc compiles TypeScript only; the inspector's static files are copied beside the compiled routes.
import { cpSync, existsSync } from 'node:fs';

const from = 'src/http/inspector/assets';
if (existsSync(from)) cpSync(from, 'dist/http/inspector/assets', { recursive: true });
