/**
 * Graceful drain in async mode: every event that got a 202 sits in memory only, so a
 * SIGTERM under load must write all of them before the process exits 0.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { createTestDatabase } from '../support/database';
import { post } from '../support/engine';
import { engineEnv, spawnEngine } from '../support/engine-process';
import { wireEvents } from '../support/wire-events';

test('SIGTERM under load in async mode: every 202-acknowledged event is committed before exit', { timeout: 120_000 }, async () => {
  const database = await createTestDatabase();
  try {
    // A long batch wait keeps events in memory, so the drain has real work to do.
    const engine = await spawnEngine(engineEnv({ DATABASE_URL: database.url, PORT: '0', FLOODGATE_HOST: '127.0.0.1', FLOODGATE_ACK: 'async', FLOODGATE_BATCH_WAIT_MS: '200' }));
    const url = `http://127.0.0.1:${engine.port}/v1/events/bulk`;
    let acknowledged = 0;
    let stopped = false;
    const clients = Array.from({ length: 6 }, async (_, client) => {
      for (let request = 0; !stopped; request++) {
        try {
          const answer = await post(url, JSON.stringify({ events: wireEvents(100, `drain-${client}-${request}`) }), { 'content-type': 'application/json' });
          if (answer.status === 202) acknowledged += answer.json.accepted;
          else {
            assert.equal(answer.status, 503, answer.text);
            assert.equal(answer.json.error.code, 'ERR_INGEST_DRAINING');
            return;
          }
        } catch {
          return; // The listen socket is closed once the drain starts.
        }
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 800));
    engine.child.kill('SIGTERM');
    const exitCode = await engine.exited;
    stopped = true;
    await Promise.all(clients);
    assert.equal(exitCode, 0, engine.output());
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const stored = (await client.query("SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS ids FROM events WHERE event_id LIKE 'drain-%'")).rows[0];
    await client.end();
    process.stdout.write(`# async drain: acknowledged ${acknowledged} (202), stored ${stored.rows}, duplicates ${stored.rows - stored.ids}\n`);
    assert.ok(acknowledged > 0);
    assert.ok(stored.ids >= acknowledged, `stored ${stored.ids} < acknowledged ${acknowledged}: acknowledged events were lost`);
    assert.equal(stored.rows, stored.ids);
  } finally {
    await database.drop();
  }
});
