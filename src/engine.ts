/**
 * The composition root: the only module that knows every stage. It wires them in the
 * order events flow and stops them in the order that loses nothing.
 *
 *   start: uWS loads (native, or refuse) → database (DATABASE_URL or embedded)
 *          → migrations → partitions for the accepted time window → rings → actors
 *          (each connects, then reports ready) → delivery actors (src/delivery)
 *          → readiness probe → replay runner (src/delivery) → API keys (src/auth)
 *          → rate limiter (src/limits) → HTTP listen
 *   stop:  draining (new requests 503 + close, new stream frames nacked) → stop listening
 *          → idle streams closed (1001) → rings' stop flags
 *          → actors write everything queued, acks answer pending requests and batches
 *          → streams closed after their last ack → connections closed → delivery actors (finish sends, write outcomes)
 *          → actors' pool → probe → embedded database
 */
import { startAuth } from './auth/auth';
import { startActors, type ActorPool } from './actors/actor-pool';
import { startDeliveryPool } from './delivery/delivery-pool';
import type { ActorMessage } from './actors/messages';
import type { Config } from './config/config';
import { DeliveryGauges } from './delivery/delivery-gauges';
import { subscriptionRoutes } from './delivery/subscription-routes';
import { SubscriptionStore } from './delivery/subscription-store';
import { CircuitBreaker } from './health/circuit-breaker';
import { DatabaseProbe } from './health/database-probe';
import { IngestPipeline } from './ingress/ingest-pipeline';
import { PendingRequests } from './ingress/pending-requests';
import { RingRouter } from './ingress/ring-router';
import { startServer, type ReadinessReport } from './ingress/server';
import { loadUws } from './ingress/uws';
import { parseTrustedProxies } from './limits/client-address';
import { RateLimiter } from './limits/rate-limiter';
import type { RateLimits } from './limits/limit-subject';
import type { Logger } from './log';
import { deliveryRoutes } from './delivery/delivery-routes';
import { ReplayRunner } from './delivery/replay-runner';
import { Observability } from './metrics/observability';
import { DeadLetterStore } from './query/dead-letters';
import { ReadDatabase } from './query/read-database';
import { readRoutes } from './query/read-routes';
import { createRingBuffer, recordBytesMaxFor } from './ring/layout';
import { RingProducer } from './ring/ring-producer';
import { resolveDatabase } from './sink/database';
import { readDatabaseId } from './sink/database-identity';
import { migrateDatabase } from './sink/migrations';
import { PartitionMaintainer } from './sink/partition-maintainer';
import { day15SignatureCheck } from './webhooks/day15-signature';
import { WebhookSourceCache } from './webhooks/source-cache';
import { sourceRoutes } from './webhooks/source-routes';
import { WebhookSourceStore } from './webhooks/source-store';
import { handleSignedWebhook } from './webhooks/webhook-handler';
import { WebhookRejections } from './webhooks/webhook-metrics';
import { StreamMetrics, StreamRoute } from './stream/stream-route';

export interface Engine {
  readonly port: number;
  readonly connectionString: string;
  /** Drains and stops; resolves when every accepted event is written or drainTimeoutMs passed. */
  stop(): Promise<void>;
}

/** How often readiness re-checks the database. */
const probeIntervalMs = 1000;
/** Actors must connect to the database within this time at start-up. */
const actorsReadyTimeoutMs = 30_000;

export async function startEngine(config: Config, log: Logger): Promise<Engine> {
  const startedAtMs = Date.now();
  log.info({ port: config.port, ackMode: config.ackMode, actors: config.actorCount, embeddedDatabase: config.databaseUrl === null, logLevel: config.logLevel, pid: process.pid }, 'floodgate starting');
  const { uws, isFallback } = loadUws({ allowFallback: config.allowUwsFallback });
  if (isFallback) log.warn({}, 'uWebSockets.js runs its slow pure-JS fallback (FLOODGATE_ALLOW_UWS_FALLBACK=true)');
  const database = await resolveDatabase(config, log);
  const cleanups: Array<() => Promise<void>> = [() => database.stop()];
  const cleanUp = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => log.error({ err: error }, 'clean-up step failed'));
  };
  try {
    await migrateDatabase(database.connectionString, log);
    const databaseId = await readDatabaseId(database.connectionString);
    const partitions = new PartitionMaintainer(database.connectionString, config, log);
    await partitions.start();
    cleanups.push(() => partitions.stop());

    const rings = Array.from({ length: config.actorCount }, () => createRingBuffer(config.ringBytes));
    const producers = rings.map((ring) => new RingProducer(ring));
    const pending = new PendingRequests();
    const breaker = new CircuitBreaker(log);
    breaker.start();
    cleanups.push(async () => breaker.stop());
    // Created before the actors (their first stats can arrive at once) and closed after them.
    const observability = new Observability(
      {
        actorCount: config.actorCount,
        ackMode: config.ackMode,
        rings: () => producers.map((producer) => ({ usedBytes: producer.usedBytes(), capacityBytes: producer.dataBytes })),
        queue: () => ({ eventsOutstanding: pending.eventsOutstanding, pendingRequests: pending.size }),
        circuitState: () => (breaker.state === 'closed' ? 0 : 1),
        databaseUp: () => probe.state.ok,
      },
      log,
    );
    cleanups.push(async () => observability.close());
    partitions.metrics().forEach((metric) => observability.register(metric));
    const deliveryGauges = new DeliveryGauges(database.connectionString, log);
    deliveryGauges.start();
    cleanups.push(() => deliveryGauges.stop());
    deliveryGauges.metrics().forEach((metric) => observability.register(metric));
    const onActorMessage = (message: ActorMessage): void => {
      observability.recorder.onActorMessage(message);
      if (message.type === 'ack') pending.applyAcks(message);
      else if (message.type === 'fault') {
        log.warn({ actor: message.actorIndex, code: message.code, rows: message.rows, attempt: message.attempt }, `batch write failed: ${message.message}`);
        if (message.transient) breaker.actorFault(message.actorIndex, message.code, message.message);
      }
    };
    const actors = await startActors({ config, rings, connectionString: database.connectionString, databaseId, log, onMessage: onActorMessage, readyTimeoutMs: actorsReadyTimeoutMs });
    cleanups.push(() => actors.close());
    let actorFailure: string | null = null;
    actors.finished.catch((error: unknown) => {
      actorFailure = error instanceof Error ? error.message : String(error);
      log.fatal({ err: error }, 'an actor thread failed; events routed to it cannot be written');
    });
    // Cleanups run in reverse, so delivery stops before the ingest actors and the database.
    const delivery = await startDeliveryPool({ config, connectionString: database.connectionString, log, readyTimeoutMs: actorsReadyTimeoutMs });
    cleanups.push(() => delivery.close());
    delivery.metrics().forEach((metric) => observability.register(metric));

    const probe = new DatabaseProbe(database.connectionString, probeIntervalMs, log, (state) => breaker.probeResult(state.ok, state.detail));
    await probe.start();
    cleanups.push(() => probe.stop());
    const deadLetterStore = DeadLetterStore.open(database.connectionString);
    cleanups.push(() => deadLetterStore.close());
    const readDatabase = ReadDatabase.open(database.connectionString, { connectionsMax: config.readConnectionsMax, statementTimeoutMs: config.readStatementTimeoutMs });
    cleanups.push(() => readDatabase.close());
    const replayRunner = new ReplayRunner(database.connectionString, log);
    replayRunner.start();
    cleanups.push(() => replayRunner.stop());
    const auth = await startAuth(database.connectionString, config, log);
    cleanups.push(() => auth.stop());

    const rateLimits = startRateLimits(config, databaseId, log);
    rateLimits.limiter.metrics().forEach((metric) => observability.register(metric));
    cleanups.push(() => rateLimits.limiter.close());

    const webhookStore = WebhookSourceStore.open(database.connectionString);
    cleanups.push(() => webhookStore.close());
    const rejections = new WebhookRejections();
    observability.register(rejections.metric());
    const webhookSources = new WebhookSourceCache(webhookStore, log, (sources) => rejections.sourcesLoaded(sources));
    await webhookSources.start();
    cleanups.push(async () => webhookSources.stop());

    const subscriptionStore = SubscriptionStore.open(database.connectionString);
    cleanups.push(() => subscriptionStore.close());

    let draining = false;
    const readiness = (): ReadinessReport => {
      const db = probe.state;
      const circuitClosed = breaker.state === 'closed';
      const checks = {
        database: { ok: db.ok, detail: db.detail },
        sink_circuit: { ok: circuitClosed, detail: `${breaker.state}: ${breaker.reason}` },
        actors: { ok: actorFailure === null, detail: actorFailure ?? `${config.actorCount} actors running` },
        draining: { ok: !draining, detail: draining ? 'shutting down' : 'accepting events' },
      };
      return { ready: db.ok && circuitClosed && actorFailure === null && !draining, checks };
    };
    const pipeline = new IngestPipeline({
      config,
      pending,
      router: new RingRouter(producers, recordBytesMaxFor(config.ringBytes)),
      writeBlocker: () => breaker.blocker(),
      observer: observability.recorder,
    });
    const webhookDeps = { config, pipeline, log, isDraining: () => draining, sources: webhookSources, rejections };
    const streamMetrics = new StreamMetrics();
    streamMetrics.metrics().forEach((metric) => observability.register(metric));
    cleanups.push(async () => streamMetrics.close());
    const streams = new StreamRoute({ config, pipeline, log, isDraining: () => draining, rateLimits, metrics: streamMetrics });
    const server = await startServer(
      {
        uws,
        config,
        pipeline,
        ...(config.webhookSecret === null ? {} : { checkBody: day15SignatureCheck(config.webhookSecret) }),
        signedWebhooks: (res, req) => handleSignedWebhook(webhookDeps, res, req),
        log,
        isDraining: () => draining,
        readiness,
        deadLetters: { store: deadLetterStore },
        guard: auth.guard,
        rateLimits,
        keyRoutes: auth.keyRoutes,
        readRoutes: readRoutes({ db: readDatabase, log, config }),
        streams,
        deliveryRoutes: deliveryRoutes({ db: readDatabase, replays: replayRunner, log, bodyTimeoutMs: config.bodyTimeoutMs, liveState: delivery.liveState }),
        webhookSourceRoutes: sourceRoutes({ store: webhookStore, cache: webhookSources, log, bodyTimeoutMs: config.bodyTimeoutMs }),
        subscriptionRoutes: subscriptionRoutes({
          store: subscriptionStore, log, bodyTimeoutMs: config.bodyTimeoutMs,
          allowPrivateNetworks: config.deliveryAllowPrivateNetworks, secretGraceMs: config.deliverySecretGraceMs,
        }),
        observer: observability.recorder,
        observability,
        healthDetails: () => ({
          queue_depth: pending.eventsOutstanding,
          pending_requests: pending.size,
          ring_bytes_used: producers.map((producer) => producer.usedBytes()),
          ack_mode: config.ackMode,
          uptime_s: Math.round((Date.now() - startedAtMs) / 1000),
        }),
      },
      config.host,
      config.port,
    );
    log.info({ port: server.port, ackMode: config.ackMode, actors: config.actorCount, embeddedDatabase: database.embedded, startupMs: Date.now() - startedAtMs }, 'floodgate ready');

    const stop = async (): Promise<void> => {
      if (draining) return;
      draining = true;
      log.info({ pendingRequests: pending.size, queuedEvents: pending.eventsOutstanding }, 'draining');
      server.stopListening();
      streams.closeIdle();
      await drainActors(producers, actors, config.drainTimeoutMs, log);
      // Each stream closes (1001) right after its last ack; a moment lets those frames leave.
      await waitFor(() => streams.openStreams === 0, streamCloseWaitMs);
      server.close();
      await cleanUp();
      log.info({}, 'stopped');
    };
    return { port: server.port, connectionString: database.connectionString, stop };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

function startRateLimits(config: Config, databaseId: string, log: Logger): RateLimits {
  const proxies = parseTrustedProxies(config.trustedProxies);
  // The config loader has validated the list already.
  if (!proxies.ok) throw new Error(`FLOODGATE_TRUSTED_PROXIES: ${proxies.message}`);
  const rate = config.openIngestEventsPerS;
  const openIngestLimit = rate === 0 ? null : { eventsPerS: rate, burstEvents: config.openIngestBurstEvents || rate };
  return { limiter: new RateLimiter(config.redisUrl, databaseId, log), openIngestLimit, trustedProxies: proxies.proxies };
}

/** Longest the shutdown waits for streams to close after their last acks. */
const streamCloseWaitMs = 2000;

async function waitFor(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!done() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

async function drainActors(producers: readonly RingProducer[], actors: ActorPool, drainTimeoutMs: number, log: Logger): Promise<void> {
  for (const producer of producers) producer.requestStop();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), drainTimeoutMs)));
  const late = await Promise.race([actors.finished.then(() => false), timedOut]);
  clearTimeout(timer);
  if (late) log.error({ drainTimeoutMs }, 'drain timed out: events still queued are not written; their requests were not acknowledged');
}
