// `npm run test:unit`: the quick loop (well under a minute). Every file here runs in memory, with
// in-process fakes at most: no Redis, no MariaDB, no Chromium, no child process. That is enforced:
// test/support/unitGuard.ts fails a file that starts a process or connects to Redis or MariaDB.
//
// Which files: the specs beside the code (src/**/*.spec.ts) but those that need a server, named
// `*.redis.spec.ts` / `*.cluster.spec.ts`, and the command's own child-process test; and the
// in-memory suites of test/ named below. `npm test` runs these and all the others.
import { defineConfig } from 'vitest/config';

/** The suites of test/ that need nothing outside this process. */
const inMemorySuites = [
  'test/auth/identity.spec.ts',
  'test/auth/secretBox.spec.ts',
  'test/auth/tokenService.spec.ts',
  'test/deploy.spec.ts',
  'test/docs.spec.ts',
  'test/fakeWecomWs.spec.ts',
  'test/http.callbackLog.spec.ts',
  'test/inspector.spec.ts',
  'test/outbound.bodies.spec.ts',
  'test/runner.outage.spec.ts',
  'test/runner.takeover.spec.ts',
  'test/runner.writefail.spec.ts',
  'test/service.difyCheck.spec.ts',
  'test/store.memory.spec.ts',
];

export default defineConfig({
  test: {
    include: ['src/**/*.spec.ts', ...inMemorySuites],
    exclude: [
      '**/node_modules/**',
      '**/*.redis.spec.ts',
      '**/*.cluster.spec.ts',
      // Runs the `wecom-dify` command as a child process.
      'src/cli/main.spec.ts',
    ],
    setupFiles: ['test/support/unitGuard.ts'],
    testTimeout: 10_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
