/**
 * Delivery under faults: PostgreSQL stops while deliveries are in flight (delivery pauses
 * and resumes by itself), and the engine is killed with SIGKILL mid-delivery and restarted
 * (every event is delivered at least once; repeats are at most the reclaimed leases).
 * The outage test runs a PostgreSQL of its own, as test/faults/database-outage.test.ts does.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { changeSubscriptions } from '../../src/delivery/delivery-schema';
import { startEngine } from '../../src/engine';
import { createLogger } from '../../src/log';
import { startEmbeddedPostgres } from '../../src/sink/embedded-postgres';
import { createTestDatabase } from '../support/database';
import { testConfig } from '../support/engine';
import { engineEnv, spawnEngine, type EngineProcess } from '../support/engine-process';
import { freePort } from '../support/free-port';
import { wireEvents } from '../support/wire-events';

const silent = createLogger('silent');

/** A receiver that answers 200 after `delayMs`, counting every request by webhook-id. */
async function slowReceiver(delayMs: number): Promise<{ url: string; ids: string[]; close(): Promise<void> }> {
  const ids: string[] = [];
  const server = http.createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      ids.push(String(request.headers['webhook-id']));
      setTimeout(() => response.writeHead(200).end(), delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  return { url, ids, close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(() => resolve()))) };
}

async function subscribeAll(client: pg.Client, url: string, source: string, maxInFlight: number): Promise<number> {
  const sql = "INSERT INTO subscriptions (url, sources, secrets, max_in_flight) VALUES ($1, $2, ARRAY['whsec_dGVzdC1zZWNyZXQtdGVzdC1zZWNyZXQ='], $3) RETURNING id";
  return changeSubscriptions(client, async () => Number((await client.query<{ id: string }>(sql, [url, [source], maxInFlight])).rows[0]!.id));
}

async function ingestAndFanOut(baseUrl: string, client: pg.Client, subscriptionId: number, source: string, count: number): Promise<void> {
  for (let offset = 0; offset < count; offset += 100) {
    const events = wireEvents(Math.min(100, count - offset), `${source}-${offset}`).map((event) => ({ ...event, source }));
    const answer = await fetch(`${baseUrl}/v1/events/bulk`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events }) });
    assert.equal(answer.status, 200, await answer.text());
  }
  await client.query(
    'INSERT INTO deliveries (subscription_id, event_id, occurred_at) SELECT $1, e.event_id, e.occurred_at FROM events e WHERE e.source = $2 ' +
      'AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.subscription_id = $1 AND d.event_id = e.event_id AND d.occurred_at = e.occurred_at)',
    [subscriptionId, source],
  );
  await client.query("SELECT pg_notify('floodgate_deliveries', $1)", [String(subscriptionId)]);
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await Promise.resolve().then(check).catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function deliveredCount(connectionString: string, subscriptionId: number): Promise<number> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return Number((await client.query("SELECT count(*)::int AS n FROM deliveries WHERE subscription_id = $1 AND status = 'delivered'", [subscriptionId])).rows[0].n);
  } finally {
    await client.end();
  }
}

async function reclaimedOf(baseUrl: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('floodgate_delivery_reclaimed_total '));
  return Number(line?.split(' ')[1] ?? 0);
}

test('PostgreSQL stops mid-delivery: delivery pauses and resumes by itself, nothing lost', { timeout: 90_000 }, async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'floodgate-delivery-outage-'));
  chmodSync(dataDir, 0o755); // As root, PostgreSQL runs as the postgres user.
  const port = await freePort();
  let server = await startEmbeddedPostgres({ dataDir, port, logger: silent });
  const url = server.connectionString;
  const receiver = await slowReceiver(100);
  const settings = { deliveryAllowPrivateNetworks: true, deliveryTimeoutMs: 1000, deliveryConnectTimeoutMs: 500, deliveryLeaseMs: 3000 };
  const engine = await startEngine(testConfig(url, settings), silent);
  const baseUrl = `http://127.0.0.1:${engine.port}`;
  try {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const id = await subscribeAll(client, receiver.url, 'outage', 4);
    await ingestAndFanOut(baseUrl, client, id, 'outage', 60);
    await client.end();
    await waitFor('the first deliveries', () => receiver.ids.length >= 8, 10_000);
    await server.stop();
    const receivedAtStop = receiver.ids.length;
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.ok(receiver.ids.length <= receivedAtStop + 4, 'nothing new is claimed while the database is down (only sends in flight finish)');
    server = await startEmbeddedPostgres({ dataDir, port, logger: silent });
    const restartedAt = Date.now();
    await waitFor('all 60 delivered after the restart', async () => (await deliveredCount(url, id)) === 60, 30_000);
    process.stdout.write(`# outage: ${receivedAtStop} received before the stop, all 60 delivered ${Date.now() - restartedAt} ms after the restart\n`);
    assert.equal(new Set(receiver.ids).size, 60, 'every event reached the receiver');
    const repeats = receiver.ids.length - 60;
    // Stats reach the main thread once per second.
    await waitFor(`${repeats} repeats covered by reclaimed leases`, async () => repeats <= (await reclaimedOf(baseUrl)), 3000);
  } finally {
    await engine.stop();
    await receiver.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('kill -9 during delivery, then restart: every event delivered at least once, repeats ≤ reclaimed', { timeout: 90_000 }, async () => {
  const database = await createTestDatabase();
  const port = await freePort();
  const receiver = await slowReceiver(30);
  const env = engineEnv({
    DATABASE_URL: database.url, PORT: String(port), FLOODGATE_HOST: '127.0.0.1',
    FLOODGATE_DELIVERY_ALLOW_PRIVATE_NETWORKS: 'true', FLOODGATE_DELIVERY_LEASE_MS: '3000',
    FLOODGATE_DELIVERY_TIMEOUT_MS: '1000', FLOODGATE_DELIVERY_CONNECT_TIMEOUT_MS: '500',
  });
  let engine: EngineProcess = await spawnEngine(env);
  const baseUrl = `http://127.0.0.1:${port}`;
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    const id = await subscribeAll(client, receiver.url, 'crash', 8);
    await ingestAndFanOut(baseUrl, client, id, 'crash', 300);
    await waitFor('a third delivered', () => receiver.ids.length >= 100, 20_000);
    engine.child.kill('SIGKILL');
    await engine.exited;
    const leasedSql = "SELECT count(*)::int AS n FROM deliveries WHERE subscription_id = $1 AND status = 'pending' AND lease_token IS NOT NULL";
    const inFlightAtKill = Number((await client.query(leasedSql, [id])).rows[0].n);
    engine = await spawnEngine(env);
    await waitFor('all 300 delivered', async () => (await deliveredCount(database.url, id)) === 300, 40_000);
    const distinct = new Set(receiver.ids).size;
    const repeats = receiver.ids.length - distinct;
    // Stats reach the main thread once per second.
    await waitFor('the reclaimed counter', async () => (await reclaimedOf(baseUrl)) >= repeats, 3000).catch(() => undefined);
    const reclaimed = await reclaimedOf(baseUrl);
    process.stdout.write(`# kill -9: ${receiver.ids.length} requests for 300 events, ${repeats} repeats, ${reclaimed} reclaimed, ${inFlightAtKill} leased at the kill\n`);
    assert.equal(distinct, 300, 'every event delivered at least once');
    assert.ok(repeats <= reclaimed, `${repeats} repeats, more than the ${reclaimed} reclaimed leases`);
    assert.ok(reclaimed <= inFlightAtKill, 'only rows leased at the kill are reclaimed');
  } finally {
    engine.child.kill('SIGKILL');
    await engine.exited;
    await client.end();
    await receiver.close();
    await database.drop();
  }
});
