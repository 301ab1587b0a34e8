/**
 * Crash safety in durable mode: the engine is SIGKILLed twice under load and restarted
 * on the same database and port, while clients resend every batch that got no 2xx.
 * At the end each event must be stored exactly once: nothing acknowledged is lost (it
 * committed before its answer) and nothing is stored twice (retries meet dedupe). One
 * subscription matches everything, so each stored event must also have exactly one
 * delivery record (fanned out in its write transaction, src/sink/fan-out.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { changeSubscriptions } from '../../src/delivery/delivery-schema';
import { createTestDatabase } from '../support/database';
import { engineEnv, spawnEngine, type EngineProcess } from '../support/engine-process';
import { freePort } from '../support/free-port';
import { emptyStats, sendAllWithRetries } from '../support/retrying-client';
import { wireEvents } from '../support/wire-events';

const batches = 600;
const eventsPerBatch = 50;

test('kill -9 twice under load with retrying clients: loss 0, duplicates 0', { timeout: 120_000 }, async () => {
  const database = await createTestDatabase();
  const port = await freePort();
  const env = engineEnv({ DATABASE_URL: database.url, PORT: String(port), FLOODGATE_HOST: '127.0.0.1' });
  let engine: EngineProcess = await spawnEngine(env);
  try {
    // The engine has migrated; the subscription exists before any event is received.
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await changeSubscriptions(admin, () =>
      admin.query("INSERT INTO subscriptions (url, secrets) VALUES ('http://127.0.0.1:9/hook', ARRAY['whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0'])"),
    );
    await admin.end();
    const bodies = Array.from({ length: batches }, (_, b) => JSON.stringify({ events: wireEvents(eventsPerBatch, `crash-${b}`) }));
    const progress = emptyStats();
    const sending = sendAllWithRetries({ url: () => `http://127.0.0.1:${port}/v1/events/bulk`, bodies, concurrency: 8, retryDelayMs: 100, batchDeadlineMs: 90_000, stats: progress });
    const killedAt: number[] = [];
    // Kill by progress, not by time: a fast engine could finish before a timed kill.
    for (const fraction of [0.2, 0.5]) {
      while (progress.acknowledged < fraction * batches * eventsPerBatch) await new Promise((resolve) => setTimeout(resolve, 5));
      engine.child.kill('SIGKILL');
      await engine.exited;
      killedAt.push(Date.now());
      engine = await spawnEngine(env);
    }
    const stats = await sending;

    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const stored = (await client.query("SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS ids FROM events WHERE event_id LIKE 'crash-%'")).rows[0];
    const records = (
      await client.query(
        `SELECT count(*)::int AS rows, count(DISTINCT (d.event_id, d.occurred_at))::int AS events,
                count(*) FILTER (WHERE e.event_id IS NULL)::int AS orphans
           FROM deliveries d LEFT JOIN events e USING (event_id, occurred_at)`,
      )
    ).rows[0];
    await client.end();
    const expected = batches * eventsPerBatch;
    process.stdout.write(
      `# crash: sent ${expected} events in ${batches} batches, ${stats.attempts} attempts, statuses ${JSON.stringify(stats.statuses)}, ` +
        `acknowledged ${stats.acknowledged}, stored ${stored.rows}, duplicates ${stored.rows - stored.ids}, delivery records ${records.rows}\n`,
    );
    assert.equal(killedAt.length, 2);
    assert.ok(stats.attempts > batches, 'the kills interrupted some requests, so some were retried');
    assert.equal(stats.acknowledged, expected, 'every batch was eventually acknowledged');
    assert.equal(stored.ids, expected, 'loss: every event is stored');
    assert.equal(stored.rows, stored.ids, 'duplicates: no event is stored twice');
    assert.equal(records.rows, stored.rows, 'fan-out: one delivery record per stored event');
    assert.equal(records.events, records.rows, 'fan-out: no event has two records');
    assert.equal(records.orphans, 0, 'fan-out: every record names a stored event');
  } finally {
    engine.child.kill('SIGKILL');
    await engine.exited;
    await database.drop();
  }
});
