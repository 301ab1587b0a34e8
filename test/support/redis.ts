import type { TestContext } from 'node:test';
import { refuseInUnitTier } from './test-tiers';

/**
 * The Redis URL for tests that need one, or null after marking the test skipped with the
 * reason the runner recorded (test/support/run-tests.ts sets REDIS_URL, or
 * FLOODGATE_TEST_REDIS_UNAVAILABLE when no Redis could be had).
 */
export function redisUrlOrSkip(t: TestContext): string | null {
  // Skipping would hide a misfiled test: the unit tier never has Redis.
  refuseInUnitTier('Redis');
  const url = process.env.REDIS_URL;
  if (url !== undefined && url !== '') return url;
  const reason = process.env.FLOODGATE_TEST_REDIS_UNAVAILABLE ?? 'REDIS_URL is not set (run through npm test)';
  t.diagnostic(`Redis unavailable: ${reason}`);
  t.skip(`Redis unavailable: ${reason}`);
  return null;
}
