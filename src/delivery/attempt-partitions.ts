import type pg from 'pg';
import { ensureDayPartitions, type DayPartitionedTable } from '../sink/partitions';

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

const attemptsTable: DayPartitionedTable = { parent: 'delivery_attempts', partitionNameOf: attemptPartitionName, lockClass: attemptPartitionLockClass };

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
  const valid = [...days];
  for (const day of valid) if (!Number.isInteger(day) || day < 0) throw new RangeError(`no attempt partition for day ${day}`);
  return ensureDayPartitions(client, valid, attemptsTable);
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
