/**
 * The error catalogue: every error Floodgate reports has a stable string code used in
 * HTTP bodies, logs and metrics. Callers match on `code`, never on classes or messages.
 * docs/api.md lists every code here; test/docs/docs.test.ts keeps the two in sync.
 *
 * Request-level codes (ERR_INGEST_*) decide the HTTP status of a whole request.
 * Event-level codes (ERR_EVENT_*) appear in the per-event `errors` array of a bulk answer.
 */
export const errorCatalogue = {
  // Request level.
  ERR_INGEST_BODY_TOO_LARGE: { status: 413, summary: 'request body exceeds bodyBytesMax, or its decompressed size exceeds bodyDecodedBytesMax' },
  ERR_INGEST_TOO_MANY_EVENTS: { status: 413, summary: 'request holds more than eventsPerRequestMax events' },
  ERR_INGEST_MALFORMED_BODY: { status: 400, summary: 'body is not valid JSON, NDJSON, msgpack or gzip' },
  ERR_INGEST_BAD_SHAPE: { status: 400, summary: 'body decoded but is not an event object / {"events": [...]} / array' },
  ERR_INGEST_EMPTY: { status: 400, summary: 'request holds no events' },
  ERR_INGEST_ALL_INVALID: { status: 400, summary: 'every event in the request failed validation' },
  ERR_INGEST_UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: 'Content-Type is not JSON, NDJSON or msgpack' },
  ERR_INGEST_UNSUPPORTED_ENCODING: { status: 415, summary: 'Content-Encoding is not gzip or identity' },
  ERR_INGEST_BAD_HEADER: { status: 400, summary: 'a request header is invalid (e.g. Idempotency-Key too long)' },
  ERR_INGEST_BODY_TIMEOUT: { status: 408, summary: 'the body did not arrive within bodyTimeoutMs' },
  ERR_INGEST_OVERLOADED: { status: 503, summary: 'an actor ring is full; retry after Retry-After seconds' },
  ERR_INGEST_DRAINING: { status: 503, summary: 'the engine is shutting down; retry on another node or later' },
  ERR_INGEST_COMMIT_TIMEOUT: { status: 503, summary: 'events were queued but not committed within ackTimeoutMs; retry (dedupe makes it safe)' },
  ERR_INGEST_DATABASE_UNAVAILABLE: { status: 503, summary: 'the sink circuit is open (database unreachable or failing); nothing was queued; retry after Retry-After' },
  ERR_INGEST_WRITE_FAILED: { status: 503, summary: 'the database could not take some or all of the events; the request is not acknowledged; resend it whole (dedupe makes it safe)' },
  ERR_STREAM_TOO_MANY_BATCHES: { status: 429, summary: 'a WebSocket stream already has FLOODGATE_WS_BATCHES_IN_FLIGHT_MAX batches unacknowledged; nothing of this batch was taken: resend it after retry_after_ms' },
  ERR_NOT_FOUND: { status: 404, summary: 'no such route' },
  ERR_METHOD_NOT_ALLOWED: { status: 405, summary: 'route exists but not for this method' },
  ERR_INTERNAL: { status: 500, summary: 'a bug: the request failed unexpectedly (details in the log)' },

  // Dead letters (GET /v1/dead-letters, POST /v1/dead-letters/replay); `parameter` names the culprit.
  ERR_DEAD_LETTER_BAD_PARAMETER: { status: 400, summary: 'a dead-letter query parameter or replay body field is missing, malformed, unknown or out of range' },
  ERR_DEAD_LETTER_BAD_CURSOR: { status: 400, summary: 'the cursor (after) was not returned by this API for this kind of call' },
  ERR_DEAD_LETTER_TOO_MANY_IDS: { status: 413, summary: 'a replay names more ids than the per-call limit (5000)' },
  ERR_DEAD_LETTER_UNAVAILABLE: { status: 503, summary: 'the dead_letters table could not be read or updated (database unavailable); retry' },

  // The read API (src/query: /v1/analytics/*, GET /v1/events…); `parameter` names the culprit.
  ERR_QUERY_BAD_PARAMETER: { status: 400, summary: 'a query parameter is unknown, repeated, malformed or out of range (a window too wide, a limit too large)' },
  ERR_QUERY_BAD_CURSOR: { status: 400, summary: 'the cursor was not returned by this route, or was returned for other filters' },
  ERR_QUERY_NOT_FOUND: { status: 404, summary: 'no stored event has that event_id' },
  ERR_QUERY_TIMEOUT: { status: 503, summary: 'the read took longer than readStatementTimeoutMs and was cancelled; narrow the window or retry' },
  ERR_QUERY_UNAVAILABLE: { status: 503, summary: 'the database could not be read (unavailable, or every read connection busy); retry' },

  // Signed webhooks (POST /v1/webhooks/{name}; the Day-15 routes when FLOODGATE_WEBHOOK_SECRET is set). Nothing is stored.
  ERR_WEBHOOK_SIGNATURE: { status: 401, summary: 'the webhook signature is missing, malformed, or matches none of the source\'s secrets' },
  ERR_WEBHOOK_TIMESTAMP: { status: 401, summary: 'the signature verifies but its timestamp is more than five minutes from the receiver\'s clock' },
  ERR_WEBHOOK_SOURCE_UNKNOWN: { status: 404, summary: 'no webhook source has the name in POST /v1/webhooks/{name} or DELETE /v1/webhook-sources/{name}' },
  ERR_WEBHOOK_SOURCE_BAD_REQUEST: { status: 400, summary: 'a webhook-source body or name is malformed (name, scheme, secrets, header)' },
  ERR_WEBHOOK_SOURCE_UNAVAILABLE: { status: 503, summary: 'the webhook_sources table could not be read or updated (database unavailable); retry' },
  // Authentication (src/auth): checked on the headers, before any body is read.
  ERR_AUTH_REQUIRED: { status: 401, summary: 'the route needs an API key and the request carries none (or comes from outside loopback while no key exists)' },
  ERR_AUTH_INVALID: { status: 401, summary: 'the credential is malformed, unknown or revoked, or the request carries more than one credential' },
  ERR_AUTH_SCOPE: { status: 403, summary: 'the API key is valid but lacks the scope the route needs (ingest, read or admin)' },
  ERR_KEY_BAD_REQUEST: { status: 400, summary: 'a key-management body or path is malformed (name, scopes, id)' },
  ERR_KEY_NOT_FOUND: { status: 404, summary: 'no API key has this id' },
  // Rate limits (src/limits): checked once the body is decoded, before any event is queued; nothing is stored.
  ERR_RATE_LIMITED: { status: 429, summary: 'the key\'s (or, for open ingest, the client address\'s) events-per-second limit has too few tokens for the whole request; retry after Retry-After seconds' },
  ERR_RATE_LIMIT_BURST: { status: 413, summary: 'the request holds more events than the limit\'s burst, so it can never fit: split it' },
  ERR_KEY_UNAVAILABLE: { status: 503, summary: 'the api_keys table could not be read or updated (database unavailable); retry' },
  // Delivery (src/delivery: /v1/subscriptions…, /v1/deliveries…); `parameter` names the culprit where there is one.
  ERR_SUBSCRIPTION_BAD_REQUEST: { status: 400, summary: 'a subscription body, path id or field is malformed, unknown or out of range (url, event_types, sources, secret, limits, retry schedule)' },
  ERR_SUBSCRIPTION_DESTINATION_REFUSED: { status: 400, summary: 'the subscription URL is not http(s), or names a loopback, private, link-local or otherwise non-public address while FLOODGATE_DELIVERY_ALLOW_PRIVATE_NETWORKS is off' },
  ERR_SUBSCRIPTION_NOT_FOUND: { status: 404, summary: 'no (undeleted) subscription has this id' },
  ERR_DELIVERY_BAD_PARAMETER: { status: 400, summary: 'a deliveries query parameter or replay body field is unknown, repeated, malformed or out of range' },
  ERR_DELIVERY_BAD_CURSOR: { status: 400, summary: 'the deliveries cursor was not returned by this route for these filters' },
  ERR_DELIVERY_NOT_FOUND: { status: 404, summary: 'no delivery has this id' },
  ERR_DELIVERY_UNAVAILABLE: { status: 503, summary: 'the subscription or delivery tables could not be read or updated (database unavailable); retry' },

  // Event level (status is the one used when the event is sent alone to POST /v1/events).
  ERR_EVENT_NOT_OBJECT: { status: 400, summary: 'the event is not a JSON/msgpack object' },
  ERR_EVENT_MALFORMED: { status: 400, summary: 'an NDJSON line is not valid JSON or not valid UTF-8 (the other lines are still taken)' },
  ERR_EVENT_TOO_LARGE: { status: 413, summary: 'the encoded event exceeds eventBytesMax' },
  ERR_EVENT_FIELD_MISSING: { status: 400, summary: 'a required field (event_type, timestamp) is missing' },
  ERR_EVENT_FIELD_TYPE: { status: 400, summary: 'a field has the wrong type' },
  ERR_EVENT_FIELD_LENGTH: { status: 400, summary: 'a text field is empty or longer than its limit' },
  ERR_EVENT_FIELD_NUL: { status: 400, summary: 'a text field contains a NUL character, which PostgreSQL cannot store' },
  ERR_EVENT_FIELD_UNKNOWN: { status: 400, summary: 'the event has a top-level field Floodgate does not know' },
  ERR_EVENT_FIELD_CONFLICT: { status: 400, summary: 'a field and its alias were both given (actor_id/user_id, attributes/metadata/properties)' },
  ERR_EVENT_TIMESTAMP_FORMAT: { status: 400, summary: 'timestamp is not ISO-8601 with an offset or epoch milliseconds' },
  ERR_EVENT_TIMESTAMP_RANGE: { status: 400, summary: 'timestamp is outside the accepted window (timestampPastMs / timestampFutureMs)' },
  ERR_EVENT_ATTRIBUTES_TOO_LARGE: { status: 413, summary: 'attributes encode to more than attributesBytesMax' },
  ERR_EVENT_ATTRIBUTES_TOO_DEEP: { status: 400, summary: 'attributes nest deeper than attributesDepthMax' },
  ERR_EVENT_ATTRIBUTES_INVALID: { status: 400, summary: 'attributes hold a value JSON cannot represent, a \\u0000, or a forbidden key (__proto__)' },
  ERR_EVENT_DEAD_LETTERED: { status: 422, summary: 'PostgreSQL refused the row; it was stored in dead_letters with the reason' },
  ERR_EVENT_WRITE_FAILED: { status: 503, summary: 'the event could not be written (database unavailable); retry' },

  // Start-up (never sent over HTTP: the engine refuses to start, so the status is nominal).
  ERR_CONFIG_INVALID: { status: 500, summary: 'a setting (environment variable or CLI flag) is malformed, out of range, unknown, or inconsistent with another' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

/** What crosses threads and goes into HTTP bodies: never a class, always `{code, message}`. */
export interface ErrorInfo {
  readonly code: ErrorCode;
  readonly message: string;
}

/** A per-event problem, as it appears in the bulk answer's `errors` array. */
export interface EventError extends ErrorInfo {
  /** Position of the event in the request (0-based). */
  readonly index: number;
  /** The offending field (`timestamp`, `attributes.x`…), or null for the event as a whole. */
  readonly field: string | null;
}

/** An operating error with a catalogue code, for throw sites that cross module boundaries. */
export class FloodgateError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'FloodgateError';
  }
}

export function statusOf(code: ErrorCode): number {
  return errorCatalogue[code].status;
}
