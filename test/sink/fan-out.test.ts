/**
 * Fan-out in the write transaction (src/sink/fan-out.ts through src/sink/batch-writer.ts),
 * against a real PostgreSQL: one delivery record per stored row a subscription covers, on
 * every path the writer takes, none for duplicates, dead letters or uncovered rows; a
 * stale snapshot is caught by the check and redone; the NOTIFY reaches a listener; and, on
 * a real engine under concurrent HTTP ingest, a subscription created mid-stream covers
 * exactly the events received from its covered_from on.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import pg from 'pg';
import type { ValidEvent } from '../../src/event';
import { changeSubscriptions, deliveriesChannel } from '../../src/delivery/delivery-schema';
import { BatchWriter, fanoutReloadsMax, type BatchRow } from '../../src/sink/batch-writer';
import { classifyDatabaseError } from '../../src/sink/retry-policy';
import { startTestEngine } from '../support/engine';
import { wireEvents } from '../support/wire-events';
import { baseUs, buildEvent, countRows, createMigratedDatabase, recordingLogger, ringRowsOf, sleep, type MigratedDatabase } from './fixtures';

let database: MigratedDatabase;
before(async () => {
  database = await createMigratedDatabase();
});
after(async () => {
  await database?.close();
});
beforeEach(async () => {
  await changeSubscriptions(database.client, () => database.client.query('DELETE FROM subscriptions'));
  await database.client.query('TRUNCATE deliveries');
});

interface SubscriptionFields {
  readonly eventTypes?: string[] | null;
  readonly sources?: string[] | null;
  readonly enabled?: boolean;
}

/** A subscription inserted the one permitted way (changeSubscriptions); covered_from = now. */
async function subscribe(client: pg.ClientBase, fields: SubscriptionFields = {}): Promise<number> {
  return changeSubscriptions(client, async () => {
    const result = await client.query<{ id: string }>(
      `INSERT INTO subscriptions (url, event_types, sources, secrets, enabled) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
      ['http://127.0.0.1:9/hook', fields.eventTypes ?? null, fields.sources ?? null, ['whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0'], fields.enabled ?? true],
    );
    return Number(result.rows[0]?.id);
  });
}

/** Received now: after every subscription change made so far (the next whole ms, as Date.now() has no µs). */
function rowsOf(events: readonly ValidEvent[]): BatchRow[] {
  const receivedAtUs = (Date.now() + 1) * 1000;
  return events.map((event) => ({ event, receivedAtUs }));
}

async function withWriter<T>(work: (writer: BatchWriter, logger: ReturnType<typeof recordingLogger>) => Promise<T>): Promise<T> {
  const logger = recordingLogger();
  const writer = await BatchWriter.open(database.url, logger);
  try {
    return await work(writer, logger);
  } finally {
    await writer.close();
  }
}

/** "subscription event_id" for every delivery record, sorted. */
async function deliveryKeys(): Promise<string[]> {
  const result = await database.client.query<{ key: string }>("SELECT subscription_id || ' ' || event_id AS key FROM deliveries");
  return result.rows.map((row) => row.key).sort();
}

function keysOf(subscriptionId: number, events: readonly { eventId: string }[]): string[] {
  return events.map((event) => `${subscriptionId} ${event.eventId}`);
}

/** Records whose (event_id, occurred_at) names no stored event: proves occurred_at is exact. */
async function orphanRecords(): Promise<number> {
  const result = await database.client.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM deliveries d WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = d.event_id AND e.occurred_at = d.occurred_at)',
  );
  return result.rows[0]?.n ?? -1;
}

test('patterns, sources, disabled and coverage decide which stored rows get a record', async () => {
  const all = await subscribe(database.client, { eventTypes: ['*'] });
  const exact = await subscribe(database.client, { eventTypes: ['invoice.paid'] });
  const prefix = await subscribe(database.client, { eventTypes: ['invoice.*'] });
  const billing = await subscribe(database.client, { sources: ['billing'] });
  const both = await subscribe(database.client, { eventTypes: ['user.*'], sources: ['app', 'billing'] });
  await subscribe(database.client, { enabled: false });
  // Disabled after being enabled: covers only rows received before covered_until.
  const wasEnabled = await subscribe(database.client, { eventTypes: ['*'] });
  await changeSubscriptions(database.client, () =>
    database.client.query('UPDATE subscriptions SET enabled = false, covered_until = clock_timestamp() WHERE id = $1', [wasEnabled]),
  );
  const paid = buildEvent({ eventType: 'invoice.paid', source: 'billing' });
  const lineAdded = buildEvent({ eventType: 'invoice.line.added', source: 'web' });
  const invoiceBare = buildEvent({ eventType: 'invoice', source: 'web' });
  const paidLookalike = buildEvent({ eventType: 'invoice.paid.x', source: 'web' });
  const signup = buildEvent({ eventType: 'user.signup', source: 'app' });
  const signupWeb = buildEvent({ eventType: 'user.signup', source: 'web' });
  const quote = buildEvent({ eventId: `it's "quoted" \\ ${process.pid}`, eventType: 'page.viewed', source: 'billing' });
  // Received (by the clock of the rows) long before every subscription's covered_from.
  const early = buildEvent({ eventType: 'invoice.paid', source: 'billing' });
  const events = [paid, lineAdded, invoiceBare, paidLookalike, signup, signupWeb, quote];
  await withWriter(async (writer) => {
    const rows = [...rowsOf(events.slice(0, 4)), ...ringRowsOf(events.slice(4), (Date.now() + 1) * 1000), { event: early, receivedAtUs: baseUs }];
    const report = await writer.write(rows, new Uint8Array(rows.length));
    assert.equal(report.path, 'copy');
    assert.equal(report.committed, rows.length);
  });
  const expected = [
    ...keysOf(all, events),
    ...keysOf(exact, [paid]),
    ...keysOf(prefix, [paid, lineAdded, paidLookalike]),
    ...keysOf(billing, [paid, quote]),
    ...keysOf(both, [signup]),
  ].sort();
  assert.deepEqual(await deliveryKeys(), expected);
  assert.equal(await orphanRecords(), 0);
  const fresh = await database.client.query("SELECT DISTINCT status, lane, attempts, lease_token FROM deliveries");
  assert.deepEqual(fresh.rows, [{ status: 'pending', lane: 0, attempts: 0, lease_token: null }]);
});

test('with no subscriptions nothing is recorded, and the check still runs', async () => {
  await withWriter(async (writer) => {
    const rows = rowsOf([buildEvent(), buildEvent()]);
    await writer.write(rows, new Uint8Array(rows.length));
    assert.equal(await countRows(database.client, 'deliveries'), 0);
    // The snapshot above has no subscriptions; only the check can tell the writer one now exists.
    const id = await subscribe(database.client);
    const later = rowsOf([buildEvent(), buildEvent()]);
    await writer.write(later, new Uint8Array(later.length));
    assert.deepEqual(await deliveryKeys(), keysOf(id, later.map((row) => row.event)).sort());
  });
});

test('every path records exactly the rows it stored: COPY, duplicates via staging, poison via bisect, resent', async () => {
  const id = await subscribe(database.client);
  await withWriter(async (writer) => {
    const first = rowsOf(Array.from({ length: 20 }, () => buildEvent()));
    assert.equal((await writer.write(first, new Uint8Array(first.length))).path, 'copy');

    const fresh = rowsOf(Array.from({ length: 10 }, () => buildEvent()));
    const mixed = [...first.slice(0, 10), ...fresh];
    const staged = await writer.write(mixed, new Uint8Array(mixed.length));
    assert.deepEqual([staged.path, staged.committed, staged.duplicates], ['staging', 10, 10]);

    const poison = buildEvent({ attributesJson: '{"bad":"\\u0000"}' });
    const good = rowsOf(Array.from({ length: 7 }, () => buildEvent()));
    const withPoison = [...good.slice(0, 3), ...rowsOf([poison]), ...first.slice(15), ...good.slice(3)];
    const bisected = await writer.write(withPoison, new Uint8Array(withPoison.length));
    assert.deepEqual([bisected.path, bisected.committed, bisected.duplicates, bisected.deadLettered], ['bisect', 7, 5, 1]);

    const resent = await writer.write(first, new Uint8Array(first.length));
    assert.equal(resent.duplicates, first.length);

    const stored = [...first, ...fresh, ...good].map((row) => row.event);
    assert.deepEqual(await deliveryKeys(), keysOf(id, stored).sort());
    assert.equal(await orphanRecords(), 0);
  });
});

test('a subscription change between two batches of one writer: the check fails, the writer reloads and redoes', async () => {
  const invoices = await subscribe(database.client, { eventTypes: ['invoice.*'] });
  await withWriter(async (writer, logger) => {
    const first = rowsOf([buildEvent({ eventType: 'invoice.paid' }), buildEvent({ eventType: 'page.viewed' })]);
    await writer.write(first, new Uint8Array(first.length));
    const everything = await subscribe(database.client);
    // The fast path meets the stale snapshot.
    const second = rowsOf([buildEvent({ eventType: 'invoice.paid' }), buildEvent({ eventType: 'page.viewed' })]);
    const report = await writer.write(second, new Uint8Array(second.length));
    assert.deepEqual([report.path, report.committed, report.transactions], ['copy', 2, 2]);
    // The staging path meets it too (the COPY fails on the duplicate first, before any check).
    await changeSubscriptions(database.client, () => database.client.query('UPDATE subscriptions SET enabled = false, covered_until = clock_timestamp() WHERE id = $1', [invoices]));
    const third = rowsOf([buildEvent({ eventType: 'invoice.paid' })]);
    const withDuplicate = [...third, ...second.slice(0, 1)];
    const staged = await writer.write(withDuplicate, new Uint8Array(withDuplicate.length));
    assert.deepEqual([staged.path, staged.committed, staged.duplicates], ['staging', 1, 1]);
    const expected = [
      ...keysOf(invoices, [first[0]!.event, second[0]!.event]),
      ...keysOf(everything, [...second, ...third].map((row) => row.event)),
    ].sort();
    assert.deepEqual(await deliveryKeys(), expected);
    assert.equal(logger.entries.filter((entry) => entry.msg === 'subscriptions changed: snapshot reloaded').length, 2);
  });
});

test('a check that keeps failing is retried a bounded number of times, then thrown as stale-subscriptions', async () => {
  await subscribe(database.client);
  const alwaysStale = `CREATE OR REPLACE FUNCTION floodgate_fanout_check(expected bigint) RETURNS void LANGUAGE plpgsql AS $fn$
    BEGIN RAISE EXCEPTION 'always stale' USING ERRCODE = 'FG001'; END $fn$`;
  const original = (await database.client.query<{ def: string }>("SELECT pg_get_functiondef('floodgate_fanout_check(bigint)'::regprocedure) AS def")).rows[0]!.def;
  await database.client.query(alwaysStale);
  try {
    await withWriter(async (writer, logger) => {
      const rows = rowsOf([buildEvent(), buildEvent()]);
      const outcomes = new Uint8Array(rows.length);
      await assert.rejects(writer.write(rows, outcomes), (error: unknown) => {
        assert.equal((error as { code?: unknown }).code, 'FG001');
        assert.equal(classifyDatabaseError(error), 'stale-subscriptions');
        return true;
      });
      assert.deepEqual([...outcomes], [0, 0], 'no row is settled');
      assert.equal(logger.entries.filter((entry) => entry.msg === 'subscriptions changed: snapshot reloaded').length, fanoutReloadsMax);
      const stored = await database.client.query('SELECT 1 FROM events WHERE event_id = ANY ($1)', [rows.map((row) => row.event.eventId)]);
      assert.equal(stored.rowCount, 0, 'the events rolled back with their check');
      assert.equal(await countRows(database.client, 'deliveries'), 0);
    });
  } finally {
    await database.client.query(original);
  }
});

test('the NOTIFY names the subscriptions that got records, once each, after the commit', async () => {
  const listener = new pg.Client({ connectionString: database.url });
  await listener.connect();
  try {
    const payloads: string[] = [];
    listener.on('notification', (message) => payloads.push(message.payload ?? ''));
    await listener.query(`LISTEN ${deliveriesChannel}`);
    const pages = await subscribe(database.client, { eventTypes: ['page.*'] });
    const everything = await subscribe(database.client);
    await subscribe(database.client, { eventTypes: ['never.sent'] });
    await withWriter(async (writer) => {
      const rows = rowsOf(Array.from({ length: 5 }, () => buildEvent({ eventType: 'page.viewed' })));
      await writer.write(rows, new Uint8Array(rows.length));
      const others = rowsOf([buildEvent({ eventType: 'user.signup' })]);
      await writer.write(others, new Uint8Array(others.length));
    });
    for (let waitedMs = 0; payloads.length < 2 && waitedMs < 5000; waitedMs += 10) await sleep(10);
    assert.deepEqual(payloads, [`${pages},${everything}`, `${everything}`]);
  } finally {
    await listener.end();
  }
});

test('a subscription created while events stream in covers exactly the events received from covered_from on', { timeout: 60_000 }, async () => {
  const engine = await startTestEngine({ deliveryAllowPrivateNetworks: true });
  const client = new pg.Client({ connectionString: engine.databaseUrl });
  await client.connect();
  try {
    const senders = 4;
    const batchesPerSender = 60;
    let sentBatches = 0;
    const send = async (sender: number): Promise<void> => {
      for (let batch = 0; batch < batchesPerSender; batch++) {
        const body = JSON.stringify({ events: wireEvents(20, `stream-${sender}-${batch}`) });
        const response = await fetch(`${engine.baseUrl}/v1/events/bulk`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        assert.ok(response.ok, `bulk answered ${response.status}`);
        await response.arrayBuffer();
        sentBatches += 1;
      }
    };
    const sending = Promise.all(Array.from({ length: senders }, (_, sender) => send(sender)));
    while (sentBatches < (senders * batchesPerSender) / 3) await sleep(2);
    const id = await subscribe(client);
    await sending;
    const counts = await client.query<{ covered: boolean; records: number; events: number }>(
      `SELECT e.received_at >= s.covered_from AS covered, n.records, count(*)::int AS events
         FROM events e CROSS JOIN subscriptions s
         CROSS JOIN LATERAL (SELECT count(*)::int AS records FROM deliveries d
                              WHERE d.subscription_id = s.id AND d.event_id = e.event_id AND d.occurred_at = e.occurred_at) n
        WHERE s.id = $1 GROUP BY 1, 2 ORDER BY 1, 2`,
      [id],
    );
    const byKind = counts.rows.map((row) => `${row.covered ? 'covered' : 'before'}:${row.records}`);
    assert.deepEqual(byKind, ['before:0', 'covered:1'], JSON.stringify(counts.rows));
    const total = counts.rows.reduce((sum, row) => sum + row.events, 0);
    assert.equal(total, senders * batchesPerSender * 20);
    assert.equal(Number((await client.query('SELECT count(*) FROM deliveries')).rows[0].count), counts.rows[1]!.events);
  } finally {
    await client.end();
    await engine.close();
  }
});
