import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { createHistogram, encodeHistogram, histogramValueMax } from '../../src/metrics/hdr';
import { SlidingHistogram } from '../../src/metrics/sliding-histogram';
import { RateMeter } from '../../src/metrics/rate-meter';

const created: SlidingHistogram[] = [];
after(() => created.forEach((histogram) => histogram.destroy()));

function sliding(now: () => number = () => 0): SlidingHistogram {
  const histogram = new SlidingHistogram({ sliceMs: 10_000, sliceCount: 6, now });
  created.push(histogram);
  return histogram;
}

/** The value HDR reports at a percentile: rank round(p/100 * n), at least 1, of the sorted values. */
function exactPercentile(sorted: readonly number[], percentile: number): number {
  const rank = Math.max(1, Math.floor((percentile / 100) * sorted.length + 0.5));
  return sorted[rank - 1] as number;
}

/** A deterministic spread of latencies, 50 µs to ~2 s, heavy-tailed like real ones. */
function latencies(count: number, seed: number): number[] {
  let state = seed;
  return Array.from({ length: count }, () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    const uniform = state / 2147483648;
    return Math.round(50 + 1000 * Math.exp(uniform * 7.5) * (uniform > 0.99 ? 3 : 1));
  });
}

describe('SlidingHistogram', () => {
  test('percentiles match the exact ones within HDR precision (3 significant digits)', () => {
    const values = latencies(20_000, 7);
    const histogram = sliding();
    for (const value of values) histogram.record(value);
    const sorted = [...values].sort((a, b) => a - b);
    const percentiles = [50, 90, 99, 99.9, 100];
    const snapshot = histogram.snapshot(percentiles);
    assert.equal(snapshot.count, values.length);
    percentiles.forEach((percentile, i) => {
      const exact = exactPercentile(sorted, percentile);
      const reported = snapshot.percentiles[i] as number;
      assert.ok(Math.abs(reported - exact) <= exact * 0.001 + 1, `p${percentile}: ${reported} vs exact ${exact}`);
    });
    assert.equal(histogram.count, values.length);
    assert.equal(histogram.sum, values.reduce((sum, value) => sum + value, 0));
  });

  test('adding encoded histograms from other threads loses nothing: same percentiles as recording all in one', () => {
    const values = latencies(9_000, 11);
    const whole = sliding();
    for (const value of values) whole.record(value);
    const merged = sliding();
    // Three "actors" record a third each and ship their encoded histograms.
    for (let part = 0; part < 3; part++) {
      const actor = createHistogram();
      let sum = 0;
      for (const value of values.slice(part * 3000, (part + 1) * 3000)) {
        actor.recordValue(value);
        sum += value;
      }
      merged.addEncoded(encodeHistogram(actor), sum);
      actor.destroy();
    }
    const percentiles = [1, 50, 75, 90, 99, 99.9, 99.99, 100];
    assert.deepEqual(merged.snapshot(percentiles), whole.snapshot(percentiles));
    assert.equal(merged.count, whole.count);
    assert.equal(merged.sum, whole.sum);
  });

  test('values leave the window once their slice is sliceCount slices old; totals keep them', () => {
    let nowMs = 0;
    const histogram = sliding(() => nowMs);
    histogram.record(1_000_000);
    nowMs = 55_000;
    histogram.record(5);
    let snapshot = histogram.snapshot([50, 100]);
    assert.equal(snapshot.count, 2);
    assert.equal(snapshot.max, 1_000_447, 'max is reported as the top of its HDR bucket');
    nowMs = 60_000;
    snapshot = histogram.snapshot([50, 100]);
    assert.equal(snapshot.count, 1, 'the slice of t=0 s is out of the 60 s window');
    assert.deepEqual(snapshot.percentiles, [5, 5]);
    nowMs = 125_000;
    histogram.record(7);
    snapshot = histogram.snapshot([50]);
    assert.equal(snapshot.count, 1, 'a reused slot is reset before it takes new values');
    assert.deepEqual(snapshot.percentiles, [7]);
    assert.equal(histogram.count, 3);
    assert.equal(histogram.sum, 1_000_012);
  });

  test('an empty window reports NaN, not zero', () => {
    const snapshot = sliding().snapshot([50, 99]);
    assert.equal(snapshot.count, 0);
    assert.ok(snapshot.percentiles.every(Number.isNaN));
    assert.ok(Number.isNaN(snapshot.max));
  });

  test('out-of-range values are clamped, never dropped: counts stay exact', () => {
    const histogram = sliding();
    histogram.record(-40, 2);
    histogram.record(histogramValueMax * 10);
    histogram.record(Number.NaN);
    const snapshot = histogram.snapshot([0, 100]);
    assert.equal(snapshot.count, 4);
    assert.equal(snapshot.percentiles[0], 0);
    assert.ok((snapshot.percentiles[1] as number) >= histogramValueMax * 0.999);
    assert.equal(histogram.count, 4);
  });
});

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
