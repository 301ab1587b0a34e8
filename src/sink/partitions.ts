import type pg from 'pg';

/**
 * Day partitions of `events`: one per UTC day, named `events_pYYYYMMDD`, covering
 * [YYYY-MM-DD 00:00+00, next day 00:00+00).
 *
 * They are created ahead of time at start-up (ensurePartitionWindow over the accepted
 * timestamp window) and on demand by each batch writer (PartitionCache), so no event
 * ever fails for lack of a partition. Creation is serialised per day with a
 * transaction-level advisory lock, so two actors or two nodes meeting a new day at once
 * do not race; CREATE TABLE … PARTITION OF briefly takes an exclusive lock on `events`,
 * which is why the hot path only creates what its cache says is missing.
 */

export const microsecondsPerDay = 86_400_000_000;
const millisecondsPerDay = 86_400_000;

/** First argument of the two-key advisory lock ("FG" + "pa"); the second is the day. */
const partitionLockClass = 0x46477061;

/**
 * Days we can name with a four-digit year: 1970-01-01 (day 0) to 9999-12-31. An event
 * outside that range gets no partition; its row then fails with 23514 and is dead-lettered.
 */
export const partitionDayMin = 0;
export const partitionDayMax = Math.floor(Date.UTC(9999, 11, 31) / millisecondsPerDay);

/** Longest window ensurePartitionWindow accepts: ten years of days is already absurd. */
export const partitionWindowDaysMax = 3_660;

/** Days since the Unix epoch (UTC) of a time in µs since the epoch. */
export function dayOfUs(occurredAtUs: number): number {
  return Math.floor(occurredAtUs / microsecondsPerDay);
}

export function isPartitionableDay(day: number): boolean {
  return Number.isInteger(day) && day >= partitionDayMin && day <= partitionDayMax;
}

function dateOfDay(day: number): string {
  return new Date(day * millisecondsPerDay).toISOString().slice(0, 10);
}

export function partitionName(day: number): string {
  if (!isPartitionableDay(day)) throw new RangeError(`no partition can exist for day ${day}`);
  return `events_p${dateOfDay(day).replaceAll('-', '')}`;
}

/** Inverse of partitionName; null for any other table name. */
export function dayOfPartitionName(name: string): number | null {
  const match = /^events_p(\d{4})(\d{2})(\d{2})$/.exec(name);
  if (match === null) return null;
  const ms = Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]));
  const day = ms / millisecondsPerDay;
  // Reject names like events_p20240231 that Date.UTC would silently roll over.
  return isPartitionableDay(day) && partitionName(day) === name ? day : null;
}

/** A table partitioned by UTC day: its name, how a day's partition is named, its advisory lock class. */
export interface DayPartitionedTable {
  readonly parent: string;
  readonly partitionNameOf: (day: number) => string;
  readonly lockClass: number;
}

const eventsTable: DayPartitionedTable = { parent: 'events', partitionNameOf: partitionName, lockClass: partitionLockClass };

/**
 * Creates the partitions for `days` that do not exist yet and returns how many it
 * created. Must be called outside a transaction: each day gets its own short one, so the
 * exclusive lock on `events` is held only while that one partition is being created.
 */
export async function ensurePartitions(client: pg.ClientBase, days: Iterable<number>): Promise<number> {
  return ensureDayPartitions(client, days, eventsTable);
}

/** ensurePartitions for any day-partitioned table (the attempt log's too: src/delivery/attempt-partitions.ts). */
export async function ensureDayPartitions(client: pg.ClientBase, days: Iterable<number>, table: DayPartitionedTable): Promise<number> {
  let createdCount = 0;
  for (const day of new Set(days)) {
    const name = table.partitionNameOf(day);
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', [table.lockClass, day]);
      const existing = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::oid AS oid', [name]);
      if ((existing.rows[0]?.oid ?? null) === null) {
        // Identifiers and literals are built only from a validated integer day.
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${name} PARTITION OF ${table.parent} ` +
            `FOR VALUES FROM ('${dateOfDay(day)} 00:00+00') TO ('${dateOfDay(day + 1)} 00:00+00')`,
        );
        createdCount += 1;
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }
  return createdCount;
}

/** Every day touched by [fromMs, toMs] (ms since the epoch, inclusive), for start-up. */
export async function ensurePartitionWindow(client: pg.ClientBase, fromMs: number, toMs: number): Promise<number> {
  const firstDay = Math.max(partitionDayMin, Math.floor(fromMs / millisecondsPerDay));
  const lastDay = Math.min(partitionDayMax, Math.floor(toMs / millisecondsPerDay));
  if (!Number.isFinite(firstDay) || !Number.isFinite(lastDay) || lastDay < firstDay) {
    throw new RangeError(`ensurePartitionWindow: empty or invalid window ${fromMs}..${toMs}`);
  }
  if (lastDay - firstDay + 1 > partitionWindowDaysMax) {
    throw new RangeError(`ensurePartitionWindow: window spans more than ${partitionWindowDaysMax} days`);
  }
  const days: number[] = [];
  for (let day = firstDay; day <= lastDay; day += 1) days.push(day);
  return ensurePartitions(client, days);
}

/** Reads the days that have a partition right now. */
export async function existingPartitionDays(client: pg.ClientBase): Promise<number[]> {
  const result = await client.query<{ relname: string }>(
    `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'events'::regclass`,
  );
  const days: number[] = [];
  for (const row of result.rows) {
    const day = dayOfPartitionName(row.relname);
    if (day !== null) days.push(day);
  }
  return days;
}

/**
 * Which days have a partition, as far as this writer knows. Loaded once from the catalog,
 * then updated by the writer's own creations, so a batch costs one Set lookup per distinct
 * day. It can go stale only if someone drops a partition (retention); the writer then sees
 * "no partition of relation" and calls invalidate() to reload.
 */
export class PartitionCache {
  #days = new Set<number>();
  #loaded = false;

  has(day: number): boolean {
    return this.#days.has(day);
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  /** Forgets everything, so the next ensure() reloads from the catalog. */
  invalidate(): void {
    this.#days.clear();
    this.#loaded = false;
  }

  async load(client: pg.ClientBase): Promise<void> {
    this.#days = new Set(await existingPartitionDays(client));
    this.#loaded = true;
  }

  /** Creates what is missing among `days` (partitionable ones only); returns how many. */
  async ensure(client: pg.ClientBase, days: Iterable<number>): Promise<number> {
    if (!this.#loaded) await this.load(client);
    const missing: number[] = [];
    for (const day of days) {
      if (isPartitionableDay(day) && !this.#days.has(day)) missing.push(day);
    }
    if (missing.length === 0) return 0;
    const createdCount = await ensurePartitions(client, missing);
    for (const day of missing) this.#days.add(day);
    return createdCount;
  }
}
