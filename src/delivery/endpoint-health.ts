/**
 * Isolation state kept by each delivery thread: a circuit breaker per endpoint (URL
 * origin) with slow start after it closes, and a token bucket per subscription.
 *
 *   closed ──(≥ 10 results in 30 s, ≥ 50% failures)──▶ open ──(10 s, doubling)──▶ half-open
 *     ▲  slow start: in-flight limit 1, 2, 4, … per fully     │  one probe is sent │
 *     └──────────────── successful round ◀──(probe ok)────────┘◀──(probe fails)────┘
 *
 * While open, the endpoint's deliveries are not claimed at all: they stay pending, so no
 * attempt is spent on an endpoint known to be down, and one probe per half-open window
 * replaces a retry storm. When the probe succeeds, the limit starts at 1 and doubles each
 * time a whole round of that size succeeds, so a parked backlog drains without a stampede.
 * State is per thread (and per node): a breaker is a local, fast judgement, not a record.
 */

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerSettings {
  readonly windowMs: number;
  readonly resultsMin: number;
  readonly failureRatioMin: number;
  readonly openMs: number;
  readonly openMsMax: number;
}

export const defaultBreakerSettings: BreakerSettings = {
  windowMs: 30_000,
  resultsMin: 10,
  failureRatioMin: 0.5,
  openMs: 10_000,
  openMsMax: 300_000,
};

/** Slow start ends once the limit passes this many in flight (no subscription allows more). */
const slowStartLimitMax = 1000;
const bucketMs = 1000;

export class EndpointBreaker {
  readonly #settings: BreakerSettings;
  // A ring of one-second buckets; each remembers which second it holds, so stale ones are
  // skipped when read and reset when reused, without a timer.
  readonly #successes: Uint32Array;
  readonly #failures: Uint32Array;
  readonly #seconds: Float64Array;
  #state: BreakerState = 'closed';
  #openUntilMs = 0;
  #consecutiveTrips = 0;
  #probeInFlight = false;
  #slowStartLimit: number | null = null;
  #roundSuccesses = 0;
  /** Sends in flight to this endpoint from this thread, all subscriptions together. */
  inFlight = 0;

  constructor(settings: BreakerSettings = defaultBreakerSettings) {
    this.#settings = settings;
    const buckets = Math.ceil(settings.windowMs / bucketMs);
    this.#successes = new Uint32Array(buckets);
    this.#failures = new Uint32Array(buckets);
    this.#seconds = new Float64Array(buckets).fill(-1);
  }

  state(nowMs: number): BreakerState {
    if (this.#state === 'open' && nowMs >= this.#openUntilMs) this.#state = 'half-open';
    return this.#state;
  }

  /** When an open breaker lets its probe through; 0 when not open. */
  get openUntilMs(): number {
    return this.#state === 'open' ? this.#openUntilMs : 0;
  }

  get slowStartLimit(): number | null {
    return this.#slowStartLimit;
  }

  /** How many more sends may start now. */
  allowance(nowMs: number): number {
    const state = this.state(nowMs);
    if (state === 'open') return 0;
    if (state === 'half-open') return this.#probeInFlight ? 0 : 1;
    return this.#slowStartLimit === null ? Number.POSITIVE_INFINITY : Math.max(0, this.#slowStartLimit - this.inFlight);
  }

  /** A send starts; returns whether it is the half-open probe. */
  started(nowMs: number): boolean {
    this.inFlight += 1;
    if (this.state(nowMs) !== 'half-open') return false;
    this.#probeInFlight = true;
    return true;
  }

  /** A send ended: `success` true / false counts for the breaker, null does not (outcome-rules.ts). */
  finished(success: boolean | null, isProbe: boolean, nowMs: number): void {
    this.inFlight -= 1;
    if (isProbe) {
      this.#probeInFlight = false;
      // Any answer that is not a breaker failure shows the endpoint is back.
      if (success === false) this.#trip(nowMs);
      else this.#close();
      return;
    }
    if (this.#state !== 'closed' || success === null) return;
    if (this.#slowStartLimit !== null) this.#advanceSlowStart(success);
    this.#count(success, nowMs);
    const { successes, failures } = this.#windowTotals(nowMs);
    const total = successes + failures;
    if (total >= this.#settings.resultsMin && failures / total >= this.#settings.failureRatioMin) this.#trip(nowMs);
  }

  #advanceSlowStart(success: boolean): void {
    const limit = this.#slowStartLimit as number;
    if (!success) {
      this.#roundSuccesses = 0;
      return;
    }
    this.#roundSuccesses += 1;
    if (this.#roundSuccesses < limit) return;
    this.#roundSuccesses = 0;
    this.#slowStartLimit = limit * 2 > slowStartLimitMax ? null : limit * 2;
  }

  #trip(nowMs: number): void {
    const openMs = Math.min(this.#settings.openMs * 2 ** this.#consecutiveTrips, this.#settings.openMsMax);
    this.#consecutiveTrips += 1;
    this.#state = 'open';
    this.#openUntilMs = nowMs + openMs;
    this.#slowStartLimit = null;
    this.#seconds.fill(-1);
  }

  #close(): void {
    this.#state = 'closed';
    this.#consecutiveTrips = 0;
    this.#slowStartLimit = 1;
    this.#roundSuccesses = 0;
    this.#seconds.fill(-1);
  }

  #count(success: boolean, nowMs: number): void {
    const second = Math.floor(nowMs / bucketMs);
    const slot = second % this.#seconds.length;
    if (this.#seconds[slot] !== second) {
      this.#seconds[slot] = second;
      this.#successes[slot] = 0;
      this.#failures[slot] = 0;
    }
    const counts = success ? this.#successes : this.#failures;
    counts[slot] = (counts[slot] as number) + 1;
  }

  #windowTotals(nowMs: number): { successes: number; failures: number } {
    const oldest = Math.floor(nowMs / bucketMs) - this.#seconds.length;
    let successes = 0;
    let failures = 0;
    for (let slot = 0; slot < this.#seconds.length; slot++) {
      if ((this.#seconds[slot] as number) <= oldest) continue;
      successes += this.#successes[slot] as number;
      failures += this.#failures[slot] as number;
    }
    return { successes, failures };
  }
}

/**
 * A subscription's rate limit (rate_limit_per_s) on this thread: a token bucket with a
 * burst of one second's rate. It only shrinks claims, so over-limit work stays pending
 * and no attempt is spent on it.
 */
export class TokenBucket {
  #ratePerS: number;
  #tokens: number;
  #updatedMs: number;

  constructor(ratePerS: number, nowMs: number) {
    this.#ratePerS = ratePerS;
    this.#tokens = ratePerS;
    this.#updatedMs = nowMs;
  }

  setRate(ratePerS: number): void {
    this.#ratePerS = ratePerS;
    this.#tokens = Math.min(this.#tokens, ratePerS);
  }

  /** Whole tokens available now. */
  available(nowMs: number): number {
    this.#refill(nowMs);
    return Math.floor(this.#tokens);
  }

  take(count: number, nowMs: number): void {
    this.#refill(nowMs);
    this.#tokens -= count;
  }

  /** Gives back tokens a claim did not use (it found fewer due rows than it asked for). */
  giveBack(count: number): void {
    this.#tokens = Math.min(this.#tokens + count, this.#ratePerS);
  }

  /** Milliseconds until one whole token is available. */
  msUntilToken(nowMs: number): number {
    this.#refill(nowMs);
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) / this.#ratePerS) * 1000);
  }

  #refill(nowMs: number): void {
    const elapsedMs = nowMs - this.#updatedMs;
    if (elapsedMs <= 0) return;
    this.#tokens = Math.min(this.#ratePerS, this.#tokens + (elapsedMs * this.#ratePerS) / 1000);
    this.#updatedMs = nowMs;
  }
}
