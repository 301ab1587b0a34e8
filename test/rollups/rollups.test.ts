/**
 * Rollups end to end: a real engine with two actors takes duplicates (in one request and
 * resent), late events, invalid events and poison events, and `floodgate rollups verify`
 * finds every bucket equal to count(*) of its events; a corrupted row makes it exit 1
 * naming the bucket, and `rebuild` repairs it. Then the same with two kill -9s under load
 * (the exactness-under-faults target of issue #23). After retention dropped a day, both
 * commands start at the first day both tables keep.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { clipToKept } from '../../src/rollups/rollup-check';
import { runRollups } from '../../src/rollups/rollups-cli';
import { migrateDatabase } from '../../src/sink/migrations';
import { PartitionMaintainer } from '../../src/sink/partition-maintainer';
import { ensurePartitions } from '../../src/sink/partitions';
import { createTestDatabase } from '../support/database';
import { post, startTestEngine, type TestEngine } from '../support/engine';
import { cliPath, engineEnv, spawnEngine, type EngineProcess } from '../support/engine-process';
import { freePort } from '../support/free-port';
import { emptyStats, sendAllWithRetries } from '../support/retrying-client';
import { wireEvent, wireEvents, type WireEvent } from '../support/wire-events';

const json = { 'content-type': 'application/json' };
const dayMs = 86_400_000;
let harness: TestEngine;

before(async () => {
  harness = await startTestEngine({ actorCount: 2 });
  await harness.query("ALTER TABLE events ADD CONSTRAINT events_no_poison CHECK (event_type <> 'poison')");
});
after(async () => {
  await harness?.close();
});

async function rollups(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io = { out: (text: string) => void (out += text), err: (text: string) => void (err += text) };
  const code = await runRollups(argv, { DATABASE_URL: harness.databaseUrl }, io);
  return { code, out, err };
}

/** An event `daysBack` days before now, with a type and source of its own. */
function lateEvent(eventId: string, daysBack: number): WireEvent {
  return { ...wireEvent(eventId), event_type: 'late', source: 'batch-job', timestamp: new Date(Date.now() - daysBack * dayMs).toISOString() };
}

async function sums(): Promise<{ events: number; minute: number; hour: number; day: number }> {
  const [row] = await harness.query<{ events: number; minute: number; hour: number; day: number }>(
    'SELECT (SELECT count(*) FROM events)::int AS events, (SELECT coalesce(sum(count), 0) FROM event_counts_minute)::int AS minute, ' +
      '(SELECT coalesce(sum(count), 0) FROM event_counts_hourly)::int AS hour, (SELECT coalesce(sum(count), 0) FROM event_counts_daily)::int AS day',
  );
  return row as { events: number; minute: number; hour: number; day: number };
}

test('two actors, duplicates, late, invalid and poison events: verify finds no difference', async () => {
  const events: WireEvent[] = [...wireEvents(300, 'r'), lateEvent('late-1', 3), lateEvent('late-2', 12), wireEvent('r-5', 5)];
  for (const index of [7, 150]) events[index] = { ...(events[index] as WireEvent), event_type: 'poison' };
  const invalid = { ...wireEvent('r-invalid'), event_type: 'click\u0000' };
  const first = await post(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events: [...events, invalid] }), json);
  assert.equal(first.status, 200, first.text);
  // Resent: every event is now a duplicate (the dedupe window or ON CONFLICT), or poison again.
  const again = await post(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events: [...events, ...wireEvents(20, 'r2')] }), json);
  assert.equal(again.status, 200, again.text);

  const total = await sums();
  assert.equal(total.events, 300 - 2 + 2 + 20, 'stored once each, poison and invalid not at all');
  assert.deepEqual([total.minute, total.hour, total.day], [total.events, total.events, total.events]);
  const shards = await harness.query<{ shard: number }>('SELECT DISTINCT shard FROM event_counts_minute ORDER BY shard');
  assert.deepEqual(shards.map((row) => row.shard), [0, 1], 'each actor counts under its own shard');
  const [late] = await harness.query<{ n: number }>(
    "SELECT sum(count)::int AS n FROM event_counts_daily WHERE event_type = 'late' AND day = (now() AT TIME ZONE 'UTC' - interval '12 days')::date",
  );
  assert.equal(late?.n, 1, 'a late event counts in its own day');

  const verified = await rollups('verify');
  assert.equal(verified.code, 0, verified.out + verified.err);
  assert.match(verified.out, /^0 difference\(s\) in \[-infinity, infinity\)/m);
});

test('corrupted minute and hour rows make verify exit 1 naming each; rebuild repairs the range', async () => {
  await harness.query("UPDATE event_counts_minute SET count = count + 5 WHERE event_type = 'late' AND shard = (SELECT min(shard) FROM event_counts_minute WHERE event_type = 'late')");
  await harness.query("UPDATE event_counts_hourly SET count = count + 2 WHERE event_type = 'late' AND shard = (SELECT min(shard) FROM event_counts_hourly WHERE event_type = 'late')");
  const from = new Date(Date.now() - 13 * dayMs).toISOString();
  const to = new Date().toISOString();
  const broken = await rollups('verify', '--from', from, '--to', to);
  assert.equal(broken.code, 1, broken.out + broken.err);
  assert.match(broken.out, /^minute \S+ event_type="late" source="batch-job" events=1 rollup=6\nhour \d{4}-\d{2}-\d{2}T\d{2}:00:00Z event_type="late" source="batch-job" events=1 rollup=3$/m);
  assert.match(broken.out, /^2 difference\(s\)/m);

  const rebuilt = await rollups('rebuild', '--from', from, '--to', to);
  assert.equal(rebuilt.code, 0, rebuilt.err);
  assert.match(rebuilt.out, /^rebuilt \[/);
  assert.equal((await rollups('verify')).code, 0);
});

test('verify and rebuild refuse bad ranges with exit 2', async () => {
  assert.equal((await rollups('rebuild', '--from', '2026-12-01T00:00Z')).code, 2);
  assert.equal((await rollups('verify', '--from', '2026-12-01T00:00')).code, 2, 'no offset: refused, not read as local time');
  assert.equal((await rollups('verify', '--from', '2026-12-02', '--to', '2026-12-01')).code, 2);
});

test('clipToKept starts a range at the later of the two kept days, and says when it cut or emptied it', () => {
  const open = { from: '-infinity', to: 'infinity' };
  assert.deepEqual(clipToKept(open, { events: null, rollups: null }), { range: open, keptFrom: { events: null, rollups: null }, clipped: false, empty: false });
  const cut = clipToKept(open, { events: '2030-01-02', rollups: '2029-12-01' });
  assert.deepEqual([cut.range, cut.clipped, cut.empty], [{ from: '2030-01-02T00:00:00.000Z', to: 'infinity' }, true, false]);
  const later = { from: '2030-02-01T00:00:00.000Z', to: '2030-02-03T00:00:00.000Z' };
  assert.equal(clipToKept(later, { events: '2030-01-02', rollups: null }).clipped, false);
  const before = clipToKept({ from: '2029-12-01T00:00:00.000Z', to: '2030-01-02T00:00:00.000Z' }, { events: null, rollups: '2030-01-02' });
  assert.deepEqual([before.clipped, before.empty], [true, true]);
});

test('after retention dropped a day of events, verify and rebuild skip the days one table lost, and say so', async () => {
  const database = await createTestDatabase();
  const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
  const client = new pg.Client({ connectionString: database.url });
  try {
    await migrateDatabase(database.url, silent);
    await client.connect();
    // Three events on each of 2030-01-01..03, counted by a rebuild; then 2 days of retention
    // on 2030-01-04 drop the events of 01-01, whose rollups stay (rollup retention is unset).
    const days = [0, 1, 2].map((offset) => Date.UTC(2030, 0, 1 + offset) / dayMs);
    await ensurePartitions(client, days);
    for (const day of days) {
      await client.query(
        `INSERT INTO events (event_id, event_type, source, occurred_at, received_at, attributes)
         SELECT 'k-' || $1::text || '-' || n, 'click', 'web', $2::timestamptz, now(), '{}' FROM generate_series(1, 3) n`,
        [day, new Date(day * dayMs + 3_600_000).toISOString()],
      );
    }
    const io = () => {
      const lines = { out: '', err: '' };
      return { lines, io: { out: (text: string) => void (lines.out += text), err: (text: string) => void (lines.err += text) } };
    };
    const env = { DATABASE_URL: database.url };
    const rebuilt = io();
    assert.equal(await runRollups(['rebuild', '--from', '2030-01-01T00:00Z', '--to', '2030-01-04T00:00Z'], env, rebuilt.io), 0, rebuilt.lines.err);
    const settings = { timestampPastMs: 2 * dayMs, timestampFutureMs: 0, retentionDays: 2, rollupRetentionDays: null };
    const report = await new PartitionMaintainer(database.url, settings, silent).runOnce(Date.UTC(2030, 0, 4, 10));
    assert.equal(report?.droppedCount, 1);

    const verified = io();
    assert.equal(await runRollups(['verify'], env, verified.io), 0, verified.lines.out + verified.lines.err);
    assert.equal(verified.lines.out, 'retention keeps events from 2030-01-02: the range starts at 2030-01-02T00:00:00.000Z instead of -infinity\n' +
      '0 difference(s) in [2030-01-02T00:00:00.000Z, infinity)\n');
    const dropped = io();
    assert.equal(await runRollups(['verify', '--from', '2030-01-01T00:00Z', '--to', '2030-01-02T00:00Z'], env, dropped.io), 0);
    assert.match(dropped.lines.out, /^retention keeps events from 2030-01-02: nothing of \[2030-01-01T00:00:00.000Z, 2030-01-02T00:00:00.000Z\) is kept\n0 difference\(s\) in \(nothing kept\)\n$/);

    // A rebuild over the dropped day would count no events there and wipe its rollups.
    const again = io();
    assert.equal(await runRollups(['rebuild', '--from', '2030-01-01T00:00Z', '--to', '2030-01-04T00:00Z'], env, again.io), 0, again.lines.err);
    assert.match(again.lines.out, /^retention keeps events from 2030-01-02: the range starts at 2030-01-02T00:00:00.000Z instead of 2030-01-01T00:00:00.000Z\nrebuilt \[2030-01-02T00:00:00.000Z, 2030-01-04T00:00:00.000Z\): 2 minute row\(s\), 2 hour row\(s\), 2 day row\(s\)\n$/);
    const kept = await client.query<{ day: string; count: number }>("SELECT to_char(day, 'YYYY-MM-DD') AS day, sum(count)::int AS count FROM event_counts_daily GROUP BY 1 ORDER BY 1");
    assert.deepEqual(kept.rows, [{ day: '2030-01-01', count: 3 }, { day: '2030-01-02', count: 3 }, { day: '2030-01-03', count: 3 }]);
  } finally {
    await client.end().catch(() => undefined);
    await database.drop();
  }
});

test('FLOODGATE_ROLLUPS=off writes no counts (a benchmark switch); verify sees the gap and rebuild fills it', async () => {
  const off = await startTestEngine({ rollups: 'off' });
  try {
    const answer = await post(`${off.baseUrl}/v1/events/bulk`, JSON.stringify({ events: wireEvents(10, 'off') }), json);
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(await off.query('SELECT * FROM event_counts_minute'), []);
    const io = { out: () => undefined, err: () => undefined };
    const env = { DATABASE_URL: off.databaseUrl };
    assert.equal(await runRollups(['verify'], env, io), 1);
    const range = ['--from', new Date(Date.now() - dayMs).toISOString(), '--to', new Date().toISOString()];
    assert.equal(await runRollups(['rebuild', ...range], env, io), 0);
    assert.equal(await runRollups(['verify'], env, io), 0);
  } finally {
    await off.close();
  }
});

test('kill -9 twice under load with duplicates, poison and late events and two actors: the real CLI verifies 0 differences', { timeout: 120_000 }, async () => {
  const database = await createTestDatabase();
  const port = await freePort();
  const env = engineEnv({ DATABASE_URL: database.url, PORT: String(port), FLOODGATE_HOST: '127.0.0.1', FLOODGATE_ACTORS: '2' });
  let engine: EngineProcess = await spawnEngine(env);
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  const batches = 300;
  const eventsPerBatch = 50;
  try {
    await client.query("ALTER TABLE events ADD CONSTRAINT events_no_poison CHECK (event_type <> 'poison')");
    const batchEvents = Array.from({ length: batches }, (_, b) => wireEvents(eventsPerBatch, `kill-${b}`));
    let poison = 0;
    let duplicates = 0;
    batchEvents.forEach((events, b) => {
      if (b % 10 === 0) events[0] = lateEvent(`kill-late-${b}`, 1 + (b % 5));
      // PostgreSQL refuses these rows (the CHECK above): dead letters, never counted.
      if (b % 7 === 3) {
        events[1] = { ...wireEvent(`kill-poison-${b}`), event_type: 'poison' };
        poison++;
      }
      // The same event as one sent by an earlier batch, possibly still in flight or lost with a kill.
      if (b % 9 === 4) {
        events[2] = batchEvents[b - 1]?.[5] as WireEvent;
        duplicates++;
      }
    });
    const bodies = batchEvents.map((events) => JSON.stringify({ events }));
    const stored = batches * eventsPerBatch - poison - duplicates;
    const progress = emptyStats();
    const url = () => `http://127.0.0.1:${port}/v1/events/bulk`;
    // Every batch is resent until acknowledged: the retries after each kill are retries of real requests.
    const sending = sendAllWithRetries({ url, bodies, concurrency: 8, retryDelayMs: 100, batchDeadlineMs: 90_000, stats: progress });
    for (const fraction of [0.2, 0.5]) {
      while (progress.acknowledged < fraction * stored) await new Promise((resolve) => setTimeout(resolve, 5));
      engine.child.kill('SIGKILL');
      await engine.exited;
      engine = await spawnEngine(env);
    }
    const stats = await sending;
    assert.equal(stats.acknowledged, batches * eventsPerBatch - poison, 'every event but the poison acknowledged (accepted or duplicate)');

    const [row] = (
      await client.query(
        "SELECT (SELECT count(*) FROM events)::int AS events, (SELECT count(DISTINCT event_id) FROM events)::int AS ids, (SELECT sum(count) FROM event_counts_minute)::int AS minute, (SELECT sum(count) FROM event_counts_hourly)::int AS hour, (SELECT sum(count) FROM event_counts_daily)::int AS day, (SELECT count(DISTINCT event_id) FROM dead_letters WHERE event_id LIKE 'kill-poison-%')::int AS poison",
      )
    ).rows;
    assert.deepEqual(row, { events: stored, ids: stored, minute: stored, hour: stored, day: stored, poison });
    const verified = await promisify(execFile)(process.execPath, [cliPath, 'rollups', 'verify'], { env });
    assert.match(verified.stdout, /^0 difference\(s\)/m);
  } finally {
    await client.end();
    engine.child.kill('SIGKILL');
    await engine.exited;
    await database.drop();
  }
});
