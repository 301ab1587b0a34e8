/**
 * The writer counts exactly the rows it inserted, in their transaction, on each of its
 * paths: COPY, staging (duplicates) and bisection (poison). The rollups are checked
 * against events by verifyRollups, and by hand for the shards.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BatchWriter, type BatchRow } from '../../src/sink/batch-writer';
import { RollupCounts } from '../../src/sink/rollup-counts';
import { dayRangeOf, rebuildRollups, verifyRollups } from '../../src/rollups/rollup-check';
import { baseUs, buildEvent, buildRows, createMigratedDatabase, dayUs, recordingLogger, ringRowsOf, type MigratedDatabase } from './fixtures';

let database: MigratedDatabase;
before(async () => {
  database = await createMigratedDatabase();
});
after(async () => {
  await database?.close();
});

const everything = dayRangeOf(null, null);

async function write(shard: number, rows: readonly BatchRow[]) {
  const writer = await BatchWriter.open(database.url, recordingLogger(), undefined, shard);
  try {
    return await writer.write(rows, new Uint8Array(rows.length));
  } finally {
    await writer.close();
  }
}

async function rollupTotal(table: 'event_counts_minute' | 'event_counts_hourly' | 'event_counts_daily'): Promise<number> {
  const result = await database.client.query<{ n: string }>(`SELECT coalesce(sum(count), 0)::text AS n FROM ${table}`);
  return Number(result.rows[0]?.n);
}

async function assertExact(): Promise<void> {
  const verified = await verifyRollups(database.client, everything);
  assert.deepEqual(verified.differences, []);
  const events = Number((await database.client.query<{ n: string }>('SELECT count(*)::text AS n FROM events')).rows[0]?.n);
  assert.equal(await rollupTotal('event_counts_minute'), events);
  assert.equal(await rollupTotal('event_counts_hourly'), events);
  assert.equal(await rollupTotal('event_counts_daily'), events);
}

test('the COPY path counts the whole batch, by minute, hour and day, type and source, under its shard', async () => {
  const rows = [
    ...buildRows(30, { eventType: 'page.viewed', source: 'web' }),
    ...buildRows(20, { eventType: 'click', source: 'ios', occurredAtUs: baseUs + 120_000_000 }),
    ...ringRowsOf([buildEvent({ eventType: "it's \\ quoted", source: 'wéb' }), buildEvent({ eventType: "it's \\ quoted", source: 'wéb' })]),
  ];
  const report = await write(3, rows);
  assert.equal(report.path, 'copy');
  const minutes = await database.client.query<{ event_type: string; source: string; shard: number; count: string }>(
    'SELECT event_type, source, shard, count::text FROM event_counts_minute ORDER BY event_type, source',
  );
  assert.deepEqual(
    minutes.rows.map((row) => [row.event_type, row.source, row.shard, Number(row.count)]),
    [['click', 'ios', 3, 20], ["it's \\ quoted", 'wéb', 3, 2], ['page.viewed', 'web', 3, 30]],
  );
  const hours = await database.client.query<{ event_type: string; hour: Date; count: string }>(
    'SELECT event_type, hour, count::text FROM event_counts_hourly ORDER BY event_type',
  );
  const hourOfBase = new Date(Math.floor(baseUs / 3_600_000_000) * 3_600_000);
  assert.deepEqual(hours.rows.map((row) => [row.event_type, row.hour, Number(row.count)]), [
    ['click', hourOfBase, 20], ["it's \\ quoted", hourOfBase, 2], ['page.viewed', hourOfBase, 30],
  ]);
  await assertExact();
});

test('duplicates (staging path) and late events count once, in their own buckets', async () => {
  const late = buildRows(10, { eventType: 'late', occurredAtUs: baseUs - 3 * dayUs });
  const first = await write(0, late);
  assert.equal(first.committed, 10);
  const again = await write(1, [...late, ...buildRows(5, { eventType: 'late', occurredAtUs: baseUs - 3 * dayUs })]);
  assert.deepEqual([again.path, again.committed, again.duplicates], ['staging', 5, 10]);
  const day = await database.client.query<{ n: string }>(
    "SELECT sum(count)::text AS n FROM event_counts_daily WHERE event_type = 'late' AND day = $1::date",
    [new Date((baseUs - 3 * dayUs) / 1000).toISOString().slice(0, 10)],
  );
  assert.equal(Number(day.rows[0]?.n), 15);
  await assertExact();
});

test('hours sum their minutes across hour and day boundaries, to the microsecond', async () => {
  const at = (iso: string, extraUs = 0) => Date.parse(iso) * 1000 + extraUs;
  const rows = [
    ...buildRows(2, { eventType: 'edge', occurredAtUs: at('2026-03-15T10:59:59.999Z', 999) }),
    ...buildRows(3, { eventType: 'edge', occurredAtUs: at('2026-03-15T10:01:00Z') }),
    ...buildRows(4, { eventType: 'edge', occurredAtUs: at('2026-03-15T11:00:00Z') }),
    ...buildRows(5, { eventType: 'edge', occurredAtUs: at('2026-03-15T23:59:00Z') }),
    ...buildRows(6, { eventType: 'edge', occurredAtUs: at('2026-03-16T00:00:00Z') }),
  ];
  assert.equal((await write(4, rows)).committed, 20);
  const hours = await database.client.query<{ hour: string; count: number }>(
    `SELECT to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24') AS hour, count::int AS count FROM event_counts_hourly WHERE event_type = 'edge' ORDER BY 1`,
  );
  assert.deepEqual(hours.rows, [
    { hour: '2026-03-15T10', count: 5 },
    { hour: '2026-03-15T11', count: 4 },
    { hour: '2026-03-15T23', count: 5 },
    { hour: '2026-03-16T00', count: 6 },
  ]);
  await assertExact();
});

test('poison rows (bisection path) are dead-lettered and never counted', async () => {
  const rows = buildRows(40, { eventType: 'mixed' });
  rows[3] = { event: buildEvent({ eventType: 'bad\u0000type' }), receivedAtUs: baseUs };
  rows[21] = { event: buildEvent({ attributesJson: '{"a":"\\u0000"}', eventType: 'mixed' }), receivedAtUs: baseUs };
  const report = await write(2, rows);
  assert.deepEqual([report.path, report.committed, report.deadLettered], ['bisect', 38, 2]);
  await assertExact();
});

test('verify names a corrupted bucket, a missing one and an extra one; rebuild repairs the range', async () => {
  await write(0, buildRows(7, { eventType: 'corrupt-me' }));
  await database.client.query("UPDATE event_counts_minute SET count = count + 1 WHERE event_type = 'corrupt-me'");
  await database.client.query("UPDATE event_counts_hourly SET count = count - 2 WHERE event_type = 'corrupt-me'");
  await database.client.query("DELETE FROM event_counts_daily WHERE event_type = 'corrupt-me'");
  await database.client.query(
    "INSERT INTO event_counts_daily (day, event_type, source, shard, count) VALUES ('2026-03-01', 'ghost', 'web', 9, 4)",
  );
  const verified = await verifyRollups(database.client, everything);
  assert.equal(verified.differenceCount, 4);
  const day = new Date(baseUs / 1000).toISOString().slice(0, 10);
  assert.deepEqual(
    verified.differences.map((d) => [d.table, d.bucket.slice(0, 10), d.eventType, d.events, d.rollup]),
    [['minute', day, 'corrupt-me', 7, 8], ['hour', day, 'corrupt-me', 7, 5], ['day', '2026-03-01', 'ghost', 0, 4], ['day', day, 'corrupt-me', 7, 0]],
  );
  const range = dayRangeOf(new Date('2026-03-01T00:00:00Z'), new Date(baseUs / 1000 + 1));
  const rebuilt = await rebuildRollups(database.client, range);
  assert.ok(rebuilt.minuteRows > 0 && rebuilt.hourRows > 0 && rebuilt.dayRows > 0);
  await assertExact();
});

test('dayRangeOf widens to whole UTC days and leaves open ends infinite', () => {
  assert.deepEqual(dayRangeOf(new Date('2026-12-07T10:30:00Z'), new Date('2026-12-08T01:00:00Z')), {
    from: '2026-12-07T00:00:00.000Z',
    to: '2026-12-09T00:00:00.000Z',
  });
  assert.deepEqual(dayRangeOf(null, null), { from: '-infinity', to: 'infinity' });
});

test('RollupCounts: a NUL in a key becomes chr(0), never a NUL in the SQL text', () => {
  const counts = new RollupCounts(0);
  counts.add(buildEvent({ eventType: 'a\u0000b' }));
  const sql = counts.upsertSql();
  assert.ok(!sql.includes('\u0000'));
  assert.match(sql, /\('a'\|\|chr\(0\)\|\|'b'\)/);
  counts.reset();
  assert.equal(counts.upsertSql(), '');
});

test('RollupCounts: in-place and text rows share keys; split points and thousands of pairs stay apart', () => {
  const counts = new RollupCounts(3);
  const at = { occurredAtUs: baseUs };
  const pairs = [
    { eventType: 'ab', source: 'c' },
    { eventType: 'a', source: 'bc' },
    { eventType: 'zoë', source: 'web' },
  ];
  const ringEvents = ringRowsOf(pairs.map((pair) => buildEvent({ ...pair, ...at }))).map((row) => row.event);
  for (const event of ringEvents) counts.add(event);
  for (const pair of pairs) counts.add(buildEvent({ ...pair, ...at }));
  const sql = counts.upsertSql();
  for (const [type, source] of [['ab', 'c'], ['a', 'bc'], ['zoë', 'web']]) {
    assert.match(sql, new RegExp(`\\('[^']+','${type}','${source}',3,2\\)`), `${type}/${source} counted twice, once per path`);
  }
  // More distinct pairs than the table keeps between batches: each batch still counts each once.
  for (let batch = 0; batch < 3; batch++) {
    counts.reset();
    for (let index = 0; index < 5000; index++) counts.add(buildEvent({ eventType: `t${index}`, source: `s${batch}`, ...at }));
    const text = counts.upsertSql();
    assert.equal(text.match(/,1\)/g)?.length, 3 * 5000, 'one minute, one hour and one day row per pair, each counting 1');
  }
});

test('rows and counts commit together: when the rollup upsert fails, the rows are not stored', async () => {
  await database.client.query("ALTER TABLE event_counts_minute ADD CONSTRAINT refuse_one CHECK (event_type <> 'uncountable')");
  try {
    const rows = buildRows(4, { eventType: 'uncountable' });
    const report = await write(0, rows);
    assert.equal(report.committed, 0);
    const stored = await database.client.query("SELECT 1 FROM events WHERE event_type = 'uncountable'");
    assert.equal(stored.rowCount, 0);
    await assertExact();
  } finally {
    await database.client.query('ALTER TABLE event_counts_minute DROP CONSTRAINT refuse_one');
  }
});
