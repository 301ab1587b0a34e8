/**
 * PostgreSQL stops for seconds under load. The suite starts a PostgreSQL of its own for
 * this (embedded, temp directory, free port) and never touches a server it did not start.
 *
 * Expected: the engine stays alive (/healthz 200), /readyz says 503 and why, new durable
 * requests get 503 + Retry-After fast (the circuit is open) instead of hanging, the engine
 * recovers by itself when the database returns, and once clients have retried every
 * event is stored exactly once. In async mode the rings absorb what fits meanwhile.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { startEngine } from '../../src/engine';
import { createLogger } from '../../src/log';
import { startEmbeddedPostgres } from '../../src/sink/embedded-postgres';
import { testConfig } from '../support/engine';
import { freePort } from '../support/free-port';
import { emptyStats, sendAllWithRetries } from '../support/retrying-client';
import { wireEvents } from '../support/wire-events';

const silent = createLogger('silent');

async function ownPostgres(): Promise<{ start(): Promise<string>; stop(): Promise<void>; remove(): void }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'floodgate-outage-'));
  chmodSync(dataDir, 0o755); // As root, PostgreSQL runs as the postgres user.
  const port = await freePort();
  let server: { stop(): Promise<void> } | null = null;
  return {
    start: async () => {
      const started = await startEmbeddedPostgres({ dataDir, port, logger: silent });
      server = started;
      return started.connectionString;
    },
    stop: async () => {
      await server?.stop();
      server = null;
    },
    remove: () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const startedAt = performance.now();
  while (performance.now() - startedAt < timeoutMs) {
    if (await check().catch(() => false)) return performance.now() - startedAt;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

test('database stop/start under load: alive, fast 503, recovery, loss 0, duplicates 0', { timeout: 180_000 }, async () => {
  const postgres = await ownPostgres();
  const url = await postgres.start();
  const engine = await startEngine(testConfig(url, { retryAttemptsMax: 3 }), silent);
  const base = `http://127.0.0.1:${engine.port}`;
  try {
    // Far more than the engine stores before the stop: the database goes down once 20
    // batches are acknowledged, with the load still flowing (a fixed 400 ms head start let
    // a faster sink finish all of a smaller load before the outage began).
    const batches = 1500;
    const bodies = Array.from({ length: batches }, (_, b) => JSON.stringify({ events: wireEvents(40, `outage-${b}`) }));
    const progress = emptyStats();
    const sending = sendAllWithRetries({ url: () => `${base}/v1/events/bulk`, bodies, concurrency: 4, retryDelayMs: 200, batchDeadlineMs: 120_000, stats: progress });
    await waitFor(async () => progress.acknowledged >= 20 * 40, 10_000);

    await postgres.stop();
    const stoppedAt = performance.now();
    const readyzNow = async (): Promise<{ status: number; body: { checks: { database: { ok: boolean; detail: string } } } }> => {
      const answer = await fetch(`${base}/readyz`);
      return { status: answer.status, body: (await answer.json()) as { checks: { database: { ok: boolean; detail: string } } } };
    };
    const notReadyAfterMs = await waitFor(async () => (await readyzNow()).status === 503, 5000);
    // The circuit may open on an actor's failed write before the probe's next check (≤ 1 s) marks the database down.
    await waitFor(async () => !(await readyzNow()).body.checks.database.ok, 3000);
    assert.ok((await readyzNow()).body.checks.database.detail.length > 0);
    assert.equal((await fetch(`${base}/healthz`)).status, 200, 'the engine stays alive');

    const sentAt = performance.now();
    const refused = await fetch(`${base}/v1/events/bulk`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events: wireEvents(5, 'probe-during-outage') }) });
    const refusalMs = performance.now() - sentAt;
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'ERR_INGEST_DATABASE_UNAVAILABLE');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.ok(refusalMs < 1000, `503 took ${refusalMs} ms`);

    await new Promise((resolve) => setTimeout(resolve, 2500));
    await postgres.start();
    const restartedAt = performance.now();
    const recoveryMs = await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, 15_000);
    const stats = await sending;

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const stored = (await client.query("SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS ids FROM events WHERE event_id LIKE 'outage-%'")).rows[0];
    await client.end();
    const refusals = stats.refusalLatenciesMs.sort((a, b) => a - b);
    process.stdout.write(
      `# outage: ${batches * 40} events, outage ${Math.round(restartedAt - stoppedAt)} ms, readyz 503 after ${Math.round(notReadyAfterMs)} ms, ` +
        `recovered ${Math.round(recoveryMs)} ms after restart, 503s ${refusals.length} (p50 ${Math.round(refusals[Math.floor(refusals.length / 2)] ?? 0)} ms, ` +
        `max ${Math.round(refusals.at(-1) ?? 0)} ms), statuses ${JSON.stringify(stats.statuses)}, stored ${stored.rows}, duplicates ${stored.rows - stored.ids}\n`,
    );
    assert.ok(stats.statuses[503]! > 0, 'clients saw 503s during the outage');
    assert.equal(stats.retryAfterSeen, true);
    assert.equal(stored.ids, batches * 40, 'no loss');
    assert.equal(stored.rows, stored.ids, 'no duplicates');
  } finally {
    await engine.stop();
    await postgres.stop();
    postgres.remove();
  }
});

test('async mode during an outage: the rings absorb events, they are written when the database returns', { timeout: 120_000 }, async () => {
  const postgres = await ownPostgres();
  const url = await postgres.start();
  const engine = await startEngine(testConfig(url, { ackMode: 'async' }), silent);
  const base = `http://127.0.0.1:${engine.port}`;
  try {
    await postgres.stop();
    await waitFor(async () => (await fetch(`${base}/readyz`)).status === 503, 5000);
    let accepted = 0;
    for (let b = 0; b < 10; b++) {
      const answer = await fetch(`${base}/v1/events/bulk`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events: wireEvents(50, `async-outage-${b}`) }) });
      assert.equal(answer.status, 202);
      accepted += ((await answer.json()) as { accepted: number }).accepted;
    }
    await postgres.start();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await waitFor(async () => (await client.query("SELECT count(*)::int AS n FROM events WHERE event_id LIKE 'async-outage-%'")).rows[0].n === accepted, 20_000);
    } finally {
      await client.end();
    }
  } finally {
    await engine.stop();
    await postgres.stop();
    postgres.remove();
  }
});
