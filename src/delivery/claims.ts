/**
 * The delivery actors' SQL: claim due deliveries with their events, write outcomes and the
 * attempt log in batches, disable a subscription that answered 410.
 *
 * A claim is one statement and no transaction outlives it: it moves next_attempt_at past
 * the lease and stamps a fresh lease_token, so a row in flight is simply not due, and if
 * its sender dies it becomes due again when the lease ends. lease_token stays set until an
 * outcome is written, so a claim that finds it already set has taken over a row whose
 * previous sender may have sent it (counted as a possible duplicate). Outcomes are written
 * only where the token is still ours: a sender that lost its lease cannot overwrite the
 * newer sender's result. The attempt is logged either way (it did happen).
 */
import type pg from 'pg';
import { ensureAttemptPartitions, dayOfMs } from './attempt-partitions';
import type { DeliveryLane } from './delivery-schema';
import type { AttemptOutcome, ErrorClass } from './outcome-rules';

export interface ClaimedDelivery {
  readonly id: string;
  /** This attempt's number (1-based), counted at the claim. */
  readonly attempt: number;
  readonly createdAtMs: number;
  readonly scheduleStartedAtMs: number;
  /** The row still carried another sender's lease token: it may have been sent already. */
  readonly reclaimed: boolean;
  readonly eventId: string;
  /** Null when the event is no longer stored (retention dropped its day). */
  readonly eventType: string | null;
  readonly source: string;
  readonly actorId: string | null;
  readonly timestamp: string;
  readonly attributesJson: string;
}

interface ClaimRecord {
  id: string;
  attempts: number;
  created_ms: string;
  started_ms: string;
  reclaimed: boolean;
  event_id: string;
  event_type: string | null;
  source: string | null;
  actor_id: string | null;
  occurred_text: string;
  attributes: string | null;
}

// The inner SELECT reads lease_token before the UPDATE replaces it. ORDER BY
// next_attempt_at serves the oldest due first and follows the deliveries_due index.
const claimSql = `
  WITH claimed AS (
    UPDATE deliveries d
       SET next_attempt_at = now() + $4::int * interval '1 millisecond', lease_token = $5, attempts = d.attempts + 1
      FROM (SELECT id, lease_token AS previous_token FROM deliveries
             WHERE subscription_id = $1 AND lane = $2 AND status = 'pending' AND next_attempt_at <= now()
             ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) due
     WHERE d.id = due.id
    RETURNING d.id, d.attempts, d.event_id, d.occurred_at, due.previous_token IS NOT NULL AS reclaimed,
              (extract(epoch FROM d.created_at) * 1000)::float8 AS created_ms,
              (extract(epoch FROM d.schedule_started_at) * 1000)::float8 AS started_ms)
  SELECT c.id, c.attempts, c.created_ms, c.started_ms, c.reclaimed, c.event_id,
         e.event_type, e.source, e.actor_id, e.attributes::text AS attributes,
         to_char(c.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS occurred_text
    FROM claimed c LEFT JOIN events e ON e.event_id = c.event_id AND e.occurred_at = c.occurred_at`;

export async function claimDeliveries(
  pool: pg.Pool,
  subscriptionId: number,
  lane: DeliveryLane,
  count: number,
  leaseMs: number,
  leaseToken: string,
): Promise<ClaimedDelivery[]> {
  const result = await pool.query<ClaimRecord>(claimSql, [subscriptionId, lane, count, leaseMs, leaseToken]);
  return result.rows.map((row) => ({
    id: row.id,
    attempt: row.attempts,
    createdAtMs: Number(row.created_ms),
    scheduleStartedAtMs: Number(row.started_ms),
    reclaimed: row.reclaimed,
    eventId: row.event_id,
    eventType: row.event_type,
    source: row.source ?? '',
    actorId: row.actor_id,
    timestamp: row.occurred_text,
    attributesJson: row.attributes ?? 'null',
  }));
}

/** One attempt's result, as it is written back (columns of the outcome batch). */
export interface OutcomeRecord {
  readonly deliveryId: string;
  readonly subscriptionId: number;
  readonly leaseToken: string;
  readonly attempt: number;
  readonly attemptedAtMs: number;
  readonly durationMs: number;
  readonly outcome: AttemptOutcome;
  /** The delivery's new status: pending again for a retry. */
  readonly status: 'pending' | 'delivered' | 'failed' | 'discarded';
  /** For a retry: milliseconds after the write until it is due. */
  readonly retryDelayMs: number | null;
  readonly statusCode: number | null;
  readonly errorClass: ErrorClass;
  readonly error: string | null;
  readonly responseBody: string | null;
}

// One statement: the UPDATE and the attempt log INSERT commit together, so a delivery's
// state and its log never disagree. delivered_at is when the answer came (attempt start +
// duration), so delivered_at − created_at is the commit → delivered latency. Rows come in
// as parallel arrays (one parameter per column, whatever the batch size).
const outcomeSql = `
  WITH o AS (
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::int[], $5::float8[], $6::int[], $7::text[],
                         $8::text[], $9::int[], $10::int[], $11::text[], $12::text[], $13::text[])
      AS o(delivery_id, subscription_id, lease_token, attempt, attempted_ms, duration_ms, outcome,
           status, retry_delay_ms, status_code, error_class, error, response_body)),
  updated AS (
    UPDATE deliveries d
       SET status = o.status, lease_token = NULL,
           next_attempt_at = CASE WHEN o.status = 'pending' THEN now() + o.retry_delay_ms * interval '1 millisecond' ELSE d.next_attempt_at END,
           last_attempt_at = to_timestamp(o.attempted_ms / 1000), last_status_code = o.status_code, last_error = o.error,
           delivered_at = CASE WHEN o.status = 'delivered' THEN to_timestamp((o.attempted_ms + o.duration_ms) / 1000) ELSE d.delivered_at END
      FROM o WHERE d.id = o.delivery_id AND d.lease_token = o.lease_token
    RETURNING d.id)
  INSERT INTO delivery_attempts (delivery_id, subscription_id, attempt, attempted_at, duration_ms, outcome, status_code, error_class, error, response_body)
  SELECT delivery_id, subscription_id, attempt, to_timestamp(attempted_ms / 1000), duration_ms, outcome, status_code,
         nullif(error_class, 'none'), error, response_body
    FROM o`;

/** SQLSTATE check_violation: the attempt log has no partition for the row's day. */
const noPartitionSqlState = '23514';

/** Writes a batch of outcomes; creates a missing attempt-log day and retries once. */
export async function writeOutcomes(pool: pg.Pool, outcomes: readonly OutcomeRecord[]): Promise<void> {
  const values = outcomeColumns(outcomes);
  try {
    await pool.query(outcomeSql, values);
  } catch (error) {
    if ((error as { code?: string }).code !== noPartitionSqlState) throw error;
    const client = await pool.connect();
    try {
      await ensureAttemptPartitions(client, outcomes.map((outcome) => dayOfMs(outcome.attemptedAtMs)));
    } finally {
      client.release();
    }
    await pool.query(outcomeSql, values);
  }
}

function outcomeColumns(outcomes: readonly OutcomeRecord[]): unknown[] {
  const column = <T>(pick: (outcome: OutcomeRecord) => T): T[] => outcomes.map(pick);
  return [
    column((o) => o.deliveryId),
    column((o) => o.subscriptionId),
    column((o) => o.leaseToken),
    column((o) => o.attempt),
    column((o) => o.attemptedAtMs),
    column((o) => Math.round(o.durationMs)),
    column((o) => o.outcome),
    column((o) => o.status),
    column((o) => (o.retryDelayMs === null ? null : Math.round(o.retryDelayMs))),
    column((o) => o.statusCode),
    column((o) => o.errorClass),
    column((o) => o.error),
    column((o) => o.responseBody),
  ];
}

/** The fan-out epoch: the actor reloads its subscriptions when it moves. */
export async function readSubscriptionEpoch(pool: pg.Pool): Promise<number> {
  const result = await pool.query<{ epoch: string }>('SELECT epoch FROM floodgate_subscription_epoch');
  return Number(result.rows[0]?.epoch ?? 0);
}
