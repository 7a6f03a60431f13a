// `wecom-dify users add` and the account code: only AUTH_MODE=directory's token service knows users by
// it, so only there is it required, and saying so is the whole error; in allowlist mode a user is
// added without one, and adding again changes only what is given. A command line that does not fit
// says what is wrong, not only the usage.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminConfig, runUsers } from '../../src/cli/usersCommand.js';
import { runCli, tempCwd } from '../support/cliRun.js';
import { createTestDatabase, type TestDatabase } from './support.js';

let tdb: TestDatabase;
const cwd = tempCwd('users');

beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb?.drop();
  cwd.remove();
});

async function run(mode: AdminConfig['auth']['mode'], args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const config = { auth: { mode, mysqlUrl: tdb.url, apiTimeoutMs: 1000 } };
  const code = await runUsers(args, config, (l) => out.push(l), { err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err };
}

const listed = async (userid: string) => {
  const { out } = await run('allowlist', ['list', '--json']);
  return (JSON.parse(out) as { userid: string; account: string; name: string | null }[]).find(
    (u) => u.userid === userid,
  );
};

describe('wecom-dify users add and --account', () => {
  it('AUTH_MODE=directory: without --account, says that it is required and why (exit 2)', async () => {
    const { code, out, err } = await run('directory', ['add', 'alice']);
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err[0]).toBe(
      'users add: --account <code> is required when AUTH_MODE=directory (the token service needs it)',
    );
    expect(err[1]).toMatch(/^usage: wecom-dify users add <userid> \[--account <code>\]/);
    expect(await listed('alice')).toBeUndefined();
  });

  it('AUTH_MODE=allowlist: adds a user without an account; adding again changes only what is given', async () => {
    expect(await run('allowlist', ['add', 'bob', '--name', 'Bob'])).toEqual({
      code: 0,
      out: 'saved bob',
      err: [],
    });
    expect(await listed('bob')).toMatchObject({ userid: 'bob', account: '', name: 'Bob' });
    expect(await run('allowlist', ['add', 'bob'])).toEqual({ code: 0, out: 'saved bob', err: [] });
    expect(await run('allowlist', ['add', 'bob', '--account', 'B7'])).toMatchObject({
      code: 0,
      out: 'saved bob (account B7)',
    });
    expect(await run('allowlist', ['add', 'bob', '--name', 'Bobby'])).toMatchObject({ code: 0 });
    expect(await listed('bob')).toMatchObject({ account: 'B7', name: 'Bobby' });
  });

  it('a command line that does not fit says what is wrong before the usage', async () => {
    const cases: [string[], string][] = [
      [[], 'users: say what to do: add, list, disable or enable'],
      [['frobnicate'], 'users: unknown subcommand "frobnicate" (add, list, disable or enable)'],
      [['add'], 'users add: give the userid'],
      [['disable'], 'users disable: give the userid'],
      [['enable', 'a', 'b'], 'users enable: one userid at a time, not also "b"'],
      [['list', 'x'], 'users list: unexpected argument "x"'],
    ];
    for (const [args, problem] of cases) {
      const { code, err } = await run('allowlist', args);
      expect(code, args.join(' ')).toBe(2);
      expect(err[0], args.join(' ')).toBe(problem);
      expect(err[1]).toMatch(/^usage: wecom-dify users add/);
    }
  });

  it('the command reads AUTH_MODE like the service: from the environment', async () => {
    const env = { MYSQL_URL: tdb.url };
    const [directory, allowlist] = await Promise.all([
      runCli(['users', 'add', 'carol'], { cwd: cwd.dir, env: { ...env, AUTH_MODE: 'directory' } }),
      runCli(['users', 'add', 'dave'], { cwd: cwd.dir, env: { ...env, AUTH_MODE: 'allowlist' } }),
    ]);
    expect(directory.code).toBe(2);
    expect(directory.stderr.split('\n')[0]).toBe(
      'wecom-dify: users add: --account <code> is required when AUTH_MODE=directory (the token service needs it)',
    );
    expect(allowlist).toMatchObject({ code: 0, stdout: 'saved dave\n', stderr: '' });
  });
});
