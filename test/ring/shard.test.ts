import assert from 'node:assert/strict';
import { test } from 'node:test';
import { shardOf } from '../../src/ring/shard';

test('the same id always maps to the same actor, within range', () => {
  for (let i = 0; i < 1000; i++) {
    const id = `event-${i}`;
    const shard = shardOf(id, 4);
    assert.ok(shard >= 0 && shard < 4);
    assert.equal(shardOf(id, 4), shard);
  }
});

test('known values stay stable across releases (dedupe ownership depends on it)', () => {
  assert.deepEqual(['a', 'event-1', 'ünïcode', ''].map((id) => shardOf(id, 7)), [
    shardOf('a', 7),
    shardOf('event-1', 7),
    shardOf('ünïcode', 7),
    0x811c9dc5 % 7,
  ]);
  assert.equal(shardOf('a', 1_000_000), 0xe40c292c % 1_000_000);
});

test('spreads sequential ids evenly', () => {
  const counts = new Array<number>(4).fill(0);
  for (let i = 0; i < 40_000; i++) counts[shardOf(`evt_${i}`, 4)]! += 1;
  for (const count of counts) assert.ok(count > 9_000 && count < 11_000, `uneven: ${counts.join(',')}`);
});
