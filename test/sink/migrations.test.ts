import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { migrate, migrateDatabase, schemaVersionLatest } from '../../src/sink/migrations';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { recordingLogger } from './fixtures';

let database: TestDatabase;
before(async () => {
  database = await createTestDatabase();
});
after(async () => {
  await database?.drop();
});

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

test('two engines migrating at the same moment apply each version exactly once', async () => {
  const loggers = [recordingLogger(), recordingLogger()];
  const clients = [new pg.Client({ connectionString: database.url }), new pg.Client({ connectionString: database.url })];
  await Promise.all(clients.map((client) => client.connect()));
  try {
    await Promise.all(clients.map((client, i) => migrate(client, loggers[i] as ReturnType<typeof recordingLogger>)));
    const locks = await (clients[0] as pg.Client).query(
      "SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND d.datname = current_database()",
    );
    assert.equal(locks.rowCount, 0, 'the advisory lock is released');
  } finally {
    await Promise.all(clients.map((client) => client.end()));
  }
  const applied = loggers.flatMap((logger) => logger.entries.filter((entry) => entry.msg === 'schema migration applied'));
  assert.equal(applied.length, schemaVersionLatest);
  await withClient(database.url, async (client) => {
    const versions = await client.query('SELECT version FROM floodgate_schema_migrations ORDER BY version');
    assert.deepEqual(versions.rows, Array.from({ length: schemaVersionLatest }, (_, index) => ({ version: index + 1 })));
  });
});

test('migrating again is a no-op', async () => {
  const logger = recordingLogger();
  await migrateDatabase(database.url, logger);
  await migrateDatabase(database.url, logger);
  assert.deepEqual(logger.entries, []);
});

test('schema v1: events is partitioned by occurred_at, keyed on (event_id, occurred_at); v8 adds the read indexes', async () => {
  await withClient(database.url, async (client) => {
    const columns = await client.query(
      `SELECT column_name, data_type, is_nullable FROM information_schema.columns
        WHERE table_name = 'events' ORDER BY ordinal_position`,
    );
    assert.deepEqual(columns.rows, [
      { column_name: 'event_id', data_type: 'text', is_nullable: 'NO' },
      { column_name: 'event_type', data_type: 'text', is_nullable: 'NO' },
      { column_name: 'source', data_type: 'text', is_nullable: 'NO' },
      { column_name: 'actor_id', data_type: 'text', is_nullable: 'YES' },
      { column_name: 'occurred_at', data_type: 'timestamp with time zone', is_nullable: 'NO' },
      { column_name: 'received_at', data_type: 'timestamp with time zone', is_nullable: 'NO' },
      { column_name: 'attributes', data_type: 'jsonb', is_nullable: 'NO' },
    ]);
    const partitioning = await client.query(
      "SELECT pg_get_partkeydef('events'::regclass) AS key, (SELECT count(*)::int FROM pg_inherits WHERE inhparent = 'events'::regclass) AS partitions",
    );
    assert.deepEqual(partitioning.rows, [{ key: 'RANGE (occurred_at)', partitions: 0 }]);
    // The key, and the read side's index of v8 (v11 dropped v8's actor index; docs/decisions/0023-read-indexes.md).
    const indexes = await client.query<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE tablename = 'events' ORDER BY indexname");
    assert.deepEqual(indexes.rows.map((row) => row.indexdef.replace(' ON ONLY public.events USING btree', '')), [
      'CREATE INDEX events_occurred_at_event_id (occurred_at, event_id)',
      'CREATE UNIQUE INDEX events_pkey (event_id, occurred_at)',
    ]);
  });
});

test('schema v2: event_id collates as bytes, whatever the database locale', async () => {
  await withClient(database.url, async (client) => {
    const collation = await client.query("SELECT collation_name FROM information_schema.columns WHERE table_name = 'events' AND column_name = 'event_id'");
    assert.deepEqual(collation.rows, [{ collation_name: 'C' }]);
  });
});

test('upgrading a v1 database with rows to v2 keeps the rows and the key on every partition', async () => {
  const old = await createTestDatabase();
  try {
    await withClient(old.url, async (client) => {
      await migrate(client, recordingLogger(), 1);
      await client.query("CREATE TABLE events_p20260101 PARTITION OF events FOR VALUES FROM ('2026-01-01 00:00+00') TO ('2026-01-02 00:00+00')");
      const insert = "INSERT INTO events VALUES ($1, 't', 's', NULL, '2026-01-01 12:00+00', now(), '{}')";
      for (const id of ['b', 'a', 'B', 'é']) await client.query(insert, [id]);
      const logger = recordingLogger();
      await migrate(client, logger, 2);
      assert.deepEqual(logger.entries.map((entry) => entry.obj), [{ version: 2, name: 'events.event_id collates as bytes' }]);
      const partition = await client.query(
        "SELECT c.collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation WHERE a.attrelid = 'events_p20260101'::regclass AND a.attname = 'event_id'",
      );
      assert.deepEqual(partition.rows, [{ collname: 'C' }]);
      // Byte order now: upper case before lower, multi-byte UTF-8 last.
      const ids = await client.query('SELECT event_id FROM events ORDER BY event_id');
      assert.deepEqual(ids.rows.map((row) => row.event_id), ['B', 'a', 'b', 'é']);
      await assert.rejects(client.query(insert, ['a']), { code: '23505' });
      await client.query(insert, ['A']);
    });
  } finally {
    await old.drop();
  }
});

test('schema v1: dead_letters keeps raw bytes and defaults', async () => {
  await withClient(database.url, async (client) => {
    const inserted = await client.query(
      "INSERT INTO dead_letters (reason_code, reason, payload) VALUES ('22P05', 'bad', '\\x00ff'::bytea) RETURNING id, attempts, replayed_at, failed_at IS NOT NULL AS stamped, payload",
    );
    assert.deepEqual(inserted.rows[0], { id: '1', attempts: 1, replayed_at: null, stamped: true, payload: Buffer.from([0, 255]) });
    await assert.rejects(client.query("INSERT INTO dead_letters (reason, payload) VALUES ('no code', ''::bytea)"), { code: '23502' });
  });
});

test('v10 fills event_counts_hourly from the minute rows of a v9 database, by UTC hour and shard, waiting for a writer in flight', async () => {
  const old = await createTestDatabase();
  try {
    await withClient(old.url, async (client) => {
      await migrate(client, recordingLogger(), 9);
      // A half-hour session zone: a truncation in the session's zone would cut at :30.
      await client.query("SET TimeZone = 'Asia/Kolkata'");
      const minutes = [
        ['2026-03-01T10:00Z', 'click', 'web', 0, 2], ['2026-03-01T10:29Z', 'click', 'web', 0, 3], ['2026-03-01T10:31Z', 'click', 'web', 0, 5],
        ['2026-03-01T10:59Z', 'click', 'web', 1, 7], ['2026-03-01T11:00Z', 'click', 'web', 0, 11], ['2026-03-01T23:59Z', 'view', 'app', 2, 13],
        ['2026-03-02T00:00Z', 'view', 'app', 2, 17],
      ] as const;
      for (const row of minutes) await client.query('INSERT INTO event_counts_minute VALUES ($1, $2, $3, $4, $5)', [...row]);
      await withClient(old.url, async (writer) => {
        // A writer of a node still on v9: its upsert is in flight when the migration starts.
        await writer.query('BEGIN');
        await writer.query("INSERT INTO event_counts_minute VALUES ('2026-03-01T10:45Z', 'click', 'web', 1, 19)");
        const migrating = migrate(client, recordingLogger());
        await waitForLockWait(writer);
        await writer.query('COMMIT');
        await migrating;
      });
      const hours = await client.query(
        `SELECT to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI') AS hour, event_type, source, shard, count::int AS count
           FROM event_counts_hourly ORDER BY 1, 2, 3, 4`,
      );
      assert.deepEqual(hours.rows, [
        { hour: '2026-03-01T10:00', event_type: 'click', source: 'web', shard: 0, count: 2 + 3 + 5 },
        { hour: '2026-03-01T10:00', event_type: 'click', source: 'web', shard: 1, count: 7 + 19 },
        { hour: '2026-03-01T11:00', event_type: 'click', source: 'web', shard: 0, count: 11 },
        { hour: '2026-03-01T23:00', event_type: 'view', source: 'app', shard: 2, count: 13 },
        { hour: '2026-03-02T00:00', event_type: 'view', source: 'app', shard: 2, count: 17 },
      ]);
    });
  } finally {
    await old.drop();
  }
});

/** Until another session of the database waits for a lock (the migration's LOCK, here). */
async function waitForLockWait(client: pg.Client): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const waiting = await client.query(
      "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'",
    );
    if (waiting.rowCount !== 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail('the migration never waited for the writer in flight');
}

test('a database migrated by a newer build is refused, not touched', async () => {
  const newer = await createTestDatabase();
  try {
    await withClient(newer.url, async (client) => {
      await client.query('CREATE TABLE floodgate_schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL)');
      await client.query('INSERT INTO floodgate_schema_migrations VALUES (999, now())');
    });
    await assert.rejects(migrateDatabase(newer.url, recordingLogger()), /schema is at version 999/);
    await withClient(newer.url, async (client) => {
      const events = await client.query("SELECT to_regclass('events') AS events");
      assert.equal(events.rows[0]?.events, null);
    });
  } finally {
    await newer.drop();
  }
});

test('a failing migration leaves nothing behind and releases the lock', async () => {
  const broken = await createTestDatabase();
  try {
    await withClient(broken.url, async (client) => {
      // dead_letters already exists with another shape, so v1's second statement fails.
      await client.query('CREATE TABLE dead_letters (x int)');
      await assert.rejects(migrate(client, recordingLogger()), { code: '42P07' });
      const state = await client.query(
        "SELECT to_regclass('events') AS events, (SELECT count(*)::int FROM floodgate_schema_migrations) AS versions, (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS locks",
      );
      assert.deepEqual(state.rows[0], { events: null, versions: 0, locks: 0 });
    });
  } finally {
    await broken.drop();
  }
});

test('migrateDatabase reports an unreachable server', async () => {
  const url = new URL(database.url);
  url.port = '1';
  await assert.rejects(migrateDatabase(url.toString(), recordingLogger()), { code: 'ECONNREFUSED' });
});
