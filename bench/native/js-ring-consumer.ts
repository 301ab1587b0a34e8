/**
 * The consumer thread of js-ring-threads.ts: drains the ring the way an actor does
 * (RingConsumer.read of up to 64 records, each payload copied into private memory as
 * decodeEnvelope does, then waitForData when the ring is empty) and reports how many
 * records and what checksum it saw.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RingConsumer } from '../../src/ring/ring-consumer';

interface ConsumerInput {
  readonly buffer: SharedArrayBuffer;
  readonly payloadBytes: number;
}

const readBatchRecords = 64;

async function drain(input: ConsumerInput): Promise<void> {
  const consumer = new RingConsumer(input.buffer);
  const copy = new Uint8Array(input.payloadBytes);
  let records = 0;
  let checksum = 0;
  const visit = (payload: Uint8Array): void => {
    copy.set(payload);
    checksum = (checksum + (copy[0] ?? 0) + (copy[copy.length - 1] ?? 0)) >>> 0;
    records += 1;
  };
  // A pending waitAsync does not keep a worker alive (nodejs/node#44729); a port with a
  // message listener does, until the parent terminates this worker.
  parentPort?.on('message', () => undefined);
  parentPort?.postMessage({ type: 'ready' });
  for (;;) {
    if (consumer.read(visit, readBatchRecords) > 0) continue;
    if ((await consumer.waitForData(1000)) === 'stop') break;
  }
  parentPort?.postMessage({ type: 'done', records, checksum });
}

drain(workerData as ConsumerInput).catch((error: unknown) => {
  parentPort?.postMessage({ type: 'failed', message: String(error) });
});
