// The setup of `npm run test:unit` (vitest.unit.config.ts): a unit test starts no process and reaches
// neither Redis nor MariaDB. Doing so anyway fails the test file with what it tried, so the quick set
// stays quick and runs anywhere, without the services the full suite needs.
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';
import { afterAll } from 'vitest';

/** Redis and MariaDB, where the full suite finds them. */
const servicePorts = new Set([6379, 3306]);
const reached: string[] = [];

function refuse(what: string): Error {
  reached.push(what);
  return new Error(`a unit test may not use ${what} (see vitest.unit.config.ts)`);
}

for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'] as const) {
  Object.assign(childProcess, {
    [name]: () => {
      throw refuse(`child_process.${name}`);
    },
  });
}
// `import { spawn } from 'node:child_process'` sees the replacements too.
syncBuiltinESMExports();

/** The port a `socket.connect(…)` call names: `(port, host?)` or `({ port, host })`; none for a path. */
function portOf(args: unknown[]): number | undefined {
  const [first] = args;
  if (typeof first === 'number') return first;
  if (typeof first === 'string' && /^\d+$/.test(first)) return Number(first);
  if (Array.isArray(first)) return portOf(first);
  if (typeof first === 'object' && first !== null && 'port' in first) return Number(first.port);
  return undefined;
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
  const port = portOf(args);
  if (port !== undefined && servicePorts.has(port)) {
    const error = refuse(`a connection to port ${port}`);
    process.nextTick(() => this.destroy(error));
    return this;
  }
  return (connect as (...a: unknown[]) => net.Socket).apply(this, args);
} as typeof connect;

afterAll(() => {
  if (reached.length > 0)
    throw new Error(`not a unit test: it used ${[...new Set(reached)].join(', ')}; run it with npm test`);
});
