/**
 * Keeps day partitions ahead of the clock: at start-up it creates every partition the
 * accepted timestamp window can reach (now − timestampPastMs … now + timestampFutureMs,
 * plus one day of margin), and then re-checks every hour so tomorrow's partition exists
 * before the first event of tomorrow arrives. Actors still create a missing partition on
 * demand (src/sink/batch-writer.ts); this keeps that rare and off the hot path.
 */
import pg from 'pg';
import type { Config } from '../config/config';
import type { Logger } from '../log';
import { ensurePartitionWindow } from './partitions';

const maintenanceIntervalMs = 60 * 60 * 1000;
const dayMs = 24 * 60 * 60 * 1000;

export class PartitionMaintainer {
  readonly #connectionString: string;
  readonly #window: Pick<Config, 'timestampPastMs' | 'timestampFutureMs'>;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | null = null;

  constructor(connectionString: string, window: Pick<Config, 'timestampPastMs' | 'timestampFutureMs'>, log: Logger) {
    this.#connectionString = connectionString;
    this.#window = window;
    this.#log = log;
  }

  async start(): Promise<void> {
    await this.runOnce();
    this.#timer = setInterval(() => {
      this.runOnce().catch((error: unknown) => this.#log.warn({ err: error }, 'partition maintenance failed; will retry in an hour'));
    }, maintenanceIntervalMs);
    this.#timer.unref();
  }

  async runOnce(): Promise<number> {
    const client = new pg.Client({ connectionString: this.#connectionString });
    await client.connect();
    try {
      const now = Date.now();
      const created = await ensurePartitionWindow(client, now - this.#window.timestampPastMs, now + this.#window.timestampFutureMs + dayMs);
      if (created > 0) this.#log.info({ created }, 'partitions created');
      return created;
    } finally {
      await client.end();
    }
  }

  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
