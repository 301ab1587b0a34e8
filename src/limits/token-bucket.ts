/**
 * A token bucket counted in events: it holds at most `burstEvents` tokens and refills at
 * `eventsPerS` per second. A request takes one token per event it carries, all of them
 * or none (a request is never half-taken). Pure arithmetic on a state the caller keeps,
 * with the time passed in, so that the same rules run here (one node) and in the Redis
 * script (src/limits/redis-buckets.ts) and are unit-tested without a clock.
 */

export interface BucketLimit {
  readonly eventsPerS: number;
  readonly burstEvents: number;
}

/** Tokens left at `atMs`. A new bucket starts full. */
export interface BucketState {
  tokens: number;
  atMs: number;
}

/**
 * What a take decided. `remaining` is the whole tokens left after it; `retryAfterS` the
 * whole seconds until a refused request would fit (0 when taken); `fullInS` the whole
 * seconds until the bucket is full again (the RateLimit field's `t`).
 */
export interface TakeOutcome {
  readonly taken: boolean;
  readonly remaining: number;
  readonly retryAfterS: number;
  readonly fullInS: number;
}

export function fullBucket(limit: BucketLimit, nowMs: number): BucketState {
  return { tokens: limit.burstEvents, atMs: nowMs };
}

/** Refills `state` up to `nowMs`, then takes `events` tokens if they fit; updates `state`. */
export function takeTokens(state: BucketState, limit: BucketLimit, events: number, nowMs: number): TakeOutcome {
  // A clock that stepped back refills nothing rather than draining the bucket.
  const elapsedMs = Math.max(0, nowMs - state.atMs);
  const tokens = Math.min(limit.burstEvents, state.tokens + (elapsedMs * limit.eventsPerS) / 1000);
  const taken = events <= tokens;
  state.tokens = taken ? tokens - events : tokens;
  state.atMs = nowMs;
  return outcomeOf(taken, state.tokens, limit, events);
}

/** The answer's numbers from the tokens left; shared with the Redis path, whose script returns tokens. */
export function outcomeOf(taken: boolean, tokens: number, limit: BucketLimit, events: number): TakeOutcome {
  const fullInS = Math.ceil((limit.burstEvents - tokens) / limit.eventsPerS);
  // At least 1 s when refused: Retry-After 0 would invite a client to spin.
  const retryAfterS = taken ? 0 : Math.max(1, Math.ceil((events - tokens) / limit.eventsPerS));
  return { taken, remaining: Math.floor(tokens), retryAfterS, fullInS: Math.max(0, fullInS) };
}

/** Seconds to refill an empty bucket: the window `w` of the RateLimit-Policy field. */
export function windowS(limit: BucketLimit): number {
  return Math.max(1, Math.ceil(limit.burstEvents / limit.eventsPerS));
}
