// Shared fixtures of the auth tests: a database of their own on the real MariaDB, a random key
// prefix on the real Redis, and a TCP proxy in front of MariaDB that a test can cut and restore.
import { randomBytes } from 'node:crypto';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { createConnection } from 'mysql2/promise';

export const MYSQL_HOST = '127.0.0.1';
export const MYSQL_PORT = 3306;
const REDIS_URL = 'redis://127.0.0.1:6379';

export interface TestDatabase {
  name: string;
  url: string;
  /** The same database through another host:port (a proxy). */
  urlVia(port: number): string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `wdtest_${randomBytes(6).toString('hex')}`;
  const admin = await createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, user: 'root' });
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  await admin.end();
  return {
    name,
    url: `mysql://root@${MYSQL_HOST}:${MYSQL_PORT}/${name}`,
    urlVia: (port) => `mysql://root@127.0.0.1:${port}/${name}`,
    async drop() {
      const conn = await createConnection({ host: MYSQL_HOST, port: MYSQL_PORT, user: 'root' });
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await conn.end();
    },
  };
}

/** A raw query on the test database, to look at what is really stored. */
export async function rawQuery(db: TestDatabase, sql: string, params: unknown[] = []): Promise<unknown[]> {
  const conn = await createConnection({
    host: MYSQL_HOST,
    port: MYSQL_PORT,
    user: 'root',
    database: db.name,
  });
  try {
    const [rows] = await conn.query(sql, params);
    return rows as unknown[];
  } finally {
    await conn.end();
  }
}

export interface TestRedis {
  prefix: string;
  /** A new connection (a node of its own). */
  connect(): Redis;
  /** Delete every key under the prefix and close the connections made. */
  cleanup(): Promise<void>;
}

export function testRedis(): TestRedis {
  const prefix = `wdtest:${randomBytes(6).toString('hex')}:`;
  const made: Redis[] = [];
  return {
    prefix,
    connect() {
      const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
      made.push(r);
      return r;
    },
    async cleanup() {
      const r = new Redis(REDIS_URL);
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) await r.del(...keys);
      } while (cursor !== '0');
      r.disconnect();
      for (const m of made) m.disconnect();
    },
  };
}

export interface TcpProxy {
  port: number;
  /** Refuse new connections (reset them) and break the open ones: "the database is down". */
  cut(): void;
  /** Accept and never answer: "the database hangs". */
  blackhole(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let mode: 'pass' | 'cut' | 'blackhole' = 'pass';
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    open.add(client);
    client.on('close', () => open.delete(client));
    client.on('error', () => undefined);
    if (mode === 'cut') {
      client.resetAndDestroy();
      return;
    }
    if (mode === 'blackhole') return;
    const upstream = connect(targetPort, targetHost);
    open.add(upstream);
    upstream.on('close', () => {
      open.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const breakAll = () => {
    for (const s of open) s.destroy();
    open.clear();
  };
  return {
    port,
    cut() {
      mode = 'cut';
      breakAll();
    },
    blackhole() {
      mode = 'blackhole';
      breakAll();
    },
    restore() {
      mode = 'pass';
      breakAll();
    },
    async close() {
      breakAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export const testSecretKey = (): Buffer => randomBytes(32);
