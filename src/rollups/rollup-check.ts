import type pg from 'pg';

/**
 * Checking and recomputing the rollup tables against `events` (the writers keep them in
 * their transactions: src/sink/rollup-counts.ts). Ranges are whole UTC days so that the
 * minute and the day tables always cover the same rows:
 *
 *   --from 2026-12-07T10:30Z --to 2026-12-08T01:00Z  ──▶  [2026-12-07, 2026-12-09)
 *
 * An open end is ±infinity. Buckets are UTC whatever the session's TimeZone: minutes by
 * date_bin from the epoch, days by `occurred_at AT TIME ZONE 'UTC'`.
 */

export interface DayRange {
  /** ISO-8601 instants at UTC midnight, or '-infinity' / 'infinity'. */
  readonly from: string;
  readonly to: string;
}

export interface RollupDifference {
  readonly table: 'minute' | 'day';
  /** ISO-8601 instant (minute) or YYYY-MM-DD (day). */
  readonly bucket: string;
  readonly eventType: string;
  readonly source: string;
  /** count(*) of the stored events in the bucket. */
  readonly events: number;
  /** The sum of the bucket's rollup shards. */
  readonly rollup: number;
}

export interface VerifyResult {
  readonly differenceCount: number;
  /** The first differencesShownMax, ordered by table, bucket, type, source. */
  readonly differences: readonly RollupDifference[];
}

/** Differences listed by verify; the rest are only counted. */
export const differencesShownMax = 1000;
const dayMs = 86_400_000;

/** `from` rounded down and `to` rounded up to UTC midnight; null bounds stay open. */
export function dayRangeOf(from: Date | null, to: Date | null): DayRange {
  return {
    from: from === null ? '-infinity' : new Date(Math.floor(from.getTime() / dayMs) * dayMs).toISOString(),
    to: to === null ? 'infinity' : new Date(Math.ceil(to.getTime() / dayMs) * dayMs).toISOString(),
  };
}

const minuteOf = "date_bin('1 minute', occurred_at, timestamptz '1970-01-01 00:00:00+00')";
const dayOf = "(occurred_at AT TIME ZONE 'UTC')::date";
const inRange = 'occurred_at >= $1::timestamptz AND occurred_at < $2::timestamptz';
const dayInRange = "day >= ($1::timestamptz AT TIME ZONE 'UTC')::date AND day < ($2::timestamptz AT TIME ZONE 'UTC')::date";

/*
 * events' type and source use the database's collation and the rollups' COLLATE "C":
 * the join compares them as bytes, like the writers that grouped them.
 */
function differencesSql(table: string, bucketColumn: string, bucketOf: string, bucketInRange: string, bucketText: string): string {
  return `WITH stored AS (
      SELECT ${bucketOf} AS bucket, event_type COLLATE "C" AS event_type, source COLLATE "C" AS source, count(*) AS events
      FROM events WHERE ${inRange} GROUP BY 1, 2, 3),
    rolled AS (
      SELECT ${bucketColumn} AS bucket, event_type, source, sum(count) AS rollup
      FROM ${table} WHERE ${bucketInRange} GROUP BY 1, 2, 3)
    SELECT ${bucketText} AS bucket, event_type, source, coalesce(events, 0)::text AS events, coalesce(rollup, 0)::text AS rollup,
      count(*) OVER () AS total
    FROM stored FULL JOIN rolled USING (bucket, event_type, source)
    WHERE coalesce(events, 0) <> coalesce(rollup, 0)
    ORDER BY bucket, event_type, source
    LIMIT ${differencesShownMax}`;
}

const minuteDifferencesSql = differencesSql(
  'event_counts_minute',
  'bucket',
  minuteOf,
  'bucket >= $1::timestamptz AND bucket < $2::timestamptz',
  `to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`,
);
const dayDifferencesSql = differencesSql('event_counts_daily', 'day', dayOf, dayInRange, "to_char(bucket, 'YYYY-MM-DD')");

interface DifferenceRow {
  bucket: string;
  event_type: string;
  source: string;
  events: string;
  rollup: string;
  total: string;
}

/**
 * Compares every minute and day bucket of the range with count(*) of its events. Both
 * queries read one snapshot (REPEATABLE READ), and the writers commit rows and counts
 * together, so the answer is exact even while the engine ingests into the range.
 */
export async function verifyRollups(client: pg.ClientBase, range: DayRange): Promise<VerifyResult> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const minutes = await client.query<DifferenceRow>(minuteDifferencesSql, [range.from, range.to]);
    const days = await client.query<DifferenceRow>(dayDifferencesSql, [range.from, range.to]);
    await client.query('COMMIT');
    const differences = [...minutes.rows.map((row) => differenceOf('minute', row)), ...days.rows.map((row) => differenceOf('day', row))];
    const differenceCount = Number(minutes.rows[0]?.total ?? 0) + Number(days.rows[0]?.total ?? 0);
    return { differenceCount, differences: differences.slice(0, differencesShownMax) };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Rows the rebuild wrote. */
export interface RebuildResult {
  readonly minuteRows: number;
  readonly dayRows: number;
}

/*
 * SHARE ROW EXCLUSIVE conflicts with the ROW EXCLUSIVE lock every writer's upsert takes
 * (and with itself): the LOCK waits for the writers whose upserts already ran to commit,
 * and writers reaching their upsert wait for the rebuild to commit. Each statement after
 * the LOCK takes a fresh snapshot (READ COMMITTED), so it sees every committed row, and a
 * writer still in flight adds its counts after the rebuild's, to the rebuilt rows. Ingest
 * therefore pauses for the rebuild's duration: rebuild small ranges.
 */
const lockSql = 'LOCK TABLE event_counts_minute, event_counts_daily IN SHARE ROW EXCLUSIVE MODE';

/** Replaces the range's rollup rows by counts from events, in one transaction (shard 0). */
export async function rebuildRollups(client: pg.ClientBase, range: DayRange): Promise<RebuildResult> {
  await client.query('BEGIN');
  try {
    await client.query(lockSql);
    const values = [range.from, range.to];
    await client.query('DELETE FROM event_counts_minute WHERE bucket >= $1::timestamptz AND bucket < $2::timestamptz', values);
    await client.query(`DELETE FROM event_counts_daily WHERE ${dayInRange}`, values);
    const minutes = await client.query(
      'INSERT INTO event_counts_minute (bucket, event_type, source, shard, count) ' +
        `SELECT ${minuteOf}, event_type, source, 0, count(*) FROM events WHERE ${inRange} GROUP BY 1, 2, 3`,
      values,
    );
    const days = await client.query(
      'INSERT INTO event_counts_daily (day, event_type, source, shard, count) ' +
        `SELECT ${dayOf}, event_type, source, 0, count(*) FROM events WHERE ${inRange} GROUP BY 1, 2, 3`,
      values,
    );
    await client.query('COMMIT');
    return { minuteRows: minutes.rowCount ?? 0, dayRows: days.rowCount ?? 0 };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

function differenceOf(table: 'minute' | 'day', row: DifferenceRow): RollupDifference {
  return {
    table,
    bucket: row.bucket,
    eventType: row.event_type,
    source: row.source,
    events: Number(row.events),
    rollup: Number(row.rollup),
  };
}
