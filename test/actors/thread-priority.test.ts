import assert from 'node:assert/strict';
import { getPriority } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { currentThreadId, setCurrentThreadNice } from '../../src/actors/thread-priority';

const onLinux = process.platform === 'linux';

test('the main thread of a process is its process id', { skip: !onLinux && 'Linux only' }, () => {
  assert.equal(currentThreadId(), process.pid);
});

test('niceness 0 changes nothing', () => {
  assert.deepEqual(setCurrentThreadNice(0), { applied: false, reason: 'niceness 0 is the default' });
});

test('a worker thread lowers its own priority and no other thread\'s', { skip: !onLinux && 'Linux only' }, async () => {
  // Relative to where the test runs: a runner started with nice 3 still sees a change.
  const mainBefore = getPriority(process.pid);
  const wanted = Math.min(19, mainBefore + 7);
  const modulePath = path.resolve(__dirname, '..', '..', 'src', 'actors', 'thread-priority.js');
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     parentPort.postMessage(require(workerData.modulePath).setCurrentThreadNice(workerData.wanted));
     setTimeout(() => {}, 60_000);`,
    { eval: true, workerData: { modulePath, wanted } },
  );
  try {
    const result = await new Promise<{ applied: boolean; threadId?: number; reason?: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    assert.equal(result.applied, true, result.reason);
    const threadId = result.threadId as number;
    assert.notEqual(threadId, process.pid);
    assert.equal(getPriority(threadId), wanted);
    assert.equal(getPriority(process.pid), mainBefore);
  } finally {
    await worker.terminate();
  }
});
