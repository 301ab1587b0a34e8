/**
 * The read API's connections: a pool of its own, so a slow analytics query never takes a
 * connection an actor needs to commit, and every session runs read-only under
 * statement_timeout, so no read can hold PostgreSQL longer than the operator allows.
 *
 * Errors come out as FloodgateErrors with the read API's codes: a cancelled statement is
 * ERR_QUERY_TIMEOUT, anything else from the database is ERR_QUERY_UNAVAILABLE, so routes
 * answer 503 with Retry-After and never leak a driver message as a 500.
 */
import type pg from 'pg';
import { FloodgateError } from '../errors';
import { openStorePool } from '../sink/database';

export interface ReadDatabaseOptions {
  readonly connectionsMax: number;
  readonly statementTimeoutMs: number;
}

/** A client waits at most this long for a free connection before the read fails with 503. */
const connectionWaitMs = 5_000;
/** SQLSTATE query_canceled: statement_timeout fired. */
const queryCanceled = '57014';

export class ReadDatabase {
  readonly #pool: pg.Pool;
  readonly statementTimeoutMs: number;

  private constructor(pool: pg.Pool, statementTimeoutMs: number) {
    this.#pool = pool;
    this.statementTimeoutMs = statementTimeoutMs;
  }

  static open(connectionString: string, options: ReadDatabaseOptions): ReadDatabase {
    const pool = openStorePool({
      connectionString,
      max: options.connectionsMax,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: connectionWaitMs,
      application_name: 'floodgate-read',
      options: `-c statement_timeout=${options.statementTimeoutMs} -c default_transaction_read_only=on`,
    });
    // A lent-out client whose connection drops emits 'error', and pg-pool listens only while
    // the client is idle: unheard, it would end the process. The failed statement reports it.
    pool.on('connect', (client) => client.on('error', () => undefined));
    return new ReadDatabase(pool, options.statementTimeoutMs);
  }

  /** Runs one statement and returns its rows. */
  async rows<Row extends object>(text: string, values: readonly unknown[] = []): Promise<Row[]> {
    try {
      const result = await this.#pool.query<Row>(text, values as unknown[]);
      return result.rows;
    } catch (error) {
      throw readError(error, this.statementTimeoutMs);
    }
  }

  /**
   * Lends one connection for several statements (an export's pages): the callback's
   * errors pass through readError, and the connection goes back whatever happens.
   */
  async withConnection<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw readError(error, this.statementTimeoutMs);
    }
    let broken = false;
    try {
      return await work(client);
    } catch (error) {
      // A connection whose statement failed mid-stream is not handed to the next reader.
      broken = !(error instanceof FloodgateError);
      throw readError(error, this.statementTimeoutMs);
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/**
 * ` AND column = $n` for each filter given (null: no filter), its value appended to
 * `values`; the columns come from the route's code, never from the request.
 */
export function equalityFilterSql(values: unknown[], filters: Readonly<Record<string, string | null>>): string {
  let sql = '';
  for (const [column, value] of Object.entries(filters)) {
    if (value !== null) sql += ` AND ${column} = $${values.push(value)}`;
  }
  return sql;
}

/** Maps a driver or database error to the read API's codes; FloodgateErrors pass unchanged. */
export function readError(error: unknown, statementTimeoutMs: number): FloodgateError {
  if (error instanceof FloodgateError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (code === queryCanceled) {
    return new FloodgateError('ERR_QUERY_TIMEOUT', `the read ran longer than ${statementTimeoutMs} ms and was cancelled; narrow the time window or filters`, { cause: error });
  }
  return new FloodgateError('ERR_QUERY_UNAVAILABLE', 'the database could not be read; retry', { cause: error });
}
