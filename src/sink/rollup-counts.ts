import assert from 'node:assert/strict';
import pg from 'pg';
import { RingEvent } from '../ring/envelope-reader';
import type { RowEvent } from './batch-rows';

/**
 * One batch's rollup counts: how many of the rows this writer inserted fall in each UTC
 * minute and UTC day, by (event_type, source). The writer adds only the rows it knows its
 * transaction inserted (all of them on the COPY path, the ones `RETURNING` named on the
 * staging path) and sends `upsertSql()` in that same transaction, so the rollup tables
 * count exactly the committed rows: a rolled-back attempt takes its counts with it
 * (docs/decisions/0021-rollups-in-the-write-transaction.md).
 *
 *   rows ──add()──▶ minute → type → source → count   (a few groups per batch)
 *                      │ upsertSql()
 *                      ▼
 *   INSERT INTO event_counts_minute … ON CONFLICT … DO UPDATE SET count = count + EXCLUDED.count;
 *   INSERT INTO event_counts_daily  … (the minutes summed by day)
 *
 * Every row carries the writer's `shard` (its actor index), so two actors never update one
 * row and never queue behind each other's row locks; readers sum the shards.
 *
 * Types and sources are grouped by their stored bytes, read as latin1 (one JS char per
 * byte: a distinct key per distinct byte string, and no UTF-8 decoding per row); a run of
 * rows with the type and source of the row before reuses its keys without reading them.
 */
export class RollupCounts {
  readonly #shard: number;
  readonly #minutes = new Map<number, Map<string, Map<string, number>>>();
  #rowCount = 0;
  #previous: RowEvent | null = null;
  #previousType = '';
  #previousSource = '';

  constructor(shard: number) {
    assert.ok(Number.isInteger(shard) && shard >= 0 && shard <= 32_767, 'RollupCounts: shard out of smallint range');
    this.#shard = shard;
  }

  get rowCount(): number {
    return this.#rowCount;
  }

  reset(): void {
    this.#minutes.clear();
    this.#rowCount = 0;
    this.#previous = null;
  }

  add(event: RowEvent): void {
    this.#keysOf(event);
    const minute = Math.floor(event.occurredAtUs / microsecondsPerMinute);
    let types = this.#minutes.get(minute);
    if (types === undefined) this.#minutes.set(minute, (types = new Map()));
    let sources = types.get(this.#previousType);
    if (sources === undefined) types.set(this.#previousType, (sources = new Map()));
    sources.set(this.#previousSource, (sources.get(this.#previousSource) ?? 0) + 1);
    this.#rowCount += 1;
  }

  /** Both upserts as one SQL string (two statements), or '' when no row was added. */
  upsertSql(): string {
    if (this.#rowCount === 0) return '';
    const minuteValues: string[] = [];
    const days = new Map<string, Map<string, number>>();
    for (const [minute, types] of this.#minutes) {
      const bucket = new Date(minute * millisecondsPerMinute).toISOString();
      const day = bucket.slice(0, 10);
      let dayGroups = days.get(day);
      if (dayGroups === undefined) days.set(day, (dayGroups = new Map()));
      for (const [type, sources] of types) {
        const typeLiteral = literalOf(type);
        for (const [source, count] of sources) {
          // Type then source, both quoted literals: the pair is one unambiguous key.
          const group = `${typeLiteral},${literalOf(source)}`;
          minuteValues.push(`('${bucket}',${group},${this.#shard},${count})`);
          dayGroups.set(group, (dayGroups.get(group) ?? 0) + count);
        }
      }
    }
    const dayValues: string[] = [];
    for (const [day, dayGroups] of days) {
      for (const [group, count] of dayGroups) dayValues.push(`('${day}',${group},${this.#shard},${count})`);
    }
    return `${upsertHead('event_counts_minute', 'bucket')}${minuteValues.join(',')}${upsertTail('bucket')};` +
      `${upsertHead('event_counts_daily', 'day')}${dayValues.join(',')}${upsertTail('day')}`;
  }

  /** Sets #previousType and #previousSource to the event's keys. */
  #keysOf(event: RowEvent): void {
    const previous = this.#previous;
    this.#previous = event;
    if (event instanceof RingEvent) {
      if (previous instanceof RingEvent && sameSpan(previous, event)) return;
      this.#previousType = event.bytes.toString('latin1', event.typeStart, event.typeEnd);
      this.#previousSource = event.bytes.toString('latin1', event.sourceStart, event.sourceEnd);
      return;
    }
    this.#previousType = Buffer.from(event.eventType, 'utf8').toString('latin1');
    this.#previousSource = Buffer.from(event.source, 'utf8').toString('latin1');
  }
}

const microsecondsPerMinute = 60_000_000;
const millisecondsPerMinute = 60_000;

/*
 * The VALUES are literals because the COPY path sends them in the COPY's own Query message
 * (a simple query cannot carry parameters). escapeLiteral doubles quotes and backslashes
 * and marks the latter E'…', so the text is safe whatever standard_conforming_strings says.
 */
function literalOf(latin1Key: string): string {
  const text = Buffer.from(latin1Key, 'latin1').toString('utf8');
  if (!text.includes('\u0000')) return pg.escapeLiteral(text);
  // A NUL would end the Query message's text early (a protocol violation that costs the
  // connection). Such a row cannot be stored, so its COPY fails first; should this
  // statement ever run, chr(0) fails it (54000) rather than count a different key.
  return `(${text.split('\u0000').map((part) => pg.escapeLiteral(part)).join('||chr(0)||')})`;
}

function upsertHead(table: string, bucketColumn: string): string {
  return `INSERT INTO ${table} AS c (${bucketColumn}, event_type, source, shard, count) VALUES `;
}

function upsertTail(bucketColumn: string): string {
  return ` ON CONFLICT (${bucketColumn}, event_type, source, shard) DO UPDATE SET count = c.count + EXCLUDED.count`;
}

function sameSpan(previous: RingEvent, event: RingEvent): boolean {
  return (
    event.bytes.compare(previous.bytes, previous.typeStart, previous.typeEnd, event.typeStart, event.typeEnd) === 0 &&
    event.bytes.compare(previous.bytes, previous.sourceStart, previous.sourceEnd, event.sourceStart, event.sourceEnd) === 0
  );
}

/*
 * Retention of the rollup tables (src/sink/partition-maintainer.ts): the rows of one UTC
 * day and one table per statement, so each DELETE is bounded (a day holds at most 1,440 ×
 * groups × shards minute rows) and holds its row locks briefly. Nobody else writes those
 * rows: the config loader keeps the retention at least as long as the accepted past.
 */
export const rollupTables = ['event_counts_minute', 'event_counts_daily'] as const;
export type RollupTable = (typeof rollupTables)[number];

const oldestDaySql: Readonly<Record<RollupTable, string>> = {
  event_counts_minute: 'SELECT floor(extract(epoch FROM min(bucket)) / 86400)::int AS day FROM event_counts_minute',
  event_counts_daily: "SELECT min(day) - date '1970-01-01' AS day FROM event_counts_daily",
};
const deleteDaySql: Readonly<Record<RollupTable, string>> = {
  // 24 hours, not '1 day': a day interval follows the session's TimeZone across DST.
  event_counts_minute: "DELETE FROM event_counts_minute WHERE bucket >= $1::timestamptz AND bucket < $1::timestamptz + interval '24 hours'",
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
