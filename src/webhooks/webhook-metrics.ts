/**
 * floodgate_webhook_rejected_total{source,reason}: signed-webhook deliveries refused, per
 * configured source and reason (signature, timestamp). Sources come from the database, so
 * each one's counters start at 0 when the cache first loads it, like every other labelled
 * series (src/metrics/label-values.ts); a removed source keeps its series until restart,
 * because a counter that vanishes reads as a reset. Unknown names are not counted by
 * name: the path is the client's, and a label taken from it would be unbounded.
 */
import type { Metric } from 'prom-client';
import { collector } from '../metrics/prometheus';
import { rejectionReasons, type RejectionReason } from './signature';
import type { WebhookSource } from './source-store';

export class WebhookRejections {
  readonly #counts = new Map<string, Map<RejectionReason, number>>();

  /** Starts the counters of sources not seen before at 0. */
  sourcesLoaded(sources: readonly WebhookSource[]): void {
    for (const source of sources) {
      if (!this.#counts.has(source.name)) this.#counts.set(source.name, new Map(rejectionReasons.map((reason) => [reason, 0])));
    }
  }

  count(source: string, reason: RejectionReason): void {
    const byReason = this.#counts.get(source) ?? new Map<RejectionReason, number>();
    byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
    this.#counts.set(source, byReason);
  }

  metric(): Metric {
    return collector('floodgate_webhook_rejected_total', 'Signed-webhook deliveries refused (nothing stored), by source and reason.', 'counter', () =>
      [...this.#counts].flatMap(([source, byReason]) => [...byReason].map(([reason, value]) => ({ labels: { source, reason }, value }))));
  }
}
