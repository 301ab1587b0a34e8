import type pg from 'pg';

/**
 * Day partitions of the attempt log `delivery_attempts`, by UTC day of attempted_at, named
 * `delivery_attempts_pYYYYMMDD`. Attempts are written at the time they happen, so only
 * today and tomorrow are ever needed: the partition maintainer creates them ahead, and a
 * writer that meets "no partition" (23514) creates the day and retries. Retention drops
 * whole days (FLOODGATE_DELIVERY_ATTEMPT_RETENTION_DAYS), never deletes rows.
 */

const millisecondsPerDay = 86_400_000;
/** Advisory lock class ("FGda") so two nodes creating one day do not race; the second key is the day. */
const attemptPartitionLockClass = 0x46476461;

export function attemptPartitionName(day: number): string {
  return `delivery_attempts_p${dateOfDay(day).replaceAll('-', '')}`;
}

/** Inverse of attemptPartitionName; null for any other name. */
export function dayOfAttemptPartitionName(name: string): number | null {
  const match = /^delivery_attempts_p(\d{4})(\d{2})(\d{2})$/.exec(name);
  if (match === null) return null;
  const day = Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) / millisecondsPerDay;
  return Number.isInteger(day) && attemptPartitionName(day) === name ? day : null;
}

export function dayOfMs(ms: number): number {
  return Math.floor(ms / millisecondsPerDay);
}

/** Creates the day partitions among `days` that are missing; each in its own short transaction. */
export async function ensureAttemptPartitions(client: pg.ClientBase, days: Iterable<number>): Promise<number> {
  let createdCount = 0;
  for (const day of new Set(days)) {
    if (!Number.isInteger(day) || day < 0) throw new RangeError(`no attempt partition for day ${day}`);
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', [attemptPartitionLockClass, day]);
      const name = attemptPartitionName(day);
      const existing = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::oid AS oid', [name]);
      if ((existing.rows[0]?.oid ?? null) === null) {
        // Built only from a validated integer day.
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${name} PARTITION OF delivery_attempts ` +
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

/** The days that have an attempt partition now. */
export async function existingAttemptPartitionDays(client: pg.ClientBase): Promise<number[]> {
  const result = await client.query<{ relname: string }>(
    `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'delivery_attempts'::regclass`,
  );
  return result.rows.map((row) => dayOfAttemptPartitionName(row.relname)).filter((day): day is number => day !== null);
}

function dateOfDay(day: number): string {
  return new Date(day * millisecondsPerDay).toISOString().slice(0, 10);
}
