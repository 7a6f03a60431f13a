// WeCom userids are exact: in the directory "ALICE", "alicé" and "alice " are not alice, neither for a
// lookup (access, a token) nor for the admin commands, on a new directory and on one made before.
import { Kysely, Migrator, MysqlDialect } from 'kysely';
import { createPool } from 'mysql2';
import { afterEach, describe, expect, it } from 'vitest';
import { type Directory, openDirectory } from '../../src/auth/directory.js';
import { migrations } from '../../src/auth/migrations.js';
import { createTestDatabase, rawQuery, type TestDatabase } from './support.js';

const lookalikes = ['ALICE', 'Alice', 'alicé', 'alice ', ' alice'];

const opened: Array<{ db: TestDatabase; directory?: Directory }> = [];
afterEach(async () => {
  for (const { db, directory } of opened.splice(0)) {
    await directory?.close();
    await db.drop();
  }
});

async function freshDirectory(): Promise<{ db: TestDatabase; directory: Directory }> {
  const db = await createTestDatabase();
  const directory = openDirectory({ mysqlUrl: db.url });
  opened.push({ db, directory });
  await directory.migrate();
  return { db, directory };
}

async function expectExact(directory: Directory): Promise<void> {
  for (const userid of lookalikes) expect(await directory.findUser(userid), userid).toBeUndefined();
  expect(await directory.findUser('alice')).toMatchObject({ userid: 'alice', account: 'A001' });
  // Not alice for the admin commands either: another row, and alice stays as she was.
  for (const userid of lookalikes) expect(await directory.setEnabled(userid, false), userid).toBe(false);
  for (const [i, userid] of lookalikes.entries()) await directory.addUser({ userid, account: `X00${i}` });
  expect(await directory.findUser('alice')).toMatchObject({ account: 'A001', enabled: true });
  expect((await directory.listUsers()).map((u) => u.userid).sort()).toEqual(['alice', ...lookalikes].sort());
  expect(await directory.setEnabled('ALICE', false)).toBe(true);
  expect(await directory.findUser('alice')).toMatchObject({ enabled: true });
  expect(await directory.findUser('ALICE')).toMatchObject({ account: 'X000', enabled: false });
}

describe('the directory matches userids exactly', () => {
  it('a new directory: "ALICE", "alicé" and "alice " are not alice', async () => {
    const { directory } = await freshDirectory();
    await directory.addUser({ userid: 'alice', account: 'A001' });
    await expectExact(directory);
  });

  it('a directory made before: the migration makes it exact and keeps its users', async () => {
    const db = await createTestDatabase();
    opened.push({ db });
    // The schema as the first migration left it, with a user in it.
    const old = new Kysely<unknown>({ dialect: new MysqlDialect({ pool: createPool({ uri: db.url }) }) });
    const firstOnly = { '2025_01_001_wecom_users': migrations['2025_01_001_wecom_users']! };
    const migrator = new Migrator({ db: old, provider: { getMigrations: async () => firstOnly } });
    expect((await migrator.migrateToLatest()).error).toBeUndefined();
    await old.destroy();
    await rawQuery(db, "INSERT INTO wecom_users (userid, account) VALUES ('alice', 'A001')");
    expect(await rawQuery(db, "SELECT userid FROM wecom_users WHERE userid = 'ALICE '")).toHaveLength(1);

    const directory = openDirectory({ mysqlUrl: db.url });
    opened[opened.length - 1]!.directory = directory;
    expect((await directory.migrate()).applied).toEqual(['2025_01_002_wecom_users_exact_userid']);
    expect(await rawQuery(db, "SELECT userid FROM wecom_users WHERE userid = 'ALICE '")).toHaveLength(0);
    await expectExact(directory);
  });
});
