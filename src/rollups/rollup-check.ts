import type pg from 'pg';

/**
 * Checking and recomputing the rollup tables against `events` (the writers keep them in
 * their transactions: src/sink/rollup-counts.ts). Ranges are whole UTC days so that the
 * minute, hour and day tables always cover the same rows:
 *
 *   --from 2026-12-07T10:30Z --to 2026-12-08T01:00Z  ──▶  [2026-12-07, 2026-12-09)
 *
 * An open end is ±infinity. Buckets are UTC whatever the session's TimeZone: minutes and
 * hours by date_bin from the epoch, days by `occurred_at AT TIME ZONE 'UTC'`.
 *
 * Both commands start no earlier than the first day that retention keeps of the events and
 * of the rollups (floodgate_retention, raised before retention drops anything): before it
 * one side is gone, so every bucket would read as a difference, and a rebuild would wipe
 * the rollups that outlive their events.
 */

export interface DayRange {
  /** ISO-8601 instants at UTC midnight, or '-infinity' / 'infinity'. */
  readonly from: string;
  readonly to: string;
}

/** Which rollup table a difference is in, by the size of its buckets. */
export type RollupGrain = 'minute' | 'hour' | 'day';

export interface RollupDifference {
  readonly table: RollupGrain;
  /** ISO-8601 instant (minute, hour) or YYYY-MM-DD (day). */
  readonly bucket: string;
  readonly eventType: string;
  readonly source: string;
  /** count(*) of the stored events in the bucket. */
  readonly events: number;
  /** The sum of the bucket's rollup shards. */
  readonly rollup: number;
}

/** The first UTC day (YYYY-MM-DD) retention keeps of each; null: nothing dropped. */
export interface KeptFrom {
  readonly events: string | null;
  readonly rollups: string | null;
}

/** The range a command worked on, after clipping to what retention keeps. */
export interface ClippedRange {
  readonly range: DayRange;
  readonly keptFrom: KeptFrom;
  /** The range asked for started before what both tables keep. */
  readonly clipped: boolean;
  /** Nothing of the range is kept: no bucket was read. */
  readonly empty: boolean;
}

export interface VerifyResult extends ClippedRange {
  readonly differenceCount: number;
  /** The first differencesShownMax, ordered by table, bucket, type, source. */
  readonly differences: readonly RollupDifference[];
}

/** Differences listed by verify; the rest are only counted. */
export const differencesShownMax = 1000;
const dayMs = 86_400_000;

/** Moves the range's start to the first day both tables keep. */
export function clipToKept(range: DayRange, keptFrom: KeptFrom): ClippedRange {
  const askedMs = instantMs(range.from);
  const startMs = Math.max(askedMs, dayStartMs(keptFrom.events), dayStartMs(keptFrom.rollups));
  const clipped = startMs > askedMs;
  const from = clipped ? new Date(startMs).toISOString() : range.from;
  return { range: { from, to: range.to }, keptFrom, clipped, empty: startMs >= instantMs(range.to) };
}

function instantMs(bound: string): number {
  if (bound === '-infinity') return -Infinity;
  return bound === 'infinity' ? Infinity : Date.parse(bound);
}

function dayStartMs(day: string | null): number {
  return day === null ? -Infinity : Date.parse(`${day}T00:00:00Z`);
}

/**
 * What floodgate_retention records; nothing dropped when a schema before v7 lacks it.
 * `forShare` holds the row until commit, so retention cannot raise it, and then detach a
 * day, between a rebuild's delete of that day's rollups and its count of the events.
 */
async function readKeptFrom(client: pg.ClientBase, forShare = false): Promise<KeptFrom> {
  const table = await client.query<{ found: boolean }>("SELECT to_regclass('floodgate_retention') IS NOT NULL AS found");
  if (!table.rows[0]?.found) return { events: null, rollups: null };
  const result = await client.query<{ events: string | null; rollups: string | null }>(
    "SELECT to_char(events_kept_from, 'YYYY-MM-DD') AS events, to_char(rollups_kept_from, 'YYYY-MM-DD') AS rollups " +
      `FROM floodgate_retention${forShare ? ' FOR SHARE' : ''}`,
  );
  return result.rows[0] ?? { events: null, rollups: null };
}

/** `from` rounded down and `to` rounded up to UTC midnight; null bounds stay open. */
export function dayRangeOf(from: Date | null, to: Date | null): DayRange {
  return {
    from: from === null ? '-infinity' : new Date(Math.floor(from.getTime() / dayMs) * dayMs).toISOString(),
    to: to === null ? 'infinity' : new Date(Math.ceil(to.getTime() / dayMs) * dayMs).toISOString(),
  };
}

const minuteOf = "date_bin('1 minute', occurred_at, timestamptz '1970-01-01 00:00:00+00')";
const hourOf = "date_bin('1 hour', occurred_at, timestamptz '1970-01-01 00:00:00+00')";
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

const instantText = `to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`;

/** Each table's differences, in the order verify lists them. */
const differencesSqls: ReadonlyArray<readonly [RollupGrain, string]> = [
  ['minute', differencesSql('event_counts_minute', 'bucket', minuteOf, 'bucket >= $1::timestamptz AND bucket < $2::timestamptz', instantText)],
  ['hour', differencesSql('event_counts_hourly', 'hour', hourOf, 'hour >= $1::timestamptz AND hour < $2::timestamptz', instantText)],
  ['day', differencesSql('event_counts_daily', 'day', dayOf, dayInRange, "to_char(bucket, 'YYYY-MM-DD')")],
];

interface DifferenceRow {
  bucket: string;
  event_type: string;
  source: string;
  events: string;
  rollup: string;
  total: string;
}

/**
 * Compares every minute, hour and day bucket of the range (clipped to what retention
 * keeps) with count(*) of its events. Every query reads one snapshot (REPEATABLE READ),
 * and the writers commit rows and counts together, so the answer is exact even while the
 * engine ingests into the range; retention raises its dates before it drops, so the
 * snapshot never holds a day half gone inside the clipped range.
 */
export async function verifyRollups(client: pg.ClientBase, asked: DayRange): Promise<VerifyResult> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    const kept = clipToKept(asked, await readKeptFrom(client));
    const { from, to } = kept.range;
    const differences: RollupDifference[] = [];
    let differenceCount = 0;
    for (const [grain, sql] of kept.empty ? [] : differencesSqls) {
      const rows = (await client.query<DifferenceRow>(sql, [from, to])).rows;
      differences.push(...rows.map((row) => differenceOf(grain, row)));
      differenceCount += Number(rows[0]?.total ?? 0);
    }
    await client.query('COMMIT');
    return { ...kept, differenceCount, differences: differences.slice(0, differencesShownMax) };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Rows the rebuild wrote. */
export interface RebuildResult extends ClippedRange {
  readonly minuteRows: number;
  readonly hourRows: number;
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
const lockSql = 'LOCK TABLE event_counts_minute, event_counts_hourly, event_counts_daily IN SHARE ROW EXCLUSIVE MODE';

/** Replaces the range's rollup rows by counts from events, in one transaction (shard 0). */
export async function rebuildRollups(client: pg.ClientBase, asked: DayRange): Promise<RebuildResult> {
  await client.query('BEGIN');
  try {
    await client.query(lockSql);
    const kept = clipToKept(asked, await readKeptFrom(client, true));
    if (kept.empty) {
      await client.query('COMMIT');
      return { ...kept, minuteRows: 0, hourRows: 0, dayRows: 0 };
    }
    const values = [kept.range.from, kept.range.to];
    await client.query('DELETE FROM event_counts_minute WHERE bucket >= $1::timestamptz AND bucket < $2::timestamptz', values);
    await client.query('DELETE FROM event_counts_hourly WHERE hour >= $1::timestamptz AND hour < $2::timestamptz', values);
    await client.query(`DELETE FROM event_counts_daily WHERE ${dayInRange}`, values);
    const minutes = await client.query(
      'INSERT INTO event_counts_minute (bucket, event_type, source, shard, count) ' +
        `SELECT ${minuteOf}, event_type, source, 0, count(*) FROM events WHERE ${inRange} GROUP BY 1, 2, 3`,
      values,
    );
    const hours = await client.query(
      'INSERT INTO event_counts_hourly (hour, event_type, source, shard, count) ' +
        `SELECT ${hourOf}, event_type, source, 0, count(*) FROM events WHERE ${inRange} GROUP BY 1, 2, 3`,
      values,
    );
    const days = await client.query(
      'INSERT INTO event_counts_daily (day, event_type, source, shard, count, updated_at) ' +
        `SELECT ${dayOf}, event_type, source, 0, count(*), now() FROM events WHERE ${inRange} GROUP BY 1, 2, 3`,
      values,
    );
    await client.query('COMMIT');
    return { ...kept, minuteRows: minutes.rowCount ?? 0, hourRows: hours.rowCount ?? 0, dayRows: days.rowCount ?? 0 };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

function differenceOf(table: RollupGrain, row: DifferenceRow): RollupDifference {
  return {
    table,
    bucket: row.bucket,
    eventType: row.event_type,
    source: row.source,
    events: Number(row.events),
    rollup: Number(row.rollup),
  };
}
