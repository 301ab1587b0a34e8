/**
 * The Redis connection of every layer nodes share through Redis (the cross-node dedupe,
 * the rate limits). Redis speeds those up but never decides whether a request is answered,
 * so calls fail fast instead of waiting: no offline queue, no retries, a short command
 * timeout, while the connection keeps reconnecting in the background. Failures reach the
 * callers through their failing calls; an unhandled 'error' event would otherwise be
 * printed on every reconnect attempt.
 */
import Redis from 'ioredis';

/** A Redis answer slower than this counts as a failure: the caller goes on without Redis. */
export const redisCommandTimeoutMs = 250;

export function openFailFastRedis(url: string): Redis {
  const redis = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: redisCommandTimeoutMs,
    connectTimeout: 1000,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
  redis.on('error', () => undefined);
  return redis;
}
