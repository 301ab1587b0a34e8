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
