import type { Metric } from 'prom-client';
import pg from 'pg';
import type { Config } from '../config/config';
import { ensureAttemptPartitions } from '../delivery/attempt-partitions';
import { collector } from '../metrics/prometheus';
import { ensurePartitionWindow } from './partitions';
import {
  attachedPartitionSummary,
  attemptsTable,
  dayTablesToRetire,
  deleteDeliveriesSpan,
  deliveriesIdSpan,
  lastDeliveryId,
  deleteRollupDay,
  oldestRollupDay,
  retireDayTable,
  rollupTables,
  type DayPartitionedTable,
} from './retention';
import { errorFields, type SinkLogger } from './sink-logger';

/**
 * Keeps the day partitions of `events` in step with the clock. Each run, on one node at a
 * time (a session advisory lock), does in order:
 *
 *   1. create  the partitions of [now − timestampPastMs, now + timestampFutureMs + 1 day],
 *              so writers rarely have to create one on the hot path (they still can:
 *              see PartitionCache), and the attempt log's partitions of today and
 *              tomorrow (src/delivery/attempt-partitions.ts)
 *   2. events retention (FLOODGATE_RETENTION_DAYS): raise floodgate_retention.events_kept_from
 *              to today − N days, then detach and drop every day table before it
 *   3. deliveries of dropped days: delete the delivery rows whose event day is before
 *              events_kept_from (whoever raised it), in chunks, once per new cutoff
 *   4. rollup retention (FLOODGATE_ROLLUP_RETENTION_DAYS): raise rollups_kept_from, then
 *              delete the rollup rows before it, one day per statement
 *   5. attempt log retention (FLOODGATE_DELIVERY_ATTEMPT_RETENTION_DAYS): detach and drop
 *              the delivery_attempts day partitions before today − N days, as in step 2
 *
 * The date is raised before anything goes, so a reader that clips to it (`floodgate
 * rollups verify`) never sees a day half dropped. Creation runs first so that a detach
 * never stands in the way of a partition the writers are about to need.
 *
 * At start-up, step 1 runs (waiting for the lock) before the engine goes on, and a failure
 * there stops the start; a whole run follows at once in the background, because a detach
 * waits for the queries reading events and must not hold up the start. Then a run every
 * partitionMaintenanceIntervalMs, whose failures are only logged: the next run resumes
 * where it stopped (docs/decisions/0022-retention-by-detaching-partitions.md).
 */

/** An hour: the window's far end and the retention cutoff move one day per day. */
export const partitionMaintenanceIntervalMs = 3_600_000;
const millisecondsPerDay = 86_400_000;
/** Session advisory lock taken by the node running maintenance ("FGpm"); released when its connection ends. */
export const maintenanceLockKey = 0x4647706d;
/**
 * lock_timeout of the retention statements. A detach waits for the transactions using
 * events, and FINALIZE waits for every older snapshot while holding SHARE UPDATE EXCLUSIVE
 * on events; past this the statement fails, the partition stays detach-pending (unseen by
 * new queries) and the next run finishes it.
 */
const retentionLockTimeoutMs = 10_000;
/**
 * Days one run retires per table kind, so that a long backlog (retention just turned on)
 * cannot hold the lock, which a starting node waits for, for more than a few seconds; the
 * rest goes in the following runs. Measured here (2 cores, idle PostgreSQL 15): 100 day
 * partitions of 1,000 rows each detached and dropped in 0.24 s.
 */
export const retentionDaysPerRunMax = 100;
/**
 * Delivery ids one run walks at most (step 3: 100 statements of deliveriesIdSpan), for the
 * same reason; the next run goes on from where this one stopped.
 */
export const deliveryIdsPerRunMax = 1_000_000;

/** Without deliveryAttemptRetentionDays (callers that only care about events) the attempt log keeps every day. */
type MaintenanceSettings = Pick<Config, 'timestampPastMs' | 'timestampFutureMs' | 'retentionDays' | 'rollupRetentionDays'> &
  Partial<Pick<Config, 'deliveryAttemptRetentionDays'>>;

export interface MaintenanceReport {
  /** Partitions created ahead of time. */
  readonly createdCount: number;
  /** Day tables of events dropped by retention (a finished interrupted detach included). */
  readonly droppedCount: number;
  /** Rollup rows deleted by retention. */
  readonly rollupRowsDeleted: number;
  /** Delivery rows deleted because retention dropped their event's day. */
  readonly deliveriesDeleted: number;
  /** Day partitions of the attempt log dropped by retention. */
  readonly attemptDaysDropped: number;
}

export interface RunOptions {
  /** Wait for another node's run instead of skipping (start-up). */
  readonly waitForLock?: boolean;
  /** false: create partitions only (start-up, before the engine goes on). */
  readonly retention?: boolean;
}

export class PartitionMaintainer {
  readonly #connectionString: string;
  readonly #settings: MaintenanceSettings;
  readonly #logger: SinkLogger;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopping = false;
  // What the metrics report; written only by runs, read when /metrics is scraped.
  #partitionCount = 0;
  #oldestDay: number | null = null;
  #droppedTotal = 0;
  #rollupRowsDeletedTotal = 0;
  #deliveriesDeletedTotal = 0;
  #attemptDaysDroppedTotal = 0;
  /**
   * How far this node's deletion of deliveries has gone: the cutoff (events_kept_from) it
   * works towards, the last id walked, and the last id when the pass began (rows added
   * later are of days still kept). Kept in memory: a new process walks the table once more.
   */
  #deliveriesPass: { keptFrom: string; afterId: bigint; endId: bigint } | null = null;
  #lastRetentionRun: { readonly atMs: number; readonly ok: boolean } | null = null;

  constructor(connectionString: string, settings: MaintenanceSettings, logger: SinkLogger) {
    this.#connectionString = connectionString;
    this.#settings = settings;
    this.#logger = logger;
  }

  async start(): Promise<void> {
    // At start-up wait for a node that holds the lock: it is creating the same partitions.
    await this.runOnce(Date.now(), { waitForLock: true, retention: false });
    this.#runInBackground();
    this.#timer = setInterval(() => this.#runInBackground(), partitionMaintenanceIntervalMs);
    // Maintenance alone must not keep the process alive.
    this.#timer.unref();
  }

  /**
   * One run (see the top of this file) for the time `nowMs`. Several nodes share one
   * database, so the run holds a session advisory lock: a node that finds it taken skips
   * (another node is doing the same work) and returns null. Creating one partition is
   * safe anyway (src/sink/partitions.ts).
   */
  async runOnce(nowMs: number = Date.now(), options: RunOptions = {}): Promise<MaintenanceReport | null> {
    const client = new pg.Client({ connectionString: this.#connectionString, application_name: 'floodgate-partitions' });
    client.on('error', (error) => this.#logger.warn(errorFields(error), 'partition maintenance connection error'));
    await client.connect();
    try {
      if (options.waitForLock) await client.query('SELECT pg_advisory_lock($1)', [maintenanceLockKey]);
      else if (!(await client.query('SELECT pg_try_advisory_lock($1) AS locked', [maintenanceLockKey])).rows[0].locked) {
        this.#logger.info({}, 'partition maintenance skipped: another node holds the lock');
        await this.#observePartitions(client);
        return null;
      }
      try {
        return await this.#maintain(client, nowMs, options.retention !== false);
      } finally {
        await this.#observePartitions(client).catch(() => undefined);
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** Stops the timer and waits for a run in flight, which stops at its next table or day. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  /**
   * floodgate_events_partitions, floodgate_events_oldest_day_seconds,
   * floodgate_events_partitions_dropped_total, floodgate_rollup_rows_deleted_total,
   * floodgate_deliveries_deleted_total, floodgate_delivery_attempt_partitions_dropped_total,
   * floodgate_retention_last_run_timestamp_seconds and floodgate_retention_last_run_success.
   */
  metrics(): Metric[] {
    const gauge = (name: string, help: string, value: () => number): Metric => collector(name, help, 'gauge', () => [{ labels: {}, value: value() }]);
    const counter = (name: string, help: string, value: () => number): Metric => collector(name, help, 'counter', () => [{ labels: {}, value: value() }]);
    return [
      gauge('floodgate_events_partitions', 'Day partitions attached to events, as of this node\'s last maintenance run.', () => this.#partitionCount),
      gauge('floodgate_events_oldest_day_seconds', 'Start (Unix time) of the oldest day partition of events, as of this node\'s last maintenance run; NaN when there is none.', () =>
        (this.#oldestDay === null ? Number.NaN : (this.#oldestDay * millisecondsPerDay) / 1000)),
      counter('floodgate_events_partitions_dropped_total', 'Day partitions of events dropped by retention on this node (FLOODGATE_RETENTION_DAYS).', () => this.#droppedTotal),
      counter('floodgate_rollup_rows_deleted_total', 'Rollup rows deleted by retention on this node (FLOODGATE_ROLLUP_RETENTION_DAYS).', () => this.#rollupRowsDeletedTotal),
      counter('floodgate_deliveries_deleted_total', 'Delivery rows deleted on this node because retention dropped their event\'s day.', () => this.#deliveriesDeletedTotal),
      counter('floodgate_delivery_attempt_partitions_dropped_total', 'Day partitions of the delivery attempt log dropped by retention on this node (FLOODGATE_DELIVERY_ATTEMPT_RETENTION_DAYS).', () =>
        this.#attemptDaysDroppedTotal),
      gauge('floodgate_retention_last_run_timestamp_seconds', 'When this node last ran retention (Unix time; 0 before its first run); nodes that find another one running skip.', () =>
        (this.#lastRetentionRun === null ? 0 : this.#lastRetentionRun.atMs / 1000)),
      gauge('floodgate_retention_last_run_success', 'Whether this node\'s last retention run finished (1) or failed (0; the error is in the log).', () =>
        Number(this.#lastRetentionRun?.ok ?? true)),
    ];
  }

  #runInBackground(): void {
    if (this.#running !== null || this.#stopping) return;
    this.#running = this.runOnce()
      .then(
        () => undefined,
        (error: unknown) => this.#logger.warn(errorFields(error), 'partition maintenance failed; will retry'),
      )
      .finally(() => {
        this.#running = null;
      });
  }

  async #maintain(client: pg.Client, nowMs: number, retention: boolean): Promise<MaintenanceReport> {
    const fromMs = nowMs - this.#settings.timestampPastMs;
    const toMs = nowMs + this.#settings.timestampFutureMs + millisecondsPerDay;
    const createdCount = await ensurePartitionWindow(client, fromMs, toMs);
    if (createdCount > 0) this.#logger.info({ createdCount }, 'event partitions created ahead of time');
    const today = Math.floor(nowMs / millisecondsPerDay);
    const attemptDaysCreated = await ensureAttemptPartitions(client, [today, today + 1]);
    if (attemptDaysCreated > 0) this.#logger.info({ createdCount: attemptDaysCreated }, 'delivery attempt partitions created ahead of time');
    if (!retention) return { createdCount, droppedCount: 0, rollupRowsDeleted: 0, deliveriesDeleted: 0, attemptDaysDropped: 0 };
    try {
      await client.query(`SET lock_timeout = ${retentionLockTimeoutMs}`);
      const droppedCount = await this.#retireEventDays(client, today);
      const deliveriesDeleted = await this.#deleteDeliveriesOfDroppedDays(client);
      const rollupRowsDeleted = await this.#retireRollupDays(client, today);
      const attemptDaysDropped = await this.#retireAttemptDays(client, today);
      this.#lastRetentionRun = { atMs: nowMs, ok: true };
      return { createdCount, droppedCount, rollupRowsDeleted, deliveriesDeleted, attemptDaysDropped };
    } catch (error) {
      this.#lastRetentionRun = { atMs: nowMs, ok: false };
      throw error;
    }
  }

  async #retireEventDays(client: pg.Client, today: number): Promise<number> {
    if (this.#settings.retentionDays === null) return 0;
    const keptFromDay = today - this.#settings.retentionDays;
    await raiseKeptFrom(client, 'events_kept_from', keptFromDay);
    const dropped = await this.#retireDayTables(client, keptFromDay, undefined, () => (this.#droppedTotal += 1));
    if (dropped.length > 0) {
      const range = { first: dropped[0], last: dropped[dropped.length - 1], keptFrom: isoDate(keptFromDay) };
      this.#logger.info({ droppedCount: dropped.length, ...range }, 'event partitions dropped by retention');
    }
    return dropped.length;
  }

  /** The attempt log keeps N days before today; nothing records a cutoff, since nobody verifies against it. */
  async #retireAttemptDays(client: pg.Client, today: number): Promise<number> {
    if (this.#settings.deliveryAttemptRetentionDays === undefined) return 0;
    const keptFromDay = today - this.#settings.deliveryAttemptRetentionDays;
    const dropped = await this.#retireDayTables(client, keptFromDay, attemptsTable, () => (this.#attemptDaysDroppedTotal += 1));
    if (dropped.length > 0) {
      const range = { first: dropped[0], last: dropped[dropped.length - 1], keptFrom: isoDate(keptFromDay) };
      this.#logger.info({ droppedCount: dropped.length, ...range }, 'delivery attempt partitions dropped by retention');
    }
    return dropped.length;
  }

  /**
   * Detaches and drops the kind's day tables before `keptFromDay` (at most
   * retentionDaysPerRunMax); returns the names dropped, sorted. `counted` runs at each drop,
   * so the metric counts what went even when a later table fails the run.
   */
  async #retireDayTables(client: pg.Client, keptFromDay: number, kind: DayPartitionedTable | undefined, counted: () => void): Promise<string[]> {
    const tables = (await dayTablesToRetire(client, keptFromDay, kind)).slice(0, retentionDaysPerRunMax);
    const dropped: string[] = [];
    for (const table of tables) {
      if (this.#stopping) break;
      await retireDayTable(client, table, kind);
      if (table.state !== 'attached') this.#logger.info({ partition: table.name, state: table.state, dropped: table.drop }, 'interrupted partition detach finished');
      if (!table.drop) continue;
      dropped.push(table.name);
      counted();
    }
    return dropped.sort();
  }

  /**
   * Step 3. Reads the cutoff from the table, not from this node's settings: whichever node
   * dropped the days, their deliveries go. Walks the primary key once per new cutoff (the
   * pass is remembered), at most deliveryIdsPerRunMax ids per run.
   */
  async #deleteDeliveriesOfDroppedDays(client: pg.Client): Promise<number> {
    const kept = await client.query<{ kept_from: string | null }>("SELECT to_char(events_kept_from, 'YYYY-MM-DD') AS kept_from FROM floodgate_retention");
    const keptFrom = kept.rows[0]?.kept_from ?? null;
    if (keptFrom === null) return 0;
    if (this.#deliveriesPass?.keptFrom !== keptFrom) this.#deliveriesPass = { keptFrom, afterId: 0n, endId: await lastDeliveryId(client) };
    const pass = this.#deliveriesPass;
    const stopAt = pass.afterId + BigInt(deliveryIdsPerRunMax);
    let deletedCount = 0;
    while (pass.afterId < pass.endId && pass.afterId < stopAt && !this.#stopping) {
      const deleted = await deleteDeliveriesSpan(client, keptFrom, pass.afterId);
      pass.afterId += BigInt(deliveriesIdSpan);
      deletedCount += deleted;
      this.#deliveriesDeletedTotal += deleted;
    }
    if (deletedCount > 0) this.#logger.info({ deletedCount, keptFrom, finished: pass.afterId >= pass.endId }, 'deliveries of dropped event days deleted');
    return deletedCount;
  }

  async #retireRollupDays(client: pg.Client, today: number): Promise<number> {
    if (this.#settings.rollupRetentionDays === null) return 0;
    const keptFromDay = today - this.#settings.rollupRetentionDays;
    await raiseKeptFrom(client, 'rollups_kept_from', keptFromDay);
    let deletedCount = 0;
    for (const table of rollupTables) {
      const oldestDay = await oldestRollupDay(client, table);
      if (oldestDay === null) continue;
      const lastDay = Math.min(keptFromDay, oldestDay + retentionDaysPerRunMax);
      for (let day = oldestDay; day < lastDay && !this.#stopping; day += 1) {
        const deleted = await deleteRollupDay(client, table, day);
        deletedCount += deleted;
        this.#rollupRowsDeletedTotal += deleted;
      }
    }
    if (deletedCount > 0) this.#logger.info({ deletedCount, keptFrom: isoDate(keptFromDay) }, 'rollup rows deleted by retention');
    return deletedCount;
  }

  async #observePartitions(client: pg.Client): Promise<void> {
    const summary = await attachedPartitionSummary(client);
    this.#partitionCount = summary.count;
    this.#oldestDay = summary.oldestDay;
  }
}

/** Moves the recorded date forward only: what retention dropped never comes back. */
async function raiseKeptFrom(client: pg.Client, column: 'events_kept_from' | 'rollups_kept_from', day: number): Promise<void> {
  await client.query(`UPDATE floodgate_retention SET ${column} = GREATEST(${column}, $1::date), updated_at = now()`, [isoDate(day)]);
}

function isoDate(day: number): string {
  return new Date(day * millisecondsPerDay).toISOString().slice(0, 10);
}
