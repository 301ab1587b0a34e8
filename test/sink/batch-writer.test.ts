import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { attributesText, EventOutcome } from '../../src/event';
import { BatchWriter, type BatchRow } from '../../src/sink/batch-writer';
import { partitionName } from '../../src/sink/partitions';
import { classifyDatabaseError } from '../../src/sink/retry-policy';
import { createTestDatabase } from '../support/database';
import {
  baseUs,
  buildEvent,
  buildRows,
  countRows,
  createMigratedDatabase,
  dayUs,
  recordingLogger,
  ringRowsOf,
  sleep,
  type MigratedDatabase,
} from './fixtures';

let database: MigratedDatabase;
before(async () => {
  database = await createMigratedDatabase();
});
after(async () => {
  await database?.close();
});

async function withWriter<T>(work: (writer: BatchWriter, logger: ReturnType<typeof recordingLogger>) => Promise<T>) {
  const logger = recordingLogger();
  const writer = await BatchWriter.open(database.url, logger);
  try {
    return await work(writer, logger);
  } finally {
    await writer.close();
  }
}

async function storedIds(rows: readonly BatchRow[]): Promise<string[]> {
  const result = await database.client.query<{ event_id: string }>(
    'SELECT event_id FROM events WHERE event_id = ANY($1)',
    // An id holding NUL cannot be stored, nor even sent as a text parameter.
    [rows.map((row) => row.event.eventId).filter((eventId) => !eventId.includes('\u0000'))],
  );
  // Sorted here: the server's collation may order ids differently from JavaScript.
  return result.rows.map((row) => row.event_id).sort();
}

function outcomesOf(outcomes: Uint8Array, count: number): number[] {
  return Array.from(outcomes.subarray(0, count));
}

interface DeadLetterRow {
  reason_code: string;
  reason: string;
  event_id: string | null;
  payload: Buffer;
  attempts: number;
}

/** Dead letters whose payload names one of `eventIds` (parsed here: payloads may hold \u0000). */
async function deadLettersFor(eventIds: readonly string[]): Promise<DeadLetterRow[]> {
  const result = await database.client.query<DeadLetterRow>(
    'SELECT reason_code, reason, event_id, payload, attempts FROM dead_letters ORDER BY id',
  );
  const wanted = new Set(eventIds);
  return result.rows.filter((row) => wanted.has(JSON.parse(row.payload.toString('utf8')).event_id as string));
}

test('fast path: one COPY transaction commits every row, creating far partitions on demand', async () => {
  await withWriter(async (writer, logger) => {
    const farUs = Date.UTC(2099, 0, 1, 12) * 1000;
    const rows = [...buildRows(998), ...buildRows(1, { occurredAtUs: baseUs + 3 * dayUs }), ...buildRows(1, { occurredAtUs: farUs })];
    const outcomes = new Uint8Array(rows.length + 10).fill(9);
    const report = await writer.write(rows, outcomes);
    assert.deepEqual(report, { committed: 1_000, duplicates: 0, deadLettered: 0, path: 'copy', transactions: 1 });
    assert.ok(outcomesOf(outcomes, rows.length).every((outcome) => outcome === EventOutcome.committed));
    assert.equal(outcomes[rows.length], 9, 'outcomes past the batch are not touched');
    assert.equal((await storedIds(rows)).length, 1_000);
    const partition = await database.client.query("SELECT to_regclass('events_p20990101') IS NOT NULL AS exists");
    assert.equal(partition.rows[0]?.exists, true);
    assert.ok(logger.entries.some((entry) => entry.msg === 'event partitions created on demand'));
  });
});

test('an empty batch does nothing', async () => {
  await withWriter(async (writer) => {
    const report = await writer.write([], new Uint8Array(0));
    assert.deepEqual(report, { committed: 0, duplicates: 0, deadLettered: 0, path: 'copy', transactions: 0 });
  });
});

test('duplicate path: rows already stored come back duplicate, the rest committed, no extra rows', async () => {
  await withWriter(async (writer) => {
    const stored = buildRows(100);
    await writer.write(stored, new Uint8Array(stored.length));
    const fresh = buildRows(100);
    // Interleave: every third row of the new batch is a retry of an already stored one.
    const batch: BatchRow[] = [];
    const expected: number[] = [];
    for (let i = 0; i < 150; i++) {
      const retry = i % 3 === 0;
      batch.push(retry ? (stored[i / 3] as BatchRow) : (fresh[i - Math.ceil(i / 3)] as BatchRow));
      expected.push(retry ? EventOutcome.duplicate : EventOutcome.committed);
    }
    const before = await countRows(database.client, 'events');
    const outcomes = new Uint8Array(batch.length);
    const report = await writer.write(batch, outcomes);
    assert.deepEqual(report, { committed: 100, duplicates: 50, deadLettered: 0, path: 'staging', transactions: 2 });
    assert.deepEqual(outcomesOf(outcomes, batch.length), expected);
    assert.equal(await countRows(database.client, 'events'), before + 100);

    // The staging table empties on commit: a second staging write sees only its own rows.
    const again = await writer.write(batch.slice(0, 10), new Uint8Array(10));
    assert.deepEqual(again, { committed: 0, duplicates: 10, deadLettered: 0, path: 'staging', transactions: 2 });
  });
});

test('the same id with another timestamp is a second row: the key is (event_id, occurred_at)', async () => {
  await withWriter(async (writer) => {
    const first = buildEvent();
    const rows: BatchRow[] = [{ event: first, receivedAtUs: baseUs }];
    await writer.write(rows, new Uint8Array(1));
    const shifted: BatchRow[] = [{ event: { ...first, occurredAtUs: first.occurredAtUs + 1 }, receivedAtUs: baseUs }];
    const report = await writer.write(shifted, new Uint8Array(1));
    assert.equal(report.committed, 1);
    const count = await database.client.query('SELECT count(*)::int AS n FROM events WHERE event_id = $1', [first.eventId]);
    assert.equal(count.rows[0]?.n, 2);
  });
});

test('poison rows are isolated: good rows commit, bad ones go to dead_letters with SQLSTATE and message', async () => {
  await withWriter(async (writer, logger) => {
    const rows = buildRows(64);
    const jsonbNul = buildEvent({ attributesJson: '{"note":"a\\u0000b","n":1}' });
    const textNul = buildEvent({ eventType: 'bad\u0000type' });
    const idNul = buildEvent({ eventId: `nul\u0000id-${process.pid}` });
    // Days before 1970 can have no partition (and µs beyond year ~2255 are not safe
    // integers, so a ValidEvent cannot even express a later impossible day).
    const noPartition = buildEvent({ occurredAtUs: -1 });
    const beforeEpoch = buildEvent({ occurredAtUs: Date.UTC(1960, 0, 1) * 1000 });
    const poison = new Map([
      [7, jsonbNul],
      [33, textNul],
      [34, idNul],
      [50, noPartition],
      [63, beforeEpoch],
    ]);
    for (const [index, event] of poison) rows[index] = { event, receivedAtUs: baseUs };
    const outcomes = new Uint8Array(rows.length);
    const report = await writer.write(rows, outcomes);
    assert.equal(report.path, 'bisect');
    assert.equal(report.committed, 59);
    assert.equal(report.deadLettered, 5);
    assert.equal(report.duplicates, 0);
    rows.forEach((_, index) => {
      assert.equal(outcomes[index], poison.has(index) ? EventOutcome.deadLettered : EventOutcome.committed, `row ${index}`);
    });
    const goodIds = rows.filter((_, index) => !poison.has(index)).map((row) => row.event.eventId).sort();
    assert.deepEqual(await storedIds(rows), goodIds);

    const letters = await deadLettersFor([...poison.values()].map((event) => event.eventId));
    assert.equal(letters.length, 5);
    const byId = new Map(letters.map((letter) => [JSON.parse(letter.payload.toString('utf8')).event_id as string, letter]));
    assert.deepEqual(pick(byId.get(jsonbNul.eventId)), { reason_code: '22P05', event_id: jsonbNul.eventId, attempts: 1 });
    assert.match(byId.get(jsonbNul.eventId)?.reason ?? '', /unsupported Unicode escape sequence/);
    assert.deepEqual(pick(byId.get(textNul.eventId)), { reason_code: '22021', event_id: textNul.eventId, attempts: 1 });
    assert.match(byId.get(textNul.eventId)?.reason ?? '', /invalid byte sequence for encoding "UTF8": 0x00/);
    assert.deepEqual(pick(byId.get(idNul.eventId)), { reason_code: '22021', event_id: null, attempts: 1 });
    assert.deepEqual(pick(byId.get(noPartition.eventId)), { reason_code: '23514', event_id: noPartition.eventId, attempts: 1 });
    assert.match(byId.get(noPartition.eventId)?.reason ?? '', /no partition of relation "events" found for row/);
    assert.equal(byId.get(beforeEpoch.eventId)?.reason_code, '23514');

    // The payload keeps the event exactly, NUL bytes and µs included.
    const payload = JSON.parse(byId.get(jsonbNul.eventId)?.payload.toString('utf8') ?? '');
    assert.deepEqual(payload, {
      event_id: jsonbNul.eventId,
      event_type: jsonbNul.eventType,
      source: jsonbNul.source,
      actor_id: jsonbNul.actorId,
      occurred_at_us: jsonbNul.occurredAtUs,
      received_at_us: baseUs,
      attributes: { note: 'a\u0000b', n: 1 },
    });
    assert.equal(JSON.parse(byId.get(textNul.eventId)?.payload.toString('utf8') ?? '').event_type, 'bad\u0000type');
    assert.equal(logger.entries.filter((entry) => entry.msg === 'event dead-lettered').length, 5);
  });
});

function pick(letter: DeadLetterRow | undefined): object {
  return { reason_code: letter?.reason_code, event_id: letter?.event_id, attempts: letter?.attempts };
}

test('a batch with both duplicates and a poison row settles each row correctly', async () => {
  await withWriter(async (writer) => {
    const stored = buildRows(5);
    await writer.write(stored, new Uint8Array(5));
    const poison = buildEvent({ attributesJson: '{"bad":"\\u0000"}' });
    const fresh = buildRows(5);
    const batch = [...stored, { event: poison, receivedAtUs: baseUs }, ...fresh];
    const outcomes = new Uint8Array(batch.length);
    const report = await writer.write(batch, outcomes);
    assert.deepEqual(
      { committed: report.committed, duplicates: report.duplicates, deadLettered: report.deadLettered, path: report.path },
      { committed: 5, duplicates: 5, deadLettered: 1, path: 'bisect' },
    );
    assert.deepEqual(outcomesOf(outcomes, batch.length), [2, 2, 2, 2, 2, 3, 1, 1, 1, 1, 1]);
    assert.equal((await deadLettersFor([poison.eventId])).length, 1);
  });
});

test('rows read from a ring envelope are stored field for field, and a poison one is dead-lettered whole', async () => {
  await withWriter(async (writer) => {
    const good = [
      buildEvent({ eventId: `ring-é-${process.pid}`, eventType: 'ordre.créé', actorId: null, attributesJson: '{"price": 1.50, "tags": ["a"]}' }),
      buildEvent({ source: 's'.repeat(64), attributesJson: JSON.stringify({ long: 'ä'.repeat(500) }) }),
    ];
    const poison = buildEvent({ eventType: 'bad', attributesJson: '{"bad":"\\u0000"}' });
    const rows = ringRowsOf([...good, poison]);
    const outcomes = new Uint8Array(rows.length);
    const report = await writer.write(rows, outcomes);
    assert.deepEqual(outcomesOf(outcomes, rows.length), [1, 1, 3]);
    assert.equal(report.path, 'bisect');
    const stored = await database.client.query<{ event_id: string; event_type: string; source: string; actor_id: string | null; occurred_us: string; received_us: string; attributes: unknown }>(
      `SELECT event_id, event_type, source, actor_id, attributes,
              (extract(epoch FROM occurred_at) * 1000000)::bigint::text AS occurred_us,
              (extract(epoch FROM received_at) * 1000000)::bigint::text AS received_us
         FROM events WHERE event_id = ANY($1) ORDER BY occurred_at`,
      [good.map((event) => event.eventId)],
    );
    assert.deepEqual(
      stored.rows,
      good.map((event) => ({
        event_id: event.eventId,
        event_type: event.eventType,
        source: event.source,
        actor_id: event.actorId,
        attributes: JSON.parse(attributesText(event)),
        occurred_us: String(event.occurredAtUs),
        received_us: String((rows[0] as BatchRow).receivedAtUs),
      })),
    );
    const [letter] = await deadLettersFor([poison.eventId]);
    assert.equal(letter?.reason_code, '22P05');
    const payload = JSON.parse(letter?.payload.toString('utf8') ?? '');
    assert.equal(payload.event_type, 'bad');
    assert.equal(payload.actor_id, poison.actorId);
  });
});

test('attributes that are not even JSON are dead-lettered with their text kept', async () => {
  await withWriter(async (writer) => {
    const broken = buildEvent({ attributesJson: '{"unterminated": ' });
    const outcomes = new Uint8Array(1);
    const report = await writer.write([{ event: broken, receivedAtUs: baseUs }], outcomes);
    assert.equal(report.deadLettered, 1);
    const [letter] = await deadLettersFor([broken.eventId]);
    assert.equal(letter?.reason_code, '22P02');
    assert.equal(JSON.parse(letter?.payload.toString('utf8') ?? '').attributes_text, '{"unterminated": ');
  });
});

async function writerBackendPid(): Promise<number> {
  const result = await database.client.query<{ pid: number }>(
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'floodgate-writer'",
  );
  assert.equal(result.rowCount, 1, 'exactly one writer connection');
  return result.rows[0]?.pid as number;
}

test('a terminated connection is replaced on the next write', async () => {
  await withWriter(async (writer, logger) => {
    // Staging table first, so the test also proves it is recreated on the new session.
    const stored = buildRows(3);
    await writer.write(stored, new Uint8Array(3));
    await writer.write(stored, new Uint8Array(3));
    const terminated = await database.client.query('SELECT pg_terminate_backend($1) AS done', [await writerBackendPid()]);
    assert.equal(terminated.rows[0]?.done, true);
    await sleep(200);
    assert.ok(logger.entries.some((entry) => entry.msg === 'batch writer connection lost'));
    const rows = [...buildRows(20), ...stored];
    const outcomes = new Uint8Array(rows.length);
    const report = await writer.write(rows, outcomes);
    assert.deepEqual(report, { committed: 20, duplicates: 3, deadLettered: 0, path: 'staging', transactions: 2 });
  });
});

test('a connection killed under a write fails it as transient, and the retry stores each row once', async () => {
  await withWriter(async (writer) => {
    await writer.write(buildRows(1), new Uint8Array(1));
    await database.client.query('SELECT pg_terminate_backend($1)', [await writerBackendPid()]);
    const rows = buildRows(200);
    const outcomes = new Uint8Array(rows.length);
    let failures = 0;
    for (let attempt = 0; ; attempt++) {
      try {
        await writer.write(rows, outcomes);
        break;
      } catch (error) {
        failures += 1;
        assert.equal(classifyDatabaseError(error), 'transient', String(error));
        assert.equal(typeof (error as { code?: unknown }).code, 'string');
        assert.ok(attempt < 2, 'recovers within one retry');
      }
    }
    assert.ok(failures <= 1);
    assert.ok(outcomesOf(outcomes, rows.length).every((outcome) => outcome === EventOutcome.committed));
    assert.equal((await storedIds(rows)).length, 200);
  });
});

test('a transient failure in the middle of a bisect: the retry reports committed rows as committed and dead-letters once', async () => {
  await withWriter(async (writer) => {
    const rows = buildRows(8);
    const poison = buildEvent({ attributesJson: '{"x":"\\u0000"}' });
    rows[5] = { event: poison, receivedAtUs: baseUs };
    await writer.write(buildRows(1), new Uint8Array(1));
    const writerPid = await writerBackendPid();

    // Hold dead_letters so the bisect commits the good halves, then waits on the lock for
    // the poison row; kill the writer's session while it waits.
    const blocker = new pg.Client({ connectionString: database.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE dead_letters IN ACCESS EXCLUSIVE MODE');
    const outcomes = new Uint8Array(rows.length);
    const failing = writer.write(rows, outcomes).then(
      () => assert.fail('the write should fail'),
      (error: unknown) => error,
    );
    await waitFor(async () => {
      const waiting = await database.client.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'", [writerPid]);
      return waiting.rowCount === 1;
    });
    await database.client.query('SELECT pg_terminate_backend($1)', [writerPid]);
    const error = await failing;
    assert.equal(classifyDatabaseError(error), 'transient', String(error));
    await blocker.query('ROLLBACK');
    await blocker.end();
    // Bisect order: [0..3] committed, then [4] committed, then [5] blocked on dead_letters.
    assert.deepEqual(outcomesOf(outcomes, rows.length), [1, 1, 1, 1, 1, 0, 0, 0]);

    const retryOutcomes = new Uint8Array(rows.length);
    const report = await writer.write(rows, retryOutcomes);
    assert.deepEqual(outcomesOf(retryOutcomes, rows.length), [1, 1, 1, 1, 1, 3, 1, 1]);
    assert.equal(report.committed, 7);
    assert.equal(report.duplicates, 0);
    assert.equal(report.deadLettered, 1);
    assert.equal((await deadLettersFor([poison.eventId])).length, 1);

    // Remembered outcomes are forgotten once a write succeeds: the batch now reads as stored.
    const third = await writer.write(rows.filter((_, index) => index !== 5), new Uint8Array(7));
    assert.equal(third.duplicates, 7);
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadlineMs) throw new Error('condition not met in time');
    await sleep(20);
  }
}

test('a partition dropped behind the cache is recreated and the batch still commits', async () => {
  await withWriter(async (writer) => {
    const lettersBefore = await countRows(database.client, 'dead_letters');
    const dayUsStart = Date.UTC(2095, 3, 3) * 1000;
    const first = buildRows(2, { occurredAtUs: dayUsStart + 5 });
    await writer.write(first, new Uint8Array(2));
    await database.client.query(`DROP TABLE ${partitionName(Date.UTC(2095, 3, 3) / 86_400_000)}`);
    const rows = buildRows(4, { occurredAtUs: dayUsStart + 10 });
    const outcomes = new Uint8Array(4);
    const report = await writer.write(rows, outcomes);
    assert.equal(report.committed, 4);
    assert.equal(report.deadLettered, 0);
    assert.equal((await storedIds(rows)).length, 4);
    assert.equal(await countRows(database.client, 'dead_letters'), lettersBefore);
  });
});

test('errors that are bugs are thrown as they are, never bisected', async () => {
  const bare = await createTestDatabase();
  try {
    const writer = await BatchWriter.open(bare.url, recordingLogger());
    try {
      await assert.rejects(writer.write(buildRows(3), new Uint8Array(3)), (error: unknown) => {
        assert.equal((error as { code?: unknown }).code, '42P01');
        assert.equal(classifyDatabaseError(error), 'fatal');
        return true;
      });
    } finally {
      await writer.close();
    }
  } finally {
    await bare.drop();
  }
});

test('an unreachable server fails open() with a transient network code', async () => {
  const url = new URL(database.url);
  url.port = '1';
  await assert.rejects(BatchWriter.open(url.toString(), recordingLogger()), (error: unknown) => {
    assert.equal((error as { code?: unknown }).code, 'ECONNREFUSED');
    assert.equal(classifyDatabaseError(error), 'transient');
    return true;
  });
});

test('misuse is refused: short outcomes, concurrent writes, write after close', async () => {
  const writer = await BatchWriter.open(database.url, recordingLogger());
  await assert.rejects(writer.write(buildRows(3), new Uint8Array(2)), /outcomes shorter than rows/);
  const first = writer.write(buildRows(50), new Uint8Array(50));
  await assert.rejects(writer.write(buildRows(1), new Uint8Array(1)), /concurrent write calls/);
  await first;
  await writer.close();
  await assert.rejects(writer.write(buildRows(1), new Uint8Array(1)), /write after close/);
  await writer.close();
});
