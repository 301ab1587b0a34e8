import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateMeter } from '../../src/metrics/rate-meter';

test('rates count only complete 100 ms buckets of the last 1 s and 10 s', () => {
  let nowMs = 100_000;
  const meter = new RateMeter(() => nowMs);
  nowMs += 10_000;
  // 10 s of 500 events every 100 ms = 5,000 events/s.
  for (let bucket = 0; bucket < 100; bucket++) {
    meter.add(500);
    nowMs += 100;
  }
  assert.equal(meter.perSecond(1000), 5000);
  assert.equal(meter.perSecond(10_000), 5000);
  meter.add(1_000_000);
  assert.equal(meter.perSecond(1000), 5000, 'the current, partial bucket is not counted yet');
  nowMs += 100;
  assert.equal(meter.perSecond(1000), (9 * 500 + 1_000_000) * 1);
  nowMs += 1000;
  assert.equal(meter.perSecond(1000), 0);
  assert.equal(meter.perSecond(10_000), (89 * 500 + 1_000_000) / 10);
  nowMs += 60_000;
  assert.equal(meter.perSecond(10_000), 0, 'old buckets are not read again when their slot comes round');
});

test('a young meter divides by the time it has existed, not by the whole window', () => {
  let nowMs = 5_000;
  const meter = new RateMeter(() => nowMs);
  meter.add(300);
  nowMs += 1000;
  assert.equal(meter.perSecond(10_000), 300);
});
