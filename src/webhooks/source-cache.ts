/**
 * The webhook sources as the main thread sees them: a map read on every request, reloaded
 * from PostgreSQL every refreshIntervalMs, so no request waits for the database. A source
 * added or removed with the CLI takes effect on every node within that interval. When a
 * reload fails the last good map stays in use; the failure is logged once, not per tick.
 */
import type { Logger } from '../log';
import type { WebhookSource, WebhookSourceStore } from './source-store';

export const refreshIntervalMs = 2000;

export class WebhookSourceCache {
  readonly #store: WebhookSourceStore;
  readonly #log: Logger;
  readonly #onLoaded: (sources: readonly WebhookSource[]) => void;
  #sources = new Map<string, WebhookSource>();
  #timer: NodeJS.Timeout | null = null;
  #failing = false;

  /** `onLoaded` sees every loaded list (the metrics start each new source's counters at 0). */
  constructor(store: WebhookSourceStore, log: Logger, onLoaded: (sources: readonly WebhookSource[]) => void = () => undefined) {
    this.#store = store;
    this.#log = log;
    this.#onLoaded = onLoaded;
  }

  /** Loads once (a failure here fails start-up), then keeps reloading in the background. */
  async start(): Promise<void> {
    this.#replace(await this.#store.list());
    this.#timer = setInterval(() => void this.refresh(), refreshIntervalMs);
    this.#timer.unref();
  }

  async refresh(): Promise<void> {
    try {
      this.#replace(await this.#store.list());
      if (this.#failing) this.#log.info({}, 'webhook sources reloaded again');
      this.#failing = false;
    } catch (error) {
      if (!this.#failing) this.#log.warn({ err: error }, 'webhook sources could not be reloaded; the last loaded ones stay in use');
      this.#failing = true;
    }
  }

  get(name: string): WebhookSource | undefined {
    return this.#sources.get(name);
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #replace(sources: readonly WebhookSource[]): void {
    this.#sources = new Map(sources.map((source) => [source.name, source]));
    this.#onLoaded(sources);
  }
}
