/**
 * Reading and settling rows of `dead_letters` (written by src/sink/dead-letters.ts when
 * PostgreSQL refuses an event) for the dead-letter API and `floodgate dlq`.
 *
 *   list          newest first, keyset pagination on id (cursor = "ids below N")
 *   replay page   oldest first, unreplayed only (cursor = "ids above N"), so a replay of
 *                 everything goes through the table in the order events failed
 *   settle        committed/duplicate → replayed_at = now(), attempts + 1
 *                 rejected            → attempts + 1
 *                 dead-lettered again → the new row the sink just wrote is folded into
 *                                       the old one (deleted; old row attempts + 1 and
 *                                       the new reason), so one poison event stays one row
 *
 * Ids are bigint in PostgreSQL and travel as decimal strings here: pg returns int8 as
 * text, and a string never loses precision.
 */
import { isDeepStrictEqual } from 'node:util';
import type pg from 'pg';
import { openStorePool } from '../sink/database';
import type { ErrorCode } from '../errors';

export interface DeadLetterRecord {
  /** Decimal id (bigint). */
  readonly id: string;
  readonly failedAt: Date;
  /** SQLSTATE of the refusal. */
  readonly reasonCode: string;
  readonly reason: string;
  readonly eventId: string | null;
  /** The event as UTF-8 JSON (see src/sink/dead-letters.ts), or whatever bytes the row holds. */
  readonly payload: Buffer;
  readonly attempts: number;
  readonly replayedAt: Date | null;
}

export interface DeadLetterListQuery {
  /** Rows per page, 1..listLimitMax. */
  readonly limit: number;
  /** Only ids below this one (the decoded list cursor), or null for the newest. */
  readonly beforeId: string | null;
  readonly reasonCode: string | null;
  /** true: only replayed rows; false: only unreplayed ones; null: both. */
  readonly replayed: boolean | null;
}

export interface DeadLetterPage {
  readonly records: readonly DeadLetterRecord[];
  /** Cursor for the next page, or null when this page is the last. */
  readonly nextCursor: string | null;
}

export interface ReplayPage {
  readonly records: readonly DeadLetterRecord[];
  /** Cursor to continue after this page, or null when no unreplayed row is left after it. */
  readonly nextCursor: string | null;
}

export const listLimitDefault = 100;
export const listLimitMax = 1000;
/** Most dead letters one replay call handles (ids given, or one page of `all`). */
export const replayBatchMax = 5000;
/** Connections the API holds: reads and settles are short, one replay at a time is normal. */
const poolConnectionsMax = 2;
/** The largest bigint, the upper bound of a bigserial id. */
const idMax = 9_223_372_036_854_775_807n;

const columns = 'id, failed_at, reason_code, reason, event_id, payload, attempts, replayed_at';

interface DeadLetterRow {
  id: string;
  failed_at: Date;
  reason_code: string;
  reason: string;
  event_id: string | null;
  payload: Buffer;
  attempts: number;
  replayed_at: Date | null;
}

export class DeadLetterStore {
  readonly #pool: pg.Pool;

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** A store with its own small pool; close() ends it. */
  static open(connectionString: string): DeadLetterStore {
    return new DeadLetterStore(openStorePool({ connectionString, max: poolConnectionsMax, application_name: 'floodgate-dead-letters' }));
  }

  async list(query: DeadLetterListQuery): Promise<DeadLetterPage> {
    const conditions: string[] = [];
    const values: unknown[] = [];
    if (query.beforeId !== null) conditions.push(`id < $${values.push(query.beforeId)}`);
    if (query.reasonCode !== null) conditions.push(`reason_code = $${values.push(query.reasonCode)}`);
    if (query.replayed !== null) conditions.push(`replayed_at IS ${query.replayed ? 'NOT ' : ''}NULL`);
    const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    // One row more than asked tells whether another page exists without a count(*).
    const sql = `SELECT ${columns} FROM dead_letters ${where} ORDER BY id DESC LIMIT $${values.push(query.limit + 1)}`;
    const rows = (await this.#pool.query<DeadLetterRow>(sql, values)).rows;
    const records = rows.slice(0, query.limit).map(recordOf);
    const last = records.at(-1);
    return { records, nextCursor: rows.length > query.limit && last !== undefined ? encodeCursor('list', last.id) : null };
  }

  /** The rows with these ids, in id order; ids without a row are simply absent. */
  async fetchByIds(ids: readonly string[]): Promise<DeadLetterRecord[]> {
    if (ids.length === 0) return [];
    const result = await this.#pool.query<DeadLetterRow>(`SELECT ${columns} FROM dead_letters WHERE id = ANY($1::bigint[]) ORDER BY id`, [ids]);
    return result.rows.map(recordOf);
  }

  /** Up to `limit` unreplayed rows with ids above `afterId`, oldest first. */
  async fetchReplayPage(afterId: string | null, reasonCode: string | null, limit: number): Promise<ReplayPage> {
    const values: unknown[] = [afterId ?? '0', limit + 1];
    const byReason = reasonCode === null ? '' : `AND reason_code = $${values.push(reasonCode)}`;
    const sql = `SELECT ${columns} FROM dead_letters WHERE replayed_at IS NULL AND id > $1 ${byReason} ORDER BY id LIMIT $2`;
    const rows = (await this.#pool.query<DeadLetterRow>(sql, values)).rows;
    const records = rows.slice(0, limit).map(recordOf);
    const last = records.at(-1);
    return { records, nextCursor: rows.length > limit && last !== undefined ? encodeCursor('replay', last.id) : null };
  }

  /** The highest id so far: rows the sink writes from now on have larger ids. */
  async highestId(): Promise<string> {
    const result = await this.#pool.query<{ id: string }>('SELECT coalesce(max(id), 0)::text AS id FROM dead_letters');
    return result.rows[0]?.id ?? '0';
  }

  /** Replay stored or found the event: the row is done. Rows already marked are left alone. */
  async markReplayed(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.#pool.query(
      'UPDATE dead_letters SET replayed_at = now(), attempts = attempts + 1 WHERE id = ANY($1::bigint[]) AND replayed_at IS NULL',
      [ids],
    );
  }

  /** Replay was refused at validation: the row stays, one more attempt counted. */
  async countAttempt(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.#pool.query('UPDATE dead_letters SET attempts = attempts + 1 WHERE id = ANY($1::bigint[]) AND replayed_at IS NULL', [ids]);
  }

  /**
   * PostgreSQL refused replayed events again, and the sink stored each as a new row (it
   * cannot know the event came from a replay). Each new row above `watermarkId` holding
   * the same event is deleted and its reason moved onto the old row, whose attempts grow
   * by one; the old row keeps its id and first failed_at, so cursors and links stay valid.
   * Returns how many new rows were folded in.
   */
  async foldFailedAgain(records: readonly DeadLetterRecord[], watermarkId: string): Promise<number> {
    if (records.length === 0) return 0;
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      const eventIds = [...new Set(records.map((record) => record.eventId).filter((id) => id !== null))];
      const candidates = await client.query<DeadLetterRow>(
        `SELECT ${columns} FROM dead_letters WHERE id > $1 AND event_id = ANY($2::text[]) AND replayed_at IS NULL ORDER BY id FOR UPDATE`,
        [watermarkId, eventIds],
      );
      const newer = matchNewRows(records, candidates.rows.map(recordOf));
      await client.query('DELETE FROM dead_letters WHERE id = ANY($1::bigint[])', [newer.flatMap((row) => (row === null ? [] : [row.id]))]);
      await client.query(
        `UPDATE dead_letters AS d
            SET attempts = d.attempts + 1, reason_code = coalesce(v.code, d.reason_code), reason = coalesce(v.reason, d.reason)
           FROM unnest($1::bigint[], $2::text[], $3::text[]) AS v(id, code, reason)
          WHERE d.id = v.id`,
        [records.map((record) => record.id), newer.map((row) => row?.reasonCode ?? null), newer.map((row) => row?.reason ?? null)],
      );
      await client.query('COMMIT');
      return newer.filter((row) => row !== null).length;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/**
 * For each old row, the new row holding the same event, or null. Only the receipt time
 * may differ (the replay is a new receipt); validation re-encodes attributes, so parsed
 * JSON is compared rather than bytes. A new row is matched once, to the oldest old row
 * first; none is found when someone already removed it. Candidates are parsed once and
 * grouped by event id, so a page of 5000 costs 5000 parses, not 5000².
 */
function matchNewRows(records: readonly DeadLetterRecord[], candidates: readonly DeadLetterRecord[]): Array<DeadLetterRecord | null> {
  const byEventId = new Map<string, Array<{ row: DeadLetterRecord; event: Record<string, unknown> }>>();
  for (const row of candidates) {
    const parsed = parsePayload(row.payload);
    if (parsed === null || row.eventId === null) continue;
    const group = byEventId.get(row.eventId) ?? [];
    group.push({ row, event: withoutReceipt(parsed) });
    byEventId.set(row.eventId, group);
  }
  const taken = new Set<string>();
  return records.map((record) => {
    const stored = parsePayload(record.payload);
    if (stored === null || record.eventId === null) return null;
    const expected = withoutReceipt(stored);
    const match = byEventId.get(record.eventId)?.find(({ row, event }) => !taken.has(row.id) && BigInt(row.id) > BigInt(record.id) && isDeepStrictEqual(event, expected));
    if (match === undefined) return null;
    taken.add(match.row.id);
    return match.row;
  });
}

function withoutReceipt(payload: Record<string, unknown>): Record<string, unknown> {
  const { received_at_us: _receivedAtUs, ...rest } = payload;
  return rest;
}

function recordOf(row: DeadLetterRow): DeadLetterRecord {
  return {
    id: row.id,
    failedAt: row.failed_at,
    reasonCode: row.reason_code,
    reason: row.reason,
    eventId: row.event_id,
    payload: row.payload,
    attempts: row.attempts,
    replayedAt: row.replayed_at,
  };
}

// Cursors ---------------------------------------------------------------------------------

/**
 * Cursors are opaque to clients: base64url of "dl:<kind>:<id>". The kind keeps a list
 * cursor (ids below) from being mistaken for a replay cursor (ids above).
 */
export type CursorKind = 'list' | 'replay';

export function encodeCursor(kind: CursorKind, id: string): string {
  return Buffer.from(`dl:${kind}:${id}`, 'utf8').toString('base64url');
}

/** The id inside a cursor of this kind, or null when the text is not one. */
export function decodeCursor(kind: CursorKind, text: string): string | null {
  if (text.length === 0 || text.length > 64 || !/^[A-Za-z0-9_-]+$/.test(text)) return null;
  const match = /^dl:(list|replay):(\d+)$/.exec(Buffer.from(text, 'base64url').toString('utf8'));
  if (match === null || match[1] !== kind) return null;
  return parseId(match[2] as string);
}

/** A dead-letter id from client input (a JSON number or decimal text), or null. */
export function parseId(value: unknown): string | null {
  const text = typeof value === 'number' ? (Number.isSafeInteger(value) ? String(value) : '') : typeof value === 'string' ? value : '';
  if (!/^[1-9]\d{0,18}$/.test(text)) return null;
  return BigInt(text) <= idMax ? text : null;
}

/** SQLSTATE-shaped: five digits or upper-case letters (22P05, 23514, XX000). */
export function isReasonCode(text: string): boolean {
  return /^[0-9A-Z]{5}$/.test(text);
}

// Payloads --------------------------------------------------------------------------------

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The payload parsed as JSON when it is UTF-8 JSON text, else undefined (API shows base64). */
export function payloadJson(payload: Buffer): unknown {
  try {
    return JSON.parse(utf8.decode(payload)) as unknown;
  } catch {
    return undefined;
  }
}

/** The payload as a JSON object, or null when it is not UTF-8 JSON holding an object. */
export function parsePayload(payload: Buffer): Record<string, unknown> | null {
  const value = payloadJson(payload);
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

export type ReplayItem =
  | { readonly ok: true; readonly item: Record<string, unknown> }
  | { readonly ok: false; readonly error: { readonly code: ErrorCode; readonly field: string | null; readonly message: string } };

/**
 * Turns a stored payload back into the event a client would send, so that replay goes
 * through the same validation as any request. The timestamp is written with all six
 * fraction digits: the replay must land on exactly the same (event_id, occurred_at) key
 * as the original, or dedupe would not recognise it.
 */
export function replayItemOf(payload: Buffer): ReplayItem {
  const stored = parsePayload(payload);
  if (stored === null) return refused('ERR_EVENT_NOT_OBJECT', null, 'the dead letter payload is not a UTF-8 JSON object');
  if ('attributes_text' in stored) return refused('ERR_EVENT_ATTRIBUTES_INVALID', 'attributes', 'the attributes were not valid JSON when stored; there is no event to replay');
  const occurredAtUs = stored.occurred_at_us;
  if (typeof occurredAtUs !== 'number' || !Number.isSafeInteger(occurredAtUs) || occurredAtUs < 0) {
    return refused('ERR_EVENT_TIMESTAMP_FORMAT', 'timestamp', 'the dead letter payload has no valid occurred_at_us');
  }
  const item: Record<string, unknown> = {
    event_id: stored.event_id,
    event_type: stored.event_type,
    source: stored.source,
    timestamp: isoMicroseconds(occurredAtUs),
    attributes: stored.attributes,
  };
  if (stored.actor_id !== null && stored.actor_id !== undefined) item.actor_id = stored.actor_id;
  return { ok: true, item };
}

function refused(code: ErrorCode, field: string | null, message: string): ReplayItem {
  return { ok: false, error: { code, field, message } };
}

/** `YYYY-MM-DDTHH:MM:SS.ffffffZ` for a time in µs since the epoch (0 or later). */
export function isoMicroseconds(us: number): string {
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, iso.indexOf('.'))}.${String(us % 1_000_000).padStart(6, '0')}Z`;
}
