import assert from 'node:assert/strict';
import { test } from 'node:test';
import { arenaUnitsPerEntry, DedupeWindow, displacementMax, windowHash } from '../../src/actors/dedupe-window';
import { Prng } from '../support/prng';

test('remembers up to entriesMax ids and forgets the oldest first', () => {
  const window = new DedupeWindow(3);
  for (const id of ['a', 'b', 'c']) window.remember(id);
  assert.deepEqual(['a', 'b', 'c'].map((id) => window.has(id)), [true, true, true]);
  window.remember('d');
  assert.equal(window.has('a'), false);
  assert.equal(window.has('d'), true);
  assert.equal(window.size, 3);
});

test('remembering an id twice does not evict another', () => {
  const window = new DedupeWindow(2);
  window.remember('a');
  window.remember('b');
  window.remember('b');
  assert.equal(window.has('a'), true);
  assert.equal(window.size, 2);
});

test('a window of 0 entries remembers nothing', () => {
  const window = new DedupeWindow(0);
  window.remember('a');
  assert.equal(window.has('a'), false);
  assert.equal(window.size, 0);
});

test('stays bounded over a long run', () => {
  const window = new DedupeWindow(1000);
  for (let i = 0; i < 100_000; i++) window.remember(`id-${i}`);
  assert.equal(window.size, 1000);
  assert.equal(window.has('id-98999'), false);
  assert.equal(window.has('id-99000'), true);
});

test('regression: eviction at capacity stays cheap (it once walked the whole Set per insert)', () => {
  const window = new DedupeWindow(50_000);
  for (let i = 0; i < 50_000; i++) window.remember(`warm-${i}`);
  const startedAt = performance.now();
  for (let i = 0; i < 50_000; i++) window.remember(`evict-${i}`);
  const elapsedMs = performance.now() - startedAt;
  // The old eviction took seconds here; the ring takes tens of milliseconds even on a busy machine.
  assert.ok(elapsedMs < 1000, `50k evicting inserts took ${elapsedMs} ms`);
  assert.equal(window.size, 50_000);
  assert.equal(window.has('warm-49999'), false);
  assert.equal(window.has('evict-0'), true);
});

test('model: agrees with a Set + FIFO reference over random sequences (clusters wrap, evictions shift entries back)', () => {
  const prng = new Prng(7);
  const random = (n: number): number => prng.int(0, n - 1);
  for (let run = 0; run < 300; run++) {
    const entriesMax = 1 + random(40);
    const window = new DedupeWindow(entriesMax, random(1 << 30));
    const reference: string[] = [];
    const idSpace = entriesMax * (1 + random(4));
    for (let step = 0; step < 400; step++) {
      const id = `e-${random(idSpace)}`;
      if (random(2) === 0) {
        assert.equal(window.has(id), reference.includes(id), `run ${run} step ${step}: has(${id})`);
        continue;
      }
      window.remember(id);
      if (!reference.includes(id)) {
        reference.push(id);
        if (reference.length > entriesMax) reference.shift();
      }
      assert.equal(window.size, reference.length);
    }
    for (let i = 0; i < idSpace; i++) assert.equal(window.has(`e-${i}`), reference.includes(`e-${i}`), `run ${run}: final has(e-${i})`);
  }
});

test('ids sharing a hash bucket are told apart by the full id', () => {
  const seed = 12345;
  const window = new DedupeWindow(3, seed);
  // 8 buckets: collect ids whose home bucket is 0.
  const colliding: string[] = [];
  for (let i = 0; colliding.length < 4; i++) if ((windowHash(`c-${i}`, seed) & 7) === 0) colliding.push(`c-${i}`);
  for (const id of colliding.slice(0, 3)) window.remember(id);
  assert.deepEqual(colliding.map((id) => window.has(id)), [true, true, true, false]);
  window.remember(colliding[3] as string);
  assert.deepEqual(colliding.map((id) => window.has(id)), [false, true, true, true]);
});

test('a flood of ids with one home bucket is bounded: past displacementMax they are not remembered, lookups stay short', () => {
  const seed = 99;
  const entriesMax = 200;
  const window = new DedupeWindow(entriesMax, seed);
  // 512 buckets; every id below shares home bucket 0.
  const flood: string[] = [];
  for (let i = 0; flood.length < displacementMax + 20; i++) if ((windowHash(`f-${i}`, seed) & 511) === 0) flood.push(`f-${i}`);
  for (const id of flood) window.remember(id);
  assert.equal(window.size, displacementMax + 1);
  assert.equal(window.has(flood[0] as string), true);
  assert.equal(window.has(flood[displacementMax] as string), true);
  assert.equal(window.has(flood[displacementMax + 1] as string), false);
  // Ordinary ids still work beside the cluster.
  window.remember('ordinary');
  assert.equal(window.has('ordinary'), true);
});

test('model: with ids of every length (arena wraps and evicts by space) the window holds exactly a suffix of what it was given', () => {
  const prng = new Prng(11);
  const random = (n: number): number => prng.int(0, n - 1);
  for (let run = 0; run < 200; run++) {
    const entriesMax = 1 + random(12);
    const window = new DedupeWindow(entriesMax, random(1 << 30));
    const remembered: string[] = [];
    for (let step = 0; step < 200; step++) {
      // 1–128 characters, some outside Latin-1, so ids of ~arenaUnitsPerEntry and far beyond mix.
      const length = 1 + random(128);
      let id = `${step}:`;
      while (id.length < length) id += random(10) === 0 ? 'é漢' : 'abcdefghij'.charAt(random(10));
      id = id.slice(0, Math.max(length, String(step).length + 1));
      window.remember(id);
      if (id.length > entriesMax * arenaUnitsPerEntry) {
        assert.equal(window.has(id), false, 'an id longer than the whole arena is not remembered');
        continue;
      }
      remembered.push(id);
      const present = remembered.map((candidate) => window.has(candidate));
      const firstPresent = present.indexOf(true);
      assert.ok(firstPresent !== -1 && present[present.length - 1], `run ${run} step ${step}: the newest id is always held`);
      assert.ok(present.slice(firstPresent).every(Boolean), `run ${run} step ${step}: held ids are a suffix (FIFO)`);
      assert.equal(window.size, present.length - firstPresent);
      assert.ok(window.size <= entriesMax);
      const textUnits = remembered.slice(firstPresent).reduce((sum, held) => sum + held.length, 0);
      assert.ok(textUnits <= entriesMax * arenaUnitsPerEntry, 'the held text fits in the arena');
      assert.equal(window.has(`${id}x`), false);
    }
  }
});
