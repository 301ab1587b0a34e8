import pg from 'pg';
import { fanoutLockKey } from '../delivery/delivery-schema';
import { errorFields, type SinkLogger } from './sink-logger';

/**
 * Schema migrations, applied at engine start-up and by `floodgate migrate`.
 *
 * Several engine processes may start against one database at the same moment, so the
 * whole run holds a session-level advisory lock: the second process waits, then finds
 * every version already recorded and does nothing. Each migration runs in its own
 * transaction together with the row that records it, so a crash leaves either all of a
 * migration or none of it.
 */

/** Arbitrary constant ("FLOODGAT" in ASCII) so no other application's lock collides. */
export const migrationLockKey = '5065510882751496532';

interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
}

/*
 * v1: the events table and the dead-letter table.
 *
 * events is range-partitioned by UTC day on occurred_at; partitions are created by
 * src/sink/partitions.ts ahead of time and on demand. There is deliberately no DEFAULT
 * partition: rows landing there could never be moved into a day partition created later
 * without rewriting it, and a missing partition is handled by creating it instead.
 *
 * The primary key (event_id, occurred_at) is the database-level dedupe. A unique index on
 * a partitioned table must contain the partition column, so it catches an identical retry
 * (same id, same timestamp to the microsecond) but NOT the same id sent again with another
 * timestamp: that second event lands as a second row. The in-memory and Redis layers
 * upstream key on event_id alone and catch that case within their windows.
 *
 * No other indexes yet: every index slows COPY, and the read side is a later issue.
 *
 * dead_letters.payload is bytea holding the event as UTF-8 JSON, because a poison event
 * may contain exactly the bytes (NUL, invalid UTF-8) that text and jsonb refuse.
 */
const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'events and dead_letters',
    statements: [
      `CREATE TABLE events (
         event_id text NOT NULL,
         event_type text NOT NULL,
         source text NOT NULL,
         actor_id text,
         occurred_at timestamptz NOT NULL,
         received_at timestamptz NOT NULL,
         attributes jsonb NOT NULL,
         PRIMARY KEY (event_id, occurred_at)
       ) PARTITION BY RANGE (occurred_at)`,
      `CREATE TABLE dead_letters (
         id bigserial PRIMARY KEY,
         failed_at timestamptz NOT NULL DEFAULT now(),
         reason_code text NOT NULL,
         reason text NOT NULL,
         event_id text,
         payload bytea NOT NULL,
         attempts int NOT NULL DEFAULT 1,
         replayed_at timestamptz
       )`,
    ],
  },
  /*
   * v2: events.event_id compares bytes (COLLATE "C") instead of by the database's locale.
   *
   * Every row COPY inserts walks the primary key, and every comparison on the way goes
   * through this column's collation: "C" is a memcmp, a libc locale copies both strings
   * and calls strcoll, an ICU locale builds sort keys. Under the sink's COPY that made the
   * key's cost depend on how the server was installed (an ICU key cost about a quarter
   * more per row: docs/decisions/0007-event-id-collate-c.md). Ids are opaque client
   * strings, so nothing is lost: equality, and so the dedupe, is byte equality under every
   * deterministic collation; only the index's order changes. PostgreSQL rebuilds the
   * key's indexes (not the table) for this.
   */
  {
    version: 2,
    name: 'events.event_id collates as bytes',
    statements: ['ALTER TABLE events ALTER COLUMN event_id TYPE text COLLATE "C"'],
  },
  /*
   * v3: API keys (src/auth). Only the SHA-256 of a key is stored: a key is 256 random
   * bits, so a fast hash cannot be searched backwards, and the engine can look a presented
   * key up by its hash without a slow KDF per request. scopes is a text array checked
   * against the three known scopes. events_per_s and burst_events are for the per-key rate
   * limits of issue 22 item 3; nothing reads them yet.
   */
  {
    version: 3,
    name: 'api_keys',
    statements: [
      `CREATE TABLE api_keys (
         id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
         key_hash bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
         scopes text[] NOT NULL CHECK (cardinality(scopes) >= 1 AND scopes <@ ARRAY['ingest', 'read', 'admin']),
         created_at timestamptz NOT NULL DEFAULT now(),
         last_used_at timestamptz,
         revoked_at timestamptz,
         events_per_s integer CHECK (events_per_s > 0),
         burst_events integer CHECK (burst_events > 0)
       )`,
    ],
  },
  /*
   * v4: signed-webhook sources (src/webhooks/source-store.ts). Secrets are stored as given,
   * not hashed: verifying an HMAC needs the key itself. IF NOT EXISTS keeps the step safe
   * should its version number change when branches merge.
   */
  {
    version: 4,
    name: 'webhook_sources',
    statements: [
      `CREATE TABLE IF NOT EXISTS webhook_sources (
         name text PRIMARY KEY,
         scheme text NOT NULL,
         secrets text[] NOT NULL,
         signature_header text,
         created_at timestamptz NOT NULL DEFAULT now(),
         updated_at timestamptz NOT NULL DEFAULT now()
       )`,
    ],
  },
  /*
   * v5: the database's own identity, a random id made once. Nodes share Redis state (the
   * dedupe window, and rate limits) under it, so two deployments pointed at one Redis
   * with different databases never take each other's ids for their own: an id "seen"
   * for another database would be answered as a duplicate and never stored here.
   */
  {
    version: 5,
    name: 'floodgate_database',
    statements: [
      `CREATE TABLE IF NOT EXISTS floodgate_database (
         singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
         id uuid NOT NULL DEFAULT gen_random_uuid(),
         created_at timestamptz NOT NULL DEFAULT now()
       )`,
      'INSERT INTO floodgate_database DEFAULT VALUES ON CONFLICT DO NOTHING',
    ],
  },
  /**
   * v6: rollups, counts of stored events per UTC minute and per UTC day by (event_type,
   * source). Each actor's writer adds its batch's counts in the transaction that inserts the
   * rows (src/sink/rollup-counts.ts), under its own `shard` so that two actors never wait on
   * one row; readers sum the shards. Keys compare bytes like event_id (decision 0007).
   * docs/decisions/0021-rollups-in-the-write-transaction.md.
   */
  {
    version: 6,
    name: 'event_counts',
    statements: [
      `CREATE TABLE IF NOT EXISTS event_counts_minute (
         bucket timestamptz NOT NULL,
         event_type text COLLATE "C" NOT NULL,
         source text COLLATE "C" NOT NULL,
         shard smallint NOT NULL,
         count bigint NOT NULL CHECK (count >= 0),
         PRIMARY KEY (bucket, event_type, source, shard)
       )`,
      `CREATE TABLE IF NOT EXISTS event_counts_daily (
         day date NOT NULL,
         event_type text COLLATE "C" NOT NULL,
         source text COLLATE "C" NOT NULL,
         shard smallint NOT NULL,
         count bigint NOT NULL CHECK (count >= 0),
         PRIMARY KEY (day, event_type, source, shard)
       )`,
    ],
  },
  /*
   * v7: how far back retention keeps data (src/sink/partition-maintainer.ts), one row. A
   * run raises a date before it drops or deletes anything before it, so `floodgate rollups`
   * never mistakes a day retention emptied for a difference, whatever settings its own
   * shell has. Null: nothing dropped yet. IF NOT EXISTS as in v4.
   */
  {
    version: 7,
    name: 'floodgate_retention',
    statements: [
      `CREATE TABLE IF NOT EXISTS floodgate_retention (
         singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
         events_kept_from date,
         rollups_kept_from date,
         updated_at timestamptz NOT NULL DEFAULT now()
       )`,
      'INSERT INTO floodgate_retention DEFAULT VALUES ON CONFLICT DO NOTHING',
    ],
  },
  /*
   * v8: indexes for the read side (GET /v1/events, the raw route): keyset pages walk
   * (occurred_at, event_id) in either direction from the cursor; one actor's events are
   * found by (actor_id, occurred_at, event_id) without walking everyone's. An index on
   * the partitioned table is created on every day partition, today's and future ones.
   * Each index costs ingest (docs/decisions/0023-read-indexes.md has the choice and its
   * measurement). CREATE INDEX blocks writes to `events` while it reads the existing
   * rows; that record shows how to build them concurrently before upgrading a large
   * table, which IF NOT EXISTS then leaves alone.
   */
  {
    version: 8,
    name: 'events read indexes',
    statements: [
      'CREATE INDEX IF NOT EXISTS events_occurred_at_event_id ON events (occurred_at, event_id)',
      'CREATE INDEX IF NOT EXISTS events_actor_id_occurred_at ON events (actor_id, occurred_at, event_id) WHERE actor_id IS NOT NULL',
    ],
  },
  /*
   * v9: when each daily count last changed, which EventFlux's daily route answers as
   * `updated_at` (the latest over a key's shards). The writer's upsert sets it to now() in
   * the same statement that adds the count, so it costs no extra work per row. Existing
   * rows take the time of the migration: a non-volatile default is stored once in the
   * catalogue, not written into every row, so the step is instant on a large table.
   */
  {
    version: 9,
    name: 'event_counts_daily.updated_at',
    statements: ['ALTER TABLE event_counts_daily ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now()'],
  },
  /*
   * v10: counts per UTC hour, written like the minute and day counts, so that hours, and
   * days of zones whose offsets are whole hours, read 60 times fewer rows than from the
   * minute table (docs/decisions/0021-rollups-in-the-write-transaction.md has the
   * measurement). The same transaction fills it from the minute table, so an existing
   * database has exact hourly counts at once; date_bin from the epoch truncates in UTC
   * whatever the session's TimeZone. IF NOT EXISTS as in v4; the backfill fills only an
   * empty table, because one already there was filled in the transaction that created it.
   *
   * Writers: this node's actors start only after migrate() returns, and the advisory lock
   * only orders migrations, so the writers that can run meanwhile are those of other nodes
   * still on the previous build. The LOCK makes the backfill wait for their transactions in
   * flight and holds their upserts (not their reads) until this commits, so it copies every
   * count committed before it. What such a node adds after that never reaches the hourly
   * table, because its build does not know it: stop every node for this upgrade, or after
   * a rolling one run `floodgate rollups rebuild` over the days written meanwhile
   * (`floodgate rollups verify` names those hours).
   */
  {
    version: 10,
    name: 'event_counts_hourly',
    statements: [
      `CREATE TABLE IF NOT EXISTS event_counts_hourly (
         hour timestamptz NOT NULL,
         event_type text COLLATE "C" NOT NULL,
         source text COLLATE "C" NOT NULL,
         shard smallint NOT NULL,
         count bigint NOT NULL CHECK (count >= 0),
         PRIMARY KEY (hour, event_type, source, shard)
       )`,
      'LOCK TABLE event_counts_minute IN SHARE MODE',
      `INSERT INTO event_counts_hourly (hour, event_type, source, shard, count)
       SELECT date_bin('1 hour', bucket, timestamptz '1970-01-01 00:00:00+00'), event_type, source, shard, sum(count)
         FROM event_counts_minute WHERE NOT EXISTS (SELECT 1 FROM event_counts_hourly) GROUP BY 1, 2, 3, 4`,
    ],
  },
  /*
   * v11: the actor index of v8 goes. Measured under realistic traffic (each request's
   * events stamped with its send time), sustained-bulk ran at a median 124,787 events/s
   * with no read index, 107,257–124,470 with the time index alone and 65,633–95,357 with
   * both: actor ids arrive in no order, so each row's insert lands on a random page of a
   * growing btree, in the one COPY backend that sets an actor's pace. A page filtered by
   * actor walks the time index instead (docs/decisions/0023-read-indexes.md).
   */
  {
    version: 11,
    name: 'drop the actor read index',
    statements: ['DROP INDEX IF EXISTS events_actor_id_occurred_at'],
  },
  /*
   * v12: delivery to subscribers (src/delivery; docs/decisions/0024-delivery-fan-out-in-the-write-transaction.md).
   *
   * subscriptions: one HTTP endpoint each. event_types holds patterns ("user.signup",
   * "invoice.*", "*"), sources exact names; null means every type or source. secrets[1] is
   * the signing secret, later elements are previous secrets that keep signing until their
   * expiry in secret_expires_at (same index). covered_from / covered_until bound the window
   * in which the subscription's filters and enabled state were constant (set under the
   * fan-out lock), which is what `floodgate deliveries verify` checks exactly.
   *
   * floodgate_subscription_epoch: bumped by every change to subscriptions, under an
   * exclusive advisory lock; each write transaction that stores events checks, under the
   * shared form of that lock, that the epoch is the one its subscription snapshot was read
   * at (floodgate_fanout_check raises FG001 otherwise), so a batch is fanned out against
   * exactly the subscriptions that exist when it commits.
   *
   * deliveries: one row per (subscription, stored event), inserted in the transaction that
   * stores the event; that transaction is what makes the pair unique, so no unique index
   * taxes each insert (it cost about a third of a record's insert: decision 0024). The due index serves the claim: a claim moves next_attempt_at to the
   * lease's end, so a row in flight is simply not due, and becomes due again if its
   * claimer dies; lease_token stays set until the outcome is written, so a claim that finds
   * it set knows the row may have been sent already. schedule_started_at is when the retry
   * schedule (and its age bound) began: creation, or the replay that requeued the row.
   * delivery_attempts is the attempt log, partitioned by UTC day of
   * attempted_at (partitions named delivery_attempts_pYYYYMMDD) so retention drops days.
   */
  {
    version: 12,
    name: 'delivery',
    statements: [
      `CREATE TABLE IF NOT EXISTS subscriptions (
         id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         url text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
         event_types text[] CHECK (cardinality(event_types) BETWEEN 1 AND 100),
         sources text[] CHECK (cardinality(sources) BETWEEN 1 AND 100),
         description text CHECK (length(description) <= 1000),
         secrets text[] NOT NULL CHECK (cardinality(secrets) >= 1),
         secret_expires_at timestamptz[] NOT NULL DEFAULT '{}',
         rate_limit_per_s integer CHECK (rate_limit_per_s > 0),
         max_in_flight integer NOT NULL DEFAULT 16 CHECK (max_in_flight BETWEEN 1 AND 1000),
         retry_schedule_s integer[] CHECK (cardinality(retry_schedule_s) BETWEEN 0 AND 50),
         retry_max_age_s integer CHECK (retry_max_age_s > 0),
         enabled boolean NOT NULL DEFAULT true,
         disabled_reason text,
         created_at timestamptz NOT NULL DEFAULT now(),
         updated_at timestamptz NOT NULL DEFAULT now(),
         covered_from timestamptz NOT NULL DEFAULT clock_timestamp(),
         covered_until timestamptz,
         deleted_at timestamptz
       )`,
      `CREATE TABLE IF NOT EXISTS floodgate_subscription_epoch (
         singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
         epoch bigint NOT NULL DEFAULT 0
       )`,
      'INSERT INTO floodgate_subscription_epoch DEFAULT VALUES ON CONFLICT DO NOTHING',
      `CREATE OR REPLACE FUNCTION floodgate_fanout_check(expected bigint) RETURNS void
         LANGUAGE plpgsql AS $fn$
       DECLARE current_epoch bigint;
       BEGIN
         PERFORM pg_advisory_xact_lock_shared(${fanoutLockKey});
         SELECT epoch INTO current_epoch FROM floodgate_subscription_epoch;
         IF current_epoch IS DISTINCT FROM expected THEN
           RAISE EXCEPTION 'subscriptions changed (epoch % , batch read %)', current_epoch, expected
             USING ERRCODE = 'FG001';
         END IF;
       END $fn$`,
      `CREATE TABLE IF NOT EXISTS deliveries (
         id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         subscription_id bigint NOT NULL,
         event_id text COLLATE "C" NOT NULL,
         occurred_at timestamptz NOT NULL,
         created_at timestamptz NOT NULL DEFAULT now(),
         status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed', 'discarded')),
         lane smallint NOT NULL DEFAULT 0 CHECK (lane IN (0, 1)),
         attempts integer NOT NULL DEFAULT 0,
         next_attempt_at timestamptz NOT NULL DEFAULT now(),
         schedule_started_at timestamptz NOT NULL DEFAULT now(),
         lease_token bigint,
         last_attempt_at timestamptz,
         last_status_code integer,
         last_error text,
         delivered_at timestamptz,
         replay_id bigint
       )`,
      `CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (subscription_id, lane, next_attempt_at) WHERE status = 'pending'`,
      'CREATE INDEX IF NOT EXISTS deliveries_by_subscription ON deliveries (subscription_id, id)',
      `CREATE TABLE IF NOT EXISTS delivery_attempts (
         delivery_id bigint NOT NULL,
         subscription_id bigint NOT NULL,
         attempt integer NOT NULL,
         attempted_at timestamptz NOT NULL,
         duration_ms integer NOT NULL,
         outcome text NOT NULL,
         status_code integer,
         error_class text,
         error text,
         response_body text
       ) PARTITION BY RANGE (attempted_at)`,
      'CREATE INDEX IF NOT EXISTS delivery_attempts_by_delivery ON delivery_attempts (delivery_id, attempted_at)',
      'CREATE INDEX IF NOT EXISTS delivery_attempts_by_subscription ON delivery_attempts (subscription_id, attempted_at)',
      `CREATE TABLE IF NOT EXISTS delivery_replays (
         id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         subscription_id bigint NOT NULL,
         from_time timestamptz NOT NULL,
         to_time timestamptz NOT NULL,
         statuses text[] NOT NULL,
         state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'cancelled')),
         total bigint NOT NULL,
         processed bigint NOT NULL DEFAULT 0,
         requeued bigint NOT NULL DEFAULT 0,
         after_id bigint NOT NULL DEFAULT 0,
         created_at timestamptz NOT NULL DEFAULT now(),
         finished_at timestamptz
       )`,
    ],
  },
];

/** The highest schema version this build knows. */
export const schemaVersionLatest = migrations.reduce((max, m) => Math.max(max, m.version), 0);

/** `upTo` stops at an older version (tests of an upgrade from it); by default, all. */
export async function migrate(client: pg.ClientBase, logger: SinkLogger, upTo = schemaVersionLatest): Promise<void> {
  await client.query('SELECT pg_advisory_lock($1::bigint)', [migrationLockKey]);
  try {
    await client.query(
      `CREATE TABLE IF NOT EXISTS floodgate_schema_migrations (
         version int PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const result = await client.query<{ version: number }>('SELECT version FROM floodgate_schema_migrations');
    const applied = new Set(result.rows.map((row) => row.version));
    const newest = Math.max(0, ...applied);
    if (newest > schemaVersionLatest) {
      // A newer engine migrated this database; running old code against it could corrupt it.
      throw new Error(
        `database schema is at version ${newest} but this build knows only up to ${schemaVersionLatest}: upgrade Floodgate`,
      );
    }
    for (const migration of migrations) {
      if (applied.has(migration.version) || migration.version > upTo) continue;
      await applyMigration(client, migration);
      logger.info({ version: migration.version, name: migration.name }, 'schema migration applied');
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1::bigint)', [migrationLockKey]);
  }
}

async function applyMigration(client: pg.ClientBase, migration: Migration): Promise<void> {
  await client.query('BEGIN');
  try {
    for (const statement of migration.statements) await client.query(statement);
    await client.query('INSERT INTO floodgate_schema_migrations (version, applied_at) VALUES ($1, now())', [
      migration.version,
    ]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Opens its own connection, migrates, and closes it (the `floodgate migrate` command). */
export async function migrateDatabase(connectionString: string, logger: SinkLogger): Promise<void> {
  const client = new pg.Client({ connectionString });
  // A connection dropped while idle is reported as an event; without a listener it would
  // crash the process instead of failing the awaiting query.
  client.on('error', (error) => logger.warn(errorFields(error), 'migration connection error'));
  await client.connect();
  try {
    await migrate(client, logger);
  } finally {
    await client.end();
  }
}
