/**
 * Buckets shared by every node through Redis: one Lua script per request takes the
 * request's tokens if they fit, atomically, and returns the tokens left. The script reads
 * Redis's own clock (TIME), so nodes whose clocks disagree still share one bucket fairly.
 * Each bucket key expires once it would be full again (plus a second), so idle buckets
 * vanish without a sweep.
 *
 *   fg:rate:<database id>:<subject>  hash { t: tokens (float, as text), a: updated at (ms, Redis clock) }
 */
import type Redis from 'ioredis';
import { openFailFastRedis } from '../redis-client';
import type { BucketLimit } from './token-bucket';


// The same arithmetic as takeTokens in ./token-bucket.ts; test/limits keeps the two in step.
const takeScript = `
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local events = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 't', 'a')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local taken = 0
if events <= tokens then
  tokens = tokens - events
  taken = 1
end
redis.call('HSET', KEYS[1], 't', string.format('%.6f', tokens), 'a', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return {taken, string.format('%.6f', tokens)}`;

type TakeCommand = (key: string, rate: number, burst: number, events: number) => Promise<[number, string]>;

export class RedisBuckets {
  readonly #redis: Redis;
  /** Scoped to the database (src/sink/database-identity.ts): an address's bucket is this deployment's only. */
  readonly #keyPrefix: string;

  constructor(url: string, databaseId: string) {
    this.#keyPrefix = `fg:rate:${databaseId}:`;
    this.#redis = openFailFastRedis(url);
    // EVALSHA with a fallback to EVAL: one round trip per request.
    this.#redis.defineCommand('floodgateTakeTokens', { numberOfKeys: 1, lua: takeScript });
  }

  /** Whether a call can be tried now; while reconnecting, calls would fail at once anyway. */
  get connected(): boolean {
    return this.#redis.status === 'ready';
  }

  /** Takes `events` tokens if they fit; resolves to whether they were taken and the tokens left. Rejects on any Redis trouble. */
  async take(subject: string, limit: BucketLimit, events: number): Promise<{ taken: boolean; tokens: number }> {
    const command = (this.#redis as unknown as { floodgateTakeTokens: TakeCommand }).floodgateTakeTokens;
    const [taken, tokens] = await command.call(this.#redis, this.#keyPrefix + subject, limit.eventsPerS, limit.burstEvents, events);
    return { taken: taken === 1, tokens: Number(tokens) };
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
