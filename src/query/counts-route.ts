/**
 * GET /v1/analytics/counts: stored events counted per minute, hour or day of a time zone
 * over [from, to), zero-filled, optionally split into series by event_type and/or source.
 *
 *   1. parse and bound the parameters (at most bucketsMax buckets)
 *   2. list the bucket starts in JavaScript (./zone-buckets.ts: local hours and midnights,
 *      DST days 23/25 h)
 *   3. one statement sums the rollup rows per bucket index and group, shards included
 *   4. zero-fill, mark the buckets still filling, keep the series_limit largest series
 *
 * Each answer reads the coarsest rollup whose buckets tile the requested ones exactly: UTC
 * days read event_counts_daily; hours and days that start and end on whole UTC hours (any
 * zone whose offsets over the range are whole hours) read event_counts_hourly; the rest
 * (minutes, and the hours and days of zones such as Asia/Kolkata) read
 * event_counts_minute, whose UTC minutes fall whole into any zone's minutes, hours and days
 * (every zone's offset is a whole number of minutes since 1972).
 */
import assert from 'node:assert/strict';
import { badParameter, isoOfMicros, QueryParameters } from './query-parameters';
import { jsonRoute, type ReadCall, type ReadRoute, type ReadRouteDependencies } from './read-route';
import { equalityFilterSql, type ReadDatabase } from './read-database';
import { bucketsOf, mod, Zone } from './zone-buckets';

/** A week of minutes: the most buckets one answer holds. */
export const bucketsMax = 10_080;
/**
 * Buckets × series_limit at most, so that an answer's series stay a few megabytes at
 * worst (rows are parsed on the main thread, beside ingest); a week of minutes still
 * takes the default 20 series.
 */
export const seriesCountsMax = 250_000;
const minuteMs = 60_000;
const hourMs = 3_600_000;
const dayMs = 86_400_000;
const intervals = { minute: minuteMs, hour: hourMs, day: dayMs } as const;
type Interval = keyof typeof intervals;
const groupColumns = ['event_type', 'source'] as const;
type GroupColumn = (typeof groupColumns)[number];
/** The earliest `from`: the zone arithmetic below assumes the modern calendar era. */
const fromMsMin = 0;
const countsParameters = ['from', 'to', 'interval', 'group_by', 'event_type', 'source', 'tz', 'series_limit'];

export function countsRoute(deps: ReadRouteDependencies): ReadRoute {
  return jsonRoute(deps, '/v1/analytics/counts', (call) => counts(deps.db, call));
}

interface CountsQuery {
  readonly interval: Interval;
  readonly zone: Zone;
  readonly groupBy: readonly GroupColumn[];
  readonly filters: Readonly<Record<GroupColumn, string | null>>;
  readonly seriesLimit: number;
  /** Bucket starts in epoch ms, ascending; bucket i ends where i + 1 starts, the last at `endMs`. */
  readonly starts: readonly number[];
  readonly endMs: number;
}

function countsQueryOf(queryString: string, nowMs: number): CountsQuery {
  const params = QueryParameters.parse(queryString, countsParameters);
  const interval = params.choice('interval', Object.keys(intervals) as Interval[], 'hour');
  const zone = zoneParameter(params);
  const groupBy = params.list('group_by', groupColumns);
  const filters = { event_type: params.text('event_type'), source: params.text('source') };
  const seriesLimit = params.integer('series_limit', { min: 1, max: 1000, fallback: 20 });
  const givenTo = instantMsParameter(params, 'to', zone);
  const givenFrom = instantMsParameter(params, 'from', zone);
  const toMs = givenTo ?? nowMs;
  const fromMs = givenFrom ?? toMs - dayMs;
  if (fromMs < fromMsMin) {
    throw givenFrom === null
      ? badParameter('to', 'from, 24 hours before to by default, must be at or after 1970-01-01T00:00:00Z')
      : badParameter('from', 'from must be at or after 1970-01-01T00:00:00Z');
  }
  if (!(fromMs < toMs)) {
    throw givenTo === null
      ? badParameter('from', `from must be before to, which defaults to now (${new Date(toMs).toISOString()})`)
      : badParameter('to', 'to must be after from');
  }
  const stepMs = intervals[interval];
  const tooMany = (buckets: number) =>
    badParameter('from', `from..to holds ${buckets} ${interval} buckets; at most ${bucketsMax}: narrow from/to or choose a coarser interval`);
  // Checked on the nominal length first, so that a century of minutes is never listed.
  if ((toMs - fromMs) / stepMs > bucketsMax + 2) throw tooMany(Math.ceil((toMs - fromMs) / stepMs));
  const { starts, endMs } = bucketsOf(zone, stepMs, fromMs, toMs);
  if (starts.length > bucketsMax) throw tooMany(starts.length);
  if (groupBy.length > 0 && starts.length * seriesLimit > seriesCountsMax) {
    throw badParameter('series_limit', `${starts.length} buckets × series_limit ${seriesLimit} is more than ${seriesCountsMax} counts; lower series_limit or use fewer buckets`);
  }
  return { interval, zone, groupBy, filters, seriesLimit, starts, endMs };
}

/** An instant; a bare day `YYYY-MM-DD` is that day's local midnight in the zone. */
function instantMsParameter(params: QueryParameters, name: string, zone: Zone): number | null {
  const text = params.text(name, 64);
  const us = params.instantUs(name);
  if (us === null || text === null) return null;
  const ms = Math.floor(us / 1000);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text) || zone.isUtc) return ms;
  // Local noon of that date lies inside the local day, whatever the day's length.
  const noonMs = ms + 12 * hourMs;
  const noon = noonMs - zone.offsetMs(noonMs);
  return bucketsOf(zone, dayMs, noon, noon + 1).starts[0] as number;
}

function zoneParameter(params: QueryParameters): Zone {
  const name = params.text('tz', 64);
  if (name === null) return Zone.utc;
  const zone = Zone.named(name);
  if (zone === null) throw badParameter('tz', `tz must be an IANA time zone name such as Europe/Berlin, America/New_York or UTC; got "${name}"`);
  return zone;
}

interface CountRow {
  as_of_us: string;
  /** How many series were summed into `other`. */
  folded: number;
  i: number | null;
  /** The series' place by total (1 = largest), null for the rows summed into `other`. */
  rank: string | null;
  event_type?: string | null;
  source?: string | null;
  n: string | null;
}

interface Series {
  readonly key: Readonly<Record<string, string>>;
  readonly counts: number[];
  total: number;
}

async function counts(db: ReadDatabase, call: ReadCall): Promise<unknown> {
  const query = countsQueryOf(call.query, Date.now());
  const rows = await db.rows<CountRow>(...countsSql(query));
  const first = rows[0];
  assert.ok(first !== undefined, 'the counts statement always returns a row');
  const asOfUs = Number(first.as_of_us);
  const { totals, kept, other } = tally(rows, query.starts.length);
  const endOf = (index: number) => query.starts[index + 1] ?? query.endMs;
  return {
    from: isoOfMs(query.starts[0] as number),
    to: isoOfMs(query.endMs),
    interval: query.interval,
    tz: query.zone.name,
    group_by: query.groupBy,
    as_of: isoOfMicros(asOfUs),
    buckets: query.starts.map((startMs, index) => ({ start: isoOfMs(startMs), complete: endOf(index) * 1000 <= asOfUs })),
    totals,
    series: kept.map((entry) => ({ ...entry.key, counts: entry.counts, total: entry.total })),
    other: first.folded === 0 ? null : { counts: other.counts, total: other.total, series: first.folded },
  };
}

/** Totals per bucket, the kept series in rank order, and the sum of the others. */
function tally(rows: readonly CountRow[], bucketCount: number): { totals: number[]; kept: Series[]; other: Series } {
  const totals = new Array<number>(bucketCount).fill(0);
  const kept: Series[] = [];
  const other: Series = { key: {}, counts: new Array<number>(bucketCount).fill(0), total: 0 };
  for (const row of rows) {
    if (row.i === null || row.n === null) continue; // no rollup row in the range: only as_of
    const count = Number(row.n);
    totals[row.i] = (totals[row.i] as number) + count;
    let entry = other;
    if (row.rank !== null) {
      const rank = Number(row.rank) - 1;
      kept[rank] ??= { key: keyOf(row), counts: new Array<number>(bucketCount).fill(0), total: 0 };
      entry = kept[rank] as Series;
    }
    entry.counts[row.i] = (entry.counts[row.i] as number) + count;
    entry.total += count;
  }
  return { totals, kept, other };
}

/** The group_by columns of a row (the statement selects only those). */
function keyOf(row: CountRow): Record<string, string> {
  const key: Record<string, string> = {};
  for (const column of groupColumns) {
    const value = row[column];
    if (typeof value === 'string') key[column] = value;
  }
  return key;
}

function isoOfMs(ms: number): string {
  return isoOfMicros(ms * 1000);
}

/**
 * One statement: the rollup rows of [first start, end) summed per bucket index and group,
 * shards included. Groups are ranked by total (ties by key, in byte order) and those past
 * series_limit summed into one, so the answer holds at most buckets × (series_limit + 1)
 * rows. The outer join keeps one row (with now()) when the range holds no count at all.
 *
 *   UTC days                  event_counts_daily, index = day - first day
 *   on whole UTC hours        event_counts_hourly, index = width_bucket(hour, the starts) - 1
 *   anything else             event_counts_minute, index = width_bucket(bucket, the starts) - 1
 *
 * width_bucket (a binary search in the array of starts) also serves equally spaced
 * buckets: it cost a third of epoch arithmetic per row (45 against 136 ms for 144,000
 * minute rows on the development VM), and parsing even 10,080 starts is a small part.
 */
function countsSql(query: CountsQuery): [string, unknown[]] {
  const values: unknown[] = [];
  const { table, index, range } = bucketSql(query, values);
  const where = range + equalityFilterSql(values, query.filters);
  const head = 'SELECT (extract(epoch FROM now()) * 1000000)::int8::text AS as_of_us';
  if (query.groupBy.length === 0) {
    const cells = `SELECT ${index} AS i, NULL::text AS rank, sum(count)::text AS n FROM ${table} WHERE ${where} GROUP BY 1`;
    return [`${head}, 0 AS folded, c.* FROM (SELECT 1) AS one LEFT JOIN (${cells}) AS c ON true`, values];
  }
  const columns = query.groupBy.join(', ');
  const limit = `$${values.push(query.seriesLimit)}::int8`;
  const keptColumns = query.groupBy.map((column) => `, CASE WHEN r.rank <= ${limit} THEN c.${column} END AS ${column}`).join('');
  const groupPositions = query.groupBy.map((_, position) => `, ${position + 3}`).join('');
  const sql = `WITH cells AS (
      SELECT ${index} AS i, ${columns}, sum(count) AS n FROM ${table} WHERE ${where} GROUP BY 1, ${columns}),
    ranked AS (SELECT ${columns}, row_number() OVER (ORDER BY sum(n) DESC, ${columns}) AS rank FROM cells GROUP BY ${columns}),
    folded AS (
      SELECT c.i, (CASE WHEN r.rank <= ${limit} THEN r.rank END)::text AS rank${keptColumns}, sum(c.n)::text AS n
      FROM cells AS c JOIN ranked AS r USING (${columns}) GROUP BY 1, 2${groupPositions})
    ${head}, (SELECT count(*) FROM ranked WHERE rank > ${limit})::int AS folded, f.*
    FROM (SELECT 1) AS one LEFT JOIN folded AS f ON true`;
  return [sql, values];
}

/** Which rollup answers, the bucket index of its rows, and its rows of the range. */
function bucketSql(query: CountsQuery, values: unknown[]): { table: string; index: string; range: string } {
  const firstMs = query.starts[0] as number;
  if (isUtcDays(query)) {
    const [from, to] = [values.push(isoOfMs(firstMs).slice(0, 10)), values.push(isoOfMs(query.endMs).slice(0, 10))];
    return { table: 'event_counts_daily', index: `(day - $${from}::date)`, range: `day >= $${from}::date AND day < $${to}::date` };
  }
  const [from, to] = [values.push(isoOfMs(firstMs)), values.push(isoOfMs(query.endMs))];
  const [table, column] = isWholeUtcHours(query) ? ['event_counts_hourly', 'hour'] : ['event_counts_minute', 'bucket'];
  return {
    table,
    index: `width_bucket(${column}, $${values.push(query.starts.map(isoOfMs))}::timestamptz[]) - 1`,
    range: `${column} >= $${from}::timestamptz AND ${column} < $${to}::timestamptz`,
  };
}

/**
 * Whether every bucket is made of whole UTC hours, as the hourly rollup counts them: true
 * for the hours and days of UTC, New York or Berlin (offsets of whole hours, changed on
 * the hour), false for Asia/Kolkata's +5:30, Kathmandu's +5:45 or Lord Howe's half-hour
 * change. The bucket boundaries, which the zone's offset segments produced, are checked
 * rather than the offsets: they are what must line up (a whole-hour zone changing its
 * clock at half past would not), and there are at most bucketsMax + 1 of them.
 */
function isWholeUtcHours(query: CountsQuery): boolean {
  return query.interval !== 'minute' && mod(query.endMs, hourMs) === 0 && query.starts.every((startMs) => mod(startMs, hourMs) === 0);
}

/** Whether every bucket is one whole UTC day, as the daily rollup counts them. */
function isUtcDays(query: CountsQuery): boolean {
  const firstMs = query.starts[0] as number;
  return (
    query.interval === 'day' &&
    mod(firstMs, dayMs) === 0 &&
    query.starts.every((startMs, index) => startMs === firstMs + index * dayMs) &&
    query.endMs === firstMs + query.starts.length * dayMs
  );
}
