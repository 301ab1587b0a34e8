import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import {
  dayOfPartitionName,
  dayOfUs,
  ensurePartitions,
  ensurePartitionWindow,
  existingPartitionDays,
  isPartitionableDay,
  PartitionCache,
  partitionDayMax,
  partitionName,
  partitionWindowDaysMax,
} from '../../src/sink/partitions';
import { createMigratedDatabase, dayUs, type MigratedDatabase } from './fixtures';

const dayOfDate = (year: number, month: number, date: number): number => Date.UTC(year, month - 1, date) / 86_400_000;

test('dayOfUs counts UTC days since the epoch, flooring before it', () => {
  assert.equal(dayOfUs(0), 0);
  assert.equal(dayOfUs(dayUs - 1), 0);
  assert.equal(dayOfUs(dayUs), 1);
  assert.equal(dayOfUs(-1), -1);
  assert.equal(dayOfUs(Date.UTC(2026, 2, 14, 23, 59, 59, 999) * 1000 + 999), dayOfDate(2026, 3, 14));
});

test('partition names are events_pYYYYMMDD and parse back', () => {
  assert.equal(partitionName(0), 'events_p19700101');
  assert.equal(partitionName(dayOfDate(2024, 2, 29)), 'events_p20240229');
  assert.equal(partitionName(partitionDayMax), 'events_p99991231');
  assert.equal(dayOfPartitionName('events_p20240229'), dayOfDate(2024, 2, 29));
  for (const name of ['events_p20240230', 'events_p20241301', 'events_p2024011', 'events_p202401011', 'events_x20240101', 'events', 'events_p19691231']) {
    assert.equal(dayOfPartitionName(name), null, name);
  }
});

test('only days with a four-digit year from 1970 can have a partition', () => {
  for (const day of [0, 20_000, partitionDayMax]) assert.ok(isPartitionableDay(day), String(day));
  for (const day of [-1, partitionDayMax + 1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.ok(!isPartitionableDay(day), String(day));
    assert.throws(() => partitionName(day), RangeError);
  }
});

let database: MigratedDatabase;
before(async () => {
  database = await createMigratedDatabase();
});
after(async () => {
  await database?.close();
});

test('ensurePartitions creates a far day once, with exact UTC bounds', async () => {
  const day = dayOfDate(2090, 12, 31);
  assert.equal(await ensurePartitions(database.client, [day, day]), 1);
  assert.equal(await ensurePartitions(database.client, [day]), 0);
  const bound = await database.client.query<{ bound: string }>(
    "SELECT pg_get_expr(relpartbound, oid) AS bound FROM pg_class WHERE relname = 'events_p20901231'",
  );
  // The server prints bounds in its own time zone; compare instants, not text.
  const match = /FROM \('([^']+)'\) TO \('([^']+)'\)/.exec(bound.rows[0]?.bound ?? '');
  assert.ok(match, bound.rows[0]?.bound);
  const instants = await database.client.query<{ from_ms: string; to_ms: string }>(
    'SELECT (extract(epoch FROM $1::timestamptz) * 1000)::bigint::text AS from_ms, (extract(epoch FROM $2::timestamptz) * 1000)::bigint::text AS to_ms',
    [match[1], match[2]],
  );
  assert.deepEqual(instants.rows[0], { from_ms: String(Date.UTC(2090, 11, 31)), to_ms: String(Date.UTC(2091, 0, 1)) });
});

test('ensurePartitions refuses a day that cannot have a partition, before touching the database', async () => {
  await assert.rejects(ensurePartitions(database.client, [-5]), RangeError);
  await assert.rejects(ensurePartitions(database.client, [partitionDayMax + 1]), RangeError);
  const inTransaction = await database.client.query<{ now: string }>('SELECT now()::text AS now');
  assert.equal(inTransaction.rowCount, 1, 'the connection is still usable');
});

test('two clients racing for the same days create each partition exactly once', async () => {
  const days = Array.from({ length: 12 }, (_, i) => dayOfDate(2080, 1, 1) + i);
  const clients = [new pg.Client({ connectionString: database.url }), new pg.Client({ connectionString: database.url })];
  await Promise.all(clients.map((client) => client.connect()));
  try {
    const [first, second] = await Promise.all([
      ensurePartitions(clients[0] as pg.Client, days),
      ensurePartitions(clients[1] as pg.Client, [...days].reverse()),
    ]);
    assert.equal((first ?? 0) + (second ?? 0), days.length);
  } finally {
    await Promise.all(clients.map((client) => client.end()));
  }
  const existing = new Set(await existingPartitionDays(database.client));
  for (const day of days) assert.ok(existing.has(day), partitionName(day));
});

test('ensurePartitionWindow covers every day touched by the window, inclusive', async () => {
  const fromMs = Date.UTC(2070, 4, 30, 13);
  const toMs = Date.UTC(2070, 5, 2, 1);
  assert.equal(await ensurePartitionWindow(database.client, fromMs, toMs), 4);
  assert.equal(await ensurePartitionWindow(database.client, fromMs, toMs), 0);
  const existing = new Set(await existingPartitionDays(database.client));
  for (const name of ['events_p20700530', 'events_p20700531', 'events_p20700601', 'events_p20700602']) {
    assert.ok(existing.has(dayOfPartitionName(name) as number), name);
  }
});

test('ensurePartitionWindow rejects empty, invalid and absurd windows', async () => {
  const nowMs = Date.UTC(2070, 0, 1);
  await assert.rejects(ensurePartitionWindow(database.client, nowMs, nowMs - 86_400_000), RangeError);
  await assert.rejects(ensurePartitionWindow(database.client, Number.NaN, nowMs), RangeError);
  await assert.rejects(
    ensurePartitionWindow(database.client, nowMs, nowMs + (partitionWindowDaysMax + 1) * 86_400_000),
    /more than 3660 days/,
  );
});

test('PartitionCache loads existing days, creates only what is missing, and reloads on demand', async () => {
  const known = dayOfDate(2090, 12, 31);
  const fresh = dayOfDate(2091, 6, 15);
  const cache = new PartitionCache();
  assert.equal(cache.loaded, false);
  assert.equal(await cache.ensure(database.client, [known]), 0, 'known day found in the catalog');
  assert.ok(cache.loaded && cache.has(known));
  assert.ok(!cache.has(fresh));
  assert.equal(await cache.ensure(database.client, [fresh, fresh, -1, partitionDayMax + 1]), 1);
  assert.ok(cache.has(fresh));
  assert.ok(!cache.has(-1), 'impossible days are skipped, not cached');

  await database.client.query(`DROP TABLE ${partitionName(fresh)}`);
  assert.ok(cache.has(fresh), 'a dropped partition is not noticed until invalidate()');
  cache.invalidate();
  assert.ok(!cache.loaded && !cache.has(fresh) && !cache.has(known), 'invalidate() forgets every day');
  assert.equal(await cache.ensure(database.client, [fresh]), 1);
  assert.ok(cache.has(known), 'reloaded from the catalog');
});
