/**
 * The SPSC ring (src/ring/ring-producer.ts, ring-consumer.ts) on one thread: write +
 * publish + read of real envelope sizes, publishing per record or once per 64 records
 * (the router publishes once per request). A plain array queue is the reference for what
 * the shared-memory machinery costs beyond moving bytes. The cross-thread numbers, next
 * to a C ring, are in native-bench (npm run bench:native).
 */
import type { ValidEvent } from '../../src/event';
import { EnvelopeEncoder } from '../../src/ring/envelope';
import { createRingBuffer } from '../../src/ring/layout';
import { RingConsumer } from '../../src/ring/ring-consumer';
import { RingProducer } from '../../src/ring/ring-producer';
import { validEvents, type MicroSuite, type MicroTask } from './micro-suite';

const ringDataBytes = 16 * 1024 * 1024;
const batchRecords = 64;

/** The envelope a request of `events` events sends to one actor. */
export function envelopeOf(eventCount: number): Uint8Array {
  const encoder = new EnvelopeEncoder();
  encoder.begin(1, 1_700_000_000_000_000);
  validEvents(eventCount).forEach((event: ValidEvent, index) => encoder.add(index, event));
  return encoder.finish().slice();
}

function ringTasks(label: string, payload: Uint8Array): MicroTask[] {
  // Each task gets its own ring: a ring has exactly one producer and one consumer object.
  const open = (): { producer: RingProducer; consumer: RingConsumer } => {
    const buffer = createRingBuffer(ringDataBytes);
    return { producer: new RingProducer(buffer), consumer: new RingConsumer(buffer) };
  };
  const perRecord = open();
  const batched = open();
  // The consumer copies each payload out, as decodeEnvelope does before decoding.
  const copy = new Uint8Array(payload.byteLength);
  let copiedBytes = 0;
  const visit = (bytes: Uint8Array): void => {
    copy.set(bytes);
    copiedBytes += bytes.byteLength;
  };
  const queue: Uint8Array[] = [];
  return [
    {
      name: `${label}: write + publish + read, per record`,
      unitsPerCall: 1,
      unit: 'record',
      fn: () => {
        perRecord.producer.write(payload);
        perRecord.producer.publish();
        perRecord.consumer.read(visit, 1);
        return copiedBytes;
      },
    },
    {
      name: `${label}: write ×${batchRecords}, publish once, read ×${batchRecords}`,
      unitsPerCall: batchRecords,
      unit: 'record',
      fn: () => {
        for (let i = 0; i < batchRecords; i++) batched.producer.write(payload);
        batched.producer.publish();
        batched.consumer.read(visit, batchRecords);
        return copiedBytes;
      },
    },
    {
      name: `${label}: plain array queue with copies (reference)`,
      unitsPerCall: batchRecords,
      unit: 'record',
      fn: () => {
        for (let i = 0; i < batchRecords; i++) queue.push(payload.slice());
        while (queue.length > 0) visit(queue.shift() as Uint8Array);
        return copiedBytes;
      },
    },
  ];
}

/**
 * The copies alone: V8 copies into and out of SharedArrayBuffer-backed arrays with
 * per-element relaxed-atomic accesses instead of memcpy, so the same Uint8Array.set costs
 * more there than into ordinary memory.
 */
function copyTasks(payload: Uint8Array): MicroTask[] {
  const shared = new Uint8Array(new SharedArrayBuffer(payload.byteLength * 2));
  const plain = new Uint8Array(payload.byteLength * 2);
  const out = new Uint8Array(payload.byteLength);
  return [
    { name: `${payload.byteLength} B copy into SharedArrayBuffer and back (Uint8Array.set ×2)`, unitsPerCall: 1, unit: 'record', fn: () => {
      shared.set(payload, 8);
      out.set(shared.subarray(8, 8 + payload.byteLength));
      return out[0];
    } },
    { name: `${payload.byteLength} B copy into ArrayBuffer and back (Uint8Array.set ×2)`, unitsPerCall: 1, unit: 'record', fn: () => {
      plain.set(payload, 8);
      out.set(plain.subarray(8, 8 + payload.byteLength));
      return out[0];
    } },
  ];
}

export const suite: MicroSuite = {
  name: 'ring',
  description: 'SPSC ring push/pop on one thread with real envelope sizes (1-event and 50-event envelopes), and the copies alone',
  tasks(): MicroTask[] {
    const large = envelopeOf(50);
    return [...[envelopeOf(1), large].flatMap((payload) => ringTasks(`${payload.byteLength} B record`, payload)), ...copyTasks(large)];
  },
};
