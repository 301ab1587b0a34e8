/**
 * The load generator against real engines and a real PostgreSQL, in short runs: what
 * matters here is that the tooling counts right (acknowledged == stored), not speed.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runScenario } from '../../bench/load/load-run';
import { renderLoadMarkdown, renderLoadSvg } from '../../bench/load/load-report';
import { parseScenario } from '../../bench/load/scenario';
import { summarize } from '../../bench/load/summarize-results';
import { baselineDir } from '../../bench/load/targets';
import { serverUrl } from '../support/database';
import { startTestEngine } from '../support/engine';

test('a 2-second closed run against an engine the runner starts: acknowledged == stored, timeline, CPU and RSS sampled, warm-up left out of the headline', async () => {
  const scenario = parseScenario({
    name: 'tooling-closed',
    description: 'test',
    model: 'closed',
    eventsPerRequest: 50,
    phases: [{ label: 'one', durationS: 1, concurrency: 2, warmup: true }, { label: 'two', durationS: 1, concurrency: 6 }],
    clients: 2,
  }, 'test');
  const lines: string[] = [];
  const result = await runScenario(scenario, { databaseUrl: serverUrl(), progress: (line) => lines.push(line) });
  assert.ok(result.totals.eventsAcknowledged > 0, 'nothing was acknowledged');
  assert.equal(result.totals.errors + result.totals.timeouts, 0);
  assert.deepEqual(Object.keys(result.totals.statuses), ['200']);
  assert.equal(result.verification.distinctIds, result.totals.eventsAcknowledged);
  assert.equal(result.verification.duplicatesStored, 0);
  assert.ok(result.verification.ok);
  assert.equal(result.totals.eventsSent, result.totals.eventsAcknowledged);
  assert.ok(result.timeline.length >= 2, `timeline has ${result.timeline.length} seconds`);
  assert.equal(result.phases.length, 2);
  // The headline is phase two alone; the counts and the check cover the warm-up too.
  const [warmup, steady] = result.phases as [(typeof result.phases)[number], (typeof result.phases)[number]];
  assert.ok(warmup.latencyMs.count > 0 && steady.latencyMs.count > 0, 'both phases answered requests');
  assert.equal(result.latencyMs.count, steady.latencyMs.count);
  assert.ok(result.latencyMs.p50 > 0);
  assert.equal(result.totals.eventsPerS, steady.eventsPerS);
  assert.ok(result.totals.requests >= warmup.latencyMs.count + steady.latencyMs.count);
  assert.ok(result.engineRssMiB !== null && result.engineRssMiB.max > 10, 'engine RSS was not sampled');
  assert.ok(result.cpuCores !== null && result.cpuCores.engineCores > 0, 'engine CPU was not sampled');
  assert.ok(lines.some((line) => /ev\/s/.test(line)), 'no progress was shown');
  // The engine's own view: every answered request passed its request histogram, and durable answers waited for commits.
  assert.ok(result.engineStats !== null, 'the engine\'s /v1/stats was not read');
  assert.equal(result.engineStats.ackMode, 'durable');
  assert.ok(result.engineStats.requestMs.count > 0 && result.engineStats.requestMs.count <= result.totals.requests, JSON.stringify(result.engineStats.requestMs));
  assert.ok(result.engineStats.commitMs.count > 0 && (result.engineStats.commitMs.p99 ?? 0) > 0, JSON.stringify(result.engineStats.commitMs));
  assert.match(renderLoadMarkdown(result), /check \| ok/);
  assert.match(renderLoadMarkdown(result), /engine: commit latency p50 \/ p90 \/ p99 \/ p99\.9 \/ max \(ms, engine's last \d+ s\) \| [0-9.]+ \//);
  assert.match(renderLoadSvg(result), /^<\?xml/);
  const directory = mkdtempSync(path.join(os.tmpdir(), 'floodgate-summary-'));
  try {
    writeFileSync(path.join(directory, 'run.json'), JSON.stringify(result));
    writeFileSync(path.join(directory, 'other.json'), '{"rows": []}');
    const table = summarize([path.join(directory, 'run.json'), path.join(directory, 'other.json')]).split('\n');
    assert.equal(table.length, 3, 'header, separator and one row: the other file is skipped');
    assert.match(table[2] as string, /^\| tooling-closed \| floodgate \| .* \| ok \|/);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('a short open-model run against a running engine (async mode) settles and matches', async () => {
  const engine = await startTestEngine({ ackMode: 'async' });
  try {
    const scenario = parseScenario({
      name: 'tooling-open',
      model: 'open',
      route: '/v1/events/bulk',
      format: 'msgpack',
      eventsPerRequest: 20,
      phases: [{ durationS: 1.5, ratePerS: 40 }],
      clients: 1,
    }, 'test');
    const result = await runScenario(scenario, { url: engine.baseUrl, databaseUrl: engine.databaseUrl });
    assert.deepEqual(Object.keys(result.totals.statuses), ['202']);
    // 40 requests/s for 1.5 s, give or take the scheduler's first and last tick.
    assert.ok(result.totals.requests >= 55 && result.totals.requests <= 61, `${result.totals.requests} requests`);
    assert.equal(result.totals.unsent, 0);
    // Every sent request has its send lag, which can never exceed its whole latency.
    assert.equal(result.sendLagMs.count, result.latencyMs.count);
    assert.ok(result.sendLagMs.p50 <= result.latencyMs.p50 && result.sendLagMs.max <= result.latencyMs.max, JSON.stringify(result.sendLagMs));
    assert.match(renderLoadMarkdown(result), /of which the clients sent late by p50 \/ p99 \/ p99\.9 \/ max \(ms\) \| [0-9.]+ \/ /);
    assert.equal(result.verification.distinctIds, result.totals.eventsAcknowledged);
    assert.ok(result.verification.ok);
    assert.equal(result.engineRssMiB, null, 'an external engine has no pid to sample');
  } finally {
    await engine.close();
  }
});

/** A 1-second closed run on `route` against a fresh engine: the statuses it saw and the per-request event count. */
for (const { route, eventsPerRequest, status, title } of [
  { route: '/webhook/events', eventsPerRequest: 1, status: '202', title: 'the webhook route, one event per request, is counted by status' },
  { route: '/v1/events/stream', eventsPerRequest: 50, status: '200', title: 'the stream route: batches dealt over shared WebSocket connections, acked, counted and checked like HTTP' },
] as const) {
  test(title, async (t) => {
    // The stream's 8 users share 2 connections, several batches in flight on each.
    const scenario = parseScenario({ name: 'tooling-route', model: 'closed', route, eventsPerRequest, phases: [{ durationS: 1, concurrency: 8 }], clients: 1, connectionsPerClientMax: 2 }, 'test');
    const engine = await startTestEngine();
    t.after(() => engine.close());
    const result = await runScenario(scenario, { url: engine.baseUrl, databaseUrl: engine.databaseUrl });
    assert.deepEqual(Object.keys(result.totals.statuses), [status]);
    assert.equal(result.totals.eventsAcknowledged, result.totals.requests * eventsPerRequest);
    assert.ok(result.verification.ok);
  });
}

test('the baseline service, when installed, is driven and checked the same way', async (t) => {
  if (!existsSync(path.join(baselineDir, 'node_modules', 'fastify'))) {
    t.skip('bench/baseline is not installed (npm run bench:load -- <baseline scenario> installs it)');
    return;
  }
  const scenario = parseScenario({
    name: 'tooling-baseline',
    target: 'baseline',
    model: 'closed',
    eventsPerRequest: 50,
    phases: [{ durationS: 1, concurrency: 4 }],
    clients: 1,
  }, 'test');
  const result = await runScenario(scenario, { databaseUrl: serverUrl() });
  assert.deepEqual(Object.keys(result.totals.statuses), ['200']);
  assert.ok(result.totals.eventsAcknowledged > 0);
  assert.ok(result.verification.ok);
  assert.equal(result.engineStats, null, 'the baseline has no /v1/stats: its 404 must read as null');
});
