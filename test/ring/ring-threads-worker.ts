/**
 * The consumer side of ring-threads.test.ts, run in a real worker thread. It is not a test
 * file itself (no .test. in the name), only loaded by that test.
 *
 * Modes:
 * - drain: read every record, check its sequence number and every byte of its pattern,
 *   hash all bytes, sometimes sleep (so the ring fills up), stop on 'stop'.
 * - stop: wait on an empty ring with a long timeout and report what woke it.
 * - echo: for each record, post its sequence number back (wake-up latency probe).
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { RingConsumer } from '../../src/ring/ring-consumer';

export interface WorkerInput {
  readonly buffer: SharedArrayBuffer;
  readonly mode: 'drain' | 'stop' | 'echo';
  /** drain: sleep sleepMs after roughly every this many records (0 = never). */
  readonly sleepEveryRecords: number;
  readonly sleepMs: number;
  /** drain: check and hash every byte (the producer filled them with patternByte). */
  readonly patterned: boolean;
}

export interface DrainResult {
  readonly kind: 'drained';
  readonly records: number;
  readonly bytes: number;
  readonly hash: number;
  readonly waits: number;
  readonly error: string | null;
}

/** Byte i of record `sequence` (after its 4-byte sequence number); shared with the test. */
export function patternByte(sequence: number, i: number): number {
  return (Math.imul(sequence, 31) + i * 7) & 0xff;
}

/** FNV-1a step; both threads hash every payload byte with it. */
export function hashByte(hash: number, byte: number): number {
  return Math.imul(hash ^ byte, 16_777_619);
}

async function drain(consumer: RingConsumer, input: WorkerInput): Promise<DrainResult> {
  let records = 0;
  let bytes = 0;
  let hash = 0x811c9dc5 | 0;
  let waits = 0;
  let error: string | null = null;
  let sinceSleep = 0;
  const visit = (payload: Uint8Array): void => {
    const sequence = (payload[0] ?? 0) | ((payload[1] ?? 0) << 8) | ((payload[2] ?? 0) << 16) | ((payload[3] ?? 0) << 24);
    if (error === null && sequence !== records) error = `record ${records} carried sequence ${sequence}`;
    // Unpatterned runs measure the ring itself, so they touch only the sequence number.
    for (let i = 0; input.patterned && i < payload.byteLength; i++) {
      const byte = payload[i] as number;
      if (i >= 4 && error === null && byte !== patternByte(sequence, i)) error = `record ${sequence} byte ${i} is ${byte}`;
      hash = hashByte(hash, byte);
    }
    records += 1;
    bytes += payload.byteLength;
  };
  for (;;) {
    const visited = consumer.read(visit, 256);
    sinceSleep += visited;
    if (visited === 0) {
      waits += 1;
      if ((await consumer.waitForData(5_000)) === 'stop') break;
    } else if (input.sleepEveryRecords > 0 && sinceSleep >= input.sleepEveryRecords) {
      sinceSleep = 0;
      await sleep(input.sleepMs);
    }
  }
  return { kind: 'drained', records, bytes, hash, waits, error };
}

async function echo(consumer: RingConsumer): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('must run in a worker');
  for (;;) {
    const outcome = await consumer.waitForData(5_000);
    if (outcome === 'stop') return;
    consumer.read((payload) => port.postMessage({ kind: 'echo', sequence: payload[0] }), 1_000);
  }
}

async function main(): Promise<void> {
  const input = workerData as WorkerInput;
  const port = parentPort;
  if (port === null) throw new Error('must run in a worker');
  const consumer = new RingConsumer(input.buffer);
  // A pending Atomics.waitAsync keeps no thread alive; this ref'd timer does.
  const keepAlive = setInterval(() => {}, 60_000);
  try {
    if (input.mode === 'drain') port.postMessage(await drain(consumer, input));
    else if (input.mode === 'echo') await echo(consumer);
    else {
      port.postMessage({ kind: 'ready' });
      const startedAtMs = performance.now();
      const outcome = await consumer.waitForData(60_000);
      port.postMessage({ kind: 'woken', outcome, waitedMs: performance.now() - startedAtMs });
    }
  } finally {
    clearInterval(keepAlive);
  }
}

// The test imports patternByte and hashByte from here; only a worker runs main().
if (!isMainThread) void main();
