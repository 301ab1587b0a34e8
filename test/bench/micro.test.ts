import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderMicroMarkdown, runMicro, suites } from '../../bench/micro/run-micro';

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
