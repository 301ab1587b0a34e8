/**
 * An actor's measurements against a real BatchWriter and PostgreSQL: what is recorded per
 * write, per envelope and per committed run, what a StatsMessage carries, and that the
 * main thread's windows read the same numbers back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EventOutcome } from '../../src/event';
import { ActorStats } from '../../src/metrics/actor-stats';
import { clockUs } from '../../src/metrics/clock';
import { recordingWriter } from '../../src/metrics/recording-writer';
import { SlidingHistogram } from '../../src/metrics/sliding-histogram';
import { BatchWriter, type BatchRow } from '../../src/sink/batch-writer';
import { buildEvent, createMigratedDatabase, recordingLogger, type MigratedDatabase } from '../sink/fixtures';

let database: MigratedDatabase;
let writer: BatchWriter;
const stats = new ActorStats(3);
before(async () => {
  database = await createMigratedDatabase();
  writer = await BatchWriter.open(database.url, recordingLogger());
});
after(async () => {
  stats.destroy();
  await writer?.close();
  await database?.close();
});

/** Rows in three envelopes received 50, 20 and 5 ms ago (ids unique per call). */
function envelopes(): { rows: BatchRow[]; receivedAtUs: number[] } {
  const nowUs = clockUs();
  const receivedAtUs = [nowUs - 50_000, nowUs - 20_000, nowUs - 5_000];
  const rows = receivedAtUs.flatMap((at, envelope) => Array.from({ length: 10 * (envelope + 1) }, () => ({ event: buildEvent(), receivedAtUs: at })));
  return { rows, receivedAtUs };
}

async function waitForLockWaiter(): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const waiting = await database.client.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'floodgate-writer' AND wait_event_type = 'Lock'");
    if (waiting.rows.length > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('the writer never waited on the lock');
}

function windowOf(encoded: Uint8Array | null, sum: number): SlidingHistogram {
  assert.ok(encoded !== null, 'expected an encoded histogram');
  const window = new SlidingHistogram({ sliceMs: 10_000, sliceCount: 6 });
  window.addEncoded(encoded, sum);
  return window;
}

describe('ActorStats with the recording writer', () => {
  test('one write: flush duration and rows once, commit latency for every committed row, grouped by envelope', async () => {
    stats.takeMessage();
    const { rows, receivedAtUs } = envelopes();
    const outcomes = new Uint8Array(rows.length);
    const startedUs = clockUs();
    await recordingWriter(writer, stats).write(rows, outcomes);
    // Counted from when the envelopes' times were taken: on a loaded machine the thread can
    // be descheduled for tens of ms before the write starts (seen in CI: p10 32.6 ms).
    const elapsedUs = clockUs() - ((receivedAtUs[2] as number) + 5_000);
    assert.ok(outcomes.every((outcome) => outcome === EventOutcome.committed));
    const message = stats.takeMessage();
    assert.equal(message.type, 'stats');
    assert.equal(message.actorIndex, 3);
    assert.equal(message.databaseConnected, true);

    const commit = windowOf(message.histograms.commitLatencyUs, message.sums.commitLatencyUs);
    assert.equal(commit.count, 60, 'one value per committed row');
    const [p10, p50, p90] = commit.snapshot([10, 50, 90]).percentiles as [number, number, number];
    // 10 rows waited ≥ 50 ms, 20 rows ≥ 20 ms, 30 rows ≥ 5 ms, plus the write itself.
    assert.ok(p10 >= 5_000 && p10 <= 5_000 + elapsedUs + 1_000, `p10 ${p10}`);
    assert.ok(p50 >= 5_000 && p50 <= 20_000 + elapsedUs + 1_000, `p50 ${p50}`);
    assert.ok(p90 >= 20_000 && p90 <= 50_000 + elapsedUs + 1_000, `p90 ${p90}`);
    const expectedSumUs = receivedAtUs.reduce((sum, at, envelope) => sum + (startedUs - at) * 10 * (envelope + 1), 0);
    assert.ok(message.sums.commitLatencyUs >= expectedSumUs && message.sums.commitLatencyUs <= expectedSumUs + 60 * (elapsedUs + 1_000));

    const batchRows = windowOf(message.histograms.batchRows, message.sums.batchRows);
    assert.equal(batchRows.count, 1);
    assert.equal(batchRows.sum, 60);
    const flush = windowOf(message.histograms.flushUs, message.sums.flushUs);
    assert.equal(flush.count, 1);
    assert.ok(flush.sum > 0 && flush.sum <= elapsedUs, `flush ${flush.sum} µs of ${elapsedUs}`);
    for (const window of [commit, batchRows, flush]) window.destroy();
    assert.equal(message.histograms.ringWaitUs, null, 'nothing was read from a ring');
  });

  test('duplicates are not commit latencies; messages carry deltas and are empty when idle', async () => {
    const { rows } = envelopes();
    const recording = recordingWriter(writer, stats);
    await recording.write(rows, new Uint8Array(rows.length));
    stats.takeMessage();
    const outcomes = new Uint8Array(rows.length);
    await recording.write(rows, outcomes);
    assert.ok(outcomes.every((outcome) => outcome === EventOutcome.duplicate));
    const message = stats.takeMessage();
    assert.equal(message.histograms.commitLatencyUs, null);
    assert.equal(message.sums.commitLatencyUs, 0);
    assert.notEqual(message.histograms.flushUs, null, 'the write attempt itself still counts');
    const idle = stats.takeMessage();
    assert.deepEqual(idle.histograms, { ringWaitUs: null, commitLatencyUs: null, flushUs: null, batchRows: null });
    assert.deepEqual(idle.sums, { ringWaitUs: 0, commitLatencyUs: 0, flushUs: 0, batchRows: 0 });
  });

  test('ring wait: one record per envelope with its event count', () => {
    stats.takeMessage();
    const nowUs = clockUs();
    stats.envelopeRead(nowUs - 3_000, 40);
    stats.envelopeRead(nowUs - 9_000, 2);
    const message = stats.takeMessage();
    const ringWait = windowOf(message.histograms.ringWaitUs, message.sums.ringWaitUs);
    assert.equal(ringWait.count, 42);
    const [p50, p99] = ringWait.snapshot([50, 99]).percentiles as [number, number];
    assert.ok(p50 >= 3_000 && p50 < 8_000, `p50 ${p50}`);
    assert.ok(p99 >= 9_000, `p99 ${p99}`);
    ringWait.destroy();
  });

  test('a connection lost during a write is reported, and the next successful write reports it back', async () => {
    const recording = recordingWriter(writer, stats);
    const { rows } = envelopes();
    // The write waits on a lock this test holds; its session is then terminated under it.
    await database.client.query('BEGIN');
    await database.client.query('LOCK TABLE events IN ACCESS EXCLUSIVE MODE');
    // The expectation is attached at once: the write may fail while the test still awaits
    // its own queries below, and a rejection without a handler by then is reported as unhandled.
    const writeFails = assert.rejects(recording.write(rows, new Uint8Array(rows.length)));
    await waitForLockWaiter();
    await database.client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'floodgate-writer'");
    await database.client.query('ROLLBACK');
    await writeFails;
    assert.equal(stats.takeMessage().databaseConnected, false);
    await recording.write(rows, new Uint8Array(rows.length));
    assert.equal(stats.takeMessage().databaseConnected, true);
  });
});
