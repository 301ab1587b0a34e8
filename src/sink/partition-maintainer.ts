import pg from 'pg';
import type { Config } from '../config/config';
import { ensurePartitionWindow } from './partitions';
import { errorFields, type SinkLogger } from './sink-logger';

/**
 * Keeps day partitions created ahead of time for the whole accepted timestamp window, so
 * writers rarely have to create one on the hot path (they still can: see PartitionCache).
 * Runs once at start-up (a failure there stops the start) and then every
 * partitionMaintenanceIntervalMs, when failures are only logged: the on-demand path
 * covers the gap, and the next run tries again.
 */

/** An hour: the window's far end moves one day per day, so this is frequent enough. */
export const partitionMaintenanceIntervalMs = 3_600_000;
const millisecondsPerDay = 86_400_000;
/** Session advisory lock taken by the node running maintenance ("FGpm"); released when its connection ends. */
export const maintenanceLockKey = 0x4647706d;

type WindowSettings = Pick<Config, 'timestampPastMs' | 'timestampFutureMs'>;

export class PartitionMaintainer {
  readonly #connectionString: string;
  readonly #settings: WindowSettings;
  readonly #logger: SinkLogger;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  constructor(connectionString: string, settings: WindowSettings, logger: SinkLogger) {
    this.#connectionString = connectionString;
    this.#settings = settings;
    this.#logger = logger;
  }

  async start(): Promise<void> {
    // At start-up wait for a node that holds the lock: it is creating the same partitions.
    await this.runOnce(Date.now(), { waitForLock: true });
    this.#timer = setInterval(() => {
      if (this.#running !== null) return;
      this.#running = this.runOnce()
        .then(
          () => undefined,
          (error: unknown) => this.#logger.warn(errorFields(error), 'partition maintenance failed; will retry'),
        )
        .finally(() => {
          this.#running = null;
        });
    }, partitionMaintenanceIntervalMs);
    // Maintenance alone must not keep the process alive.
    this.#timer.unref();
  }

  /**
   * Creates the partitions for [now - timestampPastMs, now + timestampFutureMs + 1 day].
   * Several nodes share one database, so the run holds a session advisory lock: the hourly
   * run of a node that finds the lock taken skips (another node is doing the same work)
   * and returns null. Creating one partition is safe anyway (src/sink/partitions.ts).
   */
  async runOnce(nowMs: number = Date.now(), options: { waitForLock?: boolean } = {}): Promise<number | null> {
    const client = new pg.Client({ connectionString: this.#connectionString, application_name: 'floodgate-partitions' });
    client.on('error', (error) => this.#logger.warn(errorFields(error), 'partition maintenance connection error'));
    await client.connect();
    try {
      if (options.waitForLock) await client.query('SELECT pg_advisory_lock($1)', [maintenanceLockKey]);
      else if (!(await client.query('SELECT pg_try_advisory_lock($1) AS locked', [maintenanceLockKey])).rows[0].locked) {
        this.#logger.info({}, 'partition maintenance skipped: another node holds the lock');
        return null;
      }
      const fromMs = nowMs - this.#settings.timestampPastMs;
      const toMs = nowMs + this.#settings.timestampFutureMs + millisecondsPerDay;
      const createdCount = await ensurePartitionWindow(client, fromMs, toMs);
      if (createdCount > 0) this.#logger.info({ createdCount }, 'event partitions created ahead of time');
      return createdCount;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
