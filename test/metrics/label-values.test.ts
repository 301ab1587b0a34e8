/**
 * Regression test: labelled series used to appear only on their first increment, so a
 * fresh engine's /metrics lacked floodgate_events_rejected_total and floodgate_requests_total
 * and rate()-based alerts saw nothing. A real engine is scraped before any request; every
 * label value must be there at 0. The lint checks below keep the label lists derived from
 * the catalogue, the routes and the status table, so they cannot drift.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { deferralReasons } from '../../src/delivery/delivery-pool';
import { errorCatalogue } from '../../src/errors';
import { answerStatuses } from '../../src/ingress/http-reply';
import { ingestRoutes } from '../../src/ingress/ingest-handler';
import { limitKinds } from '../../src/limits/rate-limiter';
import { reportedQuantiles } from '../../src/metrics/engine-metrics';
import { startTestEngine, type TestEngine } from '../support/engine';
import { parseExposition, valueOf, type Family } from './exposition-format';

const sourceRoot = path.join(__dirname, '..', '..', '..', 'src');
const actorCount = 2;
let harness: TestEngine;
before(async () => {
  harness = await startTestEngine({ actorCount });
});
after(async () => {
  await harness?.close();
});

async function scrape(): Promise<Map<string, Family>> {
  const response = await fetch(`${harness.baseUrl}/metrics`);
  assert.equal(response.status, 200);
  return parseExposition(await response.text());
}

describe('a fresh engine exports every label value at 0', () => {
  test('before any request, each labelled family has a sample for every known value', async () => {
    const families = await scrape();
    for (const code of Object.keys(errorCatalogue)) {
      assert.equal(valueOf(families, 'floodgate_events_rejected_total', { code }), 0, `events_rejected_total{code="${code}"}`);
    }
    for (const route of ingestRoutes) {
      for (const status of answerStatuses) {
        assert.equal(valueOf(families, 'floodgate_requests_total', { route, status: String(status) }), 0, `requests_total{route="${route}",status="${status}"}`);
      }
    }
    for (const limit of limitKinds) {
      for (const name of ['floodgate_rate_limited_requests_total', 'floodgate_rate_limited_events_total']) {
        assert.equal(valueOf(families, name, { limit }), 0, `${name}{limit="${limit}"}`);
      }
    }
    const summaries = ['floodgate_request_duration_seconds', 'floodgate_commit_latency_seconds', 'floodgate_ring_wait_seconds', 'floodgate_flush_duration_seconds', 'floodgate_batch_rows'];
    for (const name of summaries) {
      for (const quantile of reportedQuantiles) assert.ok(Number.isNaN(valueOf(families, name, { quantile: String(quantile) })), `${name}{quantile="${quantile}"} is NaN`);
      assert.equal(valueOf(families, `${name}_count`), 0, `${name}_count`);
    }
    for (const reason of deferralReasons) assert.equal(valueOf(families, 'floodgate_delivery_deferrals_total', { reason }), 0, `delivery_deferrals_total{reason="${reason}"}`);
    assert.equal(valueOf(families, 'floodgate_delivery_breaker_open', { endpoint: 'other' }), 0, 'delivery_breaker_open{endpoint="other"}');
    for (const name of ['floodgate_ring_used_bytes', 'floodgate_ring_capacity_bytes', 'floodgate_ring_occupancy_ratio', 'floodgate_actor_database_connected']) {
      for (let actor = 0; actor < actorCount; actor++) assert.ok(valueOf(families, name, { actor: String(actor) }) !== undefined, `${name}{actor="${actor}"}`);
    }
  });

  test('no labelled floodgate_* family carries a label this test does not know', async () => {
    // Delivery's labels are bounded where they are made: subscription and endpoint values are
    // the first 100 seen, then `other` (src/delivery/delivery-pool.ts), the rest fixed lists;
    // a stream's close code is one of a fixed few or `other` (src/stream/stream-route.ts).
    const known = new Set(['code', 'route', 'status', 'quantile', 'actor', 'limit', 'subscription', 'endpoint', 'outcome', 'class', 'reason', 'kind', 'close_code']);
    for (const family of (await scrape()).values()) {
      if (!family.name.startsWith('floodgate_')) continue;
      for (const sample of family.samples) for (const label of Object.keys(sample.labels)) assert.ok(known.has(label), `${family.name} has label ${label}`);
    }
  });
});

describe('the label lists cannot drift from what decides them', () => {
  test('every catalogue status is in the status table that floodgate_requests_total starts from', () => {
    for (const [code, { status }] of Object.entries(errorCatalogue)) assert.ok(answerStatuses.includes(status), `${code} answers ${status}`);
  });

  test('every status literal the ingest answers use is in the status table', () => {
    for (const file of ['ingress/ingest-handler.ts', 'ingress/responses.ts']) {
      const text = readFileSync(path.join(sourceRoot, file), 'utf8');
      for (const [literal] of text.matchAll(/\b[2-5]\d\d\b/g)) assert.ok(answerStatuses.includes(Number(literal)), `${file} uses ${literal}`);
    }
  });

  test('src/metrics names no error code, route or status itself: the lists are derived', () => {
    const directory = path.join(sourceRoot, 'metrics');
    const routes = new Set<string>(ingestRoutes);
    for (const file of readdirSync(directory).filter((name) => name.endsWith('.ts'))) {
      const text = readFileSync(path.join(directory, file), 'utf8');
      for (const [literal] of text.matchAll(/'([^'\n]*)'/g)) {
        const value = literal.slice(1, -1);
        assert.ok(!(value in errorCatalogue) && !routes.has(value), `src/metrics/${file} writes ${literal} by hand`);
      }
    }
  });
});
