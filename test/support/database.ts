/**
 * One fresh database per test file (or per test), on the server DATABASE_URL points at,
 * so test files can run in parallel without seeing each other's rows.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export interface TestDatabase {
  readonly url: string;
  /** Terminates leftover connections and drops the database. Safe to call twice. */
  drop(): Promise<void>;
}

export function serverUrl(): string {
  const url = process.env.DATABASE_URL;
  if (url === undefined || url === '') {
    throw new Error('DATABASE_URL is not set: run through npm test or set DATABASE_URL');
  }
  return url;
}

export function databaseUrlFor(name: string): string {
  const url = new URL(serverUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

async function withServerClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl() });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  // Lower case only: an unquoted identifier would be folded anyway, and names stay greppable.
  const name = `floodgate_test_${process.pid}_${randomBytes(5).toString('hex')}`;
  await withServerClient((client) => client.query(`CREATE DATABASE ${name}`));
  let dropped = false;
  return {
    url: databaseUrlFor(name),
    drop: async () => {
      if (dropped) return;
      dropped = true;
      await withServerClient(async (client) => {
        await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      });
    },
  };
}
