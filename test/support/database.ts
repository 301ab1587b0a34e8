/**
 * The services tests reach: one fresh database per test file (or per test), on the server
 * DATABASE_URL points at, so test files can run in parallel without seeing each other's
 * rows; short-lived connections for the code that drives the engine from outside (bench/common
 * makes its scratch database per run with them; the engine keeps its own, src/sink); and
 * the Redis URL, or a skip with the runner's reason.
 */
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import pg from 'pg';
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

/** The same server and credentials as `serverUrl`, connected to database `name`. */
export function databaseUrlFor(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** One short-lived connection for `work` (errors after the work are ignored: it is closing anyway). */
export async function withClient<T>(connectionString: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The Redis URL for tests that need one, or null after marking the test skipped with the
 * reason the runner recorded (test/support/run-tests.ts sets REDIS_URL, or
 * FLOODGATE_TEST_REDIS_UNAVAILABLE when no Redis could be had).
 */
export function redisUrlOrSkip(t: TestContext): string | null {
  // Skipping would hide a misfiled test: the unit tier never has Redis.
  refuseInUnitTier('Redis');
  const url = process.env.REDIS_URL;
  if (url !== undefined && url !== '') return url;
  const reason = process.env.FLOODGATE_TEST_REDIS_UNAVAILABLE ?? 'REDIS_URL is not set (run through npm test)';
  t.diagnostic(`Redis unavailable: ${reason}`);
  t.skip(`Redis unavailable: ${reason}`);
  return null;
}
