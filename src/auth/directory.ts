// The company directory in MySQL/MariaDB (kysely + mysql2): who may use the bot, the account code
// the token service knows them by, and (sealed with AES-GCM) the secret it may need. Every query is
// parameterised by kysely; every failure of the database becomes AuthError('directory_unavailable'),
// fast: a short connect timeout and a per-query deadline, and the pool reconnects by itself.
import { type ColumnType, Kysely, MysqlDialect } from 'kysely';
import { createPool } from 'mysql2';
import { z } from 'zod';
import { type MigrateReport, migrate } from './migrations.js';
import { open, type Secret, SecretBoxError, seal } from './secretBox.js';
import { AuthError } from './types.js';

export interface WecomUsersTable {
  userid: string;
  account: string;
  display_name: string | null;
  department: string | null;
  // MySQL's BOOLEAN is TINYINT(1): it reads back as 0/1.
  enabled: ColumnType<number | boolean, boolean | undefined, boolean>;
  secret_enc: string | null;
  created_at: ColumnType<Date, never, never>;
  updated_at: ColumnType<Date, never, never>;
}

export interface DirectoryDatabase {
  wecom_users: WecomUsersTable;
}

/** A directory entry as the rest of the code sees it: never the secret itself. */
export interface DirectoryUser {
  userid: string;
  account: string;
  name?: string;
  department?: string;
  enabled: boolean;
  hasSecret: boolean;
  createdAt: Date;
  updatedAt: Date;
}

/** What `findUser` returns: the secret, when there is one, opened but wrapped so it cannot print itself. */
export interface DirectoryUserWithSecret extends DirectoryUser {
  secret?: Secret;
}

export interface NewDirectoryUser {
  userid: string;
  /** The token service's code for the user (AUTH_MODE=directory); a new row without one has ''. */
  account?: string;
  /** Left unchanged on an existing row when undefined, like the department. */
  name?: string;
  department?: string;
  /** Left unchanged on an existing row when undefined; new rows are enabled. */
  enabled?: boolean;
  /** Plaintext, sealed before it is written. Left unchanged on an existing row when undefined. */
  secret?: string;
}

export interface Directory {
  readonly db: Kysely<DirectoryDatabase>;
  migrate(): Promise<MigrateReport>;
  findUser(userid: string): Promise<DirectoryUserWithSecret | undefined>;
  /** Insert, or update the row with the same userid. */
  addUser(user: NewDirectoryUser): Promise<void>;
  listUsers(): Promise<DirectoryUser[]>;
  /** false when no such user. */
  setEnabled(userid: string, enabled: boolean): Promise<boolean>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface DirectoryOptions {
  /** `mysql://user:pass@host:3306/db` (MYSQL_URL). */
  mysqlUrl: string;
  /** AUTH_SECRET_KEY, 32 bytes; needed only when a row has a secret. */
  secretKey?: Buffer | undefined;
  /** How long to wait for a TCP+handshake to the database (default 2000 ms). */
  connectTimeoutMs?: number;
  /** Deadline for one directory call, connection wait included (default 3000 ms). */
  queryTimeoutMs?: number;
  poolSize?: number;
}

const rowSchema = z.object({
  userid: z.string(),
  account: z.string(),
  display_name: z.string().nullable(),
  department: z.string().nullable(),
  enabled: z.union([z.boolean(), z.number()]).transform((v) => Boolean(v)),
  secret_enc: z.string().nullable(),
  created_at: z.date(),
  updated_at: z.date(),
});
type Row = z.infer<typeof rowSchema>;

const toUser = (row: Row): DirectoryUser => ({
  userid: row.userid,
  account: row.account,
  ...(row.display_name ? { name: row.display_name } : {}),
  ...(row.department ? { department: row.department } : {}),
  enabled: row.enabled,
  hasSecret: row.secret_enc !== null,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

/** The host:port/db of a MySQL URL, for messages: never the password. */
export function describeMysqlUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '3306'}${u.pathname}`;
  } catch {
    return '(unparseable MYSQL_URL)';
  }
}

export function openDirectory(options: DirectoryOptions): Directory {
  const where = describeMysqlUrl(options.mysqlUrl);
  const queryTimeoutMs = options.queryTimeoutMs ?? 3000;
  const pool = createPool({
    uri: options.mysqlUrl,
    connectTimeout: options.connectTimeoutMs ?? 2000,
    connectionLimit: options.poolSize ?? 10,
    maxIdle: options.poolSize ?? 10,
    idleTimeout: 60_000,
    enableKeepAlive: true,
    // Datetimes are stored and read as UTC, whatever the server's or the node's zone.
    timezone: 'Z',
    charset: 'utf8mb4_unicode_ci',
  });
  const db = new Kysely<DirectoryDatabase>({ dialect: new MysqlDialect({ pool }) });

  /** Run one directory call under the deadline; any database failure becomes directory_unavailable. */
  async function guarded<T>(what: string, work: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new AuthError(
              'directory_unavailable',
              `directory ${what} at ${where} timed out after ${queryTimeoutMs} ms`,
            ),
          ),
        queryTimeoutMs,
      );
    });
    try {
      return await Promise.race([work(), deadline]);
    } catch (error) {
      if (error instanceof AuthError) throw error;
      const code = (error as { code?: unknown }).code;
      const detail = error instanceof Error ? error.message : String(error);
      throw new AuthError(
        'directory_unavailable',
        `directory ${what} at ${where} failed${typeof code === 'string' ? ` (${code})` : ''}: ${detail}`,
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
    }
  }

  function openSecret(row: Row): Secret | undefined {
    if (row.secret_enc === null) return undefined;
    if (!options.secretKey)
      throw new AuthError(
        'directory_unavailable',
        `user has a sealed secret but AUTH_SECRET_KEY is not set (directory ${where})`,
      );
    try {
      return open(options.secretKey, row.secret_enc, row.userid);
    } catch (error) {
      if (error instanceof SecretBoxError)
        throw new AuthError('directory_unavailable', `a user's secret in ${where}: ${error.message}`);
      throw error;
    }
  }

  return {
    db,
    migrate: () => guarded('migration', () => migrate(db as unknown as Kysely<unknown>)),

    async findUser(userid) {
      const row = await guarded('lookup', () =>
        db.selectFrom('wecom_users').selectAll().where('userid', '=', userid).executeTakeFirst(),
      );
      // The column compares exactly once migrated; this holds on a server with no NO PAD binary
      // collation too (MySQL 5.7 ignores trailing spaces), and on a directory not migrated yet.
      if (!row || row.userid !== userid) return undefined;
      const parsed = rowSchema.parse(row);
      const secret = openSecret(parsed);
      return { ...toUser(parsed), ...(secret ? { secret } : {}) };
    },

    async addUser(user) {
      let secretEnc: string | undefined;
      if (user.secret !== undefined) {
        if (!options.secretKey)
          throw new SecretBoxError('AUTH_SECRET_KEY must be set to store a secret in the directory');
        secretEnc = seal(options.secretKey, user.secret, user.userid);
      }
      // Only what is given changes an existing row: `users add zhangsan --account E2` keeps the name.
      const changes = {
        ...(user.account !== undefined ? { account: user.account } : {}),
        ...(user.name !== undefined ? { display_name: user.name } : {}),
        ...(user.department !== undefined ? { department: user.department } : {}),
        ...(user.enabled !== undefined ? { enabled: user.enabled } : {}),
        ...(secretEnc !== undefined ? { secret_enc: secretEnc } : {}),
      };
      await guarded('write', () =>
        db
          .insertInto('wecom_users')
          .values({ userid: user.userid, account: '', display_name: null, department: null, ...changes })
          // Nothing to change (`users add alice` again) still needs an update clause: a no-op one.
          .onDuplicateKeyUpdate(Object.keys(changes).length > 0 ? changes : { userid: user.userid })
          .execute(),
      );
    },

    async listUsers() {
      const rows = await guarded('list', () =>
        db.selectFrom('wecom_users').selectAll().orderBy('userid').execute(),
      );
      return rows.map((row) => toUser(rowSchema.parse(row)));
    },

    async setEnabled(userid, enabled) {
      const result = await guarded('write', () =>
        db.updateTable('wecom_users').set({ enabled }).where('userid', '=', userid).executeTakeFirst(),
      );
      // MySQL counts matched rows only when they change; look the row up to tell "absent" from "same".
      if (Number(result.numUpdatedRows) > 0) return true;
      const row = await guarded('lookup', () =>
        db.selectFrom('wecom_users').select('userid').where('userid', '=', userid).executeTakeFirst(),
      );
      return row !== undefined;
    },

    async ping() {
      await guarded('ping', () => db.selectFrom('wecom_users').select('userid').limit(1).execute());
    },

    async close() {
      await db.destroy();
    },
  };
}
