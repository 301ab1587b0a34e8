import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deriveEventId, generateEventId } from '../../src/validate/event-id';

describe('deriveEventId', () => {
  it('is deterministic per (key, index), whatever was derived in between', () => {
    const first = deriveEventId('req-42', 3);
    deriveEventId('another key', 3);
    assert.equal(deriveEventId('req-42', 3), first);
    assert.match(first, /^k_[A-Za-z0-9_-]{22}\.3$/);
  });

  it('differs across indexes and keys, including keys that differ by one character', () => {
    const ids = new Set<string>();
    const keys = ['a', 'b', 'a ', 'A', '', 'req-1', 'req-10', 'é', 'x'.repeat(200)];
    for (const key of keys) for (let index = 0; index < 1000; index++) ids.add(deriveEventId(key, index));
    assert.equal(ids.size, keys.length * 1000);
  });

  it('keeps ids short whatever the key length', () => {
    assert.ok(deriveEventId('k'.repeat(10_000), 99_999).length <= 128);
    assert.ok(deriveEventId('k', 99_999).length <= 128);
  });
});

describe('generateEventId', () => {
  it('makes 100k unique ids within one millisecond', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 100_000; i++) ids.add(generateEventId(1_763_632_800_000));
    assert.equal(ids.size, 100_000);
  });

  it('sorts as strings in creation order, within a millisecond and across milliseconds', () => {
    const ids: string[] = [];
    let nowMs = 1_763_632_900_000;
    for (let i = 0; i < 20_000; i++) {
      if (i % 7 === 0) nowMs += 1 + (i % 3);
      ids.push(generateEventId(nowMs));
    }
    const sorted = [...ids].sort();
    assert.deepEqual(sorted, ids);
  });

  it('stays increasing when the clock steps back', () => {
    const before = generateEventId(1_763_633_000_000);
    const after = generateEventId(1_763_632_000_000);
    assert.ok(after > before, `${after} > ${before}`);
  });

  it('has a recognisable fixed-width shape that encodes the time first', () => {
    const early = generateEventId(1_800_000_000_000);
    const late = generateEventId(1_800_000_000_001);
    assert.match(early, /^g_[0-9A-HJKMNP-TV-Z]{24}$/);
    assert.equal(early.length, 26);
    assert.ok(late > early);
    // The first ten characters after the prefix are the millisecond, base32.
    assert.equal(Number.parseInt([...early.slice(2, 12)].map((c) => '0123456789ABCDEFGHJKMNPQRSTVWXYZ'.indexOf(c).toString(32)).join(''), 32), 1_800_000_000_000);
  });

  it('gives different random parts to ids that share a time and sequence elsewhere', () => {
    const randomParts = new Set<string>();
    for (let i = 0; i < 5000; i++) randomParts.add(generateEventId(1_900_000_000_000 + i).slice(16));
    assert.ok(randomParts.size > 4990, `${randomParts.size} distinct random parts`);
  });
});
