import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { attributesText, type ValidEvent } from '../../src/event';
import { CopyEncoder, copyIntoEventsSql } from '../../src/sink/copy-encoder';
import { copyIn } from '../../src/sink/copy-in';
import { dayOfUs, ensurePartitions } from '../../src/sink/partitions';
import { RingEvent } from '../../src/ring/envelope-reader';
import { buildEvent, createMigratedDatabase, ringRowsOf, type MigratedDatabase } from './fixtures';

const baseReceivedUs = Date.UTC(2026, 2, 14, 16) * 1000 + 7;
const signature = Buffer.from([0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00]);

test('an empty batch is header and trailer only', () => {
  const encoder = new CopyEncoder();
  const bytes = encoder.finish();
  assert.deepEqual(bytes, Buffer.concat([signature, Buffer.alloc(8), Buffer.from([0xff, 0xff])]));
  assert.equal(encoder.rowCount, 0);
});

test('one row is encoded byte for byte as PostgreSQL expects', () => {
  const encoder = new CopyEncoder();
  // 2000-01-01 00:00:00.000001 UTC is 1 µs after the PostgreSQL epoch.
  const occurredAtUs = Date.UTC(2000, 0, 1) * 1000 + 1;
  encoder.addRow({ eventId: 'é', eventType: 't', source: 's', actorId: null, occurredAtUs, attributesJson: '{}' }, occurredAtUs - 2);
  const bytes = encoder.finish();
  const row = bytes.subarray(19, bytes.length - 2);
  const expected = Buffer.concat([
    Buffer.from([0, 7]),
    Buffer.from([0, 0, 0, 2, 0xc3, 0xa9]),
    Buffer.from([0, 0, 0, 1, 0x74]),
    Buffer.from([0, 0, 0, 1, 0x73]),
    Buffer.from([0xff, 0xff, 0xff, 0xff]),
    Buffer.from([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]),
    Buffer.from([0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    Buffer.from([0, 0, 0, 3, 1, 0x7b, 0x7d]),
  ]);
  assert.deepEqual(row, expected);
  assert.deepEqual(bytes.subarray(bytes.length - 2), Buffer.from([0xff, 0xff]));
  assert.equal(encoder.rowCount, 1);
});

test('an event read from a ring envelope encodes to the same bytes as the event itself', () => {
  // Every str and bin header width, ASCII and not, a null actor, attributes as text and as
  // bytes, short spans (copied by a loop) and long ones (copied by TypedArray#set).
  const events: ValidEvent[] = [
    buildEvent(),
    buildEvent({ actorId: null, attributesJson: '{}' }),
    buildEvent({ eventId: 'ü-ñ-日本語-🚀', eventType: 'ordre.créé', source: 'ios', actorId: 'ユーザー😀' }),
    buildEvent({ eventId: 'x'.repeat(128), eventType: 't'.repeat(63), source: 's'.repeat(64), actorId: 'a'.repeat(256) }),
    buildEvent({ attributesJson: new Uint8Array(Buffer.from(' { "a" : 1.50, "n": 12345678901234567890 } ')) }),
    buildEvent({ attributesJson: JSON.stringify({ text: 'é'.repeat(40_000) }) }),
    buildEvent({ occurredAtUs: Date.UTC(1969, 11, 31) * 1000 - 1 }),
  ];
  const rows = ringRowsOf(events, baseReceivedUs);
  const direct = new CopyEncoder(64);
  const viaRing = new CopyEncoder(64);
  events.forEach((event) => direct.addRow(event, baseReceivedUs));
  rows.forEach((row) => {
    assert.ok(row.event instanceof RingEvent);
    viaRing.addRingEvent(row.event, row.receivedAtUs);
  });
  assert.equal(viaRing.rowCount, events.length);
  assert.deepEqual(viaRing.finish(), direct.finish());
});

test('growth keeps earlier rows intact and capacity never shrinks', () => {
  const events = Array.from({ length: 300 }, (_, i) =>
    buildEvent({ attributesJson: JSON.stringify({ i, text: 'ü€😀'.repeat(i) }) }),
  );
  const large = new CopyEncoder(1 << 22);
  const small = new CopyEncoder(64);
  for (const event of events) {
    large.addRow(event, 7);
    small.addRow(event, 7);
  }
  const expected = Buffer.from(large.finish());
  assert.deepEqual(small.finish(), expected);
  const grownBytes = small.capacityBytes;
  assert.ok(grownBytes > 64 && grownBytes >= expected.length);
  assert.equal(grownBytes & (grownBytes - 1), 0, 'capacity grows by doubling from a power of two');
  small.reset();
  assert.equal(small.capacityBytes, grownBytes);
  assert.equal(small.rowCount, 0);
  assert.equal(small.finish().length, 21);
});

test('the encoder refuses misuse and impossible values', () => {
  assert.throws(() => new CopyEncoder(8), /initialBytes too small/);
  assert.throws(() => new CopyEncoder(1.5e9), /above copyEncoderBytesMax/);
  const encoder = new CopyEncoder();
  for (const occurredAtUs of [1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60]) {
    assert.throws(() => encoder.addRow(buildEvent({ occurredAtUs }), 0), /occurredAtUs must be a safe integer/);
  }
  assert.throws(() => encoder.addRow(buildEvent(), 0.25), /receivedAtUs must be a safe integer/);
  assert.equal(encoder.rowCount, 0, 'a refused row leaves no trace');
  encoder.finish();
  assert.throws(() => encoder.addRow(buildEvent(), 0), /addRow after finish/);
  assert.throws(() => encoder.finish(), /finish called twice/);
});

let database: MigratedDatabase;
before(async () => {
  database = await createMigratedDatabase();
});
after(async () => {
  await database?.close();
});

interface StoredRow {
  event_id: string;
  event_type: string;
  source: string;
  actor_id: string | null;
  occurred_us: string;
  received_us: string;
  attributes: string;
}

async function copyAndReadBack(events: readonly ValidEvent[], receivedAtUs: number): Promise<StoredRow[]> {
  const client = database.client;
  await ensurePartitions(client, events.map((event) => dayOfUs(event.occurredAtUs)));
  const encoder = new CopyEncoder();
  for (const event of events) encoder.addRow(event, receivedAtUs);
  const copied = await copyIn(client, copyIntoEventsSql, encoder.finish());
  assert.equal(copied, events.length);
  const result = await client.query<StoredRow>(
    `SELECT event_id, event_type, source, actor_id,
            ((extract(epoch FROM occurred_at) * 1000000)::bigint)::text AS occurred_us,
            ((extract(epoch FROM received_at) * 1000000)::bigint)::text AS received_us,
            attributes::text AS attributes
       FROM events WHERE event_id = ANY($1)`,
    [events.map((event) => event.eventId)],
  );
  return result.rows;
}

test('COPY round trip returns every column exactly', async () => {
  const bigAttributes = {
    items: Array.from({ length: 2_000 }, (_, i) => ({ i, name: `item-${i}`, price: i / 8 })),
    nested: { deep: { deeper: [1, 'two', null, true, { 'ключ': 'значение' }] } },
  };
  const events: ValidEvent[] = [
    buildEvent({ eventId: 'unicode-日本語-😀', eventType: 'ünïcödé.event', source: 'źródło', actorId: 'актор 👩‍💻' }),
    buildEvent({ eventId: 'null-actor', actorId: null, attributesJson: '{}' }),
    buildEvent({ eventId: 'micro-1', occurredAtUs: Date.UTC(2026, 0, 2, 3, 4, 5) * 1000 + 1 }),
    buildEvent({ eventId: 'micro-999999', occurredAtUs: Date.UTC(2026, 0, 2, 23, 59, 59) * 1000 + 999_999 }),
    buildEvent({ eventId: 'before-2000', occurredAtUs: Date.UTC(1999, 11, 31, 23, 59, 59) * 1000 + 999_999 }),
    buildEvent({ eventId: 'large-jsonb', attributesJson: JSON.stringify(bigAttributes) }),
    buildEvent({ eventId: 'empty-strings-ok', eventType: '', source: '', actorId: '' }),
  ];
  const receivedAtUs = Date.UTC(2026, 5, 1) * 1000 + 424_242;
  const stored = await copyAndReadBack(events, receivedAtUs);
  assert.equal(stored.length, events.length);
  for (const event of events) {
    const row = stored.find((candidate) => candidate.event_id === event.eventId);
    assert.ok(row, `row ${event.eventId} stored`);
    assert.equal(row.event_type, event.eventType);
    assert.equal(row.source, event.source);
    assert.equal(row.actor_id, event.actorId);
    assert.equal(row.occurred_us, String(event.occurredAtUs));
    assert.equal(row.received_us, String(receivedAtUs));
    assert.deepEqual(JSON.parse(row.attributes), JSON.parse(attributesText(event)));
  }
});

test('rows land in the partition of their UTC day, boundaries included', async () => {
  const midnightUs = Date.UTC(2026, 6, 1) * 1000;
  const events = [
    buildEvent({ eventId: 'last-micro', occurredAtUs: midnightUs - 1 }),
    buildEvent({ eventId: 'midnight', occurredAtUs: midnightUs }),
  ];
  await copyAndReadBack(events, midnightUs);
  const result = await database.client.query<{ event_id: string; partition: string }>(
    "SELECT event_id, tableoid::regclass::text AS partition FROM events WHERE event_id IN ('last-micro', 'midnight') ORDER BY event_id",
  );
  assert.deepEqual(result.rows, [
    { event_id: 'last-micro', partition: 'events_p20260630' },
    { event_id: 'midnight', partition: 'events_p20260701' },
  ]);
});
