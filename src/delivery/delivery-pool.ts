/**
 * The main thread's side of delivery: a piscina pool with one thread per delivery actor
 * (FLOODGATE_DELIVERY_ACTORS), the messages that cross between them, the delivery metrics,
 * and the live state (breaker, in flight, pause) the health route reads.
 *
 * Same pool settings as the ingest actors (src/actors/actor-pool.ts): one never-ending task
 * per thread, atomics disabled, cooperative stop (`stop` → the actor stops claiming, waits
 * for its sends, writes its outcomes → `stopped` → the pool is destroyed). Actor i owns the
 * subscriptions with id % N === i. Actors post aggregated stats once per second, never per
 * delivery; the main thread merges them.
 *
 * Messages (all structured-clone plain objects):
 *   main → actor   DeliveryControlMessage  { type: 'stop' }
 *   actor → main   ready | stats (once per second, and once after the drain) | stopped
 */
import path from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { Metric } from 'prom-client';
import type { Config } from '../config/config';
import type { Logger } from '../log';
import { collector, windowSummary } from '../metrics/prometheus';
import { SlidingHistogram } from '../metrics/sliding-histogram';
import { attemptOutcomes, errorClasses } from './outcome-rules';

export interface DeliveryActorInput {
  readonly actorIndex: number;
  readonly actorCount: number;
  readonly connectionString: string;
  readonly config: Config;
  readonly port: MessagePort;
}

export interface DeliveryControlMessage {
  readonly type: 'stop';
}

export interface DeliveryReadyMessage {
  readonly type: 'ready';
  readonly actorIndex: number;
}

export interface DeliveryStoppedMessage {
  readonly type: 'stopped';
  readonly actorIndex: number;
}

/** Why a subscription with due deliveries was held back (floodgate_delivery_deferrals_total's `reason`). */
export const deferralReasons = ['rate_limit', 'breaker', 'in_flight'] as const;

/** A subscription's live state as an actor posts it: breaker 0 closed, 1 open, 2 half-open. */
export interface LiveStateEntry {
  readonly id: number;
  readonly breaker: 0 | 1 | 2;
  readonly inFlight: number;
  readonly pausedUntilMs: number | null;
}

export interface DeliveryStatsMessage {
  readonly type: 'stats';
  readonly actorIndex: number;
  /** Counts since the last message, indexed like attemptOutcomes and errorClasses. */
  readonly subscriptions: ReadonlyArray<{ readonly id: number; readonly outcomes: number[]; readonly classes: number[] }>;
  /** Commit → delivered latency (µs) since the last message, HDR-encoded; null when none. */
  readonly latencyHistogram: Uint8Array | null;
  readonly latencySumUs: number;
  readonly reclaimed: number;
  /** Indexed like deferralReasons. */
  readonly deferrals: number[];
  readonly inFlight: number;
  /** Origins whose breaker is open or half-open now. */
  readonly breakersOpen: string[];
  /** Owned subscriptions whose state is not idle (breaker closed, nothing in flight, no pause). */
  readonly live: LiveStateEntry[];
  /** Every owned subscription id, sent only when the set changed. */
  readonly owned: number[] | null;
}

export type DeliveryMessage = DeliveryReadyMessage | DeliveryStatsMessage | DeliveryStoppedMessage;

/** What the health route shows of a subscription's sending (at most a second old). */
export interface SubscriptionLiveState {
  readonly breaker: 'closed' | 'open' | 'half-open';
  readonly inFlight: number;
  readonly pausedUntilMs: number | null;
}

export type LiveStateReader = (subscriptionId: number) => SubscriptionLiveState | null;

export interface DeliveryPool {
  /** Null when no actor of this node owns the subscription (unknown, deleted, or no delivery actors). */
  readonly liveState: LiveStateReader;
  metrics(): Metric[];
  /** Stops the actors cooperatively (each finishes its sends and writes its outcomes), then the threads. */
  close(): Promise<void>;
}

/** Per-subscription and per-endpoint labels are bounded: the first this many seen get their own, the rest share "other". */
const labelsMax = 100;
const breakerNames = ['closed', 'open', 'half-open'] as const;

export async function startDeliveryPool(options: { config: Config; connectionString: string; log: Logger; readyTimeoutMs: number }): Promise<DeliveryPool> {
  const { config, log } = options;
  const metrics = new DeliveryMetrics(config.deliveryActorCount);
  const actorCount = config.deliveryActorCount;
  if (actorCount === 0) return { liveState: () => null, metrics: () => metrics.metrics(), close: async () => undefined };
  const pool = new Piscina({
    filename: path.join(__dirname, 'delivery-worker.js'),
    minThreads: actorCount,
    maxThreads: actorCount,
    idleTimeout: Infinity,
    concurrentTasksPerWorker: 1,
    atomics: 'disabled',
    maxQueue: 0,
  });
  let readyCount = 0;
  let onAllReady: () => void = () => undefined;
  const allReady = new Promise<void>((resolve) => (onAllReady = resolve));
  const ports: MessagePort[] = [];
  const tasks = Array.from({ length: actorCount }, (_, actorIndex) => {
    const channel = new MessageChannel();
    ports.push(channel.port1);
    channel.port1.on('message', (message: DeliveryMessage) => {
      if (message.type === 'stats') metrics.onStats(message);
      else if (message.type === 'ready' && ++readyCount === actorCount) onAllReady();
    });
    const input: DeliveryActorInput = { actorIndex, actorCount, connectionString: options.connectionString, config, port: channel.port2 };
    return pool.run(input, { transferList: [channel.port2] as never });
  });
  const tasksDone = Promise.all(tasks);
  tasksDone.catch((error: unknown) => log.error({ err: error }, 'a delivery thread failed; its subscriptions are not sent until restart'));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`delivery actors not ready within ${options.readyTimeoutMs} ms`)), options.readyTimeoutMs);
  });
  try {
    await Promise.race([allReady, tasksDone.then(() => Promise.reject(new Error('a delivery actor exited during start-up'))), timeout]);
  } catch (error) {
    for (const port of ports) port.close();
    await pool.destroy();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  log.info({ deliveryActors: actorCount }, 'delivery actors ready');
  let closing: Promise<void> | null = null;
  const close = async (): Promise<void> => {
    const stop: DeliveryControlMessage = { type: 'stop' };
    for (const port of ports) port.postMessage(stop);
    // Each actor waits a bounded time for its sends (delivery-worker.ts), then as long again for its outcome writes.
    const waitMs = 2 * Math.min(config.drainTimeoutMs, config.deliveryTimeoutMs, 5000) + 5000;
    let stopTimer: NodeJS.Timeout | undefined;
    await Promise.race([tasksDone.catch(() => undefined), new Promise((resolve) => (stopTimer = setTimeout(resolve, waitMs)))]);
    clearTimeout(stopTimer);
    for (const port of ports) port.close();
    await pool.destroy();
    metrics.close();
  };
  return {
    liveState: (id) => metrics.liveState(id),
    metrics: () => metrics.metrics(),
    close: () => (closing ??= close()),
  };
}

/** The delivery series, merged from every actor's stats messages, and the live state they carry. */
export class DeliveryMetrics {
  readonly #actorCount: number;
  readonly #labels = new Map<number, string>();
  readonly #outcomes = new Map<string, Float64Array>();
  readonly #classes = new Map<string, Float64Array>();
  readonly #latencyUs = new SlidingHistogram({ sliceMs: 10_000, sliceCount: 6, now: () => Date.now() });
  readonly #deferrals = new Float64Array(deferralReasons.length);
  readonly #inFlight: number[];
  readonly #breakersOpen: string[][];
  readonly #owned: Array<Set<number>>;
  readonly #live: Array<Map<number, LiveStateEntry>>;
  #reclaimed = 0;

  constructor(actorCount: number) {
    this.#actorCount = actorCount;
    this.#inFlight = Array.from({ length: actorCount }, () => 0);
    this.#breakersOpen = Array.from({ length: actorCount }, () => []);
    this.#owned = Array.from({ length: actorCount }, () => new Set());
    this.#live = Array.from({ length: actorCount }, () => new Map());
  }

  onStats(message: DeliveryStatsMessage): void {
    const i = message.actorIndex;
    for (const { id, outcomes, classes } of message.subscriptions) {
      const label = this.#labelOf(id);
      add(this.#outcomes, label, outcomes);
      add(this.#classes, label, classes);
    }
    if (message.latencyHistogram !== null) this.#latencyUs.addEncoded(message.latencyHistogram, message.latencySumUs);
    message.deferrals.forEach((count, reason) => (this.#deferrals[reason] = (this.#deferrals[reason] as number) + count));
    this.#reclaimed += message.reclaimed;
    this.#inFlight[i] = message.inFlight;
    this.#breakersOpen[i] = message.breakersOpen;
    if (message.owned !== null) this.#owned[i] = new Set(message.owned);
    this.#live[i] = new Map(message.live.map((entry) => [entry.id, entry]));
  }

  liveState(id: number): SubscriptionLiveState | null {
    if (this.#actorCount === 0 || !Number.isSafeInteger(id) || id < 0) return null;
    const i = id % this.#actorCount;
    if (!(this.#owned[i] as Set<number>).has(id)) return null;
    const entry = (this.#live[i] as Map<number, LiveStateEntry>).get(id);
    if (entry === undefined) return { breaker: 'closed', inFlight: 0, pausedUntilMs: null };
    const paused = entry.pausedUntilMs !== null && entry.pausedUntilMs > Date.now() ? entry.pausedUntilMs : null;
    return { breaker: breakerNames[entry.breaker], inFlight: entry.inFlight, pausedUntilMs: paused };
  }

  metrics(): Metric[] {
    const perLabel = (counts: Map<string, Float64Array>, name: string, names: readonly string[]) =>
      [...counts].flatMap(([subscription, values]) =>
        names.map((value, k) => ({ labels: { subscription, [name]: value }, value: values[k] as number })));
    const help = {
      outcomes: 'Delivery attempts by what they did to the delivery (delivered, retry, failed, discarded), per subscription (first 100; the rest "other").',
      classes: 'Delivery attempts by error class ("none" when delivered), per subscription (first 100; the rest "other").',
      breakers: 'Endpoints (URL origins) whose circuit breaker is open or half-open on this node (1), first 100 origins; "other" counts the rest.',
      deferrals: 'Subscriptions with due deliveries held back by their rate limit, their endpoint\'s breaker or their in-flight cap, ' +
        'counted at most once per second each (deferred, never failed).',
      reclaimed: 'Deliveries claimed while still carrying an earlier sender\'s lease (the sender died or its lease ran out): each may be a duplicate send.',
    };
    return [
      collector('floodgate_deliveries_total', help.outcomes, 'counter', () => perLabel(this.#outcomes, 'outcome', attemptOutcomes)),
      collector('floodgate_delivery_attempts_total', help.classes, 'counter', () => perLabel(this.#classes, 'class', errorClasses)),
      windowSummary('floodgate_delivery_latency_seconds', 'Commit (delivery record created) to delivered, per delivered attempt; quantiles over the last 50-60 s.', this.#latencyUs),
      collector('floodgate_delivery_breaker_open', help.breakers, 'gauge', () => this.#breakerSamples()),
      collector('floodgate_delivery_deferrals_total', help.deferrals, 'counter', () =>
        deferralReasons.map((reason, k) => ({ labels: { reason }, value: this.#deferrals[k] as number }))),
      collector('floodgate_delivery_reclaimed_total', help.reclaimed, 'counter', () => [{ labels: {}, value: this.#reclaimed }]),
      collector('floodgate_delivery_in_flight', 'Delivery requests in flight on this node.', 'gauge', () =>
        [{ labels: {}, value: this.#inFlight.reduce((sum, n) => sum + n, 0) }]),
    ];
  }

  close(): void {
    this.#latencyUs.destroy();
  }

  #breakerSamples(): Array<{ labels: Record<string, string>; value: number }> {
    const open = new Set(this.#breakersOpen.flat());
    const samples: Array<{ labels: Record<string, string>; value: number }> = [];
    let other = 0;
    for (const origin of open) {
      if (samples.length < labelsMax) samples.push({ labels: { endpoint: origin }, value: 1 });
      else other += 1;
    }
    samples.push({ labels: { endpoint: 'other' }, value: other });
    return samples;
  }

  #labelOf(id: number): string {
    let label = this.#labels.get(id);
    if (label === undefined) {
      label = this.#labels.size < labelsMax ? String(id) : 'other';
      if (label !== 'other') this.#labels.set(id, label);
    }
    return label;
  }
}

function add(counts: Map<string, Float64Array>, label: string, values: readonly number[]): void {
  let total = counts.get(label);
  if (total === undefined) counts.set(label, (total = new Float64Array(values.length)));
  for (let k = 0; k < values.length; k++) total[k] = (total[k] as number) + (values[k] as number);
}
