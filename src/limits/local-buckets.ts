/**
 * Buckets kept on this node: used when no Redis is configured, and while Redis is down.
 * The map is bounded: a bucket idle for longer than its window is full again, so
 * forgetting it changes nothing; when the map is full of busy buckets the oldest is
 * forgotten, which hands that client a fresh burst (documented in docs/securing.md)
 * rather than letting many client addresses grow the map without end.
 */
import { fullBucket, takeTokens, type BucketLimit, type BucketState, type TakeOutcome } from './token-bucket';

export const localBucketsMax = 100_000;

interface Entry {
  readonly state: BucketState;
  limit: BucketLimit;
}

export class LocalBuckets {
  readonly #entries = new Map<string, Entry>();
  readonly #bucketsMax: number;

  constructor(bucketsMax = localBucketsMax) {
    this.#bucketsMax = bucketsMax;
  }

  take(bucketKey: string, limit: BucketLimit, events: number, nowMs: number): TakeOutcome {
    let entry = this.#entries.get(bucketKey);
    if (entry === undefined) {
      if (this.#entries.size >= this.#bucketsMax) this.#evict(nowMs);
      entry = { state: fullBucket(limit, nowMs), limit };
      this.#entries.set(bucketKey, entry);
    }
    // A key's limit may change between refreshes; the tokens carry over.
    entry.limit = limit;
    return takeTokens(entry.state, limit, events, nowMs);
  }

  get size(): number {
    return this.#entries.size;
  }

  #evict(nowMs: number): void {
    for (const [bucketKey, entry] of this.#entries) {
      if (nowMs - entry.state.atMs >= (entry.limit.burstEvents / entry.limit.eventsPerS) * 1000) this.#entries.delete(bucketKey);
    }
    if (this.#entries.size < this.#bucketsMax) return;
    const oldest = this.#entries.keys().next();
    if (!oldest.done) this.#entries.delete(oldest.value);
  }
}
