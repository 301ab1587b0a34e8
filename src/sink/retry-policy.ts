import { staleSubscriptionsSqlState } from '../delivery/delivery-schema';

/**
 * The one place that decides what a database error means for the sink. Every other module
 * asks `classifyDatabaseError` and acts on the answer; none of them look at SQLSTATEs.
 *
 * Rule table (first match wins):
 *
 * | error                                                  | class               | the sink does            |
 * | ------------------------------------------------------ | ------------------- | ------------------------ |
 * | 23505 unique_violation                                 | duplicate           | redo via staging table   |
 * | FG001 the batch's subscription snapshot is stale       | stale-subscriptions | reload them, redo rows   |
 * |   (floodgate_fanout_check, src/sink/fan-out.ts)        |                     |   (bounded, then throw)  |
 * | 22P04 bad_copy_file_format, 08P01 protocol_violation   | fatal               | throw (our encoder bug)  |
 * | class 08 connection exception                          | transient           | throw, caller retries    |
 * | 40001 serialization, 40P01 deadlock, 40003 unknown end | transient           | throw, caller retries    |
 * | class 53 insufficient resources (disk, memory, conns)  | transient           | throw, caller retries    |
 * | 57P01 admin / 57P02 crash shutdown, 57P03 cannot       |                     |                          |
 * |   connect now, 57014 query canceled                    | transient           | throw, caller retries    |
 * | 55P03 lock_not_available, class 58 system / io error   | transient           | throw, caller retries    |
 * | class 22 data exception (bad UTF-8, NUL, \u0000 in     |                     |                          |
 * |   jsonb, timestamp out of range, …)                    | row-data            | bisect, dead-letter row  |
 * | class 23 other than 23505 (not null, check, no         |                     |                          |
 * |   partition for the row = 23514)                       | row-data            | bisect, dead-letter row  |
 * | class 54 program limit (jsonb too big, nesting)        | row-data            | bisect, dead-letter row  |
 * | Node network codes (ECONNREFUSED, ECONNRESET, EPIPE,   |                     |                          |
 * |   ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, EAI_AGAIN, …)  | transient           | throw, caller retries    |
 * | anything else (42xxx, XX000, no code at all)           | fatal               | throw, never bisect      |
 *
 * Row-data errors are the ones a single row can cause on its own, so bisecting the batch is
 * guaranteed to find the culprit; a fatal error would fail every half too, and bisecting it
 * would only dead-letter good events. Protocol and COPY-format errors are in class 08 and 22
 * but mean our own bytes are wrong for every row, so they are fatal, not transient or row-data.
 * pg reports a dropped socket as "Connection terminated unexpectedly" without a code; the
 * batch writer attaches 08006 (connection_failure) to such errors before they reach here.
 * A stale snapshot is its own class because each meaning of the others would be wrong for
 * it: nothing is wrong with the rows (not row-data), nor with the database (not transient,
 * so it never trips the ingest breaker), and the same rows succeed at once after a reload.
 */
export type DatabaseErrorClass = 'transient' | 'row-data' | 'duplicate' | 'stale-subscriptions' | 'fatal';

const transientNodeCodes: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
]);

const transientSqlStates: ReadonlySet<string> = new Set([
  '40001',
  '40P01',
  '40003',
  '57P01',
  '57P02',
  '57P03',
  '57014',
  '55P03',
]);

const fatalSqlStates: ReadonlySet<string> = new Set(['22P04', '08P01']);

/** SQLSTATEs are exactly five characters of digits and upper-case letters. */
const sqlStatePattern = /^[0-9A-Z]{5}$/;

export function errorCodeOf(error: unknown): string | null {
  if (typeof error !== 'object' || error === null) return null;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : null;
}

export function classifyDatabaseError(error: unknown): DatabaseErrorClass {
  const code = errorCodeOf(error);
  if (code === null) return 'fatal';
  if (transientNodeCodes.has(code)) return 'transient';
  if (!sqlStatePattern.test(code)) return 'fatal';
  if (code === '23505') return 'duplicate';
  if (code === staleSubscriptionsSqlState) return 'stale-subscriptions';
  if (fatalSqlStates.has(code)) return 'fatal';
  if (transientSqlStates.has(code)) return 'transient';
  const sqlClass = code.slice(0, 2);
  if (sqlClass === '08' || sqlClass === '53' || sqlClass === '58') return 'transient';
  if (sqlClass === '22' || sqlClass === '23' || sqlClass === '54') return 'row-data';
  return 'fatal';
}

/** First retry waits about this long; each further attempt doubles it… */
export const backoffBaseMs = 50;
/** …up to this ceiling, so a long outage is probed every couple of seconds, not minutes. */
export const backoffCeilingMs = 2_000;

/**
 * Delay before retry number `attempt` (0 = the first retry): 50 ms × 2^attempt capped at 2 s,
 * with "equal jitter" — half the delay fixed, half random — so actors that failed together
 * do not hammer a recovering database in lock step, yet none retries almost immediately.
 * `random` is injectable so tests can pin the bounds.
 */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  if (!Number.isInteger(attempt) || attempt < 0) {
    throw new RangeError(`backoffMs: attempt must be a non-negative integer, got ${attempt}`);
  }
  // 2^6 × 50 already exceeds the ceiling; clamping the exponent keeps the maths finite.
  const ceilingMs = Math.min(backoffCeilingMs, backoffBaseMs * 2 ** Math.min(attempt, 16));
  const halfMs = ceilingMs / 2;
  return Math.round(halfMs + random() * halfMs);
}
