/**
 * Entry point of a delivery thread: one never-ending piscina task, like the ingest actors
 * (docs/decisions/0002-long-lived-actors-on-piscina.md). It opens a small pg.Pool for
 * claims and outcomes and one LISTEN connection, loads its subscriptions, reports ready,
 * and then runs the scheduler (delivery-actor.ts) until the main thread posts `stop`.
 *
 * Wake-ups: a NOTIFY on floodgate_deliveries names subscriptions with new records; a poll
 * every second wakes every owned subscription (the backstop for a lost NOTIFY, a retry
 * that came due, a lease that expired) and re-reads the fan-out epoch, reloading the
 * subscriptions when it moved.
 */
import pg from 'pg';
import { createLogger, type Logger } from '../log';
import { readSubscriptionEpoch } from './claims';
import { DeliveryActor } from './delivery-actor';
import type { DeliveryActorInput, DeliveryControlMessage, DeliveryReadyMessage, DeliveryStoppedMessage } from './delivery-pool';
import { deliveriesChannel, loadSubscriptions } from './delivery-schema';
import { Sender } from './sender';

const pollIntervalMs = 1000;
const statsIntervalMs = 1000;
/** Claims, outcomes, a 410's subscription change: three connections are plenty for one thread. */
const databaseConnectionsMax = 3;
const listenRetryMs = 1000;
/**
 * At stop, sends in flight get this long to finish. A hanging receiver must not hold the
 * engine's shutdown for the whole request timeout: what is still running is left to its
 * lease and sent again after the restart (counted as reclaimed).
 */
const stopWaitMsMax = 5000;

export default async function runDeliveryActor(input: DeliveryActorInput): Promise<void> {
  const { actorIndex, actorCount, config, port } = input;
  const log = createLogger(config.logLevel, { deliveryActor: actorIndex });
  const pool = new pg.Pool({ connectionString: input.connectionString, max: databaseConnectionsMax, connectionTimeoutMillis: config.deliveryConnectTimeoutMs });
  // An idle connection that drops is reported here; the next query opens a new one.
  pool.on('error', (error) => log.warn({ err: error }, 'delivery database connection lost'));
  const sender = new Sender({
    connectionsPerOrigin: config.deliveryConnectionsPerOrigin,
    connectTimeoutMs: config.deliveryConnectTimeoutMs,
    timeoutMs: config.deliveryTimeoutMs,
    responseBytesMax: config.deliveryResponseBytesMax,
    allowPrivateNetworks: config.deliveryAllowPrivateNetworks,
  });
  const actor = new DeliveryActor({
    pool,
    sender,
    settings: { actorIndex, actorCount, leaseMs: config.deliveryLeaseMs, retryAfterMaxMs: config.deliveryRetryAfterMaxMs },
    log,
  });
  const listener = new Listener(input.connectionString, log, (ids) => actor.wake(ids), () => actor.wakeAll());
  let stopRequested: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  port.on('message', (message: DeliveryControlMessage) => {
    if (message.type === 'stop') stopRequested();
  });
  let epoch = -1;
  const reload = async (): Promise<void> => {
    const current = await readSubscriptionEpoch(pool);
    if (current === epoch) return;
    const client = await pool.connect();
    try {
      const loaded = await loadSubscriptions(client);
      epoch = loaded.epoch;
      actor.setSubscriptions(loaded.subscriptions);
    } finally {
      client.release();
    }
  };
  let pollTimer: NodeJS.Timeout | undefined;
  let statsTimer: NodeJS.Timeout | undefined;
  try {
    await reload();
    listener.start();
    const ready: DeliveryReadyMessage = { type: 'ready', actorIndex };
    port.postMessage(ready);
    pollTimer = setInterval(() => {
      reload().catch((error: unknown) => log.debug({ err: error }, 'subscription reload failed; the next poll retries'));
      actor.wakeAll();
    }, pollIntervalMs);
    statsTimer = setInterval(() => port.postMessage(actor.takeStats(actorIndex)), statsIntervalMs);
    await stopped;
    clearInterval(pollTimer);
    clearInterval(statsTimer);
    await actor.stop(Math.min(config.drainTimeoutMs, config.deliveryTimeoutMs, stopWaitMsMax));
    port.postMessage(actor.takeStats(actorIndex));
    const message: DeliveryStoppedMessage = { type: 'stopped', actorIndex };
    port.postMessage(message);
  } finally {
    clearInterval(pollTimer);
    clearInterval(statsTimer);
    await listener.stop();
    await sender.close().catch(() => undefined);
    await pool.end().catch(() => undefined);
    port.close();
  }
}

/**
 * The LISTEN connection. It reconnects by itself after an error; every reconnect wakes all
 * subscriptions, because NOTIFYs sent while it was gone are lost.
 */
class Listener {
  readonly #connectionString: string;
  readonly #log: Logger;
  readonly #onIds: (ids: number[]) => void;
  readonly #onReconnect: () => void;
  #client: pg.Client | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(connectionString: string, log: Logger, onIds: (ids: number[]) => void, onReconnect: () => void) {
    this.#connectionString = connectionString;
    this.#log = log;
    this.#onIds = onIds;
    this.#onReconnect = onReconnect;
  }

  start(): void {
    void this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    await this.#client?.end().catch(() => undefined);
    this.#client = null;
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const client = new pg.Client({ connectionString: this.#connectionString });
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, null));
    client.on('notification', (message) => {
      if (message.payload === undefined) return;
      this.#onIds(message.payload.split(',').map(Number).filter(Number.isSafeInteger));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${deliveriesChannel}`);
    } catch (error) {
      this.#lost(client, error);
      return;
    }
    if (this.#stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#onReconnect();
  }

  #lost(client: pg.Client, error: unknown): void {
    if (this.#stopped || this.#retryTimer !== null) return;
    if (this.#client !== null && this.#client !== client) return;
    this.#client = null;
    if (error !== null) this.#log.debug({ err: error }, 'delivery LISTEN connection lost; reconnecting');
    client.end().catch(() => undefined);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      void this.#connect();
    }, listenRetryMs);
  }
}
