/**
 * The token bucket's arithmetic with a clock passed in: refill, burst cap, whole-request
 * refusal, and the seconds Retry-After and the RateLimit fields report.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LocalBuckets } from '../../src/limits/local-buckets';
import { rateLimitHeaders } from '../../src/limits/rate-limit-headers';
import { fullBucket, outcomeOf, takeTokens, windowS } from '../../src/limits/token-bucket';

const limit = { eventsPerS: 100, burstEvents: 200 };

describe('token bucket', () => {
  test('a new bucket is full: the burst passes at once, one token more does not', () => {
    const state = fullBucket(limit, 0);
    assert.deepEqual(takeTokens(state, limit, 200, 0), { taken: true, remaining: 0, retryAfterS: 0, fullInS: 2 });
    assert.equal(takeTokens(state, limit, 1, 0).taken, false);
  });

  test('a refused request takes nothing (never half-taken)', () => {
    const state = fullBucket(limit, 0);
    takeTokens(state, limit, 150, 0);
    const refused = takeTokens(state, limit, 60, 0);
    assert.equal(refused.taken, false);
    assert.equal(refused.remaining, 50);
    assert.equal(takeTokens(state, limit, 50, 0).taken, true, 'the 50 tokens are still there');
  });

  test('refills at eventsPerS, never above the burst', () => {
    const state = fullBucket(limit, 0);
    takeTokens(state, limit, 200, 0);
    assert.equal(takeTokens(state, limit, 0, 500).remaining, 50);
    assert.equal(takeTokens(state, limit, 0, 60_000).remaining, 200);
  });

  test('a clock stepping back refills nothing and drains nothing', () => {
    const state = fullBucket(limit, 10_000);
    takeTokens(state, limit, 100, 10_000);
    assert.equal(takeTokens(state, limit, 0, 5_000).remaining, 100);
  });

  test('Retry-After: whole seconds until the request fits, at least 1', () => {
    const state = fullBucket(limit, 0);
    takeTokens(state, limit, 200, 0);
    assert.equal(takeTokens(state, limit, 1, 0).retryAfterS, 1);
    assert.equal(takeTokens(state, limit, 150, 0).retryAfterS, 2, '150 tokens at 100/s: 1.5 s, rounded up');
    assert.equal(takeTokens(state, limit, 100, 990).retryAfterS, 1, '99 tokens there, one more in 10 ms');
    assert.equal(outcomeOf(false, 0, { eventsPerS: 1, burstEvents: 10 }, 10).retryAfterS, 10);
  });

  test('fractional tokens: remaining is rounded down, the bucket keeps the fraction', () => {
    const state = fullBucket({ eventsPerS: 3, burstEvents: 3 }, 0);
    takeTokens(state, { eventsPerS: 3, burstEvents: 3 }, 3, 0);
    const after = takeTokens(state, { eventsPerS: 3, burstEvents: 3 }, 0, 500);
    assert.equal(after.remaining, 1);
    assert.equal(state.tokens, 1.5);
  });

  test('window and RateLimit fields', () => {
    assert.equal(windowS(limit), 2);
    assert.equal(windowS({ eventsPerS: 1000, burstEvents: 1 }), 1, 'never 0');
    const headers = rateLimitHeaders(limit, outcomeOf(true, 49.5, limit, 1));
    assert.deepEqual(headers, { 'ratelimit-policy': '"default";q=200;w=2', ratelimit: '"default";r=49;t=2' });
  });
});

describe('local buckets', () => {
  test('one bucket per subject', () => {
    const buckets = new LocalBuckets();
    assert.equal(buckets.take('key:1', limit, 200, 0).taken, true);
    assert.equal(buckets.take('key:1', limit, 1, 0).taken, false);
    assert.equal(buckets.take('key:2', limit, 200, 0).taken, true);
  });

  test('bounded: idle (full again) buckets are forgotten first, then the oldest', () => {
    const buckets = new LocalBuckets(2);
    buckets.take('a', limit, 200, 0);
    buckets.take('b', limit, 200, 1000);
    buckets.take('c', limit, 1, 2500);
    assert.equal(buckets.size, 2, 'a was idle for its whole window and went');
    assert.equal(buckets.take('b', limit, 200, 2500).taken, false, 'b is remembered: half refilled');
    buckets.take('d', limit, 1, 2500);
    assert.equal(buckets.size, 2);
  });
});
