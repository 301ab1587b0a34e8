/**
 * Replays as durable jobs: POST /v1/subscriptions/{id}/replay writes a row in
 * delivery_replays, and a runner on the main thread of every node works through running
 * jobs a chunk at a time, setting the chosen deliveries back to pending on the replay
 * lane, where the delivery actors send them below live traffic.
 *
 *   create   one statement: the subscription exists (not deleted), count the matching
 *            rows (total), remember the id below the first of them (after_id), insert
 *   tick     every replayIntervalMs, chunks until replayTickBudgetMs is spent:
 *              BEGIN
 *              pg_advisory_xact_lock_shared(fan-out lock)   a subscription change waits
 *              the oldest running job, FOR UPDATE SKIP LOCKED  (another node takes another)
 *              its subscription deleted → state 'cancelled'
 *              next ≤ replayChunkRowsMax matching rows with id > after_id, FOR UPDATE
 *                none → state 'done'
 *                else → requeue those whose event is still stored; advance after_id,
 *                       processed, requeued; NOTIFY the actors
 *              COMMIT
 *
 * The shared form of the fan-out lock is the one a batch takes (src/delivery/delivery-schema.ts):
 * it keeps a subscription from being deleted between the check and the requeue, without
 * blocking ingest. A job is only ever advanced inside the transaction that requeued its
 * rows, so a crash repeats at most one chunk's work, and requeuing a row twice is
 * harmless. Rows whose event is gone (dropped by retention) stay as they are: a sender
 * could only discard them. They count in `processed` but not in `requeued`.
 */
import type pg from 'pg';
import type { Logger } from '../log';
import { openStorePool } from '../sink/database';
import { deliveriesChannel, fanoutLockKey, replayLane, type DeliveryStatus } from './delivery-schema';

/** Rows set back to pending per transaction: short enough not to hold row locks for long. */
export const replayChunkRowsMax = 500;
/** How often a node looks for running jobs. */
export const replayIntervalMs = 1000;
/** Work per tick: the main thread also serves HTTP, so a tick yields after this long. */
const replayTickBudgetMs = 200;
/** The runner and the replay route write through these; reads go through the read pool. */
const replayConnectionsMax = 2;

/** The statuses a replay may take back; pending rows are due already. */
export const replayableStatuses = ['failed', 'discarded', 'delivered'] as const satisfies readonly DeliveryStatus[];
export type ReplayableStatus = (typeof replayableStatuses)[number];
/** What a replay takes when the request names no status: what was not delivered. */
export const replayStatusesDefault: readonly ReplayableStatus[] = ['failed', 'discarded'];

export interface ReplayRequest {
  readonly subscriptionId: string;
  /** [from, to) on deliveries.created_at, as ISO-8601 text. */
  readonly fromIso: string;
  readonly toIso: string;
  readonly statuses: readonly ReplayableStatus[];
}

/** A job as the API shows it (ids and counters as decimal strings or numbers). */
export interface ReplayJob {
  readonly id: string;
  readonly subscription_id: string;
  readonly from: string;
  readonly to: string;
  readonly statuses: string[];
  readonly state: 'running' | 'done' | 'cancelled';
  readonly total: number;
  readonly processed: number;
  readonly requeued: number;
  readonly created_at: string;
  readonly finished_at: string | null;
}

const isoSql = (column: string): string => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** Columns of delivery_replays as a ReplayJob. */
export const replayJobColumns =
  `id::text, subscription_id::text, ${isoSql('from_time')} AS "from", ${isoSql('to_time')} AS "to", statuses, state, ` +
  `total::float8 AS total, processed::float8 AS processed, requeued::float8 AS requeued, ` +
  `${isoSql('created_at')} AS created_at, ${isoSql('finished_at')} AS finished_at`;

/**
 * The rows a replay matches. `to` is clamped to the moment of asking: a replay takes what
 * exists when it is created, so its total stays the bound of its work.
 */
export const replayWindowSql = {
  to: 'greatest($2::timestamptz, least($3::timestamptz, now()))',
  matches: 'subscription_id = $1 AND created_at >= $2::timestamptz AND created_at < greatest($2::timestamptz, least($3::timestamptz, now())) AND status = ANY($4::text[])',
};

interface ClaimedJob {
  id: string;
  subscription_id: string;
  from_time: Date;
  to_time: Date;
  statuses: string[];
  after_id: string;
  subscription_gone: boolean;
}

interface ChunkResult {
  looked: number;
  requeued: number;
  last_id: string | null;
}

export class ReplayRunner {
  readonly #pool: pg.Pool;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> = Promise.resolve();
  #stopped = false;
  /** Logged once per outage, not once per tick. */
  #failing = false;

  constructor(connectionString: string, log: Logger) {
    this.#pool = openStorePool({ connectionString, max: replayConnectionsMax, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 5_000, application_name: 'floodgate-replay' });
    this.#log = log;
  }

  start(): void {
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    await this.#running;
    await this.#pool.end();
  }

  /** Creates a job; null when the subscription does not exist (or was deleted). */
  async create(request: ReplayRequest): Promise<ReplayJob | null> {
    const result = await this.#pool.query<ReplayJob>(
      `WITH s AS (SELECT id FROM subscriptions WHERE id = $1 AND deleted_at IS NULL),
            m AS (SELECT count(*) AS n, min(id) AS first_id FROM deliveries WHERE ${replayWindowSql.matches}),
            job AS (
              INSERT INTO delivery_replays (subscription_id, from_time, to_time, statuses, total, after_id, state, finished_at)
              SELECT s.id, $2::timestamptz, ${replayWindowSql.to}, $4::text[], m.n, coalesce(m.first_id - 1, 0),
                     CASE WHEN m.n = 0 THEN 'done' ELSE 'running' END, CASE WHEN m.n = 0 THEN now() END
                FROM s, m
              RETURNING *)
       SELECT ${replayJobColumns} FROM job`,
      [request.subscriptionId, request.fromIso, request.toIso, request.statuses],
    );
    return result.rows[0] ?? null;
  }

  /** One tick's work; exposed so tests can drive the runner without waiting for its timer. */
  async runOnce(): Promise<void> {
    const deadline = Date.now() + replayTickBudgetMs;
    try {
      while (!this.#stopped && Date.now() < deadline) {
        if (!(await this.#chunk())) break;
      }
      if (this.#failing) this.#log.info({}, 'replay runner reaches the database again');
      this.#failing = false;
    } catch (error) {
      if (!this.#failing) this.#log.warn({ err: error }, 'replay runner could not advance a job; it retries every second');
      this.#failing = true;
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.runOnce().finally(() => this.#schedule());
    }, replayIntervalMs);
    this.#timer.unref();
  }

  /** One chunk of the oldest running job not taken by another node; false when there was none. */
  async #chunk(): Promise<boolean> {
    const client = await this.#pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock_shared($1::bigint)', [fanoutLockKey]);
      const claimed = await client.query<ClaimedJob>(
        `SELECT r.id::text, r.subscription_id::text, r.from_time, r.to_time, r.statuses, r.after_id::text, s.id IS NULL AS subscription_gone
           FROM delivery_replays r LEFT JOIN subscriptions s ON s.id = r.subscription_id AND s.deleted_at IS NULL
          WHERE r.state = 'running' ORDER BY r.id LIMIT 1 FOR UPDATE OF r SKIP LOCKED`,
      );
      const job = claimed.rows[0];
      if (job === undefined) {
        await client.query('COMMIT');
        return false;
      }
      if (job.subscription_gone) await this.#finish(client, job, 'cancelled');
      else await this.#requeueChunk(client, job);
      await client.query('COMMIT');
      return true;
    } catch (error) {
      broken = true;
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release(broken);
    }
  }

  async #requeueChunk(client: pg.PoolClient, job: ClaimedJob): Promise<void> {
    // FOR UPDATE waits for a sender's outcome write on the same row, then re-checks the
    // status: a chunk may come back short, so only an empty chunk ends the job.
    const result = await client.query<ChunkResult>(
      `WITH chunk AS (
         SELECT d.id, EXISTS (SELECT 1 FROM events e WHERE e.event_id = d.event_id AND e.occurred_at = d.occurred_at) AS stored
           FROM deliveries d
          WHERE d.subscription_id = $1 AND d.created_at >= $2 AND d.created_at < $3 AND d.status = ANY($4::text[]) AND d.id > $5
          ORDER BY d.id LIMIT $6
            FOR UPDATE OF d),
       requeued AS (
         UPDATE deliveries d SET status = 'pending', lane = ${replayLane}, attempts = 0, next_attempt_at = now(),
                schedule_started_at = now(), lease_token = NULL, replay_id = $7
           FROM chunk WHERE d.id = chunk.id AND chunk.stored
         RETURNING d.id)
       SELECT (SELECT count(*) FROM chunk)::int AS looked, (SELECT count(*) FROM requeued)::int AS requeued,
              (SELECT max(id) FROM chunk)::text AS last_id`,
      [job.subscription_id, job.from_time, job.to_time, job.statuses, job.after_id, replayChunkRowsMax, job.id],
    );
    const chunk = result.rows[0] as ChunkResult;
    if (chunk.looked === 0 || chunk.last_id === null) {
      await this.#finish(client, job, 'done');
      return;
    }
    await client.query('UPDATE delivery_replays SET after_id = $2, processed = processed + $3, requeued = requeued + $4 WHERE id = $1', [
      job.id,
      chunk.last_id,
      chunk.looked,
      chunk.requeued,
    ]);
    // Delivered on commit: the actors owning this subscription wake and claim at once.
    if (chunk.requeued > 0) await client.query('SELECT pg_notify($1, $2)', [deliveriesChannel, job.subscription_id]);
  }

  async #finish(client: pg.PoolClient, job: ClaimedJob, state: 'done' | 'cancelled'): Promise<void> {
    await client.query('UPDATE delivery_replays SET state = $2, finished_at = now() WHERE id = $1', [job.id, state]);
    this.#log.info({ replayId: job.id, subscriptionId: job.subscription_id, state }, 'replay finished');
  }
}
