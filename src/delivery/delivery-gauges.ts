/**
 * The delivery backlog as Prometheus gauges, read from PostgreSQL on the main thread:
 *
 *   floodgate_delivery_backlog{subscription}                   pending delivery rows
 *   floodgate_delivery_oldest_pending_age_seconds{subscription} age of the oldest of them
 *
 * The database is the only place that knows the backlog across nodes, so these are SQL
 * counts rather than counters the senders keep. One query every deliveryGaugeIntervalMs,
 * bounded by a statement timeout, answers every scrape in between; a scrape never waits
 * for the database. `subscription` is the id of the first labelledSubscriptionsMax
 * subscriptions (not deleted, by id) and `other` for the rest together, so the series stay
 * bounded however many subscriptions there are.
 */
import type { Metric } from 'prom-client';
import pg from 'pg';
import { collector } from '../metrics/prometheus';
import { errorFields, type SinkLogger } from '../sink/sink-logger';

export const deliveryGaugeIntervalMs = 10_000;
/** A backlog of millions is counted in well under a second on 2 cores; past this the last values stay. */
const gaugeStatementTimeoutMs = 5_000;
export const labelledSubscriptionsMax = 100;
/** The label of every subscription past the first labelledSubscriptionsMax. */
export const otherSubscriptionsLabel = 'other';

/*
 * The age is from schedule_started_at (creation, or the replay that requeued the row): a
 * replayed delivery of an old event is not an old backlog. Both aggregates read the
 * pending rows only, through the partial index deliveries_due.
 */
const backlogSql = `
  SELECT s.id::text AS id, coalesce(p.backlog, 0)::float8 AS backlog, coalesce(p.oldest_age_s, 0)::float8 AS oldest_age_s
    FROM subscriptions s
    LEFT JOIN (
      SELECT subscription_id, count(*) AS backlog, greatest(extract(epoch FROM now() - min(schedule_started_at)), 0) AS oldest_age_s
        FROM deliveries WHERE status = 'pending' GROUP BY subscription_id
    ) p ON p.subscription_id = s.id
   WHERE s.deleted_at IS NULL
   ORDER BY s.id`;

export interface BacklogSample {
  readonly subscription: string;
  readonly backlog: number;
  readonly oldestPendingAgeS: number;
}

/** Folds the rows past the first labelledSubscriptionsMax into one `other` sample (backlog summed, age the oldest). */
export function boundedSamples(rows: readonly BacklogSample[]): BacklogSample[] {
  const samples = rows.slice(0, labelledSubscriptionsMax);
  const rest = rows.slice(labelledSubscriptionsMax);
  if (rest.length > 0) {
    samples.push({
      subscription: otherSubscriptionsLabel,
      backlog: rest.reduce((sum, row) => sum + row.backlog, 0),
      oldestPendingAgeS: rest.reduce((oldest, row) => Math.max(oldest, row.oldestPendingAgeS), 0),
    });
  }
  return samples;
}

export class DeliveryGauges {
  readonly #pool: pg.Pool;
  readonly #logger: SinkLogger;
  #samples: readonly BacklogSample[] = [];
  #timer: NodeJS.Timeout | null = null;
  #refreshing: Promise<void> | null = null;
  #failing = false;

  constructor(connectionString: string, logger: SinkLogger) {
    // One connection: the gauges never need two at once.
    this.#pool = new pg.Pool({ connectionString, max: 1, statement_timeout: gaugeStatementTimeoutMs, application_name: 'floodgate-delivery-gauges' });
    this.#pool.on('error', (error) => logger.warn(errorFields(error), 'delivery gauges connection error'));
    this.#logger = logger;
  }

  /** Reads once now (without waiting for it), then every deliveryGaugeIntervalMs. */
  start(): void {
    this.#refreshInBackground();
    this.#timer = setInterval(() => this.#refreshInBackground(), deliveryGaugeIntervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#refreshing;
    await this.#pool.end();
  }

  /** One read of the backlog; on failure the previous values stay (logged once per streak of failures). */
  async refresh(): Promise<void> {
    try {
      const result = await this.#pool.query<{ id: string; backlog: number; oldest_age_s: number }>(backlogSql);
      this.#samples = boundedSamples(result.rows.map((row) => ({ subscription: row.id, backlog: row.backlog, oldestPendingAgeS: row.oldest_age_s })));
      if (this.#failing) this.#logger.info({}, 'delivery gauges read the backlog again');
      this.#failing = false;
    } catch (error) {
      if (!this.#failing) this.#logger.warn(errorFields(error), 'delivery gauges could not read the backlog; the last values stay');
      this.#failing = true;
    }
  }

  get samples(): readonly BacklogSample[] {
    return this.#samples;
  }

  metrics(): Metric[] {
    return [
      collector('floodgate_delivery_backlog', 'Pending deliveries per subscription (first 100 by id, the rest as "other"), read from PostgreSQL every 10 s.', 'gauge', () =>
        this.#samples.map((sample) => ({ labels: { subscription: sample.subscription }, value: sample.backlog }))),
      collector('floodgate_delivery_oldest_pending_age_seconds', 'Age of the oldest pending delivery per subscription (since created or replayed; 0 when none), read every 10 s.', 'gauge', () =>
        this.#samples.map((sample) => ({ labels: { subscription: sample.subscription }, value: sample.oldestPendingAgeS }))),
    ];
  }

  #refreshInBackground(): void {
    if (this.#refreshing !== null) return;
    this.#refreshing = this.refresh().finally(() => {
      this.#refreshing = null;
    });
  }
}
