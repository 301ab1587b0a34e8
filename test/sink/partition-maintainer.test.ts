import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { Registry } from 'prom-client';
import { renderExposition } from '../../src/metrics/prometheus';
import { maintenanceLockKey, PartitionMaintainer, retentionDaysPerRunMax } from '../../src/sink/partition-maintainer';
import { ensurePartitions, existingPartitionDays, partitionName } from '../../src/sink/partitions';
import { parseExposition, valueOf, type Family } from '../metrics/exposition-format';
import { createMigratedDatabase, recordingLogger, type MigratedDatabase } from './fixtures';

/** No accepted past or future beyond now, and retention unset. */
const keepEverything = { timestampPastMs: 0, timestampFutureMs: 0, retentionDays: null, rollupRetentionDays: null, deliveryAttemptRetentionDays: 14 };

let database: MigratedDatabase;
before(async () => {
  database = await createMigratedDatabase();
});
after(async () => {
  await database?.close();
});

test('runOnce covers now - past .. now + future + one day, then finds nothing to do', async () => {
  const logger = recordingLogger();
  const settings = { ...keepEverything, timestampPastMs: 2 * 86_400_000, timestampFutureMs: 3_600_000 };
  const maintainer = new PartitionMaintainer(database.url, settings, logger);
  const nowMs = Date.UTC(2060, 0, 10, 23, 30);
  assert.equal((await maintainer.runOnce(nowMs))?.createdCount, 5);
  assert.equal((await maintainer.runOnce(nowMs))?.createdCount, 0);
  const names = (await existingPartitionDays(database.client)).map(partitionName).sort();
  assert.deepEqual(names, ['events_p20600108', 'events_p20600109', 'events_p20600110', 'events_p20600111', 'events_p20600112']);
  assert.equal(logger.entries.filter((entry) => entry.msg === 'event partitions created ahead of time').length, 1);
});

test('start fails loudly when the database cannot be reached; stop is always safe', async () => {
  const url = new URL(database.url);
  url.port = '1';
  const maintainer = new PartitionMaintainer(url.toString(), keepEverything, recordingLogger());
  await assert.rejects(maintainer.start(), { code: 'ECONNREFUSED' });
  await maintainer.stop();
});

test('start creates the window around today and leaves no timer keeping the process alive', async () => {
  const maintainer = new PartitionMaintainer(database.url, keepEverything, recordingLogger());
  await maintainer.start();
  const today = Math.floor(Date.now() / 86_400_000);
  const days = new Set(await existingPartitionDays(database.client));
  assert.ok(days.has(today) && days.has(today + 1));
  await maintainer.stop();
});

test('across nodes: the hourly run skips while another node holds the lock; start-up waits for it', async () => {
  const maintainer = new PartitionMaintainer(database.url, keepEverything, recordingLogger());
  const nowMs = Date.UTC(2070, 5, 1, 12);
  await database.client.query('SELECT pg_advisory_lock($1)', [maintenanceLockKey]);
  try {
    assert.equal(await maintainer.runOnce(nowMs), null);
    let waited = false;
    const blocked = maintainer.runOnce(nowMs, { waitForLock: true }).then((created) => {
      waited = true;
      return created;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(waited, false, 'start-up maintenance must wait for the lock holder');
    await database.client.query('SELECT pg_advisory_unlock($1)', [maintenanceLockKey]);
    assert.equal((await blocked)?.createdCount, 2);
  } finally {
    await database.client.query('SELECT pg_advisory_unlock_all()');
  }
});

describe('retention', () => {
  const dayMs = 86_400_000;
  /** 2050-06-15 10:00 UTC; with 3 days of retention the first day kept is 2050-06-12. */
  const nowMs = Date.UTC(2050, 5, 15, 10);
  const today = Math.floor(nowMs / dayMs);
  const keptFromDay = today - 3;
  const threeDays = { timestampPastMs: 3 * dayMs, timestampFutureMs: 3_600_000, deliveryAttemptRetentionDays: 14 };

  /** A fresh database per test: retention drops every old day it finds, whoever made it. */
  async function withDatabase(work: (db: MigratedDatabase) => Promise<void>): Promise<void> {
    const db = await createMigratedDatabase();
    try {
      await work(db);
    } finally {
      await db.close();
    }
  }

  /** `count` events on each day, at noon UTC, in partitions created first. */
  async function insertEvents(client: pg.Client, days: readonly number[], count = 3): Promise<void> {
    await ensurePartitions(client, days);
    for (const day of days) {
      await client.query(
        `INSERT INTO events (event_id, event_type, source, occurred_at, received_at, attributes)
         SELECT 'e-' || $1::text || '-' || n, 'click', 'web', $2::timestamptz, now(), '{}' FROM generate_series(1, $3::int) n`,
        [day, new Date(day * dayMs + 12 * 3_600_000).toISOString(), count],
      );
    }
  }

  async function eventsPerDay(client: pg.Client): Promise<Record<string, number>> {
    const result = await client.query<{ day: string; count: number }>(
      `SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, count(*)::int AS count FROM events GROUP BY 1 ORDER BY 1`,
    );
    return Object.fromEntries(result.rows.map((row) => [row.day, row.count]));
  }

  async function keptFrom(client: pg.Client): Promise<{ events: string | null; rollups: string | null }> {
    const result = await client.query<{ events: string | null; rollups: string | null }>(
      "SELECT to_char(events_kept_from, 'YYYY-MM-DD') AS events, to_char(rollups_kept_from, 'YYYY-MM-DD') AS rollups FROM floodgate_retention",
    );
    return result.rows[0] ?? { events: 'no row', rollups: 'no row' };
  }

  async function tableExists(client: pg.Client, name: string): Promise<boolean> {
    return (await client.query('SELECT to_regclass($1) IS NOT NULL AS found', [name])).rows[0].found;
  }

  test('drops whole day partitions before today − N days with their rows; the days after keep theirs', async () => {
    await withDatabase(async (db) => {
      await insertEvents(db.client, [keptFromDay - 2, keptFromDay - 1, keptFromDay, keptFromDay + 1]);
      const logger = recordingLogger();
      const maintainer = new PartitionMaintainer(db.url, { ...threeDays, retentionDays: 3, rollupRetentionDays: null }, logger);
      // The rollups of dropped days stay: rollup retention is separate, and unset here.
      await db.client.query("INSERT INTO event_counts_daily VALUES ('2050-06-10', 'click', 'web', 0, 3)");

      const report = await maintainer.runOnce(nowMs);
      assert.equal(report?.droppedCount, 2);
      assert.deepEqual(await eventsPerDay(db.client), { '2050-06-12': 3, '2050-06-13': 3 });
      assert.equal(await tableExists(db.client, 'events_p20500610'), false, 'dropped, not only detached');
      assert.equal(await tableExists(db.client, 'events_p20500611'), false);
      const days = await existingPartitionDays(db.client);
      assert.equal(Math.min(...days), keptFromDay);
      assert.deepEqual(await keptFrom(db.client), { events: '2050-06-12', rollups: null });
      assert.equal((await db.client.query('SELECT count(*)::int AS n FROM event_counts_daily')).rows[0].n, 1);
      const line = logger.entries.find((entry) => entry.msg === 'event partitions dropped by retention');
      assert.deepEqual(line?.obj, { droppedCount: 2, first: 'events_p20500610', last: 'events_p20500611', keptFrom: '2050-06-12' });

      // An hour later nothing is left to drop; the next day, one more day goes.
      assert.equal((await maintainer.runOnce(nowMs + 3_600_000))?.droppedCount, 0);
      assert.equal((await maintainer.runOnce(nowMs + dayMs))?.droppedCount, 1);
      assert.deepEqual(await eventsPerDay(db.client), { '2050-06-13': 3 });
    });
  });

  test('with retention unset nothing is dropped, however old', async () => {
    await withDatabase(async (db) => {
      await insertEvents(db.client, [Math.floor(Date.UTC(2001, 0, 1) / dayMs), keptFromDay - 1]);
      await db.client.query("INSERT INTO event_counts_minute VALUES ('2001-01-01T12:00Z', 'click', 'web', 0, 3)");
      const maintainer = new PartitionMaintainer(db.url, { ...threeDays, retentionDays: null, rollupRetentionDays: null }, recordingLogger());
      assert.deepEqual(await maintainer.runOnce(nowMs), { createdCount: 5, droppedCount: 0, rollupRowsDeleted: 0, deliveriesDeleted: 0, attemptDaysDropped: 0 });
      assert.deepEqual(await eventsPerDay(db.client), { '2001-01-01': 3, '2050-06-11': 3 });
      assert.equal((await db.client.query('SELECT count(*)::int AS n FROM event_counts_minute')).rows[0].n, 1);
      assert.deepEqual(await keptFrom(db.client), { events: null, rollups: null });
    });
  });

  test('rollup retention deletes minute, hour and day rows before the same UTC day and keeps the rest', async () => {
    await withDatabase(async (db) => {
      // Days are UTC days whatever the sessions' TimeZone: give the maintainer's one with DST.
      const name = (await db.client.query('SELECT current_database() AS name')).rows[0].name;
      await db.client.query(`ALTER DATABASE ${name} SET TimeZone = 'America/New_York'`);
      const minutes = ['2050-06-10T00:00Z', '2050-06-11T13:37Z', '2050-06-11T23:59Z', '2050-06-12T00:00Z', '2050-06-14T08:00Z'];
      for (const [index, bucket] of minutes.entries()) {
        await db.client.query('INSERT INTO event_counts_minute VALUES ($1, $2, $3, $4, 5)', [bucket, 'click', 'web', index % 2]);
      }
      // 23:00Z and 00:00Z are both 11 June in New York; the cutoff is UTC midnight between them.
      for (const hour of ['2050-06-11T02:00Z', '2050-06-11T23:00Z', '2050-06-12T00:00Z', '2050-06-12T03:00Z']) {
        await db.client.query("INSERT INTO event_counts_hourly VALUES ($1, 'click', 'web', 0, 5)", [hour]);
      }
      for (const day of ['2050-06-10', '2050-06-11', '2050-06-12', '2050-06-13']) {
        await db.client.query("INSERT INTO event_counts_daily VALUES ($1, 'click', 'web', 0, 5), ($1, 'view', 'app', 1, 2)", [day]);
      }
      await insertEvents(db.client, [keptFromDay - 1]);
      const maintainer = new PartitionMaintainer(db.url, { ...threeDays, retentionDays: null, rollupRetentionDays: 3 }, recordingLogger());

      const report = await maintainer.runOnce(nowMs);
      assert.equal(report?.rollupRowsDeleted, 3 + 2 + 4);
      const kept = await db.client.query<{ bucket: string }>(
        `SELECT to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI') AS bucket FROM event_counts_minute ORDER BY 1`,
      );
      assert.deepEqual(kept.rows.map((row) => row.bucket), ['2050-06-12T00:00', '2050-06-14T08:00']);
      const hours = await db.client.query<{ hour: string }>(`SELECT to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI') AS hour FROM event_counts_hourly ORDER BY 1`);
      assert.deepEqual(hours.rows.map((row) => row.hour), ['2050-06-12T00:00', '2050-06-12T03:00']);
      const days = await db.client.query<{ day: string }>("SELECT DISTINCT to_char(day, 'YYYY-MM-DD') AS day FROM event_counts_daily ORDER BY 1");
      assert.deepEqual(days.rows.map((row) => row.day), ['2050-06-12', '2050-06-13']);
      assert.deepEqual(await keptFrom(db.client), { events: null, rollups: '2050-06-12' });
      // Event retention is separate, and unset here.
      assert.deepEqual(await eventsPerDay(db.client), { '2050-06-11': 3 });
      assert.equal((await maintainer.runOnce(nowMs))?.rollupRowsDeleted, 0);
    });
  });

  test(`one run retires at most ${retentionDaysPerRunMax} days of rollups; the next run goes on`, async () => {
    await withDatabase(async (db) => {
      const farBack = new Date((keptFromDay - retentionDaysPerRunMax - 50) * dayMs).toISOString();
      await db.client.query("INSERT INTO event_counts_minute VALUES ($1, 'click', 'web', 0, 1), ('2050-06-11T00:00Z', 'click', 'web', 0, 1)", [farBack]);
      const maintainer = new PartitionMaintainer(db.url, { ...threeDays, retentionDays: null, rollupRetentionDays: 3 }, recordingLogger());
      assert.equal((await maintainer.runOnce(nowMs))?.rollupRowsDeleted, 1);
      assert.equal((await maintainer.runOnce(nowMs))?.rollupRowsDeleted, 1);
      assert.equal((await db.client.query('SELECT count(*)::int AS n FROM event_counts_minute')).rows[0].n, 0);
    });
  });

  test('a node that finds the lock taken drops nothing; the holder\'s next run does', async () => {
    await withDatabase(async (db) => {
      await insertEvents(db.client, [keptFromDay - 1]);
      const maintainer = new PartitionMaintainer(db.url, { ...threeDays, retentionDays: 3, rollupRetentionDays: 3 }, recordingLogger());
      await db.client.query('SELECT pg_advisory_lock($1)', [maintenanceLockKey]);
      assert.equal(await maintainer.runOnce(nowMs), null);
      assert.deepEqual(await eventsPerDay(db.client), { '2050-06-11': 3 });
      assert.deepEqual(await keptFrom(db.client), { events: null, rollups: null });
      await db.client.query('SELECT pg_advisory_unlock($1)', [maintenanceLockKey]);
      assert.equal((await maintainer.runOnce(nowMs))?.droppedCount, 1);
    });
  });

  test('a detach waits for the transactions reading events, and writers go on meanwhile', async () => {
    await withDatabase(async (db) => {
      await insertEvents(db.client, [keptFromDay - 1, today]);
      // The window exists already: creating a partition would wait for the reader below.
      await ensurePartitions(db.client, [keptFromDay, keptFromDay + 1, keptFromDay + 2, today, today + 1]);
      const reader = await connectedClient(db.url);
      const writer = await connectedClient(db.url);
      try {
        await reader.query('BEGIN');
        await reader.query('SELECT count(*) FROM events');
        const maintainer = new PartitionMaintainer(db.url, { ...threeDays, retentionDays: 3, rollupRetentionDays: null }, recordingLogger());
        const run = maintainer.runOnce(nowMs);
        await waitFor(async () => (await detachPending(db.client)).includes('events_p20500611'));
        // While the detach waits, a writer's insert neither waits nor fails.
        await writer.query("SET lock_timeout = '1s'");
        await writer.query(
          `INSERT INTO events (event_id, event_type, source, occurred_at, received_at, attributes)
           VALUES ('during-detach', 'click', 'web', $1, now(), '{}')`,
          [new Date(nowMs).toISOString()],
        );
        await reader.query('COMMIT');
        assert.equal((await run)?.droppedCount, 1);
        assert.deepEqual(await eventsPerDay(db.client), { '2050-06-15': 4 });
      } finally {
        await reader.end();
        await writer.end();
      }
    });
  });

  test('a partition left detach-pending, or detached but not dropped, by an interrupted run is finished by the next', async () => {
    await withDatabase(async (db) => {
      await insertEvents(db.client, [keptFromDay - 3, keptFromDay - 2, keptFromDay - 1, keptFromDay + 1]);
      await interruptDetach(db.url, 'events_p20500611');
      assert.deepEqual(await detachPending(db.client), ['events_p20500611']);
      // A run that stopped between its detach and its drop leaves a plain table behind.
      await db.client.query('ALTER TABLE events DETACH PARTITION events_p20500609');
      // A table named like a day partition but attached to another table is not retention's.
      await db.client.query('CREATE TABLE archive (occurred_at timestamptz NOT NULL) PARTITION BY RANGE (occurred_at)');
      await db.client.query("CREATE TABLE events_p20000101 PARTITION OF archive FOR VALUES FROM ('2000-01-01') TO ('2000-01-02')");

      const logger = recordingLogger();
      const maintainer = new PartitionMaintainer(db.url, { ...threeDays, retentionDays: 3, rollupRetentionDays: null }, logger);
      assert.equal((await maintainer.runOnce(nowMs))?.droppedCount, 3);
      for (const name of ['events_p20500609', 'events_p20500610', 'events_p20500611']) assert.equal(await tableExists(db.client, name), false, name);
      assert.equal(await tableExists(db.client, 'events_p20000101'), true);
      assert.deepEqual(await detachPending(db.client), []);
      const finished = () => logger.entries.filter((entry) => entry.msg === 'interrupted partition detach finished').map((entry) => entry.obj);
      // The pending one first: while it is pending, PostgreSQL refuses any other concurrent detach.
      assert.deepEqual(finished(), [
        { partition: 'events_p20500611', state: 'detach-pending', dropped: true },
        { partition: 'events_p20500609', state: 'detached', dropped: true },
      ]);
      assert.deepEqual(await eventsPerDay(db.client), { '2050-06-13': 3 });

      // A pending detach of a day still kept (someone else's, or an older, shorter retention's)
      // would block every later detach: it is finished, and its table kept.
      await interruptDetach(db.url, 'events_p20500613');
      assert.equal((await maintainer.runOnce(nowMs))?.droppedCount, 0);
      assert.deepEqual(await detachPending(db.client), []);
      assert.equal(await tableExists(db.client, 'events_p20500613'), true);
      assert.deepEqual(finished()[2], { partition: 'events_p20500613', state: 'detach-pending', dropped: false });
    });
  });

  test('metrics: partitions, oldest day, drops, rollup rows deleted and the last run', async () => {
    await withDatabase(async (db) => {
      await insertEvents(db.client, [keptFromDay - 2, keptFromDay - 1]);
      await db.client.query("INSERT INTO event_counts_daily VALUES ('2050-06-01', 'click', 'web', 0, 1)");
      const maintainer = new PartitionMaintainer(db.url, { ...threeDays, retentionDays: 3, rollupRetentionDays: 3 }, recordingLogger());
      const registry = new Registry();
      maintainer.metrics().forEach((metric) => registry.registerMetric(metric));
      const scrape = async (): Promise<Map<string, Family>> => parseExposition(await renderExposition(registry));

      const before = await scrape();
      assert.equal(valueOf(before, 'floodgate_events_partitions'), 0);
      assert.ok(Number.isNaN(valueOf(before, 'floodgate_events_oldest_day_seconds')));
      assert.equal(valueOf(before, 'floodgate_retention_last_run_timestamp_seconds'), 0);

      await maintainer.runOnce(nowMs);
      const after = await scrape();
      // 2050-06-12 (the first day kept) through 2050-06-16 (tomorrow, created ahead).
      assert.equal(valueOf(after, 'floodgate_events_partitions'), 5);
      assert.equal(valueOf(after, 'floodgate_events_oldest_day_seconds'), Date.UTC(2050, 5, 12) / 1000);
      assert.equal(valueOf(after, 'floodgate_events_partitions_dropped_total'), 2);
      assert.equal(valueOf(after, 'floodgate_rollup_rows_deleted_total'), 1);
      assert.equal(valueOf(after, 'floodgate_retention_last_run_timestamp_seconds'), nowMs / 1000);
      assert.equal(valueOf(after, 'floodgate_retention_last_run_success'), 1);

      // A failed run says so, and the next one that works says that.
      await db.client.query('ALTER TABLE floodgate_retention RENAME TO floodgate_retention_away');
      await assert.rejects(maintainer.runOnce(nowMs + 3_600_000), { code: '42P01' });
      const failed = await scrape();
      assert.equal(valueOf(failed, 'floodgate_retention_last_run_success'), 0);
      assert.equal(valueOf(failed, 'floodgate_retention_last_run_timestamp_seconds'), nowMs / 1000 + 3600);
      await db.client.query('ALTER TABLE floodgate_retention_away RENAME TO floodgate_retention');
      await maintainer.runOnce(nowMs + 2 * 3_600_000);
      assert.equal(valueOf(await scrape(), 'floodgate_retention_last_run_success'), 1);
      registry.clear();
    });
  });

  test('start retires at once, in the background, and stop waits for that run', async () => {
    await withDatabase(async (db) => {
      const oldDay = Math.floor(Date.UTC(2001, 0, 1) / dayMs);
      await insertEvents(db.client, [oldDay]);
      const settings = { timestampPastMs: 30 * dayMs, timestampFutureMs: 3_600_000, retentionDays: 30, rollupRetentionDays: null, deliveryAttemptRetentionDays: 14 };
      const maintainer = new PartitionMaintainer(db.url, settings, recordingLogger());
      await maintainer.start();
      await waitFor(async () => !(await tableExists(db.client, partitionName(oldDay))));
      await maintainer.stop();
      const days = await existingPartitionDays(db.client);
      assert.equal(Math.min(...days), Math.floor((Date.now() - 30 * dayMs) / dayMs));
      assert.ok(days.includes(Math.floor(Date.now() / dayMs)));
    });
  });
});

async function connectedClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/**
 * Leaves `partition` detach-pending, as a crash or a cancel would: a reader keeps the
 * concurrent detach waiting until its lock timeout cancels it after the first transaction.
 */
async function interruptDetach(url: string, partition: string): Promise<void> {
  const reader = await connectedClient(url);
  const detacher = await connectedClient(url);
  try {
    await reader.query('BEGIN');
    await reader.query('SELECT count(*) FROM events');
    await detacher.query("SET lock_timeout = '200ms'");
    await assert.rejects(detacher.query(`ALTER TABLE events DETACH PARTITION ${partition} CONCURRENTLY`), { code: '55P03' });
    await reader.query('COMMIT');
  } finally {
    await reader.end();
    await detacher.end();
  }
}

async function detachPending(client: pg.Client): Promise<string[]> {
  const result = await client.query<{ relname: string }>(
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass AND i.inhdetachpending ORDER BY 1",
  );
  return result.rows.map((row) => row.relname);
}

/** Polls `condition` every 20 ms, for at most 10 s. */
async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    assert.ok(Date.now() < deadline, 'condition not met within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
