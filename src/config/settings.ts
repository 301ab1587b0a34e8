/**
 * Every setting of the engine, in one table: names (environment variable and CLI flag),
 * kind, default, range, unit and meaning. The parser and its messages
 * (src/config/load-config.ts) and the configuration table of docs/configuration.md
 * (`renderConfigTable`) are derived from it, so they cannot drift apart.
 */
import type { Config } from './config';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const secondMs = 1000;
export const minuteMs = 60 * secondMs;
export const hourMs = 60 * minuteMs;
export const dayMs = 24 * hourMs;
/** Ten years of 365 days: the outer bound of the accepted timestamp window. */
const tenYearsMs = 3650 * dayMs;
/** A century of days: whoever means to keep longer leaves the retention settings unset. */
const retentionDaysMax = 36_500;
/** Each allowed origin is compared on every CORS request: a short list, not a registry. */
export const corsOriginsMax = 32;
/** Bad values are echoed in messages; a pasted blob must not flood the log. */
export const shownValueCharsMax = 120;

export type SettingKind = 'integer' | 'bytes' | 'duration' | 'enum' | 'string' | 'url' | 'boolean' | 'secret';

interface SettingText {
  /** Environment variable, e.g. `FLOODGATE_BATCH_ROWS_MAX`. */
  readonly env: string;
  /** CLI flag, e.g. `--batch-rows-max`. */
  readonly flag: string;
  /** Unit of the value (plural noun), shown in messages and in docs/configuration.md. */
  readonly unit: string;
  /** One line for docs/configuration.md. */
  readonly description: string;
}

/** integer: plain count; bytes: accepts KiB/MiB/GiB suffixes; duration: accepts ms/s/m/h/d. */
export interface NumberSetting extends SettingText {
  readonly kind: 'integer' | 'bytes' | 'duration';
  readonly default: number;
  readonly min: number;
  readonly max: number;
  readonly multipleOf?: number;
}

/**
 * An integer that is unset (null) unless given, for a limit whose absence means "none"
 * (keep data forever) where any number, 0 included, would read as a value.
 */
export interface OptionalIntegerSetting extends SettingText {
  readonly kind: 'integer';
  readonly default: null;
  readonly min: number;
  readonly max: number;
  readonly multipleOf?: undefined;
}

export interface EnumSetting extends SettingText {
  readonly kind: 'enum';
  readonly default: string;
  readonly values: readonly string[];
}

/**
 * host: a hostname or IP literal; path: any path, resolved against the working directory;
 * origins: `*`, or comma-separated browser origins (scheme://host[:port]), kept lower-case.
 * address-list: comma-separated IP addresses and CIDR blocks (src/limits/client-address.ts).
 */
export interface StringSetting extends SettingText {
  readonly kind: 'string';
  readonly default: string;
  readonly format: 'host' | 'path' | 'origins' | 'address-list' | 'source';
}

/** Unset (null) unless given; the protocols listed are the only ones accepted. */
export interface UrlSetting extends SettingText {
  readonly kind: 'url';
  readonly default: null;
  readonly protocols: readonly string[];
}

export interface BooleanSetting extends SettingText {
  readonly kind: 'boolean';
  readonly default: boolean;
}

/**
 * Unset (null) unless given; never echoed in a message or a log line. api-key: `fgk_`
 * followed by base64url characters (src/auth/key-format.ts); token: any visible ASCII.
 */
export interface SecretSetting extends SettingText {
  readonly kind: 'secret';
  readonly default: null;
  readonly format: 'api-key' | 'token';
  readonly charsMin: number;
  readonly charsMax: number;
}

export type SettingSpec = NumberSetting | OptionalIntegerSetting | EnumSetting | StringSetting | UrlSetting | BooleanSetting | SecretSetting;
export type Setting = SettingSpec & { readonly key: keyof Config };

/*
 * Keyed by Config property so that the compiler rejects a Config key without a setting,
 * a setting without a Config key, and a default of the wrong type. Order here is the
 * order of the table in docs/configuration.md.
 */
export const settingsByKey = {
  port: {
    env: 'PORT', flag: '--port', kind: 'integer', default: 8080, min: 0, max: 65535, unit: 'port',
    description: 'HTTP port to listen on; 0 asks the OS for any free port (tests).',
  },
  host: {
    env: 'FLOODGATE_HOST', flag: '--host', kind: 'string', format: 'host', default: '0.0.0.0', unit: 'address',
    description: 'Interface to listen on.',
  },
  databaseUrl: {
    env: 'DATABASE_URL', flag: '--database-url', kind: 'url', default: null, protocols: ['postgres:', 'postgresql:'],
    unit: 'URL', description: 'PostgreSQL connection string; unset starts the embedded PostgreSQL.',
  },
  redisUrl: {
    env: 'REDIS_URL', flag: '--redis-url', kind: 'url', default: null, protocols: ['redis:', 'rediss:'],
    unit: 'URL', description: 'Redis connection string; unset turns the cross-node dedupe layer off.',
  },
  redisDedupeTtlMs: {
    env: 'FLOODGATE_REDIS_DEDUPE_TTL_MS', flag: '--redis-dedupe-ttl-ms', kind: 'duration', default: 10 * 60 * secondMs, min: secondMs,
    max: 24 * 60 * 60 * secondMs, unit: 'ms', description: 'How long Redis remembers a committed event id (keep it minutes: ~140 bytes per id).',
  },
  ackMode: {
    env: 'FLOODGATE_ACK', flag: '--ack', kind: 'enum', default: 'durable', values: ['durable', 'async'], unit: 'mode',
    description: 'durable answers after commit; async answers 202 once queued in memory (lost on a crash).',
  },
  dataDir: {
    env: 'FLOODGATE_DATA_DIR', flag: '--data-dir', kind: 'string', format: 'path', default: '.floodgate', unit: 'path',
    description:
      'Local state such as the embedded PostgreSQL data; relative paths start at the working directory. As root, when ' +
      'the postgres user cannot reach it (e.g. under /root), the cluster lives in `/var/lib/floodgate/<hash>/postgres`, ' +
      'linked from `<dir>/postgres`.',
  },
  embeddedPgPort: {
    env: 'FLOODGATE_EMBEDDED_PG_PORT', flag: '--embedded-pg-port', kind: 'integer', default: 54329,
    // The embedded server runs as an unprivileged user, which cannot bind ports below 1024.
    min: 1024, max: 65535, unit: 'port',
    description: 'Port of the embedded PostgreSQL (only used without DATABASE_URL).',
  },
  actorCount: {
    /*
     * Default 1 (it was 2): on two cores one actor, which reads its next batch while the
     * last one is being written, did more with less CPU: one ring, one envelope per
     * request, batches twice as big. Raise it on machines with more cores, where one
     * PostgreSQL backend may become the limit (docs/decisions/0003-one-actor-by-default.md).
     */
    env: 'FLOODGATE_ACTORS', flag: '--actors', kind: 'integer', default: 1, min: 1, max: 32, unit: 'threads',
    description: 'Actor worker threads, each with its own ring and database connection.',
  },
  actorNice: {
    /*
     * Default 10, async mode only: there nobody waits for an actor, and the answering main
     * thread should win a contended core; it lowered the async client p99. In durable mode
     * the actor is on every answer's path and nice 10 made the tail worse, so there it
     * keeps the main thread's priority (docs/decisions/0010-actor-nice-in-async-mode.md).
     * The mechanism is in src/actors/thread-priority.ts.
     */
    env: 'FLOODGATE_ACTOR_NICE', flag: '--actor-nice', kind: 'integer', default: 10, min: 0, max: 19, unit: 'nice',
    description: 'Async mode: scheduling niceness of the actor threads (0 as the main thread, up to 19), so the thread that receives and answers wins a contended core over the ones that batch and write. Durable mode ignores it: there the actors are on the answer path.',
  },
  ringBytes: {
    // Multiple of 8 so that 64-bit header fields and record starts stay aligned.
    env: 'FLOODGATE_RING_BYTES', flag: '--ring-bytes', kind: 'bytes', default: 16 * MiB, min: 64 * KiB, max: GiB,
    multipleOf: 8, unit: 'bytes', description: 'Shared memory per actor ring; a full ring answers 503.',
  },
  batchRowsMax: {
    env: 'FLOODGATE_BATCH_ROWS_MAX', flag: '--batch-rows-max', kind: 'integer', default: 5000, min: 1, max: 100_000,
    unit: 'rows', description: 'An actor writes its batch once it holds this many rows…',
  },
  /*
   * Default 0 (it was 5 ms): under load an actor's batch grows while its previous COPY is in
   * flight anyway (group commit), so a timer only adds latency when the database is idle;
   * 0 halved the half-load p50 (docs/decisions/0005-group-commit-durable-acks.md).
   */
  batchWaitMs: {
    env: 'FLOODGATE_BATCH_WAIT_MS', flag: '--batch-wait-ms', kind: 'duration', default: 0, min: 0, max: 10 * secondMs,
    unit: 'ms',
    description: '…or once its oldest unwritten event has waited this long. 0: as soon as no write is in flight (events arriving during a write form the next batch).',
  },
  dedupeWindowEntriesMax: {
    env: 'FLOODGATE_DEDUPE_WINDOW_ENTRIES_MAX', flag: '--dedupe-window-entries-max', kind: 'integer', default: 250_000,
    min: 0, max: 10_000_000, unit: 'entries',
    description: 'Committed event ids each actor remembers for in-memory dedupe (0 turns the window off). Allocated at start, ~130 bytes per entry (250,000: ~32 MB per actor).',
  },
  retryAttemptsMax: {
    env: 'FLOODGATE_RETRY_ATTEMPTS_MAX', flag: '--retry-attempts-max', kind: 'integer', default: 5, min: 0, max: 100,
    unit: 'attempts', description: 'Retries of a batch after transient database errors before its events fail.',
  },
  writerFlushAfterBytes: {
    /*
     * Default 256 KiB: without it the COPY backend's page writes sit in the kernel's page
     * cache until they are 30 s old and then go out in one burst that stalls every WAL
     * fsync behind it (docs/decisions/0008-writer-backend-flush-after.md); 64 KiB did no
     * better (docs/decisions/0009-writer-flush-size-256k.md). PostgreSQL takes 0..2 MB in
     * 8 kB pages.
     */
    env: 'FLOODGATE_WRITER_FLUSH_AFTER_BYTES', flag: '--writer-flush-after-bytes', kind: 'bytes', default: 256 * KiB, min: 0,
    max: 2 * MiB, multipleOf: 8 * KiB, unit: 'bytes',
    description: "PostgreSQL backend_flush_after for the actors' writer sessions: the backend asks the kernel to write out every this many bytes it wrote, so writeback never comes in stalling bursts. 0 leaves the server's own setting.",
  },
  rollups: {
    /*
     * A benchmark switch, not a feature flag: off exists to measure what the rollup upserts
     * cost ingest (docs/decisions/0021-rollups-in-the-write-transaction.md). Rows written
     * while it is off are missing from the rollups until `floodgate rollups rebuild`.
     */
    env: 'FLOODGATE_ROLLUPS', flag: '--rollups', kind: 'enum', default: 'on', values: ['on', 'off'], unit: 'mode',
    description: 'on: every write transaction also adds its rows to the per-minute, per-hour and per-day rollup tables. off: a benchmark switch to measure their cost; rows written while off are missing from the rollups until `floodgate rollups rebuild`.',
  },
  readConnectionsMax: {
    /*
     * Reads have their own pool, never the actors' connections, so a heavy read cannot
     * delay a commit; the bound keeps 32 concurrent readers from opening 32 backends on a
     * 2-core machine (they queue for a connection instead).
     */
    env: 'FLOODGATE_READ_CONNECTIONS_MAX', flag: '--read-connections-max', kind: 'integer', default: 8, min: 1,
    max: 256, unit: 'connections', description: 'PostgreSQL connections the read API (/v1/analytics/*, GET /v1/events) holds at most; further reads wait for one.',
  },
  readStatementTimeoutMs: {
    env: 'FLOODGATE_READ_STATEMENT_TIMEOUT_MS', flag: '--read-statement-timeout-ms', kind: 'duration', default: 5 * secondMs,
    min: 10, max: 600 * secondMs, unit: 'ms', description: 'Longest one read statement may run before PostgreSQL cancels it (503 ERR_QUERY_TIMEOUT); an NDJSON export runs many statements, each under this bound.',
  },
  retentionDays: {
    /*
     * No default: dropping data must be asked for. At least the accepted timestamp window
     * (a cross-field rule in load-config.ts), so no accepted event lands in a dropped day.
     */
    env: 'FLOODGATE_RETENTION_DAYS', flag: '--retention-days', kind: 'integer', default: null, min: 1, max: retentionDaysMax, unit: 'days',
    description: 'Unset: events are kept forever. Set: every hour, the day partitions of events before (start of today UTC − this many days) are detached and dropped. At least FLOODGATE_TIMESTAMP_PAST_MS in days.',
  },
  rollupRetentionDays: {
    env: 'FLOODGATE_ROLLUP_RETENTION_DAYS', flag: '--rollup-retention-days', kind: 'integer', default: null, min: 1, max: retentionDaysMax, unit: 'days',
    description: 'Unset: rollup rows are kept forever. Set: every hour, the minute, hour and day rollup rows before (start of today UTC − this many days) are deleted, one day per statement. At least FLOODGATE_TIMESTAMP_PAST_MS in days.',
  },
  deliveryActorCount: {
    /*
     * Delivery runs on its own worker threads beside the ingest actors (src/delivery); one
     * is enough for a 2-core machine (docs/benchmarks.md, delivery). 0 stores delivery
     * records but sends nothing, e.g. on a node reserved for ingest.
     */
    env: 'FLOODGATE_DELIVERY_ACTORS', flag: '--delivery-actors', kind: 'integer', default: 1, min: 0, max: 16, unit: 'threads',
    description: 'Worker threads that send deliveries to subscribers; each takes a share of the subscriptions. 0: this node sends nothing (records are still made).',
  },
  deliveryAllowPrivateNetworks: {
    env: 'FLOODGATE_DELIVERY_ALLOW_PRIVATE_NETWORKS', flag: '--delivery-allow-private-networks', kind: 'boolean', default: false, unit: 'flag',
    description: 'Allow subscription URLs (and the addresses their names resolve to) in loopback, private, link-local and other non-public ranges. Off: such destinations are refused (SSRF guard).',
  },
  deliveryConnectTimeoutMs: {
    env: 'FLOODGATE_DELIVERY_CONNECT_TIMEOUT_MS', flag: '--delivery-connect-timeout-ms', kind: 'duration', default: 5 * secondMs,
    min: 100, max: 60 * secondMs, unit: 'ms', description: 'Longest a delivery waits for a TCP connection to a subscriber.',
  },
  deliveryTimeoutMs: {
    env: 'FLOODGATE_DELIVERY_TIMEOUT_MS', flag: '--delivery-timeout-ms', kind: 'duration', default: 15 * secondMs,
    min: 100, max: 120 * secondMs, unit: 'ms', description: 'Longest a subscriber may take to send its response headers, and again between body chunks; past it the attempt is a timeout and is retried.',
  },
  deliveryConnectionsPerOrigin: {
    env: 'FLOODGATE_DELIVERY_CONNECTIONS_PER_ORIGIN', flag: '--delivery-connections-per-origin', kind: 'integer', default: 32, min: 1, max: 1024, unit: 'connections',
    description: 'Most open connections per subscriber origin (scheme, host, port) per delivery thread.',
  },
  deliveryResponseBytesMax: {
    env: 'FLOODGATE_DELIVERY_RESPONSE_BYTES_MAX', flag: '--delivery-response-bytes-max', kind: 'bytes', default: 64 * KiB, min: KiB, max: 16 * MiB, unit: 'bytes',
    description: 'Largest response body read from a subscriber; a longer one ends the attempt (its status still decides the outcome). The attempt log keeps at most 4 KiB of it.',
  },
  deliveryLeaseMs: {
    env: 'FLOODGATE_DELIVERY_LEASE_MS', flag: '--delivery-lease-ms', kind: 'duration', default: 60 * secondMs,
    min: secondMs, max: hourMs, unit: 'ms', description: 'How long a claimed delivery belongs to its sender; if the sender dies, another may send it after this. Must exceed connect + 2 x timeout.',
  },
  deliveryRetryAfterMaxMs: {
    env: 'FLOODGATE_DELIVERY_RETRY_AFTER_MAX_MS', flag: '--delivery-retry-after-max-ms', kind: 'duration', default: hourMs,
    min: secondMs, max: dayMs, unit: 'ms', description: 'Cap on a subscriber\'s Retry-After (429, 503): a longer hint waits only this long.',
  },
  deliverySecretGraceMs: {
    env: 'FLOODGATE_DELIVERY_SECRET_GRACE_MS', flag: '--delivery-secret-grace-ms', kind: 'duration', default: dayMs,
    min: 0, max: 7 * dayMs, unit: 'ms', description: 'After a secret rotation, how long the previous secret keeps signing beside the new one.',
  },
  deliveryAttemptRetentionDays: {
    env: 'FLOODGATE_DELIVERY_ATTEMPT_RETENTION_DAYS', flag: '--delivery-attempt-retention-days', kind: 'integer', default: 14, min: 1, max: retentionDaysMax, unit: 'days',
    description: 'Days of the delivery attempt log kept before today (UTC); older day partitions are dropped hourly.',
  },
  bodyBytesMax: {
    env: 'FLOODGATE_BODY_BYTES_MAX', flag: '--body-bytes-max', kind: 'bytes', default: 10 * MiB, min: KiB,
    max: 256 * MiB, unit: 'bytes', description: 'Largest request body as sent (before gzip decoding); larger is 413.',
  },
  bodyDecodedBytesMax: {
    env: 'FLOODGATE_BODY_DECODED_BYTES_MAX', flag: '--body-decoded-bytes-max', kind: 'bytes', default: 32 * MiB,
    min: KiB, max: GiB, unit: 'bytes', description: 'Largest request body after gzip decoding; larger is 413.',
  },
  eventsPerRequestMax: {
    env: 'FLOODGATE_EVENTS_PER_REQUEST_MAX', flag: '--events-per-request-max', kind: 'integer', default: 5000,
    min: 1, max: 100_000, unit: 'events', description: 'Most events in one request; more is 413.',
  },
  eventBytesMax: {
    env: 'FLOODGATE_EVENT_BYTES_MAX', flag: '--event-bytes-max', kind: 'bytes', default: 64 * KiB, min: 256,
    max: 16 * MiB, unit: 'bytes', description: 'Largest single encoded event; larger is a per-event error.',
  },
  attributesBytesMax: {
    env: 'FLOODGATE_ATTRIBUTES_BYTES_MAX', flag: '--attributes-bytes-max', kind: 'bytes', default: 32 * KiB, min: 2,
    max: 16 * MiB, unit: 'bytes', description: 'Largest encoded attributes object of one event (at most eventBytesMax).',
  },
  attributesDepthMax: {
    env: 'FLOODGATE_ATTRIBUTES_DEPTH_MAX', flag: '--attributes-depth-max', kind: 'integer', default: 32, min: 1,
    max: 256, unit: 'levels', description: 'Deepest nesting allowed inside attributes.',
  },
  timestampPastMs: {
    env: 'FLOODGATE_TIMESTAMP_PAST_MS', flag: '--timestamp-past-ms', kind: 'duration', default: 30 * dayMs, min: 0,
    max: tenYearsMs, unit: 'ms', description: 'Oldest accepted event timestamp, counted back from receipt.',
  },
  timestampFutureMs: {
    env: 'FLOODGATE_TIMESTAMP_FUTURE_MS', flag: '--timestamp-future-ms', kind: 'duration', default: hourMs, min: 0,
    max: tenYearsMs, unit: 'ms', description: 'Furthest-ahead accepted event timestamp, counted from receipt.',
  },
  bodyTimeoutMs: {
    env: 'FLOODGATE_BODY_TIMEOUT_MS', flag: '--body-timeout-ms', kind: 'duration', default: 10 * secondMs, min: 100,
    max: 600 * secondMs, unit: 'ms', description: 'Time a client gets to send its whole body; slower is 408.',
  },
  ackTimeoutMs: {
    env: 'FLOODGATE_ACK_TIMEOUT_MS', flag: '--ack-timeout-ms', kind: 'duration', default: 30 * secondMs, min: 100,
    max: 600 * secondMs, unit: 'ms', description: 'Durable mode: longest a request waits for its commit before a 503.',
  },
  wsBatchesInFlightMax: {
    /*
     * A stream's batches wait for their commit like HTTP requests do; this bounds what one
     * connection can hold in the rings and in pending acks (docs/stream.md, limits).
     */
    env: 'FLOODGATE_WS_BATCHES_IN_FLIGHT_MAX', flag: '--ws-batches-in-flight-max', kind: 'integer', default: 64, min: 1, max: 4096, unit: 'batches',
    description: 'Most unacknowledged batches one WebSocket stream may have; one more is nacked (ERR_STREAM_TOO_MANY_BATCHES) with retry_after_ms.',
  },
  wsIdleTimeoutMs: {
    env: 'FLOODGATE_WS_IDLE_TIMEOUT_MS', flag: '--ws-idle-timeout-ms', kind: 'duration', default: 120 * secondMs, min: 8 * secondMs,
    max: 960 * secondMs, unit: 'ms', description: 'A stream with no frame either way for this long is closed; the engine pings idle streams before that (uWS counts in steps of about 4 s).',
  },
  wsBackpressureBytesMax: {
    env: 'FLOODGATE_WS_BACKPRESSURE_BYTES_MAX', flag: '--ws-backpressure-bytes-max', kind: 'bytes', default: MiB, min: 64 * KiB, max: 256 * MiB, unit: 'bytes',
    description: 'Acks a stream\'s client has not read, in bytes, before the engine closes it (1008); its unacked batches are then the client\'s to resend.',
  },
  segmentSource: {
    env: 'FLOODGATE_SEGMENT_SOURCE', flag: '--segment-source', kind: 'string', format: 'source', default: 'segment', unit: 'name',
    description: 'The source of events sent to the Segment-spec routes (/v1/batch, /v1/track…) without an API key; with a key, its name is the source.',
  },
  drainTimeoutMs: {
    env: 'FLOODGATE_DRAIN_TIMEOUT_MS', flag: '--drain-timeout-ms', kind: 'duration', default: 30 * secondMs, min: 0,
    max: 600 * secondMs, unit: 'ms', description: 'On SIGTERM: longest wait for the rings to drain before exiting anyway.',
  },
  logLevel: {
    env: 'FLOODGATE_LOG_LEVEL', flag: '--log-level', kind: 'enum', default: 'info',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], unit: 'level', description: 'Log level.',
  },
  webhookSecret: {
    env: 'FLOODGATE_WEBHOOK_SECRET', flag: '--webhook-secret', kind: 'secret', format: 'token', default: null, charsMin: 1, charsMax: 1024, unit: 'secret',
    description: 'When set, POST /webhook/events and /webhook/batch need X-Webhook-Signature: the hex HMAC-SHA256 of the raw body with this key (401 otherwise).',
  },
  allowUwsFallback: {
    env: 'FLOODGATE_ALLOW_UWS_FALLBACK', flag: '--allow-uws-fallback', kind: 'boolean', default: false, unit: 'flag',
    description: 'Start even if uWebSockets.js fell back to its slow pure-JS imitation.',
  },
  authMode: {
    env: 'FLOODGATE_AUTH', flag: '--auth', kind: 'enum', default: 'auto', values: ['auto', 'required'], unit: 'mode',
    description: 'auto: until a key exists, ingest is open and read/admin routes answer loopback only; required: every route but /healthz and /readyz needs a key (docs/securing.md).',
  },
  adminKey: {
    env: 'FLOODGATE_ADMIN_KEY', flag: '--admin-key', kind: 'secret', format: 'api-key', default: null, charsMin: 36, charsMax: 132, unit: 'key',
    description: 'An admin API key (fgk_…) stored hashed at start-up if not there yet, to create the first keys with.',
  },
  metricsToken: {
    env: 'FLOODGATE_METRICS_TOKEN', flag: '--metrics-token', kind: 'secret', format: 'token', default: null, charsMin: 16, charsMax: 256, unit: 'token',
    description: 'When set, GET /metrics needs `Authorization: Bearer <token>`; unset, /metrics is open.',
  },
  corsOrigins: {
    env: 'FLOODGATE_CORS_ORIGINS', flag: '--cors-origins', kind: 'string', format: 'origins', default: '', unit: 'origins',
    description: 'Browser origins allowed to call ingest and read routes (CORS): comma-separated, e.g. https://app.example.com, or * for any; empty: no CORS headers.',
  },
  openIngestEventsPerS: {
    env: 'FLOODGATE_OPEN_INGEST_EVENTS_PER_S', flag: '--open-ingest-events-per-s', kind: 'integer', default: 0, min: 0, max: 2_147_483_647, unit: 'events/s',
    description: 'Open ingest (auto posture, no key): events per second each client address may send (429 beyond); 0 turns the limit off.',
  },
  openIngestBurstEvents: {
    env: 'FLOODGATE_OPEN_INGEST_BURST_EVENTS', flag: '--open-ingest-burst-events', kind: 'integer', default: 0, min: 0, max: 2_147_483_647, unit: 'events',
    description: 'Burst of the open-ingest address limit (the bucket size); 0 means one second\'s worth (FLOODGATE_OPEN_INGEST_EVENTS_PER_S).',
  },
  trustedProxies: {
    env: 'FLOODGATE_TRUSTED_PROXIES', flag: '--trusted-proxies', kind: 'string', format: 'address-list', default: '', unit: 'addresses',
    description: 'Comma-separated IPs and CIDR blocks of proxies whose X-Forwarded-For is believed (the right-most address not itself trusted is the client); empty trusts none.',
  },
} as const satisfies { readonly [K in keyof Config]: SettingSpec & { readonly default: Config[K] } };

/** Every setting, in docs/configuration.md's order. Frozen: shared, never edited at run time. */
export const settings: readonly Setting[] = Object.freeze(
  Object.entries(settingsByKey).map(([key, spec]) => Object.freeze({ key: key as keyof Config, ...spec })),
);

/** What a valid value looks like, with the unit and the allowed range. */
export function expectationOf(setting: Setting): string {
  switch (setting.kind) {
    case 'integer':
      return `a decimal integer between ${setting.min} and ${setting.max} (${setting.unit})`;
    case 'bytes': {
      const multiple = setting.multipleOf === undefined ? '' : `, a multiple of ${setting.multipleOf} bytes`;
      return `a size in bytes (e.g. 65536, 64KiB, 16MiB) between ${formatBytes(setting.min)} and ` +
        `${formatBytes(setting.max)} (${setting.min}..${setting.max} bytes)${multiple}`;
    }
    case 'duration': {
      // Long limits are unreadable in milliseconds alone, so those also get days or hours.
      const readable = setting.max >= hourMs ? ` (${formatDuration(setting.min)} to ${formatDuration(setting.max)})` : '';
      return `a duration in milliseconds (e.g. 5, 250ms, 2s) between ${setting.min} and ${setting.max} ms${readable}`;
    }
    case 'enum':
      return `one of ${setting.values.join(', ')}`;
    case 'boolean':
      return 'a boolean: true/false, 1/0 or yes/no';
    case 'url':
      return `a URL starting with ${setting.protocols.map((protocol) => `${protocol}//`).join(' or ')}`;
    case 'string':
      if (setting.format === 'origins') return `* or up to ${corsOriginsMax} comma-separated origins such as https://app.example.com or http://localhost:3000 (no path)`;
      if (setting.format === 'address-list') return 'a comma-separated list of IP addresses and CIDR blocks (e.g. 10.0.0.0/8, ::1)';
      return setting.format === 'host'
        ? 'a hostname or IP address (letters, digits, ".", "-", "_", ":"; no port)'
        : 'a directory path without NUL characters';
    case 'secret':
      return setting.format === 'api-key'
        ? `an API key: fgk_ then base64url characters (A-Z a-z 0-9 - _), ${setting.charsMin} to ${setting.charsMax} characters in all`
        : `${setting.charsMin} to ${setting.charsMax} visible ASCII characters`;
  }
}

export function formatBytes(bytes: number): string {
  for (const [unit, size] of [['GiB', GiB], ['MiB', MiB], ['KiB', KiB]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} bytes`;
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', dayMs], ['h', hourMs], ['m', minuteMs], ['s', secondMs]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size} ${unit}`;
  }
  return `${ms} ms`;
}

/** The configuration table of docs/configuration.md, generated from `settings`. */
export function renderConfigTable(): string {
  const lines = ['| Setting env | CLI flag | default | range/unit | meaning |', '| --- | --- | --- | --- | --- |'];
  for (const setting of settings) {
    const cells = [`\`${setting.env}\``, `\`${setting.flag}\``, defaultText(setting), rangeText(setting), setting.description];
    lines.push(`| ${cells.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}

function defaultText(setting: Setting): string {
  switch (setting.kind) {
    case 'bytes':
      return formatBytes(setting.default);
    case 'duration':
      return formatDuration(setting.default);
    case 'url':
    case 'secret':
      return 'unset';
    default:
      return setting.default === null ? 'unset' : String(setting.default);
  }
}

function rangeText(setting: Setting): string {
  switch (setting.kind) {
    case 'integer':
      return `${setting.min}..${setting.max} ${setting.unit}`;
    case 'bytes': {
      const multiple = setting.multipleOf === undefined ? '' : `, multiple of ${setting.multipleOf}`;
      return `${formatBytes(setting.min)}..${formatBytes(setting.max)}${multiple} (bytes; KiB/MiB/GiB suffixes)`;
    }
    case 'duration':
      return `${formatDuration(setting.min)}..${formatDuration(setting.max)} (ms; ms/s/m/h/d suffixes)`;
    case 'enum':
      return setting.values.join(' | ');
    case 'boolean':
      return 'true/false, 1/0, yes/no';
    case 'url':
      return setting.protocols.map((protocol) => `${protocol}//`).join(' or ');
    case 'string':
      if (setting.format === 'address-list') return 'IPs and CIDR blocks, comma-separated';
      return setting.format === 'host' ? 'hostname or IP address' : 'directory path';
    case 'secret':
      return `${setting.charsMin}..${setting.charsMax} characters${setting.format === 'api-key' ? ', fgk_…' : ''} (secret)`;
  }
}
