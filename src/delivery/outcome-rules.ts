/**
 * The one place that decides what an attempt's result means: whether the delivery is done,
 * retried or failed, whether it counts against the endpoint's breaker, and when the next
 * attempt is due. The senders ask `verdictOfStatus` / `verdictOfError` and act on the
 * answer; nothing else looks at status codes.
 *
 * Rule table (first match wins):
 *
 * | result                                   | outcome   | breaker | next attempt / side effect              |
 * | ---------------------------------------- | --------- | ------- | --------------------------------------- |
 * | 2xx                                      | delivered | success | -                                       |
 * | 410 Gone                                 | failed    | success | subscription disabled (receiver's word) |
 * | 429 Too Many Requests                    | retry     | -       | Retry-After (default 5 s, capped); the  |
 * |                                          |           |         |   whole subscription pauses until then  |
 * | 503 Service Unavailable                  | retry     | failure | Retry-After if given (capped), else the |
 * |                                          |           |         |   schedule                              |
 * | 408, other 5xx                           | retry     | failure | schedule                                |
 * | 413 Content Too Large                    | failed    | -       | - (the same bytes would be refused      |
 * |                                          |           |         |   again; a replay resends after a fix)  |
 * | 3xx (never followed), other 4xx, 1xx     | retry     | -       | schedule (often a receiver's config,    |
 * |                                          |           |         |   fixed by a human within the schedule) |
 * | timeout (connect, headers, body)         | retry     | failure | schedule                                |
 * | connection error (refused, reset, DNS)   | retry     | failure | schedule                                |
 * | destination refused by the SSRF guard    | failed    | -       | - (retrying cannot change the answer)   |
 * | the event is gone (retention dropped it) | discarded | -       | -                                       |
 * | anything else thrown while sending       | retry     | failure | schedule                                |
 *
 * Schedule: `retryScheduleS[n - 1]` seconds after failed attempt n, ±10% uniform jitter so
 * a burst of failures does not come back as a burst; once attempt n has no entry, or the
 * delivery's schedule started more than retryMaxAgeS ago, a retry becomes `failed`.
 * Only breaker failures open the breaker: a 429 says "slow down", not "broken", and a 4xx
 * is about this request, not the endpoint's health.
 */

/** What an attempt did to its delivery (delivery_attempts.outcome; the metrics' `outcome`). */
export const attemptOutcomes = ['delivered', 'retry', 'failed', 'discarded'] as const;
export type AttemptOutcome = (typeof attemptOutcomes)[number];

/** Why an attempt did not deliver (delivery_attempts.error_class; the metrics' `class`); 'none' when it did. */
export const errorClasses = ['none', 'http_status', 'timeout', 'connection', 'destination_refused', 'missing_event', 'internal'] as const;
export type ErrorClass = (typeof errorClasses)[number];

export interface Verdict {
  readonly outcome: AttemptOutcome;
  readonly errorClass: ErrorClass;
  /** Counted by the endpoint's breaker as a success (true), a failure (false), or not at all (null). */
  readonly breakerSuccess: boolean | null;
  /** 429 pauses the whole subscription; 503 only this delivery. */
  readonly retryAfter: 'pause-subscription' | 'delivery' | null;
  readonly disableSubscription: boolean;
}

/** How long a 429 without Retry-After pauses its subscription. */
export const defaultThrottleMs = 5000;

const delivered: Verdict = { outcome: 'delivered', errorClass: 'none', breakerSuccess: true, retryAfter: null, disableSubscription: false };
const gone: Verdict = { outcome: 'failed', errorClass: 'http_status', breakerSuccess: true, retryAfter: null, disableSubscription: true };
const throttled: Verdict = { outcome: 'retry', errorClass: 'http_status', breakerSuccess: null, retryAfter: 'pause-subscription', disableSubscription: false };
const unavailable: Verdict = { outcome: 'retry', errorClass: 'http_status', breakerSuccess: false, retryAfter: 'delivery', disableSubscription: false };
const serverError: Verdict = { outcome: 'retry', errorClass: 'http_status', breakerSuccess: false, retryAfter: null, disableSubscription: false };
const tooLarge: Verdict = { outcome: 'failed', errorClass: 'http_status', breakerSuccess: null, retryAfter: null, disableSubscription: false };
const refusedByReceiver: Verdict = { outcome: 'retry', errorClass: 'http_status', breakerSuccess: null, retryAfter: null, disableSubscription: false };
const timedOut: Verdict = { outcome: 'retry', errorClass: 'timeout', breakerSuccess: false, retryAfter: null, disableSubscription: false };
const connectionFailed: Verdict = { outcome: 'retry', errorClass: 'connection', breakerSuccess: false, retryAfter: null, disableSubscription: false };
const destinationRefused: Verdict = { outcome: 'failed', errorClass: 'destination_refused', breakerSuccess: null, retryAfter: null, disableSubscription: false };
const internalFailure: Verdict = { outcome: 'retry', errorClass: 'internal', breakerSuccess: false, retryAfter: null, disableSubscription: false };
/** The delivery's event is no longer stored, so there is nothing to send. */
export const missingEventVerdict: Verdict = { outcome: 'discarded', errorClass: 'missing_event', breakerSuccess: null, retryAfter: null, disableSubscription: false };

export function verdictOfStatus(statusCode: number): Verdict {
  if (statusCode >= 200 && statusCode < 300) return delivered;
  if (statusCode === 410) return gone;
  if (statusCode === 429) return throttled;
  if (statusCode === 503) return unavailable;
  if (statusCode === 408 || statusCode >= 500) return serverError;
  if (statusCode === 413) return tooLarge;
  return refusedByReceiver;
}

const timeoutCodes: ReadonlySet<string> = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const connectionCodes: ReadonlySet<string> = new Set([
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED', 'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE',
  'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER', 'CERT_HAS_EXPIRED', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT',
]);

/** The verdict for an error thrown by the request (no status was received), by its `code`. */
export function verdictOfError(code: string | null, destinationRefusedCode: string): Verdict {
  if (code === destinationRefusedCode) return destinationRefused;
  if (code !== null && timeoutCodes.has(code)) return timedOut;
  if (code !== null && connectionCodes.has(code)) return connectionFailed;
  return internalFailure;
}

/** IMF-fixdate, the HTTP date form senders must use (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`. */
const httpDatePattern = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/**
 * Milliseconds from `nowMs` that a Retry-After header asks for (delta seconds or an HTTP
 * date), capped at `capMs`; null when absent or unreadable.
 */
export function retryAfterMs(header: string | null, nowMs: number, capMs: number): number | null {
  if (header === null) return null;
  const text = header.trim();
  let waitMs: number;
  if (/^\d+$/.test(text)) waitMs = Number(text) * 1000;
  else if (httpDatePattern.test(text)) waitMs = Date.parse(text) - nowMs;
  else return null;
  if (Number.isNaN(waitMs)) return null;
  return Math.min(Math.max(waitMs, 0), capMs);
}

/**
 * Delay before attempt `attempt + 1` after attempt `attempt` (1-based) failed, with ±10%
 * jitter; null when the schedule is exhausted or the delivery is too old to retry.
 * `random` is injectable so tests can pin the jitter.
 */
export function retryDelayMs(
  schedule: readonly number[],
  attempt: number,
  scheduleAgeMs: number,
  maxAgeS: number,
  random: () => number = Math.random,
): number | null {
  if (scheduleAgeMs > maxAgeS * 1000) return null;
  const seconds = schedule[attempt - 1];
  if (seconds === undefined) return null;
  const jitter = 1 + (random() * 2 - 1) * 0.1;
  return Math.round(seconds * 1000 * jitter);
}
