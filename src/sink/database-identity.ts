/**
 * The database's identity (migration v5): the namespace of everything nodes share in
 * Redis, so that state kept for one database is never read as another's.
 */
import { openStorePool } from './database';

export async function readDatabaseId(connectionString: string): Promise<string> {
  const pool = openStorePool({ connectionString, max: 1, application_name: 'floodgate-identity' });
  try {
    const result = await pool.query<{ id: string }>('SELECT id::text AS id FROM floodgate_database');
    const id = result.rows[0]?.id;
    if (id === undefined) throw new Error('floodgate_database has no row: run `floodgate migrate`');
    return id;
  } finally {
    await pool.end();
  }
}
