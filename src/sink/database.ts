import pg from 'pg';
import type { Config } from '../config/config';
import { startEmbeddedPostgres } from './embedded-postgres';
import type { SinkLogger } from './sink-logger';

export interface ResolvedDatabase {
  readonly connectionString: string;
  /** True when Floodgate started its own PostgreSQL (no DATABASE_URL given). */
  readonly embedded: boolean;
  /** Stops the embedded server; does nothing for an external one. */
  stop(): Promise<void>;
}

/** DATABASE_URL when given; otherwise the embedded PostgreSQL under dataDir. */
export async function resolveDatabase(
  config: Pick<Config, 'databaseUrl' | 'dataDir' | 'embeddedPgPort'>,
  logger: SinkLogger,
): Promise<ResolvedDatabase> {
  if (config.databaseUrl !== null) {
    return { connectionString: config.databaseUrl, embedded: false, stop: async () => undefined };
  }
  const server = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort, logger });
  return { connectionString: server.connectionString, embedded: true, stop: () => server.stop() };
}

/**
 * A small pool of its own for a store beside the write path (dead letters, keys, webhook
 * sources). An idle connection the server drops must not crash the process: the error is
 * swallowed and the pool opens a new connection for the next query.
 */
export function openStorePool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool(config);
  pool.on('error', () => undefined);
  return pool;
}
