import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderMicroMarkdown, runMicro, suites } from '../../bench/micro/run-micro';
import { Metronome } from '../../bench/load/metronome';

test('every micro suite builds its fixtures and each task runs once without throwing', async () => {
  for (const suite of suites) {
    await suite.prepare?.();
    const tasks = suite.tasks();
    assert.ok(tasks.length >= 2, `${suite.name} compares fewer than two variants`);
    for (const task of tasks) {
      assert.ok(task.unitsPerCall >= 1, `${suite.name} / ${task.name}`);
      task.fn();
    }
  }
});

test('the runner reports each task per unit and renders a table per suite', async () => {
  const result = await runMicro({ names: ['hdr-recording', 'ring'], timeMs: 20 });
  assert.deepEqual([...new Set(result.rows.map((row) => row.suite))], ['ring', 'hdr-recording']);
  for (const row of result.rows) {
    assert.ok(row.nsPerUnit > 0 && Number.isFinite(row.nsPerUnit), `${row.task}: ${row.nsPerUnit}`);
    assert.ok(row.samples > 0);
  }
  const markdown = renderMicroMarkdown(result);
  assert.match(markdown, /## ring/);
  assert.match(markdown, /ns\/value/);
  await assert.rejects(runMicro({ names: ['no-such-suite'], timeMs: 1 }), /unknown micro suite/);
});

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
