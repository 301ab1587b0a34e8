/**
 * Observability end to end, against a real engine and PostgreSQL:
 * - GET /metrics parses strictly, passes promtool and holds every documented series;
 * - after a mixed run (accepted, duplicates, invalid events, a malformed body) the counters
 *   equal what the answers said and what PostgreSQL holds, and /v1/stats agrees;
 * - quantiles move when latency is injected (a lock held on the events table);
 * - every metric a Grafana panel queries exists in the exposition;
 * - the CLI's log lines are JSON and carry request ids, with nothing logged per event.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { parseExposition, sumOf, valueOf, type Family } from '../metrics/exposition-format';
import { promtoolCheck } from '../metrics/promtool';
import { createTestDatabase } from '../support/database';
import { post, startTestEngine, type TestEngine } from '../support/engine';
import { engineEnv, spawnEngine } from '../support/engine-process';
import { wireEvent, wireEvents } from '../support/wire-events';

const json = { 'content-type': 'application/json' };
let harness: TestEngine;
before(async () => {
  harness = await startTestEngine();
});
after(async () => {
  await harness?.close();
});

async function scrape(): Promise<{ text: string; families: Map<string, Family> }> {
  const response = await fetch(`${harness.baseUrl}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  return { text, families: parseExposition(text) };
}

/** Scrapes until `done` holds: actors post their histograms once a second. */
async function scrapeUntil(done: (families: Map<string, Family>) => boolean, timeoutMs = 5_000): Promise<Map<string, Family>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { families } = await scrape();
    if (done(families) || Date.now() > deadline) return families;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function stats(): Promise<any> {
  const response = await fetch(`${harness.baseUrl}/v1/stats`);
  assert.equal(response.status, 200);
  return response.json();
}

const requiredSeries = [
  'floodgate_events_received_total', 'floodgate_events_committed_total', 'floodgate_events_duplicate_total',
  'floodgate_events_rejected_total', 'floodgate_events_dead_lettered_total', 'floodgate_events_failed_total',
  'floodgate_requests_total', 'floodgate_batch_write_failures_total',
  'floodgate_request_duration_seconds', 'floodgate_commit_latency_seconds', 'floodgate_ring_wait_seconds',
  'floodgate_flush_duration_seconds', 'floodgate_batch_rows', 'floodgate_sink_circuit_state',
  'floodgate_ring_used_bytes', 'floodgate_ring_capacity_bytes', 'floodgate_ring_occupancy_ratio',
  'floodgate_actor_database_connected', 'floodgate_database_up', 'floodgate_queued_events', 'floodgate_pending_requests',
  'floodgate_events_partitions', 'floodgate_events_oldest_day_seconds', 'floodgate_events_partitions_dropped_total',
  'floodgate_rollup_rows_deleted_total', 'floodgate_retention_last_run_timestamp_seconds', 'floodgate_retention_last_run_success',
  'process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes',
];

describe('counters after a mixed run', () => {
  test('equal the answers and the rows in PostgreSQL; /v1/stats agrees', async () => {
    const answers: Array<{ route: string; status: number; json: any }> = [];
    const send = async (url: string, body: string): Promise<void> => {
      const answer = await post(`${harness.baseUrl}${url}`, body, json);
      answers.push({ route: url === '/v1/events' ? 'v1-single' : 'v1-bulk', status: answer.status, json: answer.json });
    };
    let sentEvents = 0;
    const bulks = Array.from({ length: 30 }, (_, i) => JSON.stringify({ events: wireEvents(50, `mix-${i}`) }));
    await Promise.all(bulks.map((body) => send('/v1/events/bulk', body)));
    sentEvents += 30 * 50;
    // Resent requests: every event a duplicate.
    await Promise.all(bulks.slice(0, 10).map((body) => send('/v1/events/bulk', body)));
    sentEvents += 10 * 50;
    // Partly invalid requests: 5 of 20 events break a rule each.
    for (let i = 0; i < 10; i++) {
      const events: unknown[] = wireEvents(20, `part-${i}`);
      events[3] = { ...wireEvent(`bad-type-${i}`), event_type: '' };
      events[7] = { ...wireEvent(`bad-ts-${i}`), timestamp: 'yesterday' };
      events[9] = { ...wireEvent(`old-${i}`), timestamp: '2001-01-01T00:00:00Z' };
      events[11] = { ...wireEvent(`unknown-${i}`), colour: 'red' };
      events[13] = 42;
      await send('/v1/events/bulk', JSON.stringify({ events }));
      sentEvents += 20;
    }
    // All invalid (400), the same id twice in one request, single events, a malformed body.
    await send('/v1/events/bulk', JSON.stringify({ events: [{ event_type: 'x' }, { timestamp: 1 }, 'no'] }));
    sentEvents += 3;
    await send('/v1/events/bulk', JSON.stringify({ events: [wireEvent('twin'), wireEvent('twin')] }));
    sentEvents += 2;
    for (let i = 0; i < 20; i++) await send('/v1/events', JSON.stringify(wireEvent(`single-${i}`)));
    sentEvents += 20;
    await send('/v1/events/bulk', '{"events": [');

    const accepted = answers.reduce((sum, answer) => sum + (answer.json?.accepted ?? 0), 0);
    const duplicates = answers.reduce((sum, answer) => sum + (answer.json?.duplicates ?? 0), 0);
    const rejected = answers.reduce((sum, answer) => sum + (answer.json?.rejected ?? 0), 0);
    const codes = new Map<string, number>();
    for (const answer of answers) for (const error of answer.json?.errors ?? []) codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
    assert.equal(duplicates, 10 * 50 + 1);
    assert.equal(rejected, 10 * 5 + 3);

    const [stored] = await harness.query<{ rows: number; dead: number }>('SELECT (SELECT count(*)::int FROM events) AS rows, (SELECT count(*)::int FROM dead_letters) AS dead');
    assert.equal(stored?.rows, accepted);
    const families = await scrapeUntil((found) => valueOf(found, 'floodgate_commit_latency_seconds_count') === accepted);
    assert.equal(valueOf(families, 'floodgate_events_committed_total'), stored?.rows, 'committed_total equals the rows stored');
    assert.equal(valueOf(families, 'floodgate_events_duplicate_total'), duplicates);
    assert.equal(sumOf(families, 'floodgate_events_rejected_total'), rejected);
    for (const [code, count] of codes) assert.equal(valueOf(families, 'floodgate_events_rejected_total', { code }), count, code);
    assert.equal(valueOf(families, 'floodgate_events_dead_lettered_total'), stored?.dead);
    assert.equal(valueOf(families, 'floodgate_events_failed_total'), 0);
    assert.equal(valueOf(families, 'floodgate_events_received_total'), sentEvents);
    assert.equal(valueOf(families, 'floodgate_commit_latency_seconds_count'), accepted, 'one commit latency per committed event');
    assert.equal(valueOf(families, 'floodgate_request_duration_seconds_count'), answers.length);
    const byRouteStatus = new Map<string, number>();
    for (const { route, status } of answers) byRouteStatus.set(`${route} ${status}`, (byRouteStatus.get(`${route} ${status}`) ?? 0) + 1);
    assert.deepEqual([...byRouteStatus.keys()].sort(), ['v1-bulk 200', 'v1-bulk 400', 'v1-single 200']);
    for (const [key, count] of byRouteStatus) {
      const [route = '', status = ''] = key.split(' ');
      assert.equal(valueOf(families, 'floodgate_requests_total', { route, status }), count, key);
    }
    assert.ok((valueOf(families, 'floodgate_batch_rows_sum') as number) >= accepted);
    assert.equal(valueOf(families, 'floodgate_queued_events'), 0);

    const report = await stats();
    assert.deepEqual(report.totals, { received: sentEvents, committed: accepted, duplicates, rejected, dead_lettered: stored?.dead, failed: 0 });
    assert.deepEqual(report.rejected_by_code, Object.fromEntries(codes));
    assert.equal(report.commit_latency_ms.count, accepted);
    assert.ok(report.commit_latency_ms.p50 > 0 && report.commit_latency_ms.p50 <= report.commit_latency_ms.p99);
    assert.equal(report.circuit, 'closed');
    assert.deepEqual(report.database, { up: true, actors_connected: [true] });
    assert.equal(report.rings.length, 1);
    assert.ok(report.rates.committed_per_s_10s > 0);
  });
});

describe('GET /metrics', () => {
  test('parses strictly, holds every documented series, and promtool accepts it', async (context) => {
    const { text, families } = await scrape();
    for (const name of requiredSeries) assert.ok(families.has(name), `missing ${name}`);
    for (const quantile of ['0.5', '0.9', '0.99', '0.999']) {
      assert.ok(valueOf(families, 'floodgate_commit_latency_seconds', { quantile }) !== undefined, `commit latency quantile ${quantile}`);
      assert.ok(valueOf(families, 'floodgate_request_duration_seconds', { quantile }) !== undefined, `request duration quantile ${quantile}`);
    }
    const result = promtoolCheck(text);
    if (result.skipped !== null) return context.skip(result.skipped);
    assert.equal(result.status, 0, result.output);
  });

  test('every metric queried by a Grafana panel is in the exposition', async () => {
    const dashboardPath = path.join(__dirname, '..', '..', '..', 'docker', 'grafana', 'dashboards', 'floodgate.json');
    const dashboard = JSON.parse(readFileSync(dashboardPath, 'utf8')) as { panels: Array<{ title: string; panels?: unknown[]; targets?: Array<{ expr: string }> }> };
    const { families } = await scrape();
    const sampleNames = new Set([...families.values()].flatMap((family) => family.samples.map((sample) => sample.name)));
    const panels = dashboard.panels.flatMap((panel) => [panel, ...((panel.panels ?? []) as typeof dashboard.panels)]);
    assert.ok(panels.length >= 10);
    for (const panel of panels) {
      const exprs = (panel.targets ?? []).map((target) => target.expr);
      assert.ok(exprs.length > 0, `panel "${panel.title}" has no query`);
      for (const expr of exprs) {
        // Metric names: identifiers outside {…} selectors, […] ranges and strings, with the
        // prefixes of Floodgate's and prom-client's series (PromQL functions have none).
        const names = expr.replace(/\{[^}]*\}|\[[^\]]*\]|"[^"]*"/g, ' ').match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? [];
        const metrics = names.filter((name) => /^(floodgate|process|nodejs)_/.test(name));
        assert.ok(metrics.length > 0, `panel "${panel.title}": no metric in ${expr}`);
        for (const metric of metrics) assert.ok(sampleNames.has(metric), `panel "${panel.title}" queries ${metric}, which /metrics does not export`);
      }
    }
  });
});

describe('quantiles under injected latency', () => {
  test('request and commit p99 rise past a lock held on the events table', async () => {
    const before = await stats();
    const lockMs = 1_000;
    assert.ok(before.commit_latency_ms.p99 < lockMs, `fast-run commit p99 ${before.commit_latency_ms.p99} ms`);
    const blocker = new pg.Client({ connectionString: harness.databaseUrl });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE events IN ACCESS EXCLUSIVE MODE');
      const slow = Array.from({ length: 40 }, (_, i) => post(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events: wireEvents(25, `slow-${i}`) }), json));
      await new Promise((resolve) => setTimeout(resolve, lockMs));
      await blocker.query('COMMIT');
      for (const answer of await Promise.all(slow)) assert.equal(answer.status, 200, answer.text);
    } finally {
      await blocker.end();
    }
    const families = await scrapeUntil((found) => (valueOf(found, 'floodgate_commit_latency_seconds', { quantile: '0.99' }) ?? 0) >= lockMs / 1000 * 0.9);
    const after = await stats();
    // 1,000 of the window's ~3,700 committed events and 40 of its ~120 requests waited out the lock.
    for (const [name, report] of [['commit', after.commit_latency_ms], ['request', after.request_duration_ms]] as const) {
      assert.ok(report.p99 >= lockMs * 0.9, `${name} p99 ${report.p99} ms after a ${lockMs} ms lock`);
      assert.ok(report.p99 > (name === 'commit' ? before.commit_latency_ms.p99 : before.request_duration_ms.p99));
    }
    assert.ok((valueOf(families, 'floodgate_commit_latency_seconds', { quantile: '0.99' }) as number) >= 0.9);
    assert.ok((valueOf(families, 'floodgate_request_duration_seconds', { quantile: '0.99' }) as number) >= 0.9);
    assert.ok(after.flush_duration_ms.max >= lockMs * 0.9, 'the write that waited on the lock is the slowest flush');
  });
});

describe('logs of the floodgate command', () => {
  test('are JSON lines with request ids on 4xx/5xx answers, lifecycle lines, and nothing per event', async () => {
    const database = await createTestDatabase();
    const engine = await spawnEngine(engineEnv({ DATABASE_URL: database.url, PORT: '0', FLOODGATE_HOST: '127.0.0.1', FLOODGATE_LOG_LEVEL: 'debug', FLOODGATE_ACK_TIMEOUT_MS: '1500ms' }));
    const base = `http://127.0.0.1:${engine.port}`;
    const blocker = new pg.Client({ connectionString: database.url });
    try {
      const ok = await post(`${base}/v1/events/bulk`, JSON.stringify({ events: wireEvents(500, 'log-ok') }), { ...json, 'x-request-id': 'log-test-ok' });
      assert.equal(ok.status, 200, ok.text);
      const bad = await post(`${base}/v1/events/bulk`, '{"events": [', { ...json, 'x-request-id': 'log-test-bad' });
      assert.equal(bad.status, 400);
      // A commit held up past ackTimeoutMs by a lock: the client gets 503, the log says so.
      await blocker.connect();
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE events IN ACCESS EXCLUSIVE MODE');
      const slow = await post(`${base}/v1/events`, JSON.stringify(wireEvent('log-slow')), { ...json, 'x-request-id': 'log-test-slow' });
      assert.equal(slow.status, 503, slow.text);
      await blocker.query('COMMIT');
      engine.child.kill('SIGTERM');
      assert.equal(await engine.exited, 0);
    } finally {
      engine.child.kill('SIGKILL');
      await blocker.end().catch(() => undefined);
      await database.drop();
    }
    const lines = engine.output().split('\n').filter((line) => line.trim() !== '').map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON log line: ${line}`);
      }
    });
    for (const line of lines) {
      assert.equal(typeof line.level, 'number');
      assert.equal(typeof line.time, 'number');
      assert.equal(typeof line.msg, 'string');
      assert.equal(line.service, 'floodgate');
    }
    const messages = lines.map((line) => line.msg);
    for (const expected of ['floodgate starting', 'actors ready', 'floodgate ready', 'draining', 'stopped']) assert.ok(messages.includes(expected), `no "${expected}" line in ${JSON.stringify(messages)}`);
    const byRequest = (requestId: string) => lines.filter((line) => line.requestId === requestId);
    assert.deepEqual(byRequest('log-test-slow').map((line) => [line.level, line.status, line.code]), [[40, 503, 'ERR_INGEST_COMMIT_TIMEOUT']]);
    assert.deepEqual(byRequest('log-test-bad').map((line) => [line.level, line.status, line.code]), [[20, 400, 'ERR_INGEST_MALFORMED_BODY']]);
    assert.deepEqual(byRequest('log-test-ok'), [], 'a 2xx answer is not logged');
    assert.ok(lines.some((line) => typeof line.actor === 'number'), 'actor threads log with their actor id');
    assert.ok(lines.length < 40, `${lines.length} lines for 502 events: nothing may be logged per event`);
  });
});
