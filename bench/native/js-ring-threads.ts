/**
 * The engine's SharedArrayBuffer ring across two threads (main thread → one worker), with
 * the same record sizes and publication pattern as native-bench/spsc-ring.c, so the two
 * can be compared: RingProducer.write for each record, publish() every `publishEvery`
 * records; when the ring is full the producer publishes and spins until there is room.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { createRingBuffer } from '../../src/ring/layout';
import { RingProducer } from '../../src/ring/ring-producer';

export interface RingRunResult {
  readonly payloadBytes: number;
  readonly records: number;
  readonly publishEvery: number;
  readonly ringDataBytes: number;
  readonly seconds: number;
  readonly recordsPerS: number;
  readonly megabytesPerS: number;
  readonly checksumOk: boolean;
}

type FromConsumer = { type: 'ready' } | { type: 'done'; records: number; checksum: number } | { type: 'failed'; message: string };

export async function runJsRing(payloadBytes: number, records: number, publishEvery: number, ringDataBytes = 16 * 1024 * 1024): Promise<RingRunResult> {
  const buffer = createRingBuffer(ringDataBytes);
  const producer = new RingProducer(buffer);
  const payload = new Uint8Array(payloadBytes).map((_, i) => (i * 7 + 1) & 0xff);
  const worker = new Worker(path.join(__dirname, 'js-ring-consumer.js'), { workerData: { buffer, payloadBytes } });
  const messages: FromConsumer[] = [];
  let notify = (): void => undefined;
  worker.on('message', (message: FromConsumer) => {
    messages.push(message);
    notify();
  });
  const next = async (): Promise<FromConsumer> => {
    while (messages.length === 0) await new Promise<void>((resolve) => (notify = resolve));
    return messages.shift() as FromConsumer;
  };
  if ((await next()).type !== 'ready') throw new Error('ring consumer did not start');
  const sizes = [payloadBytes];
  const startedMs = performance.now();
  let unpublished = 0;
  for (let i = 0; i < records; i++) {
    if (!producer.fits(sizes)) {
      producer.publish();
      unpublished = 0;
      while (!producer.fits(sizes)) {
        // Spin: the main thread of this benchmark has nothing else to do.
      }
    }
    producer.write(payload);
    if (++unpublished === publishEvery) {
      producer.publish();
      unpublished = 0;
    }
  }
  producer.publish();
  producer.requestStop();
  const done = await next();
  const seconds = (performance.now() - startedMs) / 1000;
  await worker.terminate();
  if (done.type !== 'done') throw new Error(`ring consumer failed: ${done.type === 'failed' ? done.message : done.type}`);
  const expected = (records * ((payload[0] ?? 0) + (payload[payloadBytes - 1] ?? 0))) >>> 0;
  return {
    payloadBytes,
    records,
    publishEvery,
    ringDataBytes,
    seconds: Math.round(seconds * 1e6) / 1e6,
    recordsPerS: Math.round(records / seconds),
    megabytesPerS: Math.round((records * payloadBytes) / seconds / 1e5) / 10,
    checksumOk: done.records === records && done.checksum === expected,
  };
}
