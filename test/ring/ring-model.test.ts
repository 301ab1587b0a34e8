/**
 * Model test: random sequences of fits/write/publish/read on small rings, checked step by
 * step against a plain JavaScript queue. The model measures space with ever-growing
 * virtual byte positions (position % dataBytes is the physical offset), a formulation
 * independent of the ring's own offset arithmetic, so the two can only agree by both
 * being right.
 *
 * Every sequence has its own seed. A failure names it; rerun one sequence with
 * RING_MODEL_SEED=<seed> node --test dist/test/ring/ring-model.test.js
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createRingBuffer, readRingCounters, recordBytesMaxFor } from '../../src/ring/layout';
import { RingProducer } from '../../src/ring/ring-producer';
import { RingConsumer } from '../../src/ring/ring-consumer';
import { Prng } from '../support/prng';

function prngOf(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.next();
}

interface QueuedRecord {
  readonly payload: Uint8Array;
  /** Virtual position just past the record. */
  readonly end: number;
}

/** How often the sequences reached the cases that matter, so the test proves it saw them. */
const coverage = { wraps: 0, exactEnds: 0, refusedRequests: 0, emptyReads: 0 };

class RingModel {
  readonly dataBytes: number;
  readonly recordBytesMax: number;
  readonly #queue: QueuedRecord[] = [];
  /** Virtual positions: written (published or not), published, and read. */
  #written = 0;
  #published = 0;
  #publishedCount = 0;
  #read = 0;
  #readCount = 0;

  constructor(dataBytes: number) {
    this.dataBytes = dataBytes;
    // A quarter of the area rounded down to 8 bytes, minus the 8-byte prefix (length + padding).
    this.recordBytesMax = Math.floor(dataBytes / 32) * 8 - 8;
  }

  /** Where the producer stands physically, for choosing sizes that end at the edge. */
  get tailBytes(): number {
    return this.dataBytes - (this.#written % this.dataBytes);
  }

  /** Virtual end of a record placed at `from`, or -1 when the ring would hold too much. */
  #endOf(from: number, payloadBytes: number): number {
    const slotBytes = Math.ceil((payloadBytes + 8) / 8) * 8;
    const physical = from % this.dataBytes;
    const wasteBytes = physical + slotBytes > this.dataBytes ? this.dataBytes - physical : 0;
    const end = from + wasteBytes + slotBytes;
    // One 8-byte gap always stays free, so at most dataBytes - 8 are ever in use.
    return end - this.#read <= this.dataBytes - 8 ? end : -1;
  }

  fits(payloadByteLengths: readonly number[]): boolean {
    let at = this.#written;
    for (const payloadBytes of payloadByteLengths) {
      at = this.#endOf(at, payloadBytes);
      if (at < 0) return false;
    }
    return true;
  }

  write(payload: Uint8Array): void {
    const end = this.#endOf(this.#written, payload.byteLength);
    assert.ok(end >= 0, 'model: write without room');
    if (end - this.#written > Math.ceil((payload.byteLength + 8) / 8) * 8) coverage.wraps += 1;
    if (end % this.dataBytes === 0) coverage.exactEnds += 1;
    this.#queue.push({ payload, end });
    this.#written = end;
  }

  publish(): void {
    this.#published = this.#written;
    this.#publishedCount = this.#queue.length + this.#readCount;
  }

  read(recordsMax: number): Uint8Array[] {
    const records: Uint8Array[] = [];
    while (records.length < recordsMax && this.#queue.length > 0 && (this.#queue[0] as QueuedRecord).end <= this.#published) {
      const record = this.#queue.shift() as QueuedRecord;
      records.push(record.payload);
      this.#read = record.end;
      this.#readCount += 1;
    }
    return records;
  }

  get producerUsedBytes(): number {
    return this.#written - this.#read;
  }

  get consumerUsedBytes(): number {
    return this.#published - this.#read;
  }

  get publishedCount(): number {
    return this.#publishedCount;
  }

  get readCount(): number {
    return this.#readCount;
  }
}

/** Payload sizes that stress the edges: tiny, any, the largest, and exact tail fits. */
function payloadBytesOf(random: () => number, model: RingModel): number {
  const choice = random();
  const max = model.recordBytesMax;
  if (choice < 0.3) return Math.floor(random() * 17);
  if (choice < 0.65) return Math.floor(random() * (max + 1));
  if (choice < 0.8) return max - Math.floor(random() * 8);
  // Sizes whose slot ends exactly at the end of the area, or just past it.
  const tailPayload = model.tailBytes - 8 - 8 * Math.floor(random() * 2);
  const candidate = tailPayload + (random() < 0.5 ? 0 : 1 + Math.floor(random() * 8));
  return Math.max(0, Math.min(max, candidate));
}

/** Bytes derived from one random draw: distinct per record, cheap to make. */
function payloadOf(random: () => number, byteLength: number): Uint8Array {
  const payload = new Uint8Array(byteLength);
  let state = Math.floor(random() * 4_294_967_296);
  for (let i = 0; i < byteLength; i++) {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    payload[i] = state >>> 24;
  }
  return payload;
}

function writeRequest(random: () => number, model: RingModel, producer: RingProducer): void {
  const count = 1 + Math.floor(random() * 4);
  const payloads = Array.from({ length: count }, () => payloadOf(random, payloadBytesOf(random, model)));
  const lengths = payloads.map((payload) => payload.byteLength);
  const expected = model.fits(lengths);
  if (!expected) coverage.refusedRequests += 1;
  if (producer.fits(lengths) !== expected) {
    assert.fail(`fits(${lengths.join(', ')}) should be ${expected} with ${model.producerUsedBytes} bytes used`);
  }
  for (const payload of payloads) {
    // Past a refused request, write record by record until one is refused: write() must
    // refuse exactly where the model runs out of room. Building the assertion error is
    // what costs most in this test, so the refusal itself is checked one time in four.
    if (!model.fits([payload.byteLength])) {
      assert.ok(!expected, 'fits() said yes but a record of the request does not fit');
      if (random() < 0.25) assert.throws(() => producer.write(payload), /without room/);
      return;
    }
    producer.write(payload);
    model.write(payload);
  }
}

function readAndCompare(random: () => number, model: RingModel, consumer: RingConsumer): void {
  const recordsMax = random() < 0.7 ? 1 + Math.floor(random() * 4) : 1_000;
  const records: Uint8Array[] = [];
  const visited = consumer.read((payload) => records.push(payload.slice()), recordsMax);
  const expected = model.read(recordsMax);
  if (expected.length === 0) coverage.emptyReads += 1;
  assert.equal(visited, expected.length, 'records visited');
  assert.deepEqual(records, expected);
}

function checkAccounting(model: RingModel, buffer: SharedArrayBuffer, producer: RingProducer, consumer: RingConsumer): void {
  assert.equal(producer.usedBytes(), model.producerUsedBytes, 'producer usedBytes');
  assert.equal(consumer.usedBytes(), model.consumerUsedBytes, 'consumer usedBytes');
  const counters = readRingCounters(buffer);
  assert.equal(counters.recordsPublished, model.publishedCount, 'recordsPublished');
  assert.equal(counters.recordsConsumed, model.readCount, 'recordsConsumed');
  assert.equal(counters.usedBytes, model.consumerUsedBytes, 'counters usedBytes');
}

function runSequence(seed: number, operationCount: number): void {
  const random = prngOf(seed);
  const dataBytes = 8 * (32 + Math.floor(random() * 481)); // 256…4096 bytes, any multiple of 8.
  const buffer = createRingBuffer(dataBytes);
  const producer = new RingProducer(buffer);
  const consumer = new RingConsumer(buffer);
  const model = new RingModel(dataBytes);
  assert.equal(recordBytesMaxFor(dataBytes), model.recordBytesMax);
  // Each sequence leans towards writing or reading so that both full and empty rings occur.
  const writeShare = 0.3 + random() * 0.4;
  for (let step = 0; step < operationCount; step++) {
    const choice = random();
    if (choice < writeShare) writeRequest(random, model, producer);
    else if (choice < writeShare + 0.15) {
      producer.publish();
      model.publish();
    } else readAndCompare(random, model, consumer);
    checkAccounting(model, buffer, producer, consumer);
  }
  producer.publish();
  model.publish();
  readAndCompare(() => 0.9, model, consumer);
  assert.equal(consumer.usedBytes(), 0);
}

it('matches a plain queue over thousands of random operation sequences', (t) => {
  const fixedSeed = process.env['RING_MODEL_SEED'];
  const seeds: number[] = [];
  if (fixedSeed !== undefined) seeds.push(Number(fixedSeed));
  else {
    const baseSeed = Math.floor(Math.random() * 2 ** 32);
    t.diagnostic(`base seed ${baseSeed}`);
    for (let i = 0; i < 3_000; i++) seeds.push((baseSeed + i) >>> 0);
  }
  for (const seed of seeds) {
    try {
      runSequence(seed, 300);
    } catch (error) {
      throw new Error(`ring model diverged for seed ${seed}; rerun with RING_MODEL_SEED=${seed}`, { cause: error });
    }
  }
  t.diagnostic(`coverage ${JSON.stringify(coverage)}`);
  if (fixedSeed === undefined) {
    for (const [name, count] of Object.entries(coverage)) assert.ok(count >= 1_000, `only ${count} ${name}`);
  }
});

it('keeps the model honest: it enforces the 8-byte gap on its own', () => {
  // If the model accepted what the ring refuses here, agreement above would prove little.
  const buffer = createRingBuffer(64);
  const producer = new RingProducer(buffer);
  for (let i = 0; i < 3; i++) producer.write(new Uint8Array(8));
  const model = new RingModel(64);
  for (let i = 0; i < 3; i++) model.write(new Uint8Array(8));
  assert.equal(producer.fits([0]), model.fits([0]));
  assert.equal(producer.fits([0, 0]), model.fits([0, 0]));
  assert.equal(model.fits([0, 0]), false);
  assert.equal(model.fits([0]), true);
});
