// tsc compiles TypeScript only; what the code reads beside itself at run time is copied beside the
// compiled files, where it looks for it: the inspector's static files, the store's Lua scripts.
import { cpSync, existsSync } from 'node:fs';

for (const [from, to] of [
  ['src/http/inspector/assets', 'dist/http/inspector/assets'],
  ['src/store/lua', 'dist/store/lua'],
]) {
  if (existsSync(from)) cpSync(from, to, { recursive: true });
}
