import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DedupeWindow } from '../../src/actors/dedupe-window';

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
