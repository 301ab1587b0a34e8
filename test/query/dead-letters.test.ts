/**
 * The dead-letter store against a real PostgreSQL: keyset pages, filters, replay pages,
 * settling, and folding a replay's new dead letter into the old one. Fixtures are real
 * rows written by the sink's own insertDeadLetter.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ValidEvent } from '../../src/event';
import {
  decodeCursor,
  DeadLetterStore,
  encodeCursor,
  isoMicroseconds,
  parseId,
  replayItemOf,
  type DeadLetterRecord,
} from '../../src/query/dead-letters';
import { parseTimestamp } from '../../src/validate/timestamp';
import { deadLetterPayload, insertDeadLetter } from '../../src/sink/dead-letters';
import { buildEvent, createMigratedDatabase, type MigratedDatabase } from '../sink/fixtures';

let database: MigratedDatabase;
let store: DeadLetterStore;
before(async () => {
  database = await createMigratedDatabase();
  store = DeadLetterStore.open(database.url);
});
after(async () => {
  await store.close();
  await database.close();
});

const reasons = [
  { code: '22P05', message: 'unsupported Unicode escape sequence' },
  { code: '23514', message: 'new row for relation "events" violates check constraint' },
];

/** Inserts `count` dead letters (reason codes alternating) and returns their events in id order. */
async function insertMany(count: number, overrides: Partial<ValidEvent> = {}): Promise<ValidEvent[]> {
  const events: ValidEvent[] = [];
  for (let index = 0; index < count; index++) {
    const event = buildEvent(overrides);
    await insertDeadLetter(database.client, event, event.occurredAtUs + 1000, reasons[index % 2] as (typeof reasons)[number]);
    events.push(event);
  }
  return events;
}

async function clear(): Promise<void> {
  await database.client.query('TRUNCATE dead_letters RESTART IDENTITY');
}

test('cursors are opaque, typed, and refuse anything else', () => {
  const cursor = encodeCursor('list', '42');
  assert.match(cursor, /^[A-Za-z0-9_-]+$/);
  assert.equal(decodeCursor('list', cursor), '42');
  assert.equal(decodeCursor('replay', cursor), null, 'a list cursor is not a replay cursor');
  for (const bad of ['', '42', 'not base64!', encodeCursor('list', '0').slice(0, -2), Buffer.from('dl:list:-1').toString('base64url'), 'x'.repeat(65)]) {
    assert.equal(decodeCursor('list', bad), null, bad);
  }
  assert.equal(parseId(1), '1');
  assert.equal(parseId('9223372036854775807'), '9223372036854775807');
  for (const bad of [0, -1, 1.5, '01', '9223372036854775808', '', ' 1', Number.MAX_SAFE_INTEGER + 2, null, true]) assert.equal(parseId(bad), null, String(bad));
});

test('replay items carry the exact microsecond timestamp and the stored fields', () => {
  const event = buildEvent({ actorId: null, occurredAtUs: Date.UTC(2026, 10, 21, 8, 0, 0, 123) * 1000 + 456, attributesJson: '{"a": 1.0, "b": [true]}' });
  const item = replayItemOf(deadLetterPayload(event, 99));
  assert.ok(item.ok);
  assert.deepEqual(item.item, { event_id: event.eventId, event_type: event.eventType, source: event.source, timestamp: '2026-11-21T08:00:00.123456Z', attributes: { a: 1, b: [true] } });
  assert.equal(parseTimestamp(item.item.timestamp), event.occurredAtUs, 'the timestamp parses back to the same µs');
  assert.equal(isoMicroseconds(0), '1970-01-01T00:00:00.000000Z');
  assert.equal(isoMicroseconds(1_000_001), '1970-01-01T00:00:01.000001Z');

  const broken = replayItemOf(deadLetterPayload(buildEvent({ attributesJson: '{"open": [' }), 0));
  assert.ok(!broken.ok);
  assert.equal(broken.error.code, 'ERR_EVENT_ATTRIBUTES_INVALID');
  const notJson = replayItemOf(Buffer.from([0xff, 0xfe, 0x00]));
  assert.ok(!notJson.ok);
  assert.equal(notJson.error.code, 'ERR_EVENT_NOT_OBJECT');
});

test('list pages newest first over 250 rows: no gaps, no overlaps, null cursor at the end', async () => {
  await clear();
  const events = await insertMany(250);
  const seen: DeadLetterRecord[] = [];
  let beforeId: string | null = null;
  let pages = 0;
  for (;;) {
    const page = await store.list({ limit: 100, beforeId, reasonCode: null, replayed: null });
    pages++;
    seen.push(...page.records);
    if (page.nextCursor === null) break;
    beforeId = decodeCursor('list', page.nextCursor);
  }
  assert.equal(pages, 3);
  assert.deepEqual(seen.map((record) => Number(record.id)), Array.from({ length: 250 }, (_, i) => 250 - i));
  assert.deepEqual(seen.map((record) => record.eventId).reverse(), events.map((event) => event.eventId));
  const first = seen.at(-1) as DeadLetterRecord;
  assert.equal(first.reasonCode, '22P05');
  assert.equal(first.attempts, 1);
  assert.equal(first.replayedAt, null);
  assert.deepEqual(first.payload, deadLetterPayload(events[0] as ValidEvent, (events[0] as ValidEvent).occurredAtUs + 1000));

  // A page that ends exactly at the last row says so (limit + 1 probe).
  const exact = await store.list({ limit: 250, beforeId: null, reasonCode: null, replayed: null });
  assert.equal(exact.records.length, 250);
  assert.equal(exact.nextCursor, null);
});

test('filters by reason code and by replayed, and settles rows', async () => {
  await clear();
  await insertMany(10);
  const byCode = await store.list({ limit: 100, beforeId: null, reasonCode: '23514', replayed: null });
  assert.deepEqual(byCode.records.map((record) => Number(record.id)), [10, 8, 6, 4, 2]);

  await store.markReplayed(['2', '4']);
  await store.markReplayed(['2']); // Already replayed: left alone.
  await store.countAttempt(['3']);
  const replayed = await store.list({ limit: 100, beforeId: null, reasonCode: null, replayed: true });
  assert.deepEqual(replayed.records.map((record) => [Number(record.id), record.attempts]), [[4, 2], [2, 2]]);
  assert.ok(replayed.records.every((record) => record.replayedAt instanceof Date));
  const open = await store.list({ limit: 100, beforeId: null, reasonCode: '23514', replayed: false });
  assert.deepEqual(open.records.map((record) => Number(record.id)), [10, 8, 6]);
  const three = await store.fetchByIds(['3', '999']);
  assert.deepEqual(three.map((record) => [record.id, record.attempts]), [['3', 2]]);
});

test('replay pages go oldest first over unreplayed rows only', async () => {
  await clear();
  await insertMany(7);
  await store.markReplayed(['2']);
  const first = await store.fetchReplayPage(null, null, 3);
  assert.deepEqual(first.records.map((record) => record.id), ['1', '3', '4']);
  assert.ok(first.nextCursor !== null);
  const second = await store.fetchReplayPage(decodeCursor('replay', first.nextCursor), null, 3);
  assert.deepEqual(second.records.map((record) => record.id), ['5', '6', '7']);
  assert.equal(second.nextCursor, null, 'nothing after the last row');
  const byCode = await store.fetchReplayPage(null, '22P05', 10);
  assert.deepEqual(byCode.records.map((record) => record.id), ['1', '3', '5', '7']);
  assert.equal(await store.highestId(), '7');
});

test('a replay that fails again folds the new row into the old one', async () => {
  await clear();
  const [event] = await insertMany(1);
  const other = buildEvent({ eventId: (event as ValidEvent).eventId, eventType: 'something.else' });
  const watermark = await store.highestId();
  // What the sink writes when the replayed event is refused again: the same event, a new
  // receipt time, maybe a new reason; plus an unrelated row with the same id but other content.
  await insertDeadLetter(database.client, event as ValidEvent, 123, { code: '22021', message: 'invalid byte sequence' });
  await insertDeadLetter(database.client, other, 123, { code: '22P05', message: 'other content' });
  const [old] = await store.fetchByIds(['1']);
  assert.equal(await store.foldFailedAgain([old as DeadLetterRecord], watermark), 1);
  const rows = await store.fetchByIds(['1', '2', '3']);
  assert.deepEqual(rows.map((row) => [row.id, row.attempts, row.reasonCode, row.reason]), [
    ['1', 2, '22021', 'invalid byte sequence'],
    ['3', 1, '22P05', 'other content'],
  ]);
  assert.deepEqual((rows[0] as DeadLetterRecord).failedAt, (old as DeadLetterRecord).failedAt, 'first failure time kept');

  // No new row to fold (someone removed it): the old row still counts the attempt.
  assert.equal(await store.foldFailedAgain([rows[0] as DeadLetterRecord], await store.highestId()), 0);
  const [after] = await store.fetchByIds(['1']);
  assert.deepEqual([after?.attempts, after?.reasonCode], [3, '22021']);
});

test('a table that cannot be read rejects with the database error', async () => {
  const broken = DeadLetterStore.open(database.url.replace(/\/[^/]*$/, '/floodgate_no_such_database'));
  await assert.rejects(broken.list({ limit: 1, beforeId: null, reasonCode: null, replayed: null }), (error: { code?: string }) => error.code === '3D000');
  await broken.close();
});
