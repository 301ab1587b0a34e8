/**
 * What every part of delivery agrees on: the tables' vocabulary (statuses, lanes), the
 * fan-out lock and epoch, and the one way to change subscriptions. The tables themselves
 * are migration v12 in src/sink/migrations.ts.
 *
 *   sink (src/sink/fan-out.ts)            subscription changes (changeSubscriptions)
 *     BEGIN (COPY's implicit transaction)   BEGIN
 *     COPY events …                         pg_advisory_xact_lock(fanoutLockKey)   ← waits for
 *     floodgate_fanout_check(epoch)            … insert / update subscriptions …        batches in
 *       = lock_shared + epoch compare       UPDATE epoch = epoch + 1                    flight
 *     INSERT INTO deliveries …              COMMIT
 *     COMMIT
 *
 * Because the change holds the exclusive form of the lock from before it reads anything
 * until it commits, and every batch holds the shared form from its check until it commits,
 * each batch commits either wholly before a change (and is fanned out against the old
 * subscriptions) or wholly after it (and its check sees the new epoch). A batch whose
 * snapshot is stale fails with FG001, and the writer reloads the subscriptions and retries.
 * docs/decisions/0024-delivery-fan-out-in-the-write-transaction.md.
 */
import type pg from 'pg';

/** The advisory lock key ("FGDELIVR" in ASCII) shared by batches and subscription changes. */
export const fanoutLockKey = '5064686949863642706';

/** SQLSTATE raised by floodgate_fanout_check when the batch's subscription snapshot is stale. */
export const staleSubscriptionsSqlState = 'FG001';

/** Channel NOTIFYed (payload: comma-separated subscription ids) when deliveries become due. */
export const deliveriesChannel = 'floodgate_deliveries';

export const deliveryStatuses = ['pending', 'delivered', 'failed', 'discarded'] as const;
export type DeliveryStatus = (typeof deliveryStatuses)[number];

/** Live traffic, and replays, which run below it (a share of each subscription's in-flight cap). */
export const liveLane = 0;
export const replayLane = 1;
export type DeliveryLane = typeof liveLane | typeof replayLane;

/**
 * The default retry schedule, in seconds after each failed attempt: the first attempt is
 * immediate, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (8 attempts over ~27.6 h before
 * jitter). A subscription may carry its own (subscriptions.retry_schedule_s).
 */
export const defaultRetryScheduleS: readonly number[] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
/** Past this age (from the delivery's creation) a failed attempt is final, whatever the schedule says. */
export const defaultRetryMaxAgeS = 3 * 86_400;

/** A subscription as the sink's fan-out and the delivery actors read it. */
export interface SubscriptionRow {
  readonly id: number;
  readonly url: string;
  /** Patterns: exact types, `prefix.*`, or `*`; null = every type. */
  readonly eventTypes: readonly string[] | null;
  /** Exact source names; null = every source. */
  readonly sources: readonly string[] | null;
  /** secrets[0] signs; the rest sign too until secretExpiresAtMs[i - 1]. */
  readonly secrets: readonly string[];
  readonly secretExpiresAtMs: readonly number[];
  readonly rateLimitPerS: number | null;
  readonly maxInFlight: number;
  readonly retryScheduleS: readonly number[] | null;
  readonly retryMaxAgeS: number | null;
  readonly enabled: boolean;
}

/** Columns selected to build a SubscriptionRow with subscriptionOf. */
export const subscriptionColumns =
  'id, url, event_types, sources, secrets, ' +
  "(SELECT coalesce(array_agg((extract(epoch FROM t) * 1000)::bigint ORDER BY o), '{}') FROM unnest(secret_expires_at) WITH ORDINALITY AS x(t, o)) AS secret_expires_ms, " +
  'rate_limit_per_s, max_in_flight, retry_schedule_s, retry_max_age_s, enabled';

export interface SubscriptionRecord {
  id: string;
  url: string;
  event_types: string[] | null;
  sources: string[] | null;
  secrets: string[];
  secret_expires_ms: string[];
  rate_limit_per_s: number | null;
  max_in_flight: number;
  retry_schedule_s: number[] | null;
  retry_max_age_s: number | null;
  enabled: boolean;
}

export function subscriptionOf(record: SubscriptionRecord): SubscriptionRow {
  return {
    id: Number(record.id),
    url: record.url,
    eventTypes: record.event_types,
    sources: record.sources,
    secrets: record.secrets,
    secretExpiresAtMs: record.secret_expires_ms.map(Number),
    rateLimitPerS: record.rate_limit_per_s,
    maxInFlight: record.max_in_flight,
    retryScheduleS: record.retry_schedule_s,
    retryMaxAgeS: record.retry_max_age_s,
    enabled: record.enabled,
  };
}

/** The subscriptions that fan-out and delivery act on (not deleted), with the epoch they were read at. */
export async function loadSubscriptions(client: pg.ClientBase): Promise<{ epoch: number; subscriptions: SubscriptionRow[] }> {
  // One statement, so the epoch and the rows come from one snapshot.
  const result = await client.query<SubscriptionRecord & { epoch: string }>(
    `SELECT e.epoch, s.* FROM floodgate_subscription_epoch e
       LEFT JOIN LATERAL (SELECT ${subscriptionColumns} FROM subscriptions WHERE deleted_at IS NULL ORDER BY id) s ON true`,
  );
  const epoch = Number(result.rows[0]?.epoch ?? 0);
  const subscriptions = result.rows.filter((row) => row.id !== null).map(subscriptionOf);
  return { epoch, subscriptions };
}

/**
 * Runs `work` in a transaction that holds the fan-out lock exclusively and bumps the epoch
 * before committing: the only way any module may insert, update or delete subscriptions.
 * Times that bound coverage (covered_from, covered_until) must be written as
 * clock_timestamp() inside `work`, which is after the lock was taken: a batch that
 * committed before then has events received before it.
 */
/** Longest a subscription change waits for the batches in flight to release the fan-out lock. */
export const changeLockTimeoutMs = 10_000;

export async function changeSubscriptions<T>(client: pg.ClientBase, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    // A batch holds the shared lock for milliseconds; waiting longer means something is
    // stuck, and the caller answers 503 (55P03) rather than hanging.
    await client.query(`SET LOCAL lock_timeout = '${changeLockTimeoutMs}ms'`);
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [fanoutLockKey]);
    await client.query('SET LOCAL lock_timeout = 0');
    const result = await work();
    await client.query('UPDATE floodgate_subscription_epoch SET epoch = epoch + 1');
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
