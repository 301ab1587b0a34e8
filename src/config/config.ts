/**
 * The engine's whole configuration, as every component receives it: validated, with units
 * in the names, frozen. src/config/load-config.ts builds it from environment variables
 * and CLI flags; the settings table there is the single source of names, defaults and
 * ranges (the configuration table in docs/configuration.md is checked against it by a test).
 */
export type AckMode = 'durable' | 'async';
export type AuthMode = 'auto' | 'required';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  /** HTTP port (PORT). 0 asks the OS for a free port (tests). */
  readonly port: number;
  /** Interface to listen on (FLOODGATE_HOST). */
  readonly host: string;
  /** PostgreSQL connection string (DATABASE_URL); null starts the embedded PostgreSQL. */
  readonly databaseUrl: string | null;
  /** Redis connection string (REDIS_URL); null disables the cross-node dedupe layer. */
  readonly redisUrl: string | null;
  /** How long Redis remembers a committed event id for cross-node dedupe (FLOODGATE_REDIS_DEDUPE_TTL_MS). */
  readonly redisDedupeTtlMs: number;
  /** durable: answer after commit; async: answer 202 once in the ring (FLOODGATE_ACK). */
  readonly ackMode: AckMode;
  /** Directory for local state such as the embedded PostgreSQL data (FLOODGATE_DATA_DIR). */
  readonly dataDir: string;
  /** Port of the embedded PostgreSQL (FLOODGATE_EMBEDDED_PG_PORT). */
  readonly embeddedPgPort: number;

  /** Number of actor worker threads, each with its own ring and connection. */
  readonly actorCount: number;
  /** Async mode: niceness of the actor threads (FLOODGATE_ACTOR_NICE); durable mode ignores it. */
  readonly actorNice: number;
  /** Bytes of shared memory per actor ring. */
  readonly ringBytes: number;
  /** An actor flushes when its batch reaches this many rows… */
  readonly batchRowsMax: number;
  /** …or when its oldest unflushed event has waited this long. */
  readonly batchWaitMs: number;
  /** Committed event ids each actor remembers for in-memory dedupe. */
  readonly dedupeWindowEntriesMax: number;
  /** Attempts for one batch on transient database errors before its events fail. */
  readonly retryAttemptsMax: number;
  /** backend_flush_after of the writer sessions, in bytes; 0 leaves the server's setting. */
  readonly writerFlushAfterBytes: number;
  /** on: each write also updates the rollup tables in its transaction; off only to measure their cost (FLOODGATE_ROLLUPS). */
  readonly rollups: 'on' | 'off';
  /** Days of events kept before today (UTC), in whole day partitions; null keeps everything (FLOODGATE_RETENTION_DAYS). */
  readonly retentionDays: number | null;
  /** Days of rollup rows kept before today (UTC); null keeps everything (FLOODGATE_ROLLUP_RETENTION_DAYS). */
  readonly rollupRetentionDays: number | null;

  /** The read API's own connection pool size, and the statement_timeout of its sessions. */
  readonly readConnectionsMax: number;
  readonly readStatementTimeoutMs: number;

  /** Delivery to subscribers (src/delivery): threads, SSRF guard, HTTP limits, lease, Retry-After cap, secret grace, attempt log retention. */
  readonly deliveryActorCount: number;
  readonly deliveryAllowPrivateNetworks: boolean;
  readonly deliveryConnectTimeoutMs: number;
  readonly deliveryTimeoutMs: number;
  readonly deliveryConnectionsPerOrigin: number;
  readonly deliveryResponseBytesMax: number;
  readonly deliveryLeaseMs: number;
  readonly deliveryRetryAfterMaxMs: number;
  readonly deliverySecretGraceMs: number;
  readonly deliveryAttemptRetentionDays: number;

  /** Limits on input, checked while the body streams in where possible. */
  readonly bodyBytesMax: number;
  readonly bodyDecodedBytesMax: number;
  readonly eventsPerRequestMax: number;
  readonly eventBytesMax: number;
  readonly attributesBytesMax: number;
  readonly attributesDepthMax: number;
  /** Accepted timestamp window relative to receipt: [now - past, now + future]. */
  readonly timestampPastMs: number;
  readonly timestampFutureMs: number;

  /** Time a slow client gets to send its whole body. */
  readonly bodyTimeoutMs: number;
  /** Durable mode: longest a request waits for its commit before a 503. */
  readonly ackTimeoutMs: number;
  readonly wsBatchesInFlightMax: number;
  readonly wsIdleTimeoutMs: number;
  readonly wsBackpressureBytesMax: number;
  readonly segmentSource: string;
  /** SIGTERM: longest the engine waits for rings to drain before exiting anyway. */
  readonly drainTimeoutMs: number;

  /** Key of the Day-15 routes' X-Webhook-Signature check; null leaves them unsigned (FLOODGATE_WEBHOOK_SECRET). */
  readonly webhookSecret: string | null;

  readonly logLevel: LogLevel;
  /** Start even if uWebSockets.js fell back to its slow pure-JS imitation. */
  readonly allowUwsFallback: boolean;

  /** auto: open until a key exists (read/admin loopback only); required: keys always (FLOODGATE_AUTH). */
  readonly authMode: AuthMode;
  /** A bootstrap admin key, stored hashed at start-up (FLOODGATE_ADMIN_KEY); never logged. */
  readonly adminKey: string | null;
  /** Bearer token GET /metrics requires when set (FLOODGATE_METRICS_TOKEN); never logged. */
  readonly metricsToken: string | null;
  /** Allowed CORS origins: '' none (no CORS headers), '*' any, else comma-separated origins (FLOODGATE_CORS_ORIGINS). */
  readonly corsOrigins: string;

  /** Events per second each client address may send to open ingest (no key); 0: no limit (FLOODGATE_OPEN_INGEST_EVENTS_PER_S). */
  readonly openIngestEventsPerS: number;
  /** Burst of that limit; 0: equal to openIngestEventsPerS (FLOODGATE_OPEN_INGEST_BURST_EVENTS). */
  readonly openIngestBurstEvents: number;
  /** Comma-separated IPs/CIDRs whose X-Forwarded-For is believed (FLOODGATE_TRUSTED_PROXIES); empty: nobody's. */
  readonly trustedProxies: string;
}
