/**
 * The exposition built from an EngineMetrics fed the way the engine feeds it (ack and
 * stats messages from ActorStats, ingress calls), read back with the strict format reader
 * and with promtool.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import type { AckMessage } from '../../src/actors/messages';
import { EventOutcome } from '../../src/event';
import { ActorStats } from '../../src/metrics/actor-stats';
import { EngineMetrics, type MetricsSources } from '../../src/metrics/engine-metrics';
import { createMetricsRegistry, renderExposition } from '../../src/metrics/prometheus';
import { parseExposition, sumOf, valueOf } from './exposition-format';
import { promtoolCheck } from './promtool';

const sources: MetricsSources = {
  actorCount: 2,
  ackMode: 'durable',
  rings: () => [{ usedBytes: 4096, capacityBytes: 16384 }, { usedBytes: 0, capacityBytes: 16384 }],
  queue: () => ({ eventsOutstanding: 17, pendingRequests: 3 }),
  circuitState: () => 1,
  databaseUp: () => false,
};
const metrics = new EngineMetrics(sources, pino({ level: 'silent' }));
const registry = createMetricsRegistry(metrics);
const actor = new ActorStats(1);
after(() => {
  actor.destroy();
  metrics.close();
  registry.clear();
});

function ack(outcomes: number[]): AckMessage {
  return { type: 'ack', actorIndex: 0, count: outcomes.length, tickets: new Uint32Array(outcomes.length), indexes: new Uint32Array(outcomes.length), outcomes: Uint8Array.from(outcomes) };
}

describe('Prometheus exposition', () => {
  test('every series, with values that follow from what was reported', async () => {
    metrics.eventsReceived(10);
    metrics.eventsRejected('ERR_EVENT_FIELD_MISSING', 2);
    metrics.eventsRejected('ERR_INGEST_OVERLOADED', 1);
    metrics.onActorMessage(ack([EventOutcome.committed, EventOutcome.committed, EventOutcome.duplicate, EventOutcome.deadLettered, EventOutcome.failed]));
    metrics.onActorMessage(ack([EventOutcome.committed]));
    for (const ms of [2, 4, 6, 8]) metrics.requestAnswered('v1-bulk', 200, ms, 'r', null);
    metrics.requestAnswered('v1-single', 503, 1, 'r', 'ERR_INGEST_OVERLOADED');
    actor.committed(1_000_000, 1_250_000, 3);
    actor.writeAttempted(3, 9_000, false);
    metrics.onActorMessage(actor.takeMessage());
    metrics.onActorMessage({ type: 'fault', actorIndex: 1, code: '57P01', message: 'terminated', rows: 3, attempt: 1, transient: true } as never);

    const text = await renderExposition(registry);
    const families = parseExposition(text);
    const expected: Array<[string, Record<string, string>, number]> = [
      ['floodgate_events_received_total', {}, 10],
      ['floodgate_events_committed_total', {}, 3],
      ['floodgate_events_duplicate_total', {}, 1],
      ['floodgate_events_rejected_total', { code: 'ERR_EVENT_FIELD_MISSING' }, 2],
      ['floodgate_events_rejected_total', { code: 'ERR_INGEST_OVERLOADED' }, 1],
      ['floodgate_events_dead_lettered_total', {}, 1],
      ['floodgate_events_failed_total', {}, 1],
      ['floodgate_requests_total', { route: 'v1-bulk', status: '200' }, 4],
      ['floodgate_requests_total', { route: 'v1-single', status: '503' }, 1],
      ['floodgate_batch_write_failures_total', {}, 1],
      ['floodgate_request_duration_seconds_count', {}, 5],
      ['floodgate_request_duration_seconds_sum', {}, 0.021],
      ['floodgate_request_duration_seconds', { quantile: '0.5' }, 0.004],
      ['floodgate_request_duration_seconds', { quantile: '0.999' }, 0.008],
      ['floodgate_commit_latency_seconds', { quantile: '0.99' }, 0.25],
      ['floodgate_commit_latency_seconds_count', {}, 3],
      ['floodgate_commit_latency_seconds_sum', {}, 0.75],
      ['floodgate_flush_duration_seconds_count', {}, 1],
      ['floodgate_batch_rows_sum', {}, 3],
      ['floodgate_sink_circuit_state', {}, 1],
      ['floodgate_ring_used_bytes', { actor: '0' }, 4096],
      ['floodgate_ring_capacity_bytes', { actor: '1' }, 16384],
      ['floodgate_ring_occupancy_ratio', { actor: '0' }, 0.25],
      ['floodgate_actor_database_connected', { actor: '0' }, 1],
      ['floodgate_actor_database_connected', { actor: '1' }, 0],
      ['floodgate_database_up', {}, 0],
      ['floodgate_queued_events', {}, 17],
      ['floodgate_pending_requests', {}, 3],
    ];
    for (const [name, labels, value] of expected) {
      const found = valueOf(families, name, labels);
      assert.ok(found !== undefined && Math.abs(found - value) <= value * 0.001 + 1e-9, `${name}${JSON.stringify(labels)} = ${found}, expected ${value}`);
    }
    assert.ok(Number.isNaN(valueOf(families, 'floodgate_ring_wait_seconds', { quantile: '0.5' })), 'an empty window\'s quantiles are NaN');
    assert.equal(valueOf(families, 'floodgate_ring_wait_seconds_count'), 0);
    assert.equal(sumOf(families, 'floodgate_events_rejected_total'), 3);
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      assert.ok(families.has(name), `default metric ${name}`);
    }
    for (const family of families.values()) {
      assert.ok(family.help !== null && family.help !== '', `${family.name} has HELP`);
      if (family.name.startsWith('floodgate_')) assert.equal(family.type === 'counter', family.name.endsWith('_total'), `${family.name}: only counters end in _total`);
    }
  });

  test('promtool check metrics accepts it', async (context) => {
    const result = promtoolCheck(await renderExposition(registry));
    if (result.skipped !== null) return context.skip(result.skipped);
    assert.equal(result.status, 0, result.output);
  });
});

describe('the strict exposition reader', () => {
  test('refuses what the format does not allow', () => {
    const bad = [
      'a 1', // no trailing newline
      'a 1\n', // sample without TYPE
      '# TYPE a counter\na -1\n',
      '# TYPE a gauge\na{x="1",x="2"} 1\n',
      '# TYPE a gauge\na{x="\\q"} 1\n',
      '# TYPE a gauge\na one\n',
      '# TYPE a gauge\n# TYPE b gauge\nb 1\na 1\n',
      '# TYPE a gauge\na 1\na 2\n',
      '# TYPE a summary\na 1\n',
      '# TYPE a gauge\na_sum 1\n',
      '# TYPE a gauge\n# TYPE a counter\n',
      '# TYPE 1a gauge\n',
    ];
    for (const text of bad) assert.throws(() => parseExposition(text), Error, JSON.stringify(text));
  });

  test('reads escapes, NaN, infinities and timestamps', () => {
    const families = parseExposition('# HELP a x\\ny\n# TYPE a gauge\na{l="q\\"\\\\\\n"} NaN\na{l="2"} +Inf 1700000000000\n\n');
    assert.equal(families.get('a')?.samples[0]?.labels.l, 'q"\\\n');
    assert.equal(valueOf(families, 'a', { l: '2' }), Number.POSITIVE_INFINITY);
  });
});
