/**
 * The ring across real threads: the main thread produces, a worker_threads worker
 * (ring-threads-worker.ts) consumes. Sleeps on both sides make the ring run full (the
 * producer must wait for room) and run dry (the consumer must sleep and be woken), so the
 * wait/notify protocol is exercised for real, not only the fast path.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { createRingBuffer, readRingCounters, recordBytesMaxFor } from '../../src/ring/layout';
import { RingProducer } from '../../src/ring/ring-producer';
import { hashByte, patternByte, type DrainResult, type WorkerInput } from './ring-threads-worker';

const workerPath = path.join(__dirname, 'ring-threads-worker.js');

function startWorker(input: WorkerInput): Worker {
  return new Worker(workerPath, { workerData: input });
}

/** The next message of this kind; rejects if the worker fails or exits first. */
function nextMessage<T>(worker: Worker, kind: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (message: { kind: string }): void => {
      if (message.kind !== kind) return;
      cleanUp();
      resolve(message as T);
    };
    const onError = (error: Error): void => {
      cleanUp();
      reject(error);
    };
    const onExit = (code: number): void => {
      cleanUp();
      reject(new Error(`worker exited with code ${code} before sending ${kind}`));
    };
    const cleanUp = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

interface ProducePlan {
  readonly records: number;
  /** Payload length of record `sequence` (≥ 4: the sequence number comes first). */
  readonly sizeOf: (sequence: number) => number;
  readonly batchRecordsMax: number;
  /** Fill every byte with the pattern (checked by the worker) or only stamp the sequence. */
  readonly patterned: boolean;
  readonly pauseEveryRecords: number;
  readonly pauseMs: number;
}

interface ProduceResult {
  readonly hash: number;
  readonly bytes: number;
  /** How many times the ring had no room for the next batch. */
  readonly fullWaits: number;
}

function stampRecord(scratch: Uint8Array, sequence: number, byteLength: number, patterned: boolean): void {
  scratch[0] = sequence & 0xff;
  scratch[1] = (sequence >>> 8) & 0xff;
  scratch[2] = (sequence >>> 16) & 0xff;
  scratch[3] = (sequence >>> 24) & 0xff;
  if (patterned) for (let i = 4; i < byteLength; i++) scratch[i] = patternByte(sequence, i);
}

async function produce(producer: RingProducer, plan: ProducePlan): Promise<ProduceResult> {
  const scratch = new Uint8Array(producer.recordBytesMax);
  const lengths: number[] = [];
  let hash = 0x811c9dc5 | 0;
  let bytes = 0;
  let fullWaits = 0;
  let sincePause = 0;
  for (let sequence = 0; sequence < plan.records; ) {
    lengths.length = 0;
    const batchRecords = Math.min(plan.batchRecordsMax, plan.records - sequence);
    for (let i = 0; i < batchRecords; i++) lengths.push(plan.sizeOf(sequence + i));
    while (!producer.fits(lengths)) {
      fullWaits += 1;
      await yieldToLoop();
    }
    for (const byteLength of lengths) {
      stampRecord(scratch, sequence, byteLength, plan.patterned);
      const payload = scratch.subarray(0, byteLength);
      if (plan.patterned) for (let i = 0; i < byteLength; i++) hash = hashByte(hash, payload[i] as number);
      producer.write(payload);
      bytes += byteLength;
      sequence += 1;
    }
    producer.publish();
    sincePause += batchRecords;
    if (plan.pauseEveryRecords > 0 && sincePause >= plan.pauseEveryRecords) {
      sincePause = 0;
      await sleep(plan.pauseMs);
    }
  }
  return { hash, bytes, fullWaits };
}

describe('ring across threads', () => {
  it('delivers a million small and some large records intact, with both sides sleeping', async (t) => {
    const buffer = createRingBuffer(64 * 1024);
    const producer = new RingProducer(buffer);
    const recordBytesMax = recordBytesMaxFor(64 * 1024);
    const worker = startWorker({ buffer, mode: 'drain', sleepEveryRecords: 40_000, sleepMs: 3, patterned: true });
    const result = nextMessage<DrainResult>(worker, 'drained');
    const startedAtMs = performance.now();
    const produced = await produce(producer, {
      records: 1_000_000,
      // Mostly 4…64 bytes; every 997th record between 2,000 bytes and the largest allowed.
      sizeOf: (sequence) => (sequence % 997 === 0 ? 2_000 + ((sequence * 7_919) % (recordBytesMax - 1_999)) : 4 + ((sequence * 13) % 61)),
      batchRecordsMax: 100,
      patterned: true,
      pauseEveryRecords: 25_000,
      pauseMs: 2,
    });
    producer.requestStop();
    const drained = await result;
    const elapsedMs = performance.now() - startedAtMs;
    await worker.terminate();
    const counters = readRingCounters(buffer);
    t.diagnostic(
      `1,000,000 records (${(produced.bytes / 1e6).toFixed(1)} MB) in ${elapsedMs.toFixed(0)} ms including sleeps; ` +
        `consumer woken ${counters.wakeCount} times, producer found the ring full ${produced.fullWaits} times`,
    );
    assert.equal(drained.error, null);
    assert.equal(drained.records, 1_000_000);
    assert.equal(drained.bytes, produced.bytes);
    assert.equal(drained.hash, produced.hash);
    assert.equal(counters.recordsPublished, 1_000_000);
    assert.equal(counters.recordsConsumed, 1_000_000);
    assert.equal(counters.usedBytes, 0);
    // Both slow paths really ran: the consumer slept and was woken, the producer met a full ring.
    assert.ok(counters.wakeCount >= 10, `only ${counters.wakeCount} wake-ups`);
    assert.ok(produced.fullWaits >= 10, `ring full only ${produced.fullWaits} times`);
  });

  it('measures throughput for batched and per-record publishing', async (t) => {
    for (const batchRecordsMax of [64, 1]) {
      const buffer = createRingBuffer(256 * 1024);
      const producer = new RingProducer(buffer);
      const worker = startWorker({ buffer, mode: 'drain', sleepEveryRecords: 0, sleepMs: 0, patterned: false });
      const result = nextMessage<DrainResult>(worker, 'drained');
      const records = 1_000_000;
      const startedAtMs = performance.now();
      const produced = await produce(producer, { records, sizeOf: () => 200, batchRecordsMax, patterned: false, pauseEveryRecords: 0, pauseMs: 0 });
      producer.requestStop();
      const drained = await result;
      const elapsedMs = performance.now() - startedAtMs;
      await worker.terminate();
      t.diagnostic(
        `200-byte records, publish every ${batchRecordsMax}: ${Math.round((records / elapsedMs) * 1000).toLocaleString('en-US')} records/s ` +
          `(${elapsedMs.toFixed(0)} ms; consumer checks sequence numbers only; woken ${readRingCounters(buffer).wakeCount} times, full ${produced.fullWaits} times)`,
      );
      assert.equal(drained.error, null);
      assert.equal(drained.records, records);
      assert.equal(drained.bytes, produced.bytes);
    }
  });

  it('wakes a consumer sleeping on an empty ring promptly when stop is requested', async (t) => {
    const buffer = createRingBuffer(4096);
    const producer = new RingProducer(buffer);
    const worker = startWorker({ buffer, mode: 'stop', sleepEveryRecords: 0, sleepMs: 0, patterned: false });
    await nextMessage(worker, 'ready');
    const woken = nextMessage<{ outcome: string; waitedMs: number }>(worker, 'woken');
    const sleepingSinceMs = performance.now();
    while (!readRingCounters(buffer).consumerSleeping) {
      assert.ok(performance.now() - sleepingSinceMs < 5_000, 'consumer never went to sleep');
      await sleep(1);
    }
    await sleep(50);
    const requestedAtMs = performance.now();
    producer.requestStop();
    const { outcome, waitedMs } = await woken;
    const latencyMs = performance.now() - requestedAtMs;
    await worker.terminate();
    t.diagnostic(`stop reached the sleeping consumer and came back in ${latencyMs.toFixed(2)} ms`);
    assert.equal(outcome, 'stop');
    assert.ok(waitedMs >= 45, `consumer waited only ${waitedMs} ms: it was not asleep`);
    assert.ok(latencyMs < 1_000, `stop took ${latencyMs} ms`);
    assert.equal(readRingCounters(buffer).consumerSleeping, false);
  });

  it('wakes a sleeping consumer on publish (round-trip latency probe)', async (t) => {
    const buffer = createRingBuffer(4096);
    const producer = new RingProducer(buffer);
    const worker = startWorker({ buffer, mode: 'echo', sleepEveryRecords: 0, sleepMs: 0, patterned: false });
    const roundTripsUs: number[] = [];
    for (let sequence = 0; sequence < 300; sequence++) {
      // Give the consumer time to fall asleep so that every publish has to wake it.
      const sleepingSinceMs = performance.now();
      while (!readRingCounters(buffer).consumerSleeping && performance.now() - sleepingSinceMs < 1_000) await yieldToLoop();
      const echoed = nextMessage<{ sequence: number }>(worker, 'echo');
      const publishedAtMs = performance.now();
      producer.write(new Uint8Array([sequence & 0xff]));
      producer.publish();
      assert.equal((await echoed).sequence, sequence & 0xff);
      roundTripsUs.push((performance.now() - publishedAtMs) * 1_000);
    }
    producer.requestStop();
    await worker.terminate();
    roundTripsUs.sort((a, b) => a - b);
    const at = (quantile: number): string => (roundTripsUs[Math.floor(quantile * (roundTripsUs.length - 1))] ?? 0).toFixed(0);
    t.diagnostic(`publish → wake → postMessage back: p50 ${at(0.5)} µs, p99 ${at(0.99)} µs, max ${at(1)} µs`);
    assert.ok(readRingCounters(buffer).wakeCount >= 250, `only ${readRingCounters(buffer).wakeCount} wake-ups for 300 publishes`);
  });
});
