// The directory's schema as code: migrations are objects handed to kysely's Migrator through a
// provider, so they run the same from `dist/` and under tsx (no migration folder to find at run time).
// Names sort in order of application; never rename or edit one that has shipped, add a new one.
import {
  type Kysely,
  type Migration,
  type MigrationProvider,
  type MigrationResult,
  Migrator,
  sql,
} from 'kysely';
import { AuthError } from './types.js';

export const migrations: Record<string, Migration> = {
  '2025_01_001_wecom_users': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('wecom_users')
        .ifNotExists()
        // WeCom userids are at most 64 bytes; compared exactly since 2025_01_002.
        .addColumn('userid', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('account', 'varchar(128)', (c) => c.notNull())
        .addColumn('display_name', 'varchar(128)')
        .addColumn('department', 'varchar(255)')
        .addColumn('enabled', 'boolean', (c) => c.notNull().defaultTo(true))
        .addColumn('secret_enc', 'text')
        .addColumn('created_at', sql`datetime(3)`, (c) => c.notNull().defaultTo(sql`CURRENT_TIMESTAMP(3)`))
        .addColumn('updated_at', sql`datetime(3)`, (c) =>
          c.notNull().defaultTo(sql`CURRENT_TIMESTAMP(3)`).modifyEnd(sql`ON UPDATE CURRENT_TIMESTAMP(3)`),
        )
        .modifyEnd(sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`)
        .execute();
      await db.schema
        .createIndex('wecom_users_account')
        .ifNotExists()
        .on('wecom_users')
        .column('account')
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('wecom_users').ifExists().execute();
    },
  },
  // WeCom userids are exact: under the table's default collation "ALICE", "alicé" and "alice " were
  // all alice, and got alice's access and token. The userid compares byte for byte from here on.
  '2025_01_002_wecom_users_exact_userid': {
    async up(db: Kysely<unknown>) {
      const collation = await exactCollation(db);
      await sql`ALTER TABLE wecom_users MODIFY userid varchar(64) CHARACTER SET utf8mb4 COLLATE ${sql.raw(collation)} NOT NULL`.execute(
        db,
      );
    },
    async down(db: Kysely<unknown>) {
      await sql`ALTER TABLE wecom_users MODIFY userid varchar(64) CHARACTER SET utf8mb4 NOT NULL`.execute(db);
    },
  },
};

/**
 * The binary collation that also counts trailing spaces (NO PAD): MariaDB's `utf8mb4_nopad_bin`,
 * MySQL 8's `utf8mb4_0900_bin`; `utf8mb4_bin` (PAD SPACE) only on a server that has neither.
 */
async function exactCollation(db: Kysely<unknown>): Promise<string> {
  const preferred = ['utf8mb4_nopad_bin', 'utf8mb4_0900_bin'];
  const { rows } = await sql<{
    Collation: string;
  }>`SHOW COLLATION WHERE Collation IN (${sql.join(preferred)})`.execute(db);
  const present = new Set(rows.map((row) => row.Collation));
  return preferred.find((name) => present.has(name)) ?? 'utf8mb4_bin';
}

const codeMigrationProvider: MigrationProvider = {
  async getMigrations() {
    return migrations;
  },
};

export interface MigrateReport {
  /** Names of the migrations applied by this run (empty when already up to date). */
  applied: string[];
}

/**
 * Bring the schema to the latest version. Safe to run from several nodes at once: kysely's Migrator
 * takes a lock in `kysely_migration_lock`. Throws AuthError('directory_unavailable') on failure.
 */
export async function migrate(db: Kysely<unknown>): Promise<MigrateReport> {
  const migrator = new Migrator({ db, provider: codeMigrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  const applied = (results ?? [])
    .filter((r: MigrationResult) => r.status === 'Success')
    .map((r) => r.migrationName);
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    const detail = error instanceof Error ? error.message : String(error);
    throw new AuthError(
      'directory_unavailable',
      `directory migration ${failed ? `"${failed}" ` : ''}failed: ${detail}`,
      { cause: error },
    );
  }
  return { applied };
}
