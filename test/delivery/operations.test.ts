/**
 * Delivery operations against a real PostgreSQL: `floodgate deliveries verify` (in process
 * and as the real command), retention of the attempt log and of the deliveries of dropped
 * event days (the partition maintainer), and the backlog gauges.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type pg from 'pg';
import { Registry } from 'prom-client';
import { attemptPartitionName, ensureAttemptPartitions, existingAttemptPartitionDays } from '../../src/delivery/attempt-partitions';
import { boundedSamples, DeliveryGauges, labelledSubscriptionsMax } from '../../src/delivery/delivery-gauges';
import { changeSubscriptions, loadSubscriptions } from '../../src/delivery/delivery-schema';
import { differencesOf, renderAccounts, verifyDeliveries, type SubscriptionAccount } from '../../src/delivery/deliveries-verify';
import { subscriptionMatches } from '../../src/delivery/subscription-match';
import { renderExposition } from '../../src/metrics/prometheus';
import { PartitionMaintainer } from '../../src/sink/partition-maintainer';
import { ensurePartitions } from '../../src/sink/partitions';
import { deleteDeliveriesSpan, lastDeliveryId } from '../../src/sink/retention';
import { parseExposition } from '../metrics/exposition-format';
import { createMigratedDatabase, recordingLogger, type MigratedDatabase } from '../sink/fixtures';
import { cliPath, engineEnv } from '../support/engine-process';

const dayMs = 86_400_000;
const today = Math.floor(Date.now() / dayMs);

interface SubscriptionFields {
  readonly eventTypes?: readonly string[] | null;
  readonly sources?: readonly string[] | null;
  readonly enabled?: boolean;
}

/** Inserted the only way subscriptions may change: under the fan-out lock, covered from clock_timestamp(). */
async function addSubscription(client: pg.Client, fields: SubscriptionFields = {}): Promise<string> {
  return changeSubscriptions(client, async () => {
    const result = await client.query<{ id: string }>(
      `INSERT INTO subscriptions (url, event_types, sources, secrets, enabled, covered_from)
       VALUES ('http://127.0.0.1:9/hook', $1, $2, ARRAY['whsec_test'], $3, clock_timestamp()) RETURNING id`,
      [fields.eventTypes ?? null, fields.sources ?? null, fields.enabled ?? true],
    );
    return (result.rows[0] as { id: string }).id;
  });
}

interface EventFields {
  readonly id: string;
  readonly type: string;
  readonly source: string;
  /** Milliseconds; the day's partition is created first. */
  readonly occurredAtMs: number;
  /** SQL for received_at; clock_timestamp() (now, after the subscriptions) by default. */
  readonly receivedAtSql?: string;
}

async function insertEvents(client: pg.Client, events: readonly EventFields[]): Promise<void> {
  await ensurePartitions(client, events.map((event) => Math.floor(event.occurredAtMs / dayMs)));
  for (const event of events) {
    await client.query(
      `INSERT INTO events (event_id, event_type, source, occurred_at, received_at, attributes)
       VALUES ($1, $2, $3, $4, ${event.receivedAtSql ?? 'clock_timestamp()'}, '{}')`,
      [event.id, event.type, event.source, new Date(event.occurredAtMs).toISOString()],
    );
  }
}

/**
 * What the sink's fan-out does, by its own rule (subscriptionMatches, in JavaScript): one
 * record per stored event received in each subscription's window that it matches. verify
 * checks with the SQL twin, so the two rules are compared too.
 */
async function fanOut(client: pg.Client): Promise<number> {
  const { subscriptions } = await loadSubscriptions(client);
  const events = await client.query<{ event_id: string; event_type: string; source: string; occurred_at: Date; in_windows: string[] }>(
    `SELECT e.event_id, e.event_type, e.source, e.occurred_at,
            array(SELECT s.id::text FROM subscriptions s WHERE e.received_at >= s.covered_from
                    AND e.received_at < coalesce(s.covered_until, 'infinity')) AS in_windows
       FROM events e`,
  );
  let inserted = 0;
  for (const event of events.rows) {
    for (const subscription of subscriptions) {
      if (!event.in_windows.includes(String(subscription.id)) || !subscriptionMatches(subscription, event.event_type, event.source)) continue;
      await client.query('INSERT INTO deliveries (subscription_id, event_id, occurred_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
        subscription.id,
        event.event_id,
        event.occurred_at,
      ]);
      inserted += 1;
    }
  }
  return inserted;
}

function accountOf(accounts: readonly SubscriptionAccount[], id: string): SubscriptionAccount {
  const account = accounts.find((candidate) => candidate.subscriptionId === id);
  assert.ok(account !== undefined, `no account for subscription ${id}`);
  return account;
}

function runCli(databaseUrl: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cliPath, 'deliveries', 'verify'], { encoding: 'utf8', env: engineEnv({ DATABASE_URL: databaseUrl }) });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('floodgate deliveries verify', () => {
  let db: MigratedDatabase;
  const ids: Record<'all' | 'invoices' | 'disabled' | 'deleted', string> = { all: '', invoices: '', disabled: '', deleted: '' };
  const noonMs = today * dayMs + 12 * 3_600_000;

  before(async () => {
    db = await createMigratedDatabase();
    // Stored before any subscription existed: nobody's window holds it.
    await insertEvents(db.client, [{ id: 'early', type: 'invoice.paid', source: 'billing', occurredAtMs: noonMs, receivedAtSql: "now() - interval '1 hour'" }]);
    ids.all = await addSubscription(db.client);
    ids.invoices = await addSubscription(db.client, { eventTypes: ['invoice.*', 'user.signup'], sources: ['billing'] });
    ids.disabled = await addSubscription(db.client, { enabled: false });
    ids.deleted = await addSubscription(db.client);
    await changeSubscriptions(db.client, () => db.client.query('UPDATE subscriptions SET deleted_at = clock_timestamp() WHERE id = $1', [ids.deleted]));
    await insertEvents(db.client, [
      { id: 'e1', type: 'invoice.paid', source: 'billing', occurredAtMs: noonMs },
      { id: 'e2', type: 'invoice.line.added', source: 'billing', occurredAtMs: noonMs + 1 },
      { id: 'e3', type: 'invoicex', source: 'billing', occurredAtMs: noonMs + 2 },
      { id: 'e4', type: 'user.signup', source: 'web', occurredAtMs: noonMs + 3 },
      { id: 'e5', type: 'user.signup', source: 'billing', occurredAtMs: noonMs - dayMs },
    ]);
    // all: e1..e5; invoices: e1, e2, e5; disabled and deleted: none.
    assert.equal(await fanOut(db.client), 8);
    await db.client.query("UPDATE deliveries SET status = 'delivered' WHERE event_id IN ('e1', 'e2')");
    await db.client.query("UPDATE deliveries SET status = 'failed' WHERE event_id = 'e3'");
    await db.client.query("UPDATE deliveries SET status = 'discarded' WHERE event_id = 'e4'");
  });
  after(async () => {
    await db?.close();
  });

  test('balances when every matching stored event has one record; the table says so and exits 0', async () => {
    const { accounts, eventsKeptFrom } = await verifyDeliveries(db.client);
    assert.equal(eventsKeptFrom, null);
    assert.deepEqual(accounts.map((account) => account.subscriptionId), [ids.all, ids.invoices, ids.disabled]);
    const all = accountOf(accounts, ids.all);
    assert.deepEqual({ ...all, windowFrom: '', windowUntil: '' }, {
      subscriptionId: ids.all, windowFrom: '', windowUntil: '', matching: 5, missing: 0, unexpected: 0, duplicated: 0, orphaned: 0, records: 5,
      byStatus: { pending: 1, delivered: 2, failed: 1, discarded: 1 },
    });
    assert.equal(accountOf(accounts, ids.invoices).matching, 3);
    assert.equal(accountOf(accounts, ids.invoices).records, 3);
    // Disabled from the start: its window is empty, whatever it would match.
    const disabled = accountOf(accounts, ids.disabled);
    assert.equal(disabled.windowFrom, disabled.windowUntil);
    assert.equal(disabled.matching, 0);
    for (const account of accounts) assert.deepEqual(differencesOf(account), []);

    const cli = runCli(db.url);
    assert.equal(cli.status, 0, cli.stderr + cli.stdout);
    const lines = cli.stdout.trim().split('\n');
    assert.match(lines[0] as string, /^subscription\s+window\s+matching\s+missing\s+unexpected\s+duplicated\s+orphaned\s+records\s+pending\s+delivered\s+failed\s+discarded\s+result$/);
    assert.match(lines[1] as string, new RegExp(`^${ids.all}\\s+\\[\\S+, \\S+\\)\\s+5\\s+0\\s+0\\s+0\\s+0\\s+5\\s+1\\s+2\\s+1\\s+1\\s+ok$`));
    assert.equal(lines.at(-1), '0 of 3 subscription(s) with a difference');
  });

  test('a deleted delivery row is a difference: named, exit 1', async () => {
    await db.client.query("DELETE FROM deliveries WHERE subscription_id = $1 AND event_id = 'e2'", [ids.invoices]);
    try {
      const account = accountOf((await verifyDeliveries(db.client)).accounts, ids.invoices);
      assert.equal(account.missing, 1);
      assert.deepEqual(differencesOf(account), ['1 matching event(s) without a record']);
      const cli = runCli(db.url);
      assert.equal(cli.status, 1, cli.stderr + cli.stdout);
      assert.match(cli.stdout, new RegExp(`^${ids.invoices}\\s.*DIFFERENCE: 1 matching event\\(s\\) without a record$`, 'm'));
      assert.match(cli.stdout, /^1 of 3 subscription\(s\) with a difference$/m);
    } finally {
      await db.client.query("INSERT INTO deliveries (subscription_id, event_id, occurred_at, status) SELECT $1, event_id, occurred_at, 'delivered' FROM events WHERE event_id = 'e2'", [ids.invoices]);
    }
  });

  test('a second record for one event is a difference (no unique index holds it off)', async () => {
    const extra = await db.client.query<{ id: string }>(
      "INSERT INTO deliveries (subscription_id, event_id, occurred_at, status) SELECT $1, event_id, occurred_at, 'delivered' FROM events WHERE event_id = 'e2' RETURNING id",
      [ids.invoices],
    );
    try {
      const account = accountOf((await verifyDeliveries(db.client)).accounts, ids.invoices);
      assert.equal(account.duplicated, 1);
      assert.deepEqual(differencesOf(account), ['1 record(s) repeating another of the same event']);
    } finally {
      await db.client.query('DELETE FROM deliveries WHERE id = $1', [extra.rows[0]?.id]);
    }
  });

  test('a record for an event the filters do not match is a difference', async () => {
    await db.client.query("INSERT INTO deliveries (subscription_id, event_id, occurred_at) SELECT $1, event_id, occurred_at FROM events WHERE event_id = 'e3'", [ids.invoices]);
    try {
      const account = accountOf((await verifyDeliveries(db.client)).accounts, ids.invoices);
      assert.equal(account.unexpected, 1);
      assert.deepEqual(differencesOf(account), ['1 record(s) for events that do not match']);
    } finally {
      await db.client.query("DELETE FROM deliveries WHERE subscription_id = $1 AND event_id = 'e3'", [ids.invoices]);
    }
  });

  test('a record whose event row is gone is an orphan, unless retention dropped its day', async () => {
    await db.client.query("DELETE FROM events WHERE event_id = 'e5'");
    const accounts = (await verifyDeliveries(db.client)).accounts;
    assert.equal(accountOf(accounts, ids.all).orphaned, 1);
    assert.equal(accountOf(accounts, ids.invoices).orphaned, 1);
    assert.deepEqual(differencesOf(accountOf(accounts, ids.all)), ['1 record(s) whose event is not stored']);

    // e5 occurred yesterday; retention keeping events from today makes that day dropped.
    await db.client.query("UPDATE floodgate_retention SET events_kept_from = (now() AT TIME ZONE 'UTC')::date");
    const after = await verifyDeliveries(db.client);
    assert.equal(after.eventsKeptFrom, new Date(today * dayMs).toISOString().slice(0, 10));
    for (const account of after.accounts) assert.deepEqual(differencesOf(account), []);
    const cli = runCli(db.url);
    assert.equal(cli.status, 0, cli.stderr + cli.stdout);
    assert.match(cli.stdout, /retention keeps events from \d{4}-\d{2}-\d{2}: records of earlier days are not orphans/);
  });

  test('records must add up by status; the table renders every problem of a line', () => {
    const account: SubscriptionAccount = {
      subscriptionId: '7', windowFrom: 'a', windowUntil: 'b', matching: 2, missing: 1, unexpected: 0, duplicated: 0, orphaned: 0, records: 3,
      byStatus: { pending: 1, delivered: 1, failed: 0, discarded: 0 },
    };
    assert.deepEqual(differencesOf(account), ['1 matching event(s) without a record', 'records 3 ≠ 2 by status']);
    assert.match(renderAccounts([account]), /DIFFERENCE: 1 matching event\(s\) without a record; records 3 ≠ 2 by status\n$/);
  });

  test('usage: no action exits 2, an unknown one names itself, help exits 0', () => {
    const none = spawnSync(process.execPath, [cliPath, 'deliveries'], { encoding: 'utf8' });
    assert.equal(none.status, 2);
    assert.match(none.stdout, /floodgate deliveries verify/);
    const unknown = spawnSync(process.execPath, [cliPath, 'deliveries', 'count'], { encoding: 'utf8' });
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown deliveries action "count"/);
    const help = spawnSync(process.execPath, [cliPath, 'deliveries', 'help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
  });
});

describe('retention and partitions of delivery', () => {
  /** 2050-06-15 10:00 UTC: with 3 days the first day kept is 2050-06-12. */
  const nowMs = Date.UTC(2050, 5, 15, 10);
  const nowDay = Math.floor(nowMs / dayMs);
  const settings = { timestampPastMs: 3 * dayMs, timestampFutureMs: 3_600_000, retentionDays: 3, rollupRetentionDays: null, deliveryAttemptRetentionDays: 3 };

  async function withDatabase(work: (db: MigratedDatabase) => Promise<void>): Promise<void> {
    const db = await createMigratedDatabase();
    try {
      await work(db);
    } finally {
      await db.close();
    }
  }

  test('every run, start-up included, creates the attempt partitions of today and tomorrow', async () => {
    await withDatabase(async (db) => {
      const maintainer = new PartitionMaintainer(db.url, settings, recordingLogger());
      await maintainer.start();
      await maintainer.stop();
      const days = await existingAttemptPartitionDays(db.client);
      assert.ok(days.includes(today) && days.includes(today + 1), `attempt partitions: ${days.map(attemptPartitionName).join(', ')}`);
      // A later run, at another time, creates that time's days; a create-only run too.
      await maintainer.runOnce(nowMs, { retention: false });
      const later = await existingAttemptPartitionDays(db.client);
      assert.ok(later.includes(nowDay) && later.includes(nowDay + 1));
      // An attempt written now lands in today's partition.
      await db.client.query("INSERT INTO delivery_attempts (delivery_id, subscription_id, attempt, attempted_at, duration_ms, outcome) VALUES (1, 1, 1, now(), 5, 'delivered')");
    });
  });

  test('drops attempt day partitions before today − N days, with their rows; keeps the rest', async () => {
    await withDatabase(async (db) => {
      const oldDays = [nowDay - 5, nowDay - 4];
      const keptDays = [nowDay - 3, nowDay - 1];
      await ensureAttemptPartitions(db.client, [...oldDays, ...keptDays]);
      for (const day of [...oldDays, ...keptDays]) {
        await db.client.query(
          "INSERT INTO delivery_attempts (delivery_id, subscription_id, attempt, attempted_at, duration_ms, outcome) VALUES (1, 1, 1, $1, 5, 'delivered')",
          [new Date(day * dayMs + 3_600_000).toISOString()],
        );
      }
      const logger = recordingLogger();
      const maintainer = new PartitionMaintainer(db.url, settings, logger);
      const report = await maintainer.runOnce(nowMs);
      assert.equal(report?.attemptDaysDropped, 2);
      const days = (await existingAttemptPartitionDays(db.client)).sort((a, b) => a - b);
      assert.deepEqual(days, [...keptDays, nowDay, nowDay + 1]);
      for (const day of oldDays) assert.equal((await db.client.query('SELECT to_regclass($1) AS oid', [attemptPartitionName(day)])).rows[0].oid, null);
      const rows = await db.client.query<{ n: number }>('SELECT count(*)::int AS n FROM delivery_attempts');
      assert.equal(rows.rows[0]?.n, 2);
      assert.deepEqual(logger.entries.find((entry) => entry.msg === 'delivery attempt partitions dropped by retention')?.obj, {
        droppedCount: 2, first: attemptPartitionName(oldDays[0] as number), last: attemptPartitionName(oldDays[1] as number), keptFrom: '2050-06-12',
      });
      assert.equal((await maintainer.runOnce(nowMs))?.attemptDaysDropped, 0);

      // The counter reports it.
      const registry = new Registry();
      maintainer.metrics().forEach((metric) => registry.registerMetric(metric));
      const families = parseExposition(await renderExposition(registry));
      assert.equal(families.get('floodgate_delivery_attempt_partitions_dropped_total')?.samples[0]?.value, 2);
      registry.clear();
    });
  });

  test('deliveries of the event days retention dropped are deleted, the others stay', async () => {
    await withDatabase(async (db) => {
      const subscription = await addSubscription(db.client);
      const days = [nowDay - 5, nowDay - 4, nowDay - 3, nowDay];
      await insertEvents(db.client, days.flatMap((day) => [0, 1, 2].map((n) => ({ id: `d${day}-${n}`, type: 't', source: 's', occurredAtMs: day * dayMs + n }))));
      assert.equal(await fanOut(db.client), 12);
      const logger = recordingLogger();
      const maintainer = new PartitionMaintainer(db.url, settings, logger);
      const report = await maintainer.runOnce(nowMs);
      assert.equal(report?.droppedCount, 2);
      assert.equal(report?.deliveriesDeleted, 6);
      const left = await db.client.query<{ event_id: string }>('SELECT event_id FROM deliveries WHERE subscription_id = $1 ORDER BY event_id', [subscription]);
      assert.deepEqual(left.rows.map((row) => row.event_id), days.slice(2).flatMap((day) => [0, 1, 2].map((n) => `d${day}-${n}`)));
      const verification = await verifyDeliveries(db.client);
      for (const account of verification.accounts) assert.deepEqual(differencesOf(account), []);
      // The pass for this cutoff is over: the next run does not walk the table again.
      assert.equal((await maintainer.runOnce(nowMs + 3_600_000))?.deliveriesDeleted, 0);
      assert.equal(logger.entries.filter((entry) => entry.msg === 'deliveries of dropped event days deleted').length, 1);
    });
  });

  test('deleteDeliveriesSpan deletes only the rows of its id span whose event day is dropped', async () => {
    await withDatabase(async (db) => {
      const subscription = await addSubscription(db.client);
      for (let n = 0; n < 5; n++) {
        for (const [prefix, dayStart] of [['old', Date.UTC(2050, 0, 1)], ['new', Date.UTC(2050, 0, 2)]] as const) {
          await db.client.query('INSERT INTO deliveries (subscription_id, event_id, occurred_at) VALUES ($1, $2, $3)', [subscription, `${prefix}-${n}`, new Date(dayStart + n).toISOString()]);
        }
      }
      // Ids 1..10, old and new alternating. The boundary is the first instant of the kept
      // day in UTC, whatever the session's time zone.
      await db.client.query("SET TimeZone = 'America/Los_Angeles'");
      assert.equal(await lastDeliveryId(db.client), 10n);
      assert.equal(await deleteDeliveriesSpan(db.client, '2050-01-02', 0n, 4), 2);
      assert.equal(await deleteDeliveriesSpan(db.client, '2050-01-02', 0n, 4), 0);
      assert.equal(await deleteDeliveriesSpan(db.client, '2050-01-02', 4n, 100), 3);
      const left = await db.client.query<{ event_id: string }>('SELECT event_id FROM deliveries ORDER BY id');
      assert.deepEqual(left.rows.map((row) => row.event_id), ['new-0', 'new-1', 'new-2', 'new-3', 'new-4']);
      await db.client.query('RESET TimeZone');
    });
  });
});

describe('backlog gauges', () => {
  let db: MigratedDatabase;
  before(async () => {
    db = await createMigratedDatabase();
  });
  after(async () => {
    await db?.close();
  });

  test('pending rows and the oldest pending age per subscription; every subscription shown, deleted ones not', async () => {
    const busy = await addSubscription(db.client);
    const idle = await addSubscription(db.client);
    const gone = await addSubscription(db.client);
    await changeSubscriptions(db.client, () => db.client.query('UPDATE subscriptions SET deleted_at = now() WHERE id = $1', [gone]));
    const insert = (subscription: string, event: string, status: string, ageS: number): Promise<unknown> =>
      db.client.query(
        `INSERT INTO deliveries (subscription_id, event_id, occurred_at, status, schedule_started_at)
         VALUES ($1, $2, now(), $3, now() - $4 * interval '1 second')`,
        [subscription, event, status, ageS],
      );
    await insert(busy, 'a', 'pending', 120);
    await insert(busy, 'b', 'pending', 30);
    await insert(busy, 'c', 'delivered', 9_999);
    await insert(idle, 'a', 'failed', 9_999);
    await insert(gone, 'a', 'pending', 50);

    const gauges = new DeliveryGauges(db.url, recordingLogger());
    try {
      const registry = new Registry();
      gauges.metrics().forEach((metric) => registry.registerMetric(metric));
      await gauges.refresh();
      const families = parseExposition(await renderExposition(registry));
      const values = (name: string): Record<string, number> =>
        Object.fromEntries((families.get(name)?.samples ?? []).map((sample) => [sample.labels.subscription, sample.value]));
      assert.deepEqual(values('floodgate_delivery_backlog'), { [busy]: 2, [idle]: 0 });
      const ages = values('floodgate_delivery_oldest_pending_age_seconds');
      assert.ok((ages[busy] as number) >= 120 && (ages[busy] as number) < 130, `age ${ages[busy]}`);
      assert.equal(ages[idle], 0);
      registry.clear();
    } finally {
      await gauges.stop();
    }
  });

  test('a failed read keeps the last values and logs once; the labels stay bounded', async () => {
    const logger = recordingLogger();
    const gauges = new DeliveryGauges(db.url, logger);
    try {
      await gauges.refresh();
      const before = gauges.samples;
      assert.ok(before.length >= 2);
      await db.client.query('ALTER TABLE deliveries RENAME TO deliveries_away');
      try {
        await gauges.refresh();
        await gauges.refresh();
      } finally {
        await db.client.query('ALTER TABLE deliveries_away RENAME TO deliveries');
      }
      assert.deepEqual(gauges.samples, before);
      assert.equal(logger.entries.filter((entry) => entry.level === 'warn').length, 1);
      await gauges.refresh();
      assert.equal(logger.entries.filter((entry) => entry.msg === 'delivery gauges read the backlog again').length, 1);
    } finally {
      await gauges.stop();
    }

    const rows = Array.from({ length: labelledSubscriptionsMax + 3 }, (_, i) => ({ subscription: String(i + 1), backlog: i, oldestPendingAgeS: i === 101 ? 500 : 1 }));
    const samples = boundedSamples(rows);
    assert.equal(samples.length, labelledSubscriptionsMax + 1);
    assert.deepEqual(samples.at(-1), { subscription: 'other', backlog: 100 + 101 + 102, oldestPendingAgeS: 500 });
    assert.equal(boundedSamples(rows.slice(0, 3)).length, 3);
  });
});
