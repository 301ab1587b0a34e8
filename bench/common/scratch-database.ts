/**
 * A throw-away database on a PostgreSQL server, with Floodgate's own schema, so that
 * benchmarks measure the engine's real table (partitioned by day, primary key
 * (event_id, occurred_at)) and can count exactly the rows one run wrote.
 */
import { databaseUrlFor, withClient } from '../../test/support/database';
import { migrateDatabase } from '../../src/sink/migrations';
import { ensurePartitionWindow } from '../../src/sink/partitions';
import type { SinkLogger } from '../../src/sink/sink-logger';

/** The local PostgreSQL service every developer machine here runs. */
export const defaultServerUrl = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface ScratchDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

const quietLogger: SinkLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export function serverUrlFromEnv(): string {
  const url = process.env.DATABASE_URL;
  return url === undefined || url === '' ? defaultServerUrl : url;
}

/** Creates `floodgate_bench_<tag>`; the caller drops it (the runner does so in a finally). */
export async function createScratchDatabase(serverUrl: string, tag: string): Promise<ScratchDatabase> {
  const name = `floodgate_bench_${tag.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
  await withClient(serverUrl, (client) => client.query(`CREATE DATABASE ${name}`));
  let dropped = false;
  return {
    name,
    url: databaseUrlFor(serverUrl, name),
    drop: async () => {
      if (dropped) return;
      dropped = true;
      await withClient(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/**
 * Applies Floodgate's migrations and creates the day partitions around now, as the engine
 * does at start-up; targets that are not the engine (the baseline, psql \copy) need it.
 */
export async function prepareSchema(databaseUrl: string): Promise<void> {
  await migrateDatabase(databaseUrl, quietLogger);
  const dayMs = 86_400_000;
  await withClient(databaseUrl, (client) => ensurePartitionWindow(client, Date.now() - 2 * dayMs, Date.now() + dayMs));
}

export async function serverVersion(serverUrl: string): Promise<string> {
  return withClient(serverUrl, async (client) => String((await client.query('SHOW server_version')).rows[0]?.server_version ?? 'unknown'));
}

/** Rows whose event_id starts with `prefix`, and how many distinct ids they hold. */
export async function countRunRows(databaseUrl: string, prefix: string): Promise<{ rows: number; distinctIds: number }> {
  return withClient(databaseUrl, async (client) => {
    // LIKE with a literal prefix: the prefix holds only [a-z0-9-], so no escaping is needed.
    const result = await client.query('SELECT count(*)::bigint AS rows, count(DISTINCT event_id)::bigint AS ids FROM events WHERE event_id LIKE $1', [`${prefix}%`]);
    const row = result.rows[0] as { rows: string; ids: string };
    return { rows: Number(row.rows), distinctIds: Number(row.ids) };
  });
}
