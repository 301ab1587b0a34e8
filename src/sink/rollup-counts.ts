import assert from 'node:assert/strict';
import pg from 'pg';
import { RingEvent } from '../ring/envelope-reader';
import type { RowEvent } from './batch-rows';

/**
 * One batch's rollup counts: how many of the rows this writer inserted fall in each UTC
 * minute, UTC hour and UTC day, by (event_type, source). The writer adds only the rows it
 * knows its transaction inserted (all of them on the COPY path, the ones `RETURNING` named
 * on the staging path) and sends `upsertSql()` in that same transaction, so the rollup
 * tables count exactly the committed rows: a rolled-back attempt takes its counts with it
 * (docs/decisions/0021-rollups-in-the-write-transaction.md).
 *
 *   rows ──add()──▶ (minute, key id) → count      key id: a (type, source) pair seen before
 *                      │ upsertSql()
 *                      ▼
 *   INSERT INTO event_counts_minute … ON CONFLICT … DO UPDATE SET count = count + EXCLUDED.count;
 *   INSERT INTO event_counts_hourly … (the minutes summed by hour);
 *   INSERT INTO event_counts_daily  … (the minutes summed by day; updated_at = now())
 *
 * Every row carries the writer's `shard` (its actor index), so two actors never update one
 * row and never queue behind each other's row locks; readers sum the shards.
 *
 * add() runs once per row on the actor thread, so a row costs a hash of its type and
 * source bytes read in place, one lookup among the pairs this writer has seen, and one
 * map update: no string is made per row (decision 0021 has the measurement).
 */
export class RollupCounts {
  readonly #shard: number;
  readonly #keys = new RollupKeys();
  /** minute × keySlots + key id → rows. */
  readonly #counts = new Map<number, number>();
  #rowCount = 0;

  constructor(shard: number) {
    assert.ok(Number.isInteger(shard) && shard >= 0 && shard <= 32_767, 'RollupCounts: shard out of smallint range');
    this.#shard = shard;
  }

  get rowCount(): number {
    return this.#rowCount;
  }

  reset(): void {
    this.#counts.clear();
    this.#rowCount = 0;
    // Key ids only need to hold within one batch; a table grown past its bound starts over.
    if (this.#keys.size >= keysKeptMax) this.#keys.clear();
  }

  add(event: RowEvent): void {
    const keyId = event instanceof RingEvent ? this.#keys.idOfSpans(event) : this.#keys.idOfText(event.eventType, event.source);
    const slot = Math.floor(event.occurredAtUs / microsecondsPerMinute) * keySlots + keyId;
    this.#counts.set(slot, (this.#counts.get(slot) ?? 0) + 1);
    this.#rowCount += 1;
  }

  /**
   * The three upserts as one SQL string (minute, hour, day), or '' when no row was added.
   * Hours and days are summed from the batch's minute slots, so their cost grows with the
   * slots, not the rows.
   */
  upsertSql(): string {
    if (this.#rowCount === 0) return '';
    const hours = new Map<number, number>();
    const days = new Map<number, number>();
    for (const [slot, count] of this.#counts) {
      const minute = Math.floor(slot / keySlots);
      const keyId = slot - minute * keySlots;
      addTo(hours, Math.floor(minute / minutesPerHour) * keySlots + keyId, count);
      addTo(days, Math.floor(minute / minutesPerDay) * keySlots + keyId, count);
    }
    const minuteValues = this.#valuesOf(this.#counts, (minute) => new Date(minute * millisecondsPerMinute).toISOString());
    const hourValues = this.#valuesOf(hours, (hour) => new Date(hour * millisecondsPerHour).toISOString());
    const dayValues = this.#valuesOf(days, (day) => new Date(day * millisecondsPerDay).toISOString().slice(0, 10));
    return `${upsertHead('event_counts_minute', 'bucket')}${minuteValues}${upsertTail('bucket')};` +
      `${upsertHead('event_counts_hourly', 'hour')}${hourValues}${upsertTail('hour')};` +
      `${upsertHead('event_counts_daily', 'day')}${dayValues}${upsertTail('day')}, updated_at = now()`;
  }

  /** `(bucket,'type','source',shard,count),…` for slots of (bucket number × keySlots + key id). */
  #valuesOf(slots: ReadonlyMap<number, number>, bucketText: (bucket: number) => string): string {
    const values: string[] = [];
    for (const [slot, count] of slots) {
      const bucket = Math.floor(slot / keySlots);
      values.push(`('${bucketText(bucket)}',${this.#keys.literalsOf(slot - bucket * keySlots)},${this.#shard},${count})`);
    }
    return values.join(',');
  }
}

function addTo(slots: Map<number, number>, slot: number, count: number): void {
  slots.set(slot, (slots.get(slot) ?? 0) + count);
}

/**
 * Key ids live in the low 20 bits of a slot number (minute × keySlots + id stays an exact
 * double for 17,000 years of minutes). The table is cleared between batches once it holds
 * keysKeptMax pairs, and one batch adds at most batchRowsMax (≤ 100,000) more, so ids stay
 * below keySlots.
 */
const keySlots = 2 ** 20;
const keysKeptMax = 4096;

interface RollupKey {
  /** Its index in the table's list, the id slots carry. */
  readonly id: number;
  readonly type: Buffer;
  readonly source: Buffer;
  /** `'type','source'` as SQL literals, made once per pair. */
  readonly literals: string;
}

/** The (event_type, source) pairs a writer has seen, found by a hash of their bytes. */
class RollupKeys {
  readonly #byHash = new Map<number, RollupKey[]>();
  readonly #keys: RollupKey[] = [];

  get size(): number {
    return this.#keys.length;
  }

  clear(): void {
    this.#byHash.clear();
    this.#keys.length = 0;
  }

  idOfSpans(event: RingEvent): number {
    const bytes = event.bytes;
    const hash = pairHashOf(event);
    const candidates = this.#byHash.get(hash);
    if (candidates !== undefined) {
      for (const key of candidates) {
        if (spanEquals(key.type, bytes, event.typeStart, event.typeEnd) && spanEquals(key.source, bytes, event.sourceStart, event.sourceEnd)) return key.id;
      }
    }
    return this.#add(hash, Buffer.from(bytes.subarray(event.typeStart, event.typeEnd)), Buffer.from(bytes.subarray(event.sourceStart, event.sourceEnd)));
  }

  /** The staging path's rows arrive as text: hashed as their UTF-8 bytes, the same key as in place. */
  idOfText(eventType: string, source: string): number {
    const type = Buffer.from(eventType, 'utf8');
    const sourceBytes = Buffer.from(source, 'utf8');
    const hash = hashSpan(sourceBytes, 0, sourceBytes.length, hashSpan(type, 0, type.length, fnvOffset));
    for (const key of this.#byHash.get(hash) ?? []) {
      if (key.type.equals(type) && key.source.equals(sourceBytes)) return key.id;
    }
    return this.#add(hash, type, sourceBytes);
  }

  literalsOf(id: number): string {
    return (this.#keys[id] as RollupKey).literals;
  }

  #add(hash: number, type: Buffer, source: Buffer): number {
    assert.ok(this.#keys.length < keySlots, 'RollupCounts: more distinct (event_type, source) pairs than key slots');
    const key: RollupKey = { id: this.#keys.length, type, source, literals: `${literalOf(type)},${literalOf(source)}` };
    this.#keys.push(key);
    const candidates = this.#byHash.get(hash);
    if (candidates === undefined) this.#byHash.set(hash, [key]);
    else candidates.push(key);
    return key.id;
  }
}

const fnvOffset = 0x811c9dc5;
const fnvPrime = 0x01000193;

/** The hash of a ring event's (event_type, source) pair, read in place: the key of the pair caches here and in ./fan-out.ts. */
export function pairHashOf(event: RingEvent): number {
  const bytes = event.bytes;
  return hashSpan(bytes, event.sourceStart, event.sourceEnd, hashSpan(bytes, event.typeStart, event.typeEnd, fnvOffset));
}

/** 32-bit FNV-1a over bytes[start, end), continuing from `hash`; a 0xff between fields keeps ("ab","c") apart from ("a","bc"). */
function hashSpan(bytes: Buffer, start: number, end: number, hash: number): number {
  let h = hash;
  for (let index = start; index < end; index++) h = Math.imul(h ^ (bytes[index] as number), fnvPrime);
  return Math.imul(h ^ 0xff, fnvPrime) >>> 0;
}

/** Whether `key` holds exactly bytes[start, end). */
export function spanEquals(key: Buffer, bytes: Buffer, start: number, end: number): boolean {
  const length = end - start;
  if (key.length !== length) return false;
  for (let index = 0; index < length; index++) if (key[index] !== bytes[start + index]) return false;
  return true;
}

const microsecondsPerMinute = 60_000_000;
const millisecondsPerMinute = 60_000;
const minutesPerHour = 60;
const millisecondsPerHour = 3_600_000;
const minutesPerDay = 1440;
const millisecondsPerDay = 86_400_000;

/*
 * The VALUES are literals because the COPY path sends them in the COPY's own Query message
 * (a simple query cannot carry parameters). escapeLiteral doubles quotes and backslashes
 * and marks the latter E'…', so the text is safe whatever standard_conforming_strings says.
 */
function literalOf(bytes: Buffer): string {
  const text = bytes.toString('utf8');
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
