/**
 * The cross-node dedupe layer: Redis remembers, for `ttlMs`, every event id some Floodgate
 * node has committed (or found already stored). Before an actor writes a batch it asks
 * Redis which of the batch's ids are known; those are duplicates without a database trip.
 *
 * What it adds to the other layers: PostgreSQL's key is (event_id, occurred_at), so a
 * retry that reaches another node with a *different* timestamp is caught here, within the
 * TTL, and nowhere else. Identical retries are caught by PostgreSQL anyway.
 *
 * Rules that keep it exactly-once:
 * - Ids are written to Redis only after their rows committed (never claimed before the
 *   write: a claim followed by a crash would turn the client's retry into a loss).
 * - Redis trouble never blocks ingest: every call has a short timeout and no offline
 *   queue; on any error the batch is written as if Redis had said "unknown", with one
 *   warning per outage. The database still dedupes identical retries.
 * Not covered: two copies of one id with different timestamps reaching two nodes at the
 * same moment (both check before either commits). The TTL is short because each key costs
 * ~140 bytes in Redis: 50k ids/s for 10 minutes is ~4 GB
 * (docs/decisions/0011-dedupe-layers-and-primary-key.md).
 */
import type Redis from 'ioredis';
import { openFailFastRedis } from '../redis-client';
import type { Logger } from '../log';


/** Sets every key with the same PX TTL in one round trip (a script: ~2× a pipeline's ids/s). */
const rememberScript = `
for i, key in ipairs(KEYS) do
  redis.call('SET', key, '1', 'PX', ARGV[1])
end
return #KEYS`;

export class RedisDedupe {
  readonly #redis: Redis;
  /** `fg:seen:<database id>:`: ids seen for another database are not this one's. */
  readonly #keyPrefix: string;
  readonly #ttlMs: number;
  readonly #log: Logger;
  #available = true;

  constructor(url: string, databaseId: string, ttlMs: number, log: Logger) {
    this.#keyPrefix = `fg:seen:${databaseId}:`;
    this.#ttlMs = ttlMs;
    this.#log = log;
    this.#redis = openFailFastRedis(url);
    this.#redis.on('ready', () => this.#markAvailable());
  }

  /** For each id, whether some node committed it within the TTL; null when Redis failed. */
  async seen(eventIds: readonly string[]): Promise<boolean[] | null> {
    if (eventIds.length === 0) return [];
    try {
      const values = await this.#redis.mget(eventIds.map((id) => this.#keyPrefix + id));
      this.#markAvailable();
      return values.map((value) => value !== null);
    } catch (error) {
      this.#markUnavailable(error);
      return null;
    }
  }

  /** Records committed ids. Fire-and-forget: the acknowledgement does not wait for Redis. */
  remember(eventIds: readonly string[]): void {
    if (eventIds.length === 0) return;
    const keys = eventIds.map((id) => this.#keyPrefix + id);
    this.#redis.eval(rememberScript, keys.length, ...keys, String(this.#ttlMs)).then(
      () => this.#markAvailable(),
      (error: unknown) => this.#markUnavailable(error),
    );
  }

  get available(): boolean {
    return this.#available;
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  #markAvailable(): void {
    if (this.#available) return;
    this.#available = true;
    this.#log.info({ layer: 'redis' }, 'Redis dedupe layer available again');
  }

  #markUnavailable(error: unknown): void {
    if (!this.#available) return;
    this.#available = false;
    const message = error instanceof Error ? error.message : String(error);
    this.#log.warn({ layer: 'redis', reason: message }, 'Redis dedupe layer unavailable: continuing with in-memory and database dedupe');
  }
}
