/**
 * One fresh database per test file (or per test), on the server DATABASE_URL points at,
 * so test files can run in parallel without seeing each other's rows.
 */
import { randomBytes } from 'node:crypto';
import { databaseUrlFor, withClient } from './postgres-client';
import { refuseInUnitTier } from './test-tiers';

export interface TestDatabase {
  readonly url: string;
  /** Terminates leftover connections and drops the database. Safe to call twice. */
  drop(): Promise<void>;
}

export function serverUrl(): string {
  refuseInUnitTier('PostgreSQL');
  const url = process.env.DATABASE_URL;
  if (url === undefined || url === '') {
    throw new Error('DATABASE_URL is not set: run through npm test or set DATABASE_URL');
  }
  return url;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  // Lower case only: an unquoted identifier would be folded anyway, and names stay greppable.
  const name = `floodgate_test_${process.pid}_${randomBytes(5).toString('hex')}`;
  await withClient(serverUrl(), (client) => client.query(`CREATE DATABASE ${name}`));
  let dropped = false;
  return {
    url: databaseUrlFor(serverUrl(), name),
    drop: async () => {
      if (dropped) return;
      dropped = true;
      await withClient(serverUrl(), async (client) => {
        await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      });
    },
  };
}
