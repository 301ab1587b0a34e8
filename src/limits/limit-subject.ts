/**
 * Which bucket a request spends from, decided in the route handler while uWS still lets
 * `req` be read: the calling key's (its subject is built once per key-cache refresh, so
 * this costs nothing per request), else, for open ingest with an address limit
 * configured, the client address's. Null: not limited.
 */
import { createHash } from 'node:crypto';
import type { Actor } from '../auth/audit';
import type { UwsHttpRequest, UwsHttpResponse } from '../ingress/uws';
import { clientAddressOf, type TrustedProxies } from './client-address';
import type { LimitSubject, RateLimiter } from './rate-limiter';
import type { BucketLimit, TakeOutcome } from './token-bucket';

export interface RateLimits {
  readonly limiter: RateLimiter;
  /** FLOODGATE_OPEN_INGEST_EVENTS_PER_S / _BURST_EVENTS; null when off. */
  readonly openIngestLimit: BucketLimit | null;
  readonly trustedProxies: TrustedProxies;
}

export function limitSubjectOf(limits: RateLimits, caller: Actor | undefined, res: UwsHttpResponse, req: UwsHttpRequest): LimitSubject | null {
  if (caller?.rateLimit != null) return caller.rateLimit;
  if (limits.openIngestLimit === null || caller === undefined || caller.keyId !== null) return null;
  const peer = Buffer.from(res.getRemoteAddressAsText()).toString('latin1');
  const forwardedFor: string[] = [];
  if (limits.trustedProxies.count > 0) {
    // Every X-Forwarded-For line, in order: uWS getHeader would give only the first.
    req.forEach((name, value) => {
      if (name === 'x-forwarded-for') forwardedFor.push(value);
    });
  }
  const address = clientAddressOf(peer, forwardedFor, limits.trustedProxies);
  return { kind: 'address', bucket: `address:${address}`, limit: limits.openIngestLimit };
}

/**
 * The key's subject, built when the key cache loads the key; null for an unlimited key.
 * The bucket is named by a digest of the key's stored hash, not by its id: ids restart at
 * 1 in every database, and two deployments (or test databases) sharing one Redis must not
 * share buckets. The digest reveals nothing of the key or of its stored hash.
 */
export function keySubjectOf(keyHash: Buffer, eventsPerS: number | null, burstEvents: number | null): LimitSubject | null {
  if (eventsPerS === null) return null;
  const name = createHash('sha256').update('floodgate-rate-limit:').update(keyHash).digest('base64url').slice(0, 22);
  return { kind: 'key', bucket: `key:${name}`, limit: { eventsPerS, burstEvents: burstEvents ?? eventsPerS } };
}

/** Whether a request's (or a stream batch's) events fit its bucket, and if not, the answer that says why. */
export type Spending =
  | { readonly taken: true; readonly outcome: TakeOutcome }
  | { readonly taken: false; readonly code: 'ERR_RATE_LIMIT_BURST'; readonly message: string; readonly outcome: null }
  | { readonly taken: false; readonly code: 'ERR_RATE_LIMITED'; readonly message: string; readonly outcome: TakeOutcome };

/**
 * Takes one token per event the request or batch carries, valid or not (every decoded item
 * costs the engine its validation), all or none: what does not fit is refused whole and
 * nothing of it is queued. More events than the burst can never fit. The limiter may wait
 * for Redis (it falls back to this node's buckets itself; a rejection is a bug).
 */
export async function spendEvents(limits: RateLimits, subject: LimitSubject, events: number, unit: 'request' | 'batch'): Promise<Spending> {
  const { limit } = subject;
  if (events > limit.burstEvents) {
    const message = `the ${unit} holds ${events} events, more than this ${subject.kind === 'key' ? 'key' : 'client address'}'s burst of ${limit.burstEvents}: split it`;
    return { taken: false, code: 'ERR_RATE_LIMIT_BURST', message, outcome: null };
  }
  const outcome = await limits.limiter.take(subject, events);
  if (outcome.taken) return { taken: true, outcome };
  const message = `rate limit: ${limit.eventsPerS} events/s with a burst of ${limit.burstEvents}; these ${events} events fit in ${outcome.retryAfterS} s`;
  return { taken: false, code: 'ERR_RATE_LIMITED', message, outcome };
}
