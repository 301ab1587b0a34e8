import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { inspectPostmasterPid, isAlive, readPostmasterPid, stopPostmaster } from '../../src/sink/postmaster-pid';
import { recordingLogger } from './fixtures';

let clusterDir: string;
before(async () => {
  clusterDir = await mkdtemp(path.join(tmpdir(), 'floodgate-pid-'));
});
after(async () => {
  await rm(clusterDir, { recursive: true, force: true });
});

const pidFile = (): string => path.join(clusterDir, 'postmaster.pid');
const neverAsked = async (): Promise<boolean> => assert.fail('a server that is not PostgreSQL must not be probed');

test('no pid file: nothing to reuse, nothing removed', async () => {
  const logger = recordingLogger();
  assert.equal(await inspectPostmasterPid(clusterDir, 5555, neverAsked, logger), null);
  assert.deepEqual(logger.entries, []);
  assert.equal(readPostmasterPid(clusterDir), null);
});

test('a garbled or dead pid file is removed as stale', async () => {
  for (const content of ['', 'not a pid\n', '-4\n', '0\n', '4194304999\n/data\n1\n5555\n']) {
    await writeFile(pidFile(), content);
    const logger = recordingLogger();
    assert.equal(await inspectPostmasterPid(clusterDir, 5555, neverAsked, logger), null, JSON.stringify(content));
    assert.ok(!existsSync(pidFile()), JSON.stringify(content));
    assert.equal(logger.entries[0]?.msg, 'removed a stale postmaster.pid left by a previous run');
  }
});

test('a live pid that is not PostgreSQL (a recycled pid) is treated as stale', async () => {
  await writeFile(pidFile(), `${process.pid}\n${clusterDir}\n0\n5555\n`);
  assert.equal(readPostmasterPid(clusterDir), process.pid);
  assert.equal(await inspectPostmasterPid(clusterDir, 5555, neverAsked, recordingLogger()), null);
  assert.ok(!existsSync(pidFile()));
});

test('isAlive and stopPostmaster on an ordinary child process', async () => {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const pid = child.pid as number;
  assert.ok(isAlive(pid));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await stopPostmaster(pid, 5_000);
  await exited;
  assert.ok(!isAlive(pid));
  await stopPostmaster(pid, 5_000);
});
