/**
 * What the engine hands the HTTP server for GET /metrics, /v1/stats and /: the metrics
 * object, its Prometheus registry, and the dashboard page.
 */
import type { Metric, Registry } from 'prom-client';
import type { Logger } from '../log';
import { dashboardHeaders, dashboardHtml } from './dashboard-page';
import { EngineMetrics, type MetricsSources } from './engine-metrics';
import { createMetricsRegistry, renderExposition } from './prometheus';
import { statsReport } from './stats-report';

export class Observability {
  readonly recorder: EngineMetrics;
  readonly dashboardHtml = dashboardHtml;
  readonly dashboardHeaders = dashboardHeaders;
  readonly #registry: Registry;

  constructor(sources: MetricsSources, log: Logger) {
    this.recorder = new EngineMetrics(sources, log);
    this.#registry = createMetricsRegistry(this.recorder);
  }

  /** Adds a stage's own collector (e.g. src/webhooks/webhook-metrics.ts) to /metrics. */
  register(metric: Metric): void {
    this.#registry.registerMetric(metric);
  }

  get metricsContentType(): string {
    return this.#registry.contentType;
  }

  metrics(): Promise<string> {
    return renderExposition(this.#registry);
  }

  stats(): Record<string, unknown> {
    return statsReport(this.recorder);
  }

  close(): void {
    this.#registry.clear();
    this.recorder.close();
  }
}
