/**
 * `floodgate deliveries verify`: the delivery accounting an operator can check. For every
 * subscription that is not deleted it counts, in one snapshot:
 *
 *   matching   stored events received in the subscription's covered window (below) that
 *              its filters match (matchSql, the SQL twin of the fan-out's rule)
 *   missing    of those, the ones with no delivery record          → must be 0
 *   unexpected records of events in the window that do not match    → must be 0
 *   duplicated records beyond the first for one event (the write
 *              transaction makes one; no unique index enforces it)   → must be 0
 *   orphaned   records whose event row is gone, outside the days
 *              retention dropped (floodgate_retention)              → must be 0
 *   records    every record of the subscription, and by status:
 *              records = delivered + failed + pending + discarded
 *
 * The covered window is [covered_from, covered_until), in which the filters and the enabled
 * state were constant (changeSubscriptions sets both bounds under the fan-out lock); an
 * open window ends now, or, for a disabled subscription that has no covered_until, where it
 * began (it covers nothing). Records from earlier windows are counted by status and for
 * orphans only, since the filters they were made under are gone.
 *
 * Exit codes: 0 no difference, 1 a difference (or the database could not be used), 2 bad usage.
 */
import pg from 'pg';
import { openDatabase, runSubcommand, stdio, takeFlags, type Output } from '../cli-command';
import { loadConfig } from '../config/load-config';
import { deliveryStatuses, type DeliveryStatus } from './delivery-schema';
import { matchSql } from './subscription-match';

export const deliveriesUsage = `Usage:
  floodgate deliveries verify [--database-url URL | --data-dir DIR …]
      For each subscription that is not deleted: the stored events its filters match in
      its covered window each have one delivery record, no record lacks its event (except
      on days retention dropped), and records = delivered + failed + pending + discarded.
      Prints one line per subscription and exits 1 when any count differs.
`;

export interface SubscriptionAccount {
  readonly subscriptionId: string;
  readonly windowFrom: string;
  readonly windowUntil: string;
  readonly matching: number;
  readonly missing: number;
  readonly unexpected: number;
  readonly duplicated: number;
  readonly orphaned: number;
  readonly records: number;
  readonly byStatus: Readonly<Record<DeliveryStatus, number>>;
}

export interface DeliveriesVerification {
  /** The first day whose events are kept (YYYY-MM-DD), or null when retention dropped nothing. */
  readonly eventsKeptFrom: string | null;
  readonly accounts: readonly SubscriptionAccount[];
}

/** The problems in one account; empty when it balances. */
export function differencesOf(account: SubscriptionAccount): string[] {
  const problems: string[] = [];
  if (account.missing > 0) problems.push(`${account.missing} matching event(s) without a record`);
  if (account.unexpected > 0) problems.push(`${account.unexpected} record(s) for events that do not match`);
  if (account.duplicated > 0) problems.push(`${account.duplicated} record(s) repeating another of the same event`);
  if (account.orphaned > 0) problems.push(`${account.orphaned} record(s) whose event is not stored`);
  const statusSum = deliveryStatuses.reduce((sum, status) => sum + account.byStatus[status], 0);
  if (statusSum !== account.records) problems.push(`records ${account.records} ≠ ${statusSum} by status`);
  return problems;
}

/*
 * One row per subscription. The window scan walks the events received in the window with
 * their records counted per event (a hash join against the subscription's records), so it
 * reads each event once and sees a repeated record.
 * Orphans are looked up by the events' primary key; their days are all still kept.
 */
const accountsSql = `
  WITH kept AS (SELECT events_kept_from FROM floodgate_retention),
  subs AS (
    SELECT s.*, s.covered_from AS window_from,
           CASE WHEN s.covered_until IS NOT NULL THEN s.covered_until
                WHEN s.enabled THEN now() ELSE s.covered_from END AS window_until
      FROM subscriptions s WHERE s.deleted_at IS NULL
  )
  SELECT s.id AS subscription_id, s.window_from, s.window_until, w.matching, w.missing, w.unexpected, w.duplicated, o.orphaned, r.*
    FROM subs s
    CROSS JOIN LATERAL (
      SELECT count(*) FILTER (WHERE m.matches) AS matching,
             count(*) FILTER (WHERE m.matches AND d.n IS NULL) AS missing,
             coalesce(sum(d.n) FILTER (WHERE NOT m.matches), 0) AS unexpected,
             coalesce(sum(d.n - 1) FILTER (WHERE d.n > 1), 0) AS duplicated
        FROM events e
        LEFT JOIN (SELECT event_id, occurred_at, count(*) AS n FROM deliveries WHERE subscription_id = s.id GROUP BY 1, 2) d
          ON d.event_id = e.event_id AND d.occurred_at = e.occurred_at
        CROSS JOIN LATERAL (SELECT coalesce(${matchSql}, false) AS matches) m
       WHERE e.received_at >= s.window_from AND e.received_at < s.window_until
    ) w
    CROSS JOIN LATERAL (
      SELECT count(*) AS orphaned FROM deliveries d
       WHERE d.subscription_id = s.id
         AND d.occurred_at >= coalesce((SELECT events_kept_from::timestamp AT TIME ZONE 'UTC' FROM kept), '-infinity')
         AND NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = d.event_id AND e.occurred_at = d.occurred_at)
    ) o
    CROSS JOIN LATERAL (
      SELECT count(*) AS records,
             ${deliveryStatuses.map((status) => `count(*) FILTER (WHERE d.status = '${status}') AS ${status}`).join(', ')}
        FROM deliveries d WHERE d.subscription_id = s.id
    ) r
   ORDER BY s.id`;

type AccountRow = Record<'subscription_id' | 'matching' | 'missing' | 'unexpected' | 'duplicated' | 'orphaned' | 'records' | DeliveryStatus, string> & {
  window_from: Date;
  window_until: Date;
};

/** Counts every subscription's account in one read-only snapshot, so the counts agree with each other. */
export async function verifyDeliveries(client: pg.ClientBase): Promise<DeliveriesVerification> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const kept = await client.query<{ events_kept_from: string | null }>(
      "SELECT to_char(events_kept_from, 'YYYY-MM-DD') AS events_kept_from FROM floodgate_retention",
    );
    const result = await client.query<AccountRow>(accountsSql);
    await client.query('COMMIT');
    const accounts = result.rows.map((row): SubscriptionAccount => ({
      subscriptionId: row.subscription_id,
      windowFrom: row.window_from.toISOString(),
      windowUntil: row.window_until.toISOString(),
      matching: Number(row.matching),
      missing: Number(row.missing),
      unexpected: Number(row.unexpected),
      duplicated: Number(row.duplicated),
      orphaned: Number(row.orphaned),
      records: Number(row.records),
      byStatus: Object.fromEntries(deliveryStatuses.map((status) => [status, Number(row[status])])) as Record<DeliveryStatus, number>,
    }));
    return { eventsKeptFrom: kept.rows[0]?.events_kept_from ?? null, accounts };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

const tableColumns = ['subscription', 'window', 'matching', 'missing', 'unexpected', 'duplicated', 'orphaned', 'records', ...deliveryStatuses, 'result'] as const;

/** The accounts as an aligned text table, one line per subscription. */
export function renderAccounts(accounts: readonly SubscriptionAccount[]): string {
  const lines: string[][] = [[...tableColumns]];
  for (const account of accounts) {
    const problems = differencesOf(account);
    lines.push([
      account.subscriptionId,
      `[${account.windowFrom}, ${account.windowUntil})`,
      ...[account.matching, account.missing, account.unexpected, account.duplicated, account.orphaned, account.records].map(String),
      ...deliveryStatuses.map((status) => String(account.byStatus[status])),
      problems.length === 0 ? 'ok' : `DIFFERENCE: ${problems.join('; ')}`,
    ]);
  }
  const widths = tableColumns.map((_, column) => Math.max(...lines.map((line) => (line[column] as string).length)));
  return lines.map((line) => line.map((cell, column) => (column === line.length - 1 ? cell : cell.padEnd(widths[column] as number))).join('  ')).join('\n') + '\n';
}

export function runDeliveries(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output = stdio): Promise<number> {
  return runSubcommand(
    {
      name: 'deliveries',
      usage: deliveriesUsage,
      actions: { verify: (rest) => verify(rest, env, io) },
      missingTableHint: 'the database has no delivery tables yet: run `floodgate migrate` or start the engine once',
    },
    argv,
    io,
  );
}

async function verify(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output): Promise<number> {
  const { rest } = takeFlags(argv, [], []);
  const config = loadConfig({ env, argv: rest });
  const database = await openDatabase(config, env);
  const client = new pg.Client({ connectionString: database.connectionString, application_name: 'floodgate-deliveries' });
  let verification: DeliveriesVerification;
  try {
    await client.connect();
    verification = await verifyDeliveries(client);
  } finally {
    await client.end().catch(() => undefined);
    await database.close();
  }
  const { accounts, eventsKeptFrom } = verification;
  if (accounts.length > 0) io.out(renderAccounts(accounts));
  if (eventsKeptFrom !== null) io.out(`retention keeps events from ${eventsKeptFrom}: records of earlier days are not orphans\n`);
  const differing = accounts.filter((account) => differencesOf(account).length > 0).length;
  io.out(`${differing} of ${accounts.length} subscription(s) with a difference\n`);
  return differing === 0 ? 0 : 1;
}
