import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { currentThreadId, setCurrentThreadNice } from '../../src/actors/thread-priority';

const onLinux = process.platform === 'linux';

/** Field 19 of /proc/<pid>/task/<tid>/stat; the command name before it may hold spaces. */
function niceOf(threadId: number): number {
  const stat = readFileSync(`/proc/${process.pid}/task/${threadId}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

test('the main thread of a process is its process id', { skip: !onLinux && 'Linux only' }, () => {
  assert.equal(currentThreadId(), process.pid);
});

test('niceness 0 changes nothing', () => {
  assert.deepEqual(setCurrentThreadNice(0), { applied: false, reason: 'niceness 0 is the default' });
});

test('a worker thread lowers its own priority and no other thread\'s', { skip: !onLinux && 'Linux only' }, async () => {
  // Relative to where the test runs: a runner started with nice 3 still sees a change.
  const mainBefore = niceOf(process.pid);
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
    assert.equal(niceOf(threadId), wanted);
    assert.equal(niceOf(process.pid), mainBefore);
  } finally {
    await worker.terminate();
  }
});
