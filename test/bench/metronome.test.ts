import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Metronome } from '../../bench/load/metronome';

test('wakes at the instant asked for, never before it', async () => {
  const metronome = new Metronome();
  try {
    for (const delayMs of [0.3, 2.5, 7]) {
      const atMs = performance.now() + delayMs;
      await metronome.until(atMs);
      const woke = performance.now();
      assert.ok(woke >= atMs, `woke ${(atMs - woke).toFixed(3)} ms early`);
      // Generous: a loaded test machine may be slow to run either thread.
      assert.ok(woke - atMs < 500, `woke ${(woke - atMs).toFixed(1)} ms late`);
    }
  } finally {
    await metronome.stop();
  }
});

test('an instant already past resolves at once, and a new wait ends the previous one', async () => {
  const metronome = new Metronome();
  try {
    await metronome.until(performance.now() - 5);
    const far = metronome.until(performance.now() + 60_000);
    const startedMs = performance.now();
    const near = metronome.until(performance.now() + 1);
    await far;
    await near;
    assert.ok(performance.now() - startedMs < 5_000, 'the superseded wait held on to its 60 s');
  } finally {
    await metronome.stop();
  }
});

test('many waits in a row each come back (the helper never misses a generation)', async () => {
  const metronome = new Metronome();
  try {
    let atMs = performance.now();
    for (let i = 0; i < 200; i++) {
      atMs += 0.1;
      await metronome.until(atMs);
      assert.ok(performance.now() >= atMs);
    }
  } finally {
    await metronome.stop();
  }
});
