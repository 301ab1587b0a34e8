/**
 * The api_keys table (migration v3 in src/sink/migrations.ts): what the CLI, the admin
 * routes and the key cache read and write. Rows carry hashes, never keys; nothing here
 * returns a hash to a caller outside src/auth.
 */
import type pg from 'pg';
import { openStorePool } from '../sink/database';
import type { Scope } from './key-format';

/** A key as listed: everything but its hash. */
export interface KeyRecord {
  readonly id: string;
  readonly name: string;
  readonly scopes: readonly Scope[];
  readonly createdAt: Date;
  readonly lastUsedAt: Date | null;
  readonly revokedAt: Date | null;
  /** The rate limit (src/limits); null: unlimited. */
  readonly eventsPerS: number | null;
  readonly burstEvents: number | null;
}

/** A key's rate limit as created: both set (burst defaults to the rate) or both null. */
export interface KeyLimitFields {
  readonly eventsPerS: number | null;
  readonly burstEvents: number | null;
}

export const unlimited: KeyLimitFields = Object.freeze({ eventsPerS: null, burstEvents: null });

/** The cache's view of one active key. */
export interface ActiveKeyRow {
  readonly id: string;
  readonly name: string;
  readonly scopes: readonly Scope[];
  readonly keyHash: Buffer;
  readonly eventsPerS: number | null;
  readonly burstEvents: number | null;
}

export interface KeySnapshot {
  /** Keys ever created, revoked ones included: in auto posture one is enough to lock the doors. */
  readonly keysEver: number;
  readonly active: readonly ActiveKeyRow[];
}

/** Listing is for people; a deployment with more keys than this pages nothing and says so. */
export const keyListRowsMax = 10_000;

const recordColumns = 'id::text AS id, name, scopes, created_at, last_used_at, revoked_at, events_per_s, burst_events';

interface RecordRow {
  id: string;
  name: string;
  scopes: Scope[];
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
  events_per_s: number | null;
  burst_events: number | null;
}

function recordOf(row: RecordRow): KeyRecord {
  return { id: row.id, name: row.name, scopes: row.scopes, createdAt: row.created_at, lastUsedAt: row.last_used_at, revokedAt: row.revoked_at, eventsPerS: row.events_per_s, burstEvents: row.burst_events };
}

export class KeyStore {
  readonly #pool: pg.Pool;

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Two connections: the cache's refresh and an admin call never wait on each other. */
  static open(connectionString: string): KeyStore {
    return new KeyStore(openStorePool({ connectionString, max: 2, idleTimeoutMillis: 10_000, application_name: 'floodgate-api-keys' }));
  }

  async create(name: string, scopes: readonly Scope[], keyHash: Buffer, limit: KeyLimitFields = unlimited): Promise<KeyRecord> {
    const result = await this.#pool.query<RecordRow>(
      `INSERT INTO api_keys (name, scopes, key_hash, events_per_s, burst_events) VALUES ($1, $2, $3, $4, $5) RETURNING ${recordColumns}`,
      [name, scopes, keyHash, limit.eventsPerS, limit.burstEvents],
    );
    return recordOf(result.rows[0] as RecordRow);
  }

  /**
   * Stores a key given by the operator (FLOODGATE_ADMIN_KEY) unless its hash is there
   * already; returns the new record, or null when it was there (even revoked: a restart
   * must not bring a revoked bootstrap key back).
   */
  async ensure(name: string, scopes: readonly Scope[], keyHash: Buffer): Promise<KeyRecord | null> {
    const result = await this.#pool.query<RecordRow>(
      `INSERT INTO api_keys (name, scopes, key_hash) VALUES ($1, $2, $3) ON CONFLICT (key_hash) DO NOTHING RETURNING ${recordColumns}`,
      [name, scopes, keyHash],
    );
    const row = result.rows[0];
    return row === undefined ? null : recordOf(row);
  }

  async list(): Promise<KeyRecord[]> {
    const result = await this.#pool.query<RecordRow>(`SELECT ${recordColumns} FROM api_keys ORDER BY id LIMIT ${keyListRowsMax}`);
    return result.rows.map(recordOf);
  }

  /** Revokes (idempotently: a second revoke keeps the first time); null when no such id. */
  async revoke(id: string): Promise<KeyRecord | null> {
    const result = await this.#pool.query<RecordRow>(
      `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING ${recordColumns}`,
      [id],
    );
    const row = result.rows[0];
    return row === undefined ? null : recordOf(row);
  }

  /** One query for the cache: the active keys and whether any key ever existed. */
  async snapshot(): Promise<KeySnapshot> {
    type Row = { keys_ever: number; id: string | null; name: string; scopes: Scope[]; key_hash: Buffer; events_per_s: number | null; burst_events: number | null };
    const result = await this.#pool.query<Row>(
      `SELECT (SELECT count(*) FROM api_keys)::int AS keys_ever, k.id::text AS id, k.name, k.scopes, k.key_hash, k.events_per_s, k.burst_events
         FROM (SELECT 1) AS one LEFT JOIN api_keys AS k ON k.revoked_at IS NULL`,
    );
    const keysEver = result.rows[0]?.keys_ever ?? 0;
    const active = result.rows.filter((row) => row.id !== null).map((row) => ({
      id: row.id as string, name: row.name, scopes: row.scopes, keyHash: row.key_hash,
      eventsPerS: row.events_per_s, burstEvents: row.burst_events,
    }));
    return { keysEver, active };
  }

  /** last_used_at for the keys used since the previous call: one statement per refresh. */
  async touch(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.#pool.query('UPDATE api_keys SET last_used_at = now() WHERE id = ANY($1::bigint[])', [ids]);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/** The JSON shape of a key in answers and `keys list --json`: never the key or its hash. */
export function keyItemOf(record: KeyRecord): Record<string, unknown> {
  return {
    id: record.id,
    name: record.name,
    scopes: record.scopes,
    created_at: record.createdAt.toISOString(),
    last_used_at: record.lastUsedAt?.toISOString() ?? null,
    revoked_at: record.revokedAt?.toISOString() ?? null,
    events_per_s: record.eventsPerS,
    burst_events: record.burstEvents,
  };
}
