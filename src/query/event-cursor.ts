/**
 * What GET /v1/events reads: the window, filters and order of a request, the keyset
 * cursor that continues it, and the one SQL statement every page runs.
 *
 *   order    rows sorted by (occurred_at, event_id), newest first (desc) or oldest first
 *   page     rows strictly after the cursor's key in that order: a key is unique (it is
 *            the primary key), so a page never repeats a row of an earlier one and never
 *            skips one that sorts after the cursor, ties on occurred_at included
 *   cursor   base64url of `e1|order|from µs|to µs|last µs|last event_id|check`
 *
 * The cursor fixes the window its first page resolved (a defaulted "last 24 h" does not
 * slide while a client pages). `check` hashes the filters with every other field, so a
 * cursor sent with other filters, or cut short by a copy and paste, is refused instead
 * of answering a question nobody asked. It is a checksum, not a signature: a cursor
 * grants nothing the caller could not ask for directly (docs/decisions/0023-read-indexes.md).
 */
import { createHash } from 'node:crypto';
import { badParameter, isoOfMicros, type QueryParameters } from './query-parameters';
import { equalityFilterSql } from './read-database';

export type EventOrder = 'asc' | 'desc';

/** A row's position: (occurred_at, event_id), unique because it is the primary key. */
export interface EventKey {
  readonly occurredAtUs: number;
  readonly eventId: string;
}

export interface EventFilters {
  readonly eventType: string | null;
  readonly source: string | null;
  readonly actorId: string | null;
}

export interface EventQuery {
  /** The window [fromUs, toUs) on occurred_at, in µs since the epoch. */
  readonly fromUs: number;
  readonly toUs: number;
  readonly filters: EventFilters;
  readonly order: EventOrder;
  /** Only rows after this key in `order`; null starts at the window's edge. */
  readonly after: EventKey | null;
}

export const eventParameterNames = ['from', 'to', 'event_type', 'source', 'actor_id', 'limit', 'cursor', 'order'] as const;

const microsPerDay = 86_400_000_000;
/** The window when neither `from` nor `to` is given: the last day. */
const windowDefaultUs = microsPerDay;
/**
 * Instants from 1970 to 2200: partitions start in 1970, and µs since the epoch stay
 * exact integers in a double well past 2200 (2^53 µs is in 2255).
 */
const instantUsMax = Date.UTC(2200, 0, 1) * 1000;
/** Event field limits (docs/api.md, Event fields): a longer filter could match nothing. */
const filterCharsMax = { event_type: 128, source: 64, actor_id: 256 } as const;
const eventIdCharsMax = 128;
const cursorCharsMax = 1024;
const cursorVersion = 'e1';

/**
 * Reads the window, filters, order and cursor. `windowDaysMax` bounds `to - from`
 * (pages and exports differ); `nowUs` is the default `to`.
 */
export function parseEventQuery(params: QueryParameters, options: { readonly nowUs: number; readonly windowDaysMax: number }): EventQuery {
  const filters: EventFilters = {
    eventType: params.text('event_type', filterCharsMax.event_type),
    source: params.text('source', filterCharsMax.source),
    actorId: params.text('actor_id', filterCharsMax.actor_id),
  };
  const order = params.choice<EventOrder>('order', ['desc', 'asc'], 'desc');
  const fromGiven = instantOf(params, 'from');
  const toGiven = instantOf(params, 'to');
  const cursorText = params.text('cursor', cursorCharsMax);
  if (cursorText !== null) {
    const query = continuedQuery(cursorText, filters, order, fromGiven, toGiven);
    // An export's cursor (a year's window) may continue as pages only within their bound.
    if (query.toUs - query.fromUs > options.windowDaysMax * microsPerDay) throw badCursor(`the cursor's window is wider than the ${options.windowDaysMax} days allowed here`);
    return query;
  }
  const toUs = toGiven ?? options.nowUs;
  const fromUs = fromGiven ?? toUs - windowDefaultUs;
  if (fromUs >= toUs) throw badParameter(toGiven !== null ? 'to' : 'from', `to (${isoOfMicros(toUs)}) must be later than from (${isoOfMicros(fromUs)})`);
  if (toUs - fromUs > options.windowDaysMax * microsPerDay) {
    throw badParameter('from', `the window from ${isoOfMicros(fromUs)} to ${isoOfMicros(toUs)} is wider than ${options.windowDaysMax} days; narrow it or page through several windows`);
  }
  return { fromUs, toUs, filters, order, after: null };
}

function instantOf(params: QueryParameters, name: 'from' | 'to'): number | null {
  const us = params.instantUs(name);
  if (us !== null && !(us >= 0 && us < instantUsMax)) throw badParameter(name, `${name} must lie between 1970-01-01 and 2200-01-01`);
  return us;
}

/** A page after the first: the cursor decides the window, and must match what was sent. */
function continuedQuery(text: string, filters: EventFilters, order: EventOrder, fromGiven: number | null, toGiven: number | null): EventQuery {
  const cursor = decodeEventCursor(text);
  if (cursor === null) throw badCursor('the cursor is malformed; send next_cursor exactly as a previous answer gave it');
  if (cursor.order !== order) throw badCursor(`the cursor was made for order=${cursor.order}; send the same order with it`);
  if ((fromGiven !== null && fromGiven !== cursor.fromUs) || (toGiven !== null && toGiven !== cursor.toUs)) {
    throw badCursor(`the cursor was made for the window ${isoOfMicros(cursor.fromUs)} to ${isoOfMicros(cursor.toUs)}; leave from and to out or send those`);
  }
  const query: EventQuery = { fromUs: cursor.fromUs, toUs: cursor.toUs, filters, order, after: cursor.after };
  if (cursor.check !== checkOf(query, cursor.after)) {
    throw badCursor('the cursor was made for other filters, or was altered; send it as given, with event_type, source and actor_id as on the first page');
  }
  return query;
}

function badCursor(message: string): Error {
  return badParameter('cursor', message, 'ERR_QUERY_BAD_CURSOR');
}

interface DecodedCursor {
  readonly order: EventOrder;
  readonly fromUs: number;
  readonly toUs: number;
  readonly after: EventKey;
  readonly check: string;
}

/** The cursor continuing `query` after `last`. */
export function encodeEventCursor(query: EventQuery, last: EventKey): string {
  const fields = [cursorVersion, query.order === 'asc' ? 'a' : 'd', query.fromUs, query.toUs, last.occurredAtUs, last.eventId, checkOf(query, last)];
  return Buffer.from(fields.join('|'), 'utf8').toString('base64url');
}

// The event id may hold '|': it is matched greedily, and the check after it has none.
const cursorPattern = /^e1\|([ad])\|(\d{1,16})\|(\d{1,16})\|(\d{1,16})\|(.+)\|([\w-]{22})$/s;

/** The cursor's parts, or null when the text is not a cursor this route made. */
export function decodeEventCursor(text: string): DecodedCursor | null {
  if (!/^[\w-]+$/.test(text)) return null;
  const match = cursorPattern.exec(Buffer.from(text, 'base64url').toString('utf8'));
  if (match === null) return null;
  const [fromUs, toUs, lastUs] = [Number(match[2]), Number(match[3]), Number(match[4])];
  const eventId = match[5] as string;
  // A key outside its own window, or an id no event can have, was not made here.
  if (!(fromUs < toUs && toUs <= instantUsMax && lastUs >= fromUs && lastUs < toUs) || eventId.length > eventIdCharsMax) return null;
  return { order: match[1] === 'a' ? 'asc' : 'desc', fromUs, toUs, after: { occurredAtUs: lastUs, eventId }, check: match[6] as string };
}

/**
 * 128 bits of SHA-256 over the filters and every field of the cursor: enough to tell two
 * filter sets, or a cursor and a damaged copy of it, apart. No secret goes in (no
 * signature is needed, and none would survive a restart or another node).
 */
function checkOf(query: EventQuery, last: EventKey): string {
  const { eventType, source, actorId } = query.filters;
  const text = JSON.stringify([cursorVersion, query.order, query.fromUs, query.toUs, eventType, source, actorId, last.occurredAtUs, last.eventId]);
  return createHash('sha256').update(text, 'utf8').digest().toString('base64url', 0, 16);
}

// SQL -------------------------------------------------------------------------------------

const isoUtc = (column: string): string => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * One stored event as compact JSON text, made by PostgreSQL: an export's rows never
 * become JS objects (docs/decisions/0023-read-indexes.md, "Export"), and attributes keep
 * the digits jsonb stored (integers past 2^53 included), which a JSON.parse would round.
 */
export const eventJsonSql =
  `'{"event_id":' || to_json(event_id) || ',"event_type":' || to_json(event_type) || ',"source":' || to_json(source)` +
  ` || ',"actor_id":' || coalesce(to_json(actor_id)::text, 'null') || ',"timestamp":"' || ${isoUtc('occurred_at')}` +
  ` || '","received_at":"' || ${isoUtc('received_at')} || '","attributes":' || attributes::text || '}'`;

export interface PageStatement {
  readonly text: string;
  readonly values: readonly unknown[];
}

/** What one page statement returns: always exactly one row. */
export interface PageRow {
  /** Rows found, up to pageRows + 1 (one more than the page says another page exists). */
  readonly row_count: number;
  /** The page's rows as JSON text joined by the separator; null when there are none. */
  readonly body: string | null;
  /** The key of the page's last row when another page exists (int8 arrives as text). */
  readonly last_us: string | null;
  readonly last_event_id: string | null;
}

/**
 * Up to `pageRows` rows after `query.after`, as one text (the rows joined by `separator`),
 * plus whether more exist and the last row's key. One row more than the page is read to
 * learn whether another page exists; rows are numbered in the index's order, so the
 * numbering costs no sort and the join sorts only the page. The window on occurred_at
 * prunes the day partitions; the row comparison starts the index scan at the cursor
 * (checked with EXPLAIN in test/query/event-export.test.ts).
 */
export function pageStatement(query: EventQuery, pageRows: number, separator: string): PageStatement {
  const values: unknown[] = [isoOfMicros(query.fromUs), isoOfMicros(query.toUs)];
  const { eventType, source, actorId } = query.filters;
  const conditions = [`occurred_at >= $1::timestamptz AND occurred_at < $2::timestamptz${equalityFilterSql(values, { event_type: eventType, source, actor_id: actorId })}`];
  const [direction, comparison] = query.order === 'desc' ? ['DESC', '<'] : ['ASC', '>'];
  if (query.after !== null) {
    const at = values.push(isoOfMicros(query.after.occurredAtUs));
    const id = values.push(query.after.eventId);
    // event_id compares as bytes (COLLATE "C", decision 0007), as the index orders it.
    conditions.push(`(occurred_at, event_id) ${comparison} ($${at}::timestamptz, $${id}::text COLLATE "C")`);
  }
  const order = `occurred_at ${direction}, event_id ${direction}`;
  const limit = values.push(pageRows + 1);
  const rows = values.push(pageRows);
  const joiner = values.push(separator);
  const text =
    `WITH page AS MATERIALIZED (
       SELECT row_number() OVER (ORDER BY ${order}) AS n, occurred_at, event_id, ${eventJsonSql} AS line
         FROM events WHERE ${conditions.join(' AND ')}
        ORDER BY ${order} LIMIT $${limit})
     SELECT count(*)::int AS row_count,
            string_agg(line, $${joiner} ORDER BY n) FILTER (WHERE n <= $${rows}) AS body,
            max((extract(epoch FROM occurred_at) * 1000000)::int8) FILTER (WHERE n = $${rows})::text AS last_us,
            max(event_id) FILTER (WHERE n = $${rows}) AS last_event_id
       FROM page`;
  return { text, values };
}

/** The key after which the next page starts, or null when this page is the last. */
export function nextKeyOf(row: PageRow, pageRows: number): EventKey | null {
  if (row.row_count <= pageRows || row.last_us === null || row.last_event_id === null) return null;
  return { occurredAtUs: Number(row.last_us), eventId: row.last_event_id };
}
