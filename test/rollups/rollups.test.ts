/**
 * Rollups end to end: a real engine with two actors takes duplicates (in one request and
 * resent), late events, invalid events and poison events, and `floodgate rollups verify`
 * finds every bucket equal to count(*) of its events; a corrupted row makes it exit 1
 * naming the bucket, and `rebuild` repairs it. Then the same with two kill -9s under load
 * (the exactness-under-faults target of issue #23).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import pg from 'pg';
import { runRollups } from '../../src/rollups/rollups-cli';
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

async function sums(): Promise<{ events: number; minute: number; day: number }> {
  const [row] = await harness.query<{ events: number; minute: number; day: number }>(
    'SELECT (SELECT count(*) FROM events)::int AS events, (SELECT coalesce(sum(count), 0) FROM event_counts_minute)::int AS minute, ' +
      '(SELECT coalesce(sum(count), 0) FROM event_counts_daily)::int AS day',
  );
  return row as { events: number; minute: number; day: number };
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
  assert.deepEqual([total.minute, total.day], [total.events, total.events]);
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

test('a corrupted rollup row makes verify exit 1 naming it; rebuild repairs the range', async () => {
  await harness.query("UPDATE event_counts_minute SET count = count + 5 WHERE event_type = 'late' AND shard = (SELECT min(shard) FROM event_counts_minute WHERE event_type = 'late')");
  const from = new Date(Date.now() - 13 * dayMs).toISOString();
  const to = new Date().toISOString();
  const broken = await rollups('verify', '--from', from, '--to', to);
  assert.equal(broken.code, 1, broken.out + broken.err);
  assert.match(broken.out, /^minute \S+ event_type="late" source="batch-job" events=1 rollup=6$/m);
  assert.match(broken.out, /^1 difference\(s\)/m);

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
        "SELECT (SELECT count(*) FROM events)::int AS events, (SELECT count(DISTINCT event_id) FROM events)::int AS ids, (SELECT sum(count) FROM event_counts_minute)::int AS minute, (SELECT sum(count) FROM event_counts_daily)::int AS day, (SELECT count(DISTINCT event_id) FROM dead_letters WHERE event_id LIKE 'kill-poison-%')::int AS poison",
      )
    ).rows;
    assert.deepEqual(row, { events: stored, ids: stored, minute: stored, day: stored, poison });
    const verified = await promisify(execFile)(process.execPath, [cliPath, 'rollups', 'verify'], { env });
    assert.match(verified.stdout, /^0 difference\(s\)/m);
  } finally {
    await client.end();
    engine.child.kill('SIGKILL');
    await engine.exited;
    await database.drop();
  }
});
