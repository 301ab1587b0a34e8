/**
 * The rate limiter the ingest handler asks once per request, after the body is decoded
 * (when its event count is known) and before any event reaches a ring:
 *
 *   take(subject, limit, events) ─┬─ REDIS_URL set and Redis up ─▶ one script call (shared by all nodes)
 *                                 │      └─ error or timeout ─▶ this node's bucket (warn once per outage)
 *                                 └─ otherwise ───────────────▶ this node's bucket
 *
 * A Redis outage never blocks or fails a request: while Redis is down (or for a second
 * after a call failed) requests use this node's buckets at once, so each node then lets
 * the full limit through (docs/decisions/0020-rate-limits.md).
 */
import type { Metric } from 'prom-client';
import type { Logger } from '../log';
import { collector } from '../metrics/prometheus';
import { LocalBuckets } from './local-buckets';
import { RedisBuckets } from './redis-buckets';
import { outcomeOf, type BucketLimit, type TakeOutcome } from './token-bucket';

/** After a failed Redis call, requests skip Redis for this long instead of each waiting on a timeout. */
export const redisRetryAfterFailureMs = 1000;

/** What a request is limited as: an API key, or a client address (open ingest). */
export type LimitKind = 'key' | 'address';
export const limitKinds: readonly LimitKind[] = ['key', 'address'];

export interface LimitSubject {
  readonly kind: LimitKind;
  /** The bucket's name: `key:<digest of the key's hash>` or `address:<ip>` (src/limits/limit-subject.ts). */
  readonly bucket: string;
  readonly limit: BucketLimit;
}

export class RateLimiter {
  readonly #local = new LocalBuckets();
  readonly #redis: RedisBuckets | null;
  readonly #log: Logger;
  #redisFailing = false;
  #skipRedisUntilMs = 0;
  readonly #refused = new Map<LimitKind, { requests: number; events: number }>(limitKinds.map((kind) => [kind, { requests: 0, events: 0 }]));

  constructor(redisUrl: string | null, databaseId: string, log: Logger) {
    this.#redis = redisUrl === null ? null : new RedisBuckets(redisUrl, databaseId);
    this.#log = log;
  }

  async take(subject: LimitSubject, events: number): Promise<TakeOutcome> {
    const outcome = await this.#take(subject, events);
    if (!outcome.taken) {
      const refused = this.#refused.get(subject.kind) as { requests: number; events: number };
      refused.requests += 1;
      refused.events += events;
    }
    return outcome;
  }

  async #take(subject: LimitSubject, events: number): Promise<TakeOutcome> {
    const redis = this.#redis;
    if (redis !== null && redis.connected && Date.now() >= this.#skipRedisUntilMs) {
      try {
        const { taken, tokens } = await redis.take(subject.bucket, subject.limit, events);
        if (this.#redisFailing) this.#log.info({ layer: 'rate-limits' }, 'Redis answers again: rate limits are shared across nodes again');
        this.#redisFailing = false;
        return outcomeOf(taken, tokens, subject.limit, events);
      } catch (error) {
        this.#skipRedisUntilMs = Date.now() + redisRetryAfterFailureMs;
        this.#markFailing(error);
      }
    } else if (redis !== null) {
      this.#markFailing(new Error(`Redis connection is ${redis.connected ? 'backing off after a failed call' : 'not ready'}`));
    }
    return this.#local.take(subject.bucket, subject.limit, events, performance.now());
  }

  #markFailing(error: unknown): void {
    if (this.#redisFailing) return;
    this.#redisFailing = true;
    const reason = error instanceof Error ? error.message : String(error);
    this.#log.warn({ layer: 'rate-limits', reason }, 'Redis unavailable: rate limits fall back to per-node buckets until it answers again');
  }

  /** floodgate_rate_limited_requests_total and _events_total, by limit kind, from 0. */
  metrics(): Metric[] {
    const series = (field: 'requests' | 'events') => () => [...this.#refused].map(([limit, counts]) => ({ labels: { limit }, value: counts[field] }));
    return [
      collector('floodgate_rate_limited_requests_total', 'Requests refused with 429 by a rate limit (key or client address).', 'counter', series('requests')),
      collector('floodgate_rate_limited_events_total', 'Events in requests refused with 429 by a rate limit.', 'counter', series('events')),
    ];
  }

  async close(): Promise<void> {
    await this.#redis?.close();
  }
}
