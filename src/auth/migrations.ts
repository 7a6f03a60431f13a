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
        // WeCom userids are at most 64 bytes; the default (case-insensitive) collation matches WeCom,
        // which treats userids case-insensitively.
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
};

export const codeMigrationProvider: MigrationProvider = {
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
