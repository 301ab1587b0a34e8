/**
 * EventFlux's four read routes with its paths, parameters and answer shapes, so that its
 * dashboard and scripts work against Floodgate unchanged, and with its bugs fixed
 * (docs/api.md, "Analytics (EventFlux-compatible) and counts", lists the differences):
 *
 *   GET /v1/analytics/events/daily     counts per (UTC day, type, source), keyset pages
 *   GET /v1/analytics/events/summary   totals and the top types and sources of a day range
 *   GET /v1/analytics/event-types      the types counted in a day range
 *   GET /v1/analytics/events/raw       the newest stored events of at most one hour
 *
 * The first three read event_counts_daily, which the writers update in the transaction that
 * stores the rows (src/sink/rollup-counts.ts): every answer is exact when it is read, with
 * no cache and no aggregation lag. Each is one statement, summing the writers' shards.
 */
import { createHash } from 'node:crypto';
import { badParameter, isoOfMicros, QueryParameters, type ParameterError } from './query-parameters';
import { jsonRoute, type ReadCall, type ReadRoute, type ReadRouteDependencies } from './read-route';
import { equalityFilterSql, type ReadDatabase } from './read-database';

const dayMs = 86_400_000;
const usPerDay = dayMs * 1000;
const hourUs = 3_600_000_000;
/** A day range spans at most this many days (EventFlux had no bound at all). */
const dayRangeDaysMax = 366;
/** Days read when start_date is absent: the last 30 UTC days up to end_date. */
const dayRangeDaysDefault = 30;
const dayPattern = /^\d{4}-\d{2}-\d{2}$/;

export function eventFluxRoutes(deps: ReadRouteDependencies): ReadRoute[] {
  const { db } = deps;
  return [
    jsonRoute(deps, '/v1/analytics/events/daily', (call) => daily(db, call)),
    jsonRoute(deps, '/v1/analytics/events/summary', (call) => summary(db, call)),
    jsonRoute(deps, '/v1/analytics/event-types', (call) => eventTypes(db, call)),
    jsonRoute(deps, '/v1/analytics/events/raw', (call) => raw(db, call)),
  ];
}

/** Inclusive UTC days, as days since the epoch. */
interface DayRange {
  readonly first: number;
  readonly last: number;
}

/**
 * start_date and end_date: `YYYY-MM-DD`, or a date-time whose UTC day is taken (naive
 * means UTC). end_date defaults to today (UTC), start_date to `defaultDays` days ending
 * on end_date; the range may span at most dayRangeDaysMax days.
 */
function dayRangeOf(params: QueryParameters, defaultDays: number): DayRange {
  const given = { first: dayParameter(params, 'start_date'), last: dayParameter(params, 'end_date') };
  const last = given.last ?? Math.floor(Date.now() / dayMs);
  const first = given.first ?? last - defaultDays + 1;
  if (last < first) {
    throw given.last === null
      ? badParameter('start_date', `start_date ${dayText(first)} is after end_date, which defaults to today (${dayText(last)})`)
      : badParameter('end_date', `end_date ${dayText(last)} is before start_date ${dayText(first)}`);
  }
  if (last - first + 1 > dayRangeDaysMax) {
    throw badParameter(given.first === null ? 'end_date' : 'start_date', `start_date to end_date spans ${last - first + 1} days; at most ${dayRangeDaysMax}`);
  }
  return { first, last };
}

function dayParameter(params: QueryParameters, name: string): number | null {
  const us = params.instantUs(name, { naiveIsUtc: true });
  return us === null ? null : Math.floor(us / usPerDay);
}

/** `YYYY-MM-DD` of a day number. */
function dayText(day: number): string {
  return new Date(day * dayMs).toISOString().slice(0, 10);
}

// ---------------------------------------------------------------------------------------
// GET /v1/analytics/events/daily

/** The last row of a page: the full order key (day DESC, count DESC, event_type, source). */
interface DailyPosition {
  readonly day: number;
  /** Decimal text: a sum of bigints, compared as numeric in SQL. */
  readonly count: string;
  readonly eventType: string;
  readonly source: string;
}

/** Where a page starts: at the top, before a day (EventFlux's after_day), or after a row. */
type DailyStart =
  | { readonly kind: 'top' }
  | { readonly kind: 'before_day'; readonly day: number }
  | { readonly kind: 'after'; readonly position: DailyPosition };

interface DailyRow {
  day: string;
  event_type: string;
  source: string;
  count: string;
  updated_us: string;
}

const dailyParameters = ['start_date', 'end_date', 'event_type', 'source', 'limit', 'after_day', 'cursor'];
const dailyLimit = { min: 1, max: 10_000, fallback: 500 };

async function daily(db: ReadDatabase, call: ReadCall): Promise<unknown> {
  const params = QueryParameters.parse(call.query, dailyParameters);
  const filters = { event_type: params.text('event_type'), source: params.text('source') };
  const limit = params.integer('limit', dailyLimit);
  const binding = dailyBinding(params, filters);
  const { range, start } = dailyStartOf(params, binding);
  // The page's start bounds the days from above too, so a later page reads fewer days.
  const lastDay = start.kind === 'top' ? range.last : Math.min(range.last, start.kind === 'after' ? start.position.day : start.day - 1);
  const values: unknown[] = [dayText(range.first), dayText(lastDay)];
  const where = equalityFilterSql(values, filters);
  const after = start.kind === 'after' ? `WHERE ${afterSql(values, start.position)}` : '';
  // One row more than asked tells whether another page exists.
  const sql = `SELECT to_char(day, 'YYYY-MM-DD') AS day, event_type, source, count::text AS count, updated_us::text AS updated_us
    FROM (SELECT day, event_type, source, sum(count) AS count, (extract(epoch FROM max(updated_at)) * 1000000)::int8 AS updated_us
          FROM event_counts_daily WHERE day >= $1::date AND day <= $2::date${where}
          GROUP BY day, event_type, source) AS totals
    ${after}
    ORDER BY day DESC, count DESC, event_type, source
    LIMIT $${values.push(limit + 1)}`;
  const rows = await db.rows<DailyRow>(sql, values);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  const position = last === undefined ? null : { day: dayOfText(last.day), count: last.count, eventType: last.event_type, source: last.source };
  return {
    data: page.map((row) => ({
      day: row.day,
      event_type: row.event_type,
      source: row.source,
      count: Number(row.count),
      updated_at: isoOfMicros(Number(row.updated_us)),
    })),
    count: page.length,
    next_cursor: rows.length > limit && position !== null ? encodeDailyCursor(binding, range, position) : null,
  };
}

/** The rows after `position` in the order day DESC, count DESC, event_type, source. */
function afterSql(values: unknown[], position: DailyPosition): string {
  const d = values.push(dayText(position.day));
  const c = values.push(position.count);
  const t = values.push(position.eventType);
  const s = values.push(position.source);
  return `day < $${d}::date OR (day = $${d}::date AND (count < $${c}::numeric OR (count = $${c}::numeric AND
    (event_type > $${t} OR (event_type = $${t} AND source > $${s})))))`;
}

/**
 * The filters a cursor is bound to: the days as given (null when defaulted, so that a
 * walk begun before midnight continues after it) and the type and source.
 */
function dailyBinding(params: QueryParameters, filters: { event_type: string | null; source: string | null }): string {
  const given = [dayParameter(params, 'start_date'), dayParameter(params, 'end_date'), filters.event_type, filters.source];
  return createHash('sha256').update(JSON.stringify(given)).digest('base64url').slice(0, 16);
}

/**
 * The day range and the page's start. `after_day` holding a day keeps EventFlux's meaning
 * (the rows of earlier days); holding one of our cursors, it is one. A cursor carries the
 * range of the walk's first page, so defaulted days do not move at midnight mid-walk.
 */
function dailyStartOf(params: QueryParameters, binding: string): { range: DayRange; start: DailyStart } {
  const range = dayRangeOf(params, dayRangeDaysDefault);
  const cursorText = params.text('cursor', 1024);
  const afterDayText = params.text('after_day', 1024);
  if (cursorText !== null && afterDayText !== null) throw badParameter('after_day', 'give cursor or after_day, not both');
  if (afterDayText !== null && dayPattern.test(afterDayText)) {
    return { range, start: { kind: 'before_day', day: Math.floor((params.dayMs('after_day') as number) / dayMs) } };
  }
  const text = cursorText ?? afterDayText;
  if (text === null) return { range, start: { kind: 'top' } };
  const name = cursorText !== null ? 'cursor' : 'after_day';
  const cursor = decodeDailyCursor(text);
  if (cursor === null) throw badCursor(name, `${name} is not a cursor this route returned`);
  if (cursor.binding !== binding) {
    throw badCursor(name, `${name} was returned for other start_date, end_date, event_type or source values; send the same ones, or start again without it`);
  }
  return { range: cursor.range, start: { kind: 'after', position: cursor.position } };
}

function badCursor(parameter: string, message: string): ParameterError {
  return badParameter(parameter, message, 'ERR_QUERY_BAD_CURSOR');
}

const cursorVersion = 'd1';

function encodeDailyCursor(binding: string, range: DayRange, position: DailyPosition): string {
  const fields = [cursorVersion, binding, range.first, range.last, position.day, position.count, position.eventType, position.source];
  return Buffer.from(JSON.stringify(fields), 'utf8').toString('base64url');
}

/** The cursor's parts, or null for anything this route did not write. */
function decodeDailyCursor(text: string): { binding: string; range: DayRange; position: DailyPosition } | null {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) return null;
  let fields: unknown;
  try {
    fields = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (!Array.isArray(fields) || fields.length !== 8) return null;
  const [version, binding, first, last, day, count, eventType, source] = fields as unknown[];
  if (version !== cursorVersion || typeof binding !== 'string' || typeof eventType !== 'string' || typeof source !== 'string') return null;
  if (!isDay(first) || !isDay(last) || !isDay(day) || first > last || typeof count !== 'string' || !/^\d{1,20}$/.test(count)) return null;
  return { binding, range: { first, last }, position: { day, count, eventType, source } };
}

/** Days from 0001-01-01 to 9999-12-31, as the parameters can name them. */
function isDay(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= -719_162 && (value as number) <= 2_932_896;
}

function dayOfText(text: string): number {
  return Math.floor(Date.parse(`${text}T00:00:00Z`) / dayMs);
}

// ---------------------------------------------------------------------------------------
// GET /v1/analytics/events/summary

interface SummaryRow {
  total_events: string;
  unique_event_types: number;
  unique_sources: number;
  top_event_types: Array<{ event_type: string; total: number }>;
  top_sources: Array<{ source: string; total: number }>;
}

const summaryParameters = ['start_date', 'end_date', 'event_type', 'source', 'top_n'];

async function summary(db: ReadDatabase, call: ReadCall): Promise<unknown> {
  const params = QueryParameters.parse(call.query, summaryParameters);
  const range = dayRangeOf(params, dayRangeDaysDefault);
  const topN = params.integer('top_n', { min: 1, max: 100, fallback: 10 });
  const values: unknown[] = [dayText(range.first), dayText(range.last), topN];
  const where = equalityFilterSql(values, { event_type: params.text('event_type'), source: params.text('source') });
  // Ties in a top list go to the byte-smaller name, so the answer is the same every time.
  const sql = `WITH keys AS (
      SELECT event_type, source, sum(count) AS total FROM event_counts_daily
      WHERE day >= $1::date AND day <= $2::date${where} GROUP BY event_type, source),
    types AS (SELECT event_type, sum(total) AS total FROM keys GROUP BY event_type),
    sources AS (SELECT source, sum(total) AS total FROM keys GROUP BY source)
    SELECT (SELECT coalesce(sum(total), 0) FROM keys)::text AS total_events,
      (SELECT count(*) FROM types)::int AS unique_event_types,
      (SELECT count(*) FROM sources)::int AS unique_sources,
      (SELECT coalesce(json_agg(json_build_object('event_type', event_type, 'total', total) ORDER BY total DESC, event_type), '[]')
         FROM (SELECT * FROM types ORDER BY total DESC, event_type LIMIT $3) AS top) AS top_event_types,
      (SELECT coalesce(json_agg(json_build_object('source', source, 'total', total) ORDER BY total DESC, source), '[]')
         FROM (SELECT * FROM sources ORDER BY total DESC, source LIMIT $3) AS top) AS top_sources`;
  const [row] = await db.rows<SummaryRow>(sql, values);
  if (row === undefined) throw new Error('the summary statement returned no row');
  return {
    total_events: Number(row.total_events),
    unique_event_types: row.unique_event_types,
    unique_sources: row.unique_sources,
    top_event_types: row.top_event_types,
    top_sources: row.top_sources,
  };
}

// ---------------------------------------------------------------------------------------
// GET /v1/analytics/event-types

/** Types listed at most; the list is sorted, so a longer one is cut at the end. */
const eventTypesMax = 10_000;

async function eventTypes(db: ReadDatabase, call: ReadCall): Promise<unknown> {
  const params = QueryParameters.parse(call.query, ['start_date', 'end_date']);
  const range = dayRangeOf(params, dayRangeDaysMax);
  const rows = await db.rows<{ event_type: string }>(
    'SELECT DISTINCT event_type FROM event_counts_daily WHERE day >= $1::date AND day <= $2::date ORDER BY event_type LIMIT $3',
    [dayText(range.first), dayText(range.last), eventTypesMax],
  );
  return rows.map((row) => row.event_type);
}

// ---------------------------------------------------------------------------------------
// GET /v1/analytics/events/raw

interface RawRow {
  event_id: string;
  event_type: string;
  actor_id: string | null;
  source: string;
  occurred_us: string;
  attributes: unknown;
  received_us: string;
}

const rawParameters = ['since', 'until', 'event_type', 'actor_id', 'source', 'limit'];
const rawLimit = { min: 1, max: 5_000, fallback: 100 };
/** The widest raw window, as EventFlux had it: wider reads belong to the rollup routes or GET /v1/events. */
const rawWindowUsMax = hourUs;

async function raw(db: ReadDatabase, call: ReadCall): Promise<unknown> {
  const params = QueryParameters.parse(call.query, rawParameters);
  const window = rawWindowOf(params);
  const limit = params.integer('limit', rawLimit);
  const values: unknown[] = [isoOfMicros(window.sinceUs), isoOfMicros(window.untilUs)];
  const where = equalityFilterSql(values, { event_type: params.text('event_type'), actor_id: params.text('actor_id'), source: params.text('source') });
  // Microseconds as integers: a JavaScript Date would keep only milliseconds.
  const sql = `SELECT event_id, event_type, actor_id, source, attributes,
      (extract(epoch FROM occurred_at) * 1000000)::int8::text AS occurred_us,
      (extract(epoch FROM received_at) * 1000000)::int8::text AS received_us
    FROM events WHERE occurred_at >= $1::timestamptz AND occurred_at < $2::timestamptz${where}
    ORDER BY occurred_at DESC, event_id DESC LIMIT $${values.push(limit)}`;
  const rows = await db.rows<RawRow>(sql, values);
  return rows.map((row) => ({
    event_id: row.event_id,
    event_type: row.event_type,
    actor_id: row.actor_id,
    source: row.source,
    timestamp: isoOfMicros(Number(row.occurred_us)),
    attributes: row.attributes,
    ingested_at: isoOfMicros(Number(row.received_us)),
  }));
}

/**
 * [since, until), at most one hour. Both absent: the last hour. One given: the hour
 * starting (since) or ending (until) there. A naive date-time is UTC (EventFlux answered
 * 500), and until before since is a 400 naming until (EventFlux answered []).
 */
function rawWindowOf(params: QueryParameters): { sinceUs: number; untilUs: number } {
  const givenSince = params.instantUs('since', { naiveIsUtc: true });
  const givenUntil = params.instantUs('until', { naiveIsUtc: true });
  const untilUs = givenUntil ?? (givenSince === null ? Date.now() * 1000 : givenSince + rawWindowUsMax);
  const sinceUs = givenSince ?? untilUs - rawWindowUsMax;
  if (untilUs < sinceUs) throw badParameter('until', `until ${isoOfMicros(untilUs)} is before since ${isoOfMicros(sinceUs)}`);
  if (untilUs - sinceUs > rawWindowUsMax) {
    throw badParameter('until', 'since to until spans more than one hour; narrow it, or use /v1/analytics/events/daily or GET /v1/events for longer ranges');
  }
  return { sinceUs, untilUs };
}
