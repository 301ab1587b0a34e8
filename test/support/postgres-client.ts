/**
 * Short-lived PostgreSQL connections for the code that drives the engine from outside:
 * test/support creates a database per test file with them, bench/common a scratch
 * database per run. The engine itself keeps its own connections (src/sink).
 */
import pg from 'pg';

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
