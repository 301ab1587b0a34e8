/**
 * Retention's work on the tables (the hourly run in ./partition-maintainer.ts decides what
 * and when): day partitions of `events` detached and dropped, and rollup rows deleted one
 * UTC day at a time. docs/decisions/0022-retention-by-detaching-partitions.md.
 */
import type pg from 'pg';
import { attemptPartitionName, dayOfAttemptPartitionName } from '../delivery/attempt-partitions';
import { dayOfPartitionName, partitionName } from './partitions';

/**
 * A table partitioned by UTC day whose days retention retires the same way: `events`
 * (src/sink/partitions.ts) and the delivery attempt log (src/delivery/attempt-partitions.ts).
 * Neither has a DEFAULT partition, which DETACH … CONCURRENTLY requires.
 */
export interface DayPartitionedTable {
  readonly parent: 'events' | 'delivery_attempts';
  /** LIKE pattern of its partitions' names (underscores escaped). */
  readonly namePattern: string;
  readonly nameOf: (day: number) => string;
  readonly dayOf: (name: string) => number | null;
}

export const eventsTable: DayPartitionedTable = { parent: 'events', namePattern: 'events\\_p%', nameOf: partitionName, dayOf: dayOfPartitionName };
export const attemptsTable: DayPartitionedTable = {
  parent: 'delivery_attempts',
  namePattern: 'delivery\\_attempts\\_p%',
  nameOf: attemptPartitionName,
  dayOf: dayOfAttemptPartitionName,
};

/**
 * Where a day's table stands on its way out of its parent (retention):
 *
 *   attached ──DETACH … CONCURRENTLY──▶ detached ──DROP TABLE──▶ gone
 *       │                                  ▲
 *       └─ interrupted ─▶ detach-pending ──┘ DETACH … FINALIZE
 *
 * A detach interrupted after its first transaction (a crash, a cancel, a lock timeout)
 * leaves the partition detach-pending, and a crash between detach and drop leaves a
 * detached table; the next run finishes either.
 */
export type DayTableState = 'attached' | 'detach-pending' | 'detached';

export interface DayTable {
  readonly day: number;
  readonly name: string;
  readonly state: DayTableState;
  /** false for a detach-pending partition of a day still kept: it is finished, not dropped. */
  readonly drop: boolean;
}

/**
 * The tables in the parent's schema named like its day partitions that retention must deal
 * with: every detach-pending partition first, whatever its day, because while one is
 * pending PostgreSQL refuses any other concurrent detach on that parent; then those of days
 * before `beforeDay`, oldest first, attached or left detached. A table of that name that
 * belongs to another partitioned table is not ours and is left out.
 */
export async function dayTablesToRetire(client: pg.ClientBase, beforeDay: number, kind: DayPartitionedTable = eventsTable): Promise<DayTable[]> {
  const result = await client.query<{ relname: string; attached: boolean; pending: boolean }>(
    `SELECT c.relname, i.inhrelid IS NOT NULL AS attached, coalesce(i.inhdetachpending, false) AS pending
       FROM pg_class c
       LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND i.inhparent = $1::regclass
      WHERE c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = $1::regclass)
        AND c.relkind = 'r' AND c.relname LIKE $2 AND (i.inhrelid IS NOT NULL OR NOT c.relispartition)`,
    [kind.parent, kind.namePattern],
  );
  const tables: DayTable[] = [];
  for (const row of result.rows) {
    const day = kind.dayOf(row.relname);
    if (day === null || (day >= beforeDay && !row.pending)) continue;
    const state: DayTableState = row.pending ? 'detach-pending' : row.attached ? 'attached' : 'detached';
    tables.push({ day, name: row.relname, state, drop: day < beforeDay });
  }
  const rank = (table: DayTable): number => (table.state === 'detach-pending' ? 0 : 1);
  return tables.sort((a, b) => rank(a) - rank(b) || a.day - b.day);
}

/**
 * Takes one day's table out of its parent (`events` unless told) and drops it (unless
 * `table.drop` is false). Must be called outside a transaction: DETACH … CONCURRENTLY
 * refuses to run in one (and is allowed at all only because the parent has no DEFAULT
 * partition: src/sink/migrations.ts v1 and v12).
 *
 * CONCURRENTLY never blocks the writers: its first transaction marks the partition
 * detach-pending (new queries stop seeing it) and commits, then it waits, holding no lock
 * on events, for the transactions that were using events to end; only then does it take
 * the partition itself. A plain DETACH would take ACCESS EXCLUSIVE on events and so queue
 * every COPY behind the longest query reading it (docs/decisions/0022-retention-by-detaching-partitions.md).
 * FINALIZE holds SHARE UPDATE EXCLUSIVE on events while it waits for older snapshots,
 * which only a partition being created at that moment would wait for; the caller's
 * lock_timeout bounds both waits.
 */
export async function retireDayTable(client: pg.ClientBase, table: DayTable, kind: DayPartitionedTable = eventsTable): Promise<void> {
  // The identifier is rebuilt from the validated day, never taken from the catalog's text.
  const name = kind.nameOf(table.day);
  if (table.state === 'attached') await client.query(`ALTER TABLE ${kind.parent} DETACH PARTITION ${name} CONCURRENTLY`);
  else if (table.state === 'detach-pending') await client.query(`ALTER TABLE ${kind.parent} DETACH PARTITION ${name} FINALIZE`);
  if (table.drop) await client.query(`DROP TABLE IF EXISTS ${name}`);
}

/** Day partitions attached to events now (a detach-pending one no longer counts), and the oldest. */
export async function attachedPartitionSummary(client: pg.ClientBase): Promise<{ count: number; oldestDay: number | null }> {
  const result = await client.query<{ relname: string }>(
    `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'events'::regclass AND NOT i.inhdetachpending`,
  );
  let count = 0;
  let oldestDay: number | null = null;
  for (const row of result.rows) {
    const day = dayOfPartitionName(row.relname);
    if (day === null) continue;
    count += 1;
    if (oldestDay === null || day < oldestDay) oldestDay = day;
  }
  return { count, oldestDay };
}

/*
 * Retention of the rollup tables (src/sink/partition-maintainer.ts): the rows of one UTC
 * day and one table per statement, so each DELETE is bounded (a day holds at most 1,440 ×
 * groups × shards minute rows) and holds its row locks briefly. Minute and hour rows go by
 * the same UTC day as the day rows, so the three tables always keep the same days. Nobody
 * else writes those rows: the config loader keeps the retention at least as long as the
 * accepted past.
 */
export const rollupTables = ['event_counts_minute', 'event_counts_hourly', 'event_counts_daily'] as const;
export type RollupTable = (typeof rollupTables)[number];

const oldestDaySql: Readonly<Record<RollupTable, string>> = {
  event_counts_minute: 'SELECT floor(extract(epoch FROM min(bucket)) / 86400)::int AS day FROM event_counts_minute',
  event_counts_hourly: 'SELECT floor(extract(epoch FROM min(hour)) / 86400)::int AS day FROM event_counts_hourly',
  event_counts_daily: "SELECT min(day) - date '1970-01-01' AS day FROM event_counts_daily",
};
const deleteDaySql: Readonly<Record<RollupTable, string>> = {
  // 24 hours, not '1 day': a day interval follows the session's TimeZone across DST.
  event_counts_minute: "DELETE FROM event_counts_minute WHERE bucket >= $1::timestamptz AND bucket < $1::timestamptz + interval '24 hours'",
  event_counts_hourly: "DELETE FROM event_counts_hourly WHERE hour >= $1::timestamptz AND hour < $1::timestamptz + interval '24 hours'",
  event_counts_daily: "DELETE FROM event_counts_daily WHERE day = ($1::timestamptz AT TIME ZONE 'UTC')::date",
};

/** The UTC day (days since the epoch) of the table's oldest row; null when it is empty. */
export async function oldestRollupDay(client: pg.ClientBase, table: RollupTable): Promise<number | null> {
  const result = await client.query<{ day: number | null }>(oldestDaySql[table]);
  return result.rows[0]?.day ?? null;
}

/** Deletes the table's rows of one UTC day, in a transaction of its own; returns how many. */
export async function deleteRollupDay(client: pg.ClientBase, table: RollupTable, day: number): Promise<number> {
  const result = await client.query(deleteDaySql[table], [new Date(day * 86_400_000).toISOString()]);
  return result.rowCount ?? 0;
}

/*
 * Deliveries of dropped event days (src/sink/partition-maintainer.ts): a delivery row
 * names its event by (event_id, occurred_at), and once retention has dropped that day the
 * row can never be sent nor checked. deliveries is not partitioned (a row is updated until
 * its outcome) and has no index on occurred_at (every index slows the fan-out's insert), so
 * those rows are deleted by walking the primary key in spans of ids: each statement reads
 * and deletes at most deliveriesIdSpan rows, whatever the table's size.
 */
export const deliveriesIdSpan = 10_000;

/** Deletes the delivery rows with ids in (afterId, afterId + idSpan] whose event day is before `keptFrom`; returns how many. */
export async function deleteDeliveriesSpan(client: pg.ClientBase, keptFrom: string, afterId: bigint, idSpan = deliveriesIdSpan): Promise<number> {
  const result = await client.query(
    `DELETE FROM deliveries
      WHERE id > $2::bigint AND id <= $2::bigint + $3::int AND occurred_at < ($1::date)::timestamp AT TIME ZONE 'UTC'`,
    [keptFrom, afterId.toString(), idSpan],
  );
  return result.rowCount ?? 0;
}

/** The highest delivery id now (0 when there is none): where a pass over the table ends. */
export async function lastDeliveryId(client: pg.ClientBase): Promise<bigint> {
  const result = await client.query<{ id: string | null }>('SELECT max(id)::text AS id FROM deliveries');
  return BigInt(result.rows[0]?.id ?? '0');
}
