import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { batchSizes, runCopyBatches } from '../../bench/native/copy-batches';
import { generateCopyFile } from '../../bench/native/copy-ceiling';
import { parseWrkOutput, wrkDurationMs } from '../../bench/native/http-ceiling';
import { runJsRing } from '../../bench/native/js-ring-threads';
import { runKeyCollation } from '../../bench/native/key-collation';
import { compileSpscRing } from '../../bench/native/ring-comparison';
import { parseStat, ProcSampler, systemTicks } from '../../bench/common/proc-stats';
import { serverUrl } from '../support/database';

test('the C ring compiles and moves every record intact; so does the JS ring across threads', async () => {
  const binary = compileSpscRing();
  const c = JSON.parse(execFileSync(binary, ['175', '200000', '64', '65536'], { encoding: 'utf8' })) as { checksumOk: boolean; records: number };
  assert.equal(c.checksumOk, true);
  assert.equal(c.records, 200_000);
  // A 64 KiB ring forces wrap-around and full-ring waits on both sides.
  const js = await runJsRing(1000, 20_000, 1, 64 * 1024);
  assert.equal(js.checksumOk, true);
  assert.ok(js.recordsPerS > 0);
});

test('the batch-size benchmark writes every row in each mode and batch size into a scratch database', async () => {
  // runCopyBatches itself fails when the table does not hold exactly the rows it sent.
  const runs = await runCopyBatches(serverUrl(), 5_000, 1, () => undefined);
  assert.deepEqual(runs.map((run) => `${run.mode}:${run.batchRows}`), batchSizes.flatMap((size) => [`transaction:${size}`, `autocommit:${size}`, `pipelined:${size}`]));
  for (const run of runs) {
    assert.equal(run.rows, 5_000);
    assert.ok(run.rowsPerS > 0 && run.wallUsPerBatch > 0, JSON.stringify(run));
    assert.ok(Number.isFinite(run.postgresUsPerRow) && run.postgresUsPerRow >= 0, JSON.stringify(run));
  }
});

test('wrk output is parsed into rate, percentiles (any unit) and non-2xx count', () => {
  const output = [
    'Running 3s test @ http://127.0.0.1:1/v1/events/bulk',
    '  Latency Distribution',
    '     50%  638.00us',
    '     75%    1.13ms',
    '     90%    1.47ms',
    '     99%    2.01s',
    '  117379 requests in 3.00s, 16.23MB read',
    '  Non-2xx or 3xx responses: 12',
    'Requests/sec:  39076.17',
  ].join('\n');
  assert.deepEqual(parseWrkOutput(output), { requestsPerS: 39076.17, p50: 0.638, p90: 1.47, p99: 2010, non2xx: 12 });
  assert.ok(Number.isNaN(wrkDurationMs('soon')));
});

test('binary COPY files hold one header, every row and one trailer', async () => {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'floodgate-copy-test-'));
  try {
    const file = path.join(directory, 'rows.pgcopy');
    await generateCopyFile(file, 'binary', 0, 25_001, Date.now());
    const bytes = readFileSync(file);
    assert.equal(bytes.subarray(0, 11).toString('latin1'), 'PGCOPY\n\xff\r\n\0');
    assert.equal(bytes.indexOf(Buffer.from('PGCOPY'), 1), -1, 'a second header inside the file');
    assert.equal(bytes.readInt16BE(bytes.length - 2), -1);
    const csv = path.join(directory, 'rows.csv');
    await generateCopyFile(csv, 'csv', 1, 3, Date.now());
    const lines = readFileSync(csv, 'utf8').trim().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0] as string, /^nb1-00000000,page_view,bench,user-0,[^,]+,[^,]+,"\{""path"":""\/products\/0""/);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('/proc stat lines parse even with odd thread names, and a busy child shows up as client CPU', async () => {
  assert.deepEqual(parseStat('42 (we (ird) name) S 7 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0 777 1000'), { name: 'we (ird) name', ppid: 7, ticks: 300, startTicks: 777 });
  const child = spawn(process.execPath, ['-e', 'const end = Date.now() + 600; while (Date.now() < end) {}']);
  const sampler = new ProcSampler({ enginePid: null, clientPids: () => [child.pid ?? -1], databaseName: null });
  await new Promise((resolve) => setTimeout(resolve, 150));
  sampler.sample();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const sample = sampler.sample();
  await new Promise((resolve) => child.once('exit', resolve));
  assert.ok(sample.clientCores > 0.2, `a spinning child used ${sample.clientCores} cores`);
  assert.ok(sample.systemBusyCores >= sample.clientCores - 0.1);
  // Steal is reported apart from busy time: together they never exceed the cores there are.
  assert.ok(sample.stealCores >= 0 && sample.systemBusyCores + sample.stealCores <= os.cpus().length + 0.01);
  const ticks = systemTicks();
  assert.ok(ticks.busy >= 0 && ticks.steal >= 0 && ticks.busy + ticks.steal <= ticks.total);
});

test('the key-collation benchmark copies every row into one scratch database per collation', async () => {
  // runKeyCollation itself fails when a table does not hold exactly the rows it sent.
  const runs = await runKeyCollation(serverUrl(), 3_000, 2, () => undefined);
  const collations = runs.map((run) => run.collation);
  assert.ok(collations.includes('default') && collations.includes('C'), collations.join(', '));
  for (const run of runs) {
    assert.equal(run.rowsPerRound, 3_000);
    assert.equal(run.postgresUsPerRowRounds.length, 2);
    assert.ok(Number.isFinite(run.postgresUsPerRow) && run.postgresUsPerRow >= 0, JSON.stringify(run));
  }
});
