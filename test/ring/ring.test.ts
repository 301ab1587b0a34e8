import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  HeaderWord,
  createRingBuffer,
  dataBytesMax,
  dataBytesMin,
  gapBytes,
  headerBytes,
  readRingCounters,
  recordBytesMaxFor,
  recordSlotBytesFor,
  ringByteLengthFor,
  wrapMarker,
} from '../../src/ring/layout';
import { RingProducer } from '../../src/ring/ring-producer';
import { RingConsumer } from '../../src/ring/ring-consumer';
import { shardOf } from '../../src/ring/shard';

/** A payload whose bytes all carry `tag`, so a read can tell records apart. */
function payloadOf(byteLength: number, tag: number): Uint8Array {
  return new Uint8Array(byteLength).fill(tag);
}

function ringOf(dataBytes: number): { buffer: SharedArrayBuffer; producer: RingProducer; consumer: RingConsumer } {
  const buffer = createRingBuffer(dataBytes);
  return { buffer, producer: new RingProducer(buffer), consumer: new RingConsumer(buffer) };
}

/** Reads everything visible, copying each payload out of shared memory. */
function drain(consumer: RingConsumer, recordsMax = 1_000): Uint8Array[] {
  const records: Uint8Array[] = [];
  consumer.read((payload) => records.push(payload.slice()), recordsMax);
  return records;
}

/** Payload length whose record slot is exactly `slotBytes`. */
function payloadForSlot(slotBytes: number): number {
  return slotBytes - 8;
}

function dataWords(buffer: SharedArrayBuffer): Int32Array {
  return new Int32Array(buffer, headerBytes);
}

describe('ring layout', () => {
  it('sizes the buffer as header plus data area', () => {
    assert.equal(headerBytes % 64, 0);
    assert.equal(ringByteLengthFor(1024), headerBytes + 1024);
    assert.equal(createRingBuffer(1000).byteLength, headerBytes + 1000);
  });

  it('pads records to 8 bytes including the 8-byte prefix (length and padding)', () => {
    assert.equal(recordSlotBytesFor(0), 8);
    assert.equal(recordSlotBytesFor(1), 16);
    assert.equal(recordSlotBytesFor(8), 16);
    assert.equal(recordSlotBytesFor(9), 24);
    assert.equal(recordSlotBytesFor(16), 24);
  });

  it('allows a record a quarter of the data area, prefix included', () => {
    assert.equal(recordBytesMaxFor(64), 8);
    assert.equal(recordBytesMaxFor(1024), 248);
    // 1000 / 4 = 250, rounded down to 248 bytes of slot.
    assert.equal(recordBytesMaxFor(1000), 240);
    assert.equal(recordSlotBytesFor(recordBytesMaxFor(1000)), 248);
  });

  it('rejects data areas that are not a multiple of 8, too small, too large or not integers', () => {
    for (const bad of [63, 100, 56, 0, -64, 64.5, Number.NaN, Infinity, dataBytesMax + 8, dataBytesMin - 8]) {
      assert.throws(() => createRingBuffer(bad), assert.AssertionError, `dataBytes ${bad}`);
      assert.throws(() => recordBytesMaxFor(bad), assert.AssertionError, `dataBytes ${bad}`);
    }
    assert.throws(() => createRingBuffer(100), /multiple of 8/);
    assert.throws(() => createRingBuffer(8), /\[64, 1073741824\] bytes/);
  });

  it('writes the constants into the header and starts empty', () => {
    const buffer = createRingBuffer(512);
    const counters = readRingCounters(buffer);
    assert.deepEqual(counters, {
      dataBytes: 512,
      usedBytes: 0,
      recordsPublished: 0,
      recordsConsumed: 0,
      recordsPending: 0,
      wakeCount: 0,
      consumerSleeping: false,
      stopRequested: false,
    });
  });

  it('keeps producer- and consumer-written words on different cache lines', () => {
    const line = (word: number): number => Math.floor((word * 4) / 64);
    const producerLines = [HeaderWord.writeOffset, HeaderWord.wakeSequence, HeaderWord.stopRequested, HeaderWord.recordsPublished].map(line);
    const consumerLines = [HeaderWord.readOffset, HeaderWord.consumerSleeping, HeaderWord.recordsConsumed].map(line);
    assert.equal(new Set(producerLines).size, 1);
    assert.equal(new Set(consumerLines).size, 1);
    assert.notEqual(producerLines[0], consumerLines[0]);
    assert.notEqual(line(HeaderWord.magic), producerLines[0]);
    assert.ok(Math.max(...producerLines, ...consumerLines) * 64 < headerBytes);
  });
});

describe('ring construction', () => {
  it('refuses buffers that are not rings', () => {
    const plain = new ArrayBuffer(1024) as unknown as SharedArrayBuffer;
    assert.throws(() => new RingProducer(plain), /SharedArrayBuffer/);
    assert.throws(() => new RingConsumer(new SharedArrayBuffer(headerBytes + 1024)), /bad magic/);
    assert.throws(() => new RingConsumer(new SharedArrayBuffer(16)), /too small/);
  });

  it('refuses a header whose version or size does not match the buffer', () => {
    const buffer = createRingBuffer(256);
    const header = new Int32Array(buffer, 0, headerBytes / 4);
    header[HeaderWord.dataBytes] = 512;
    assert.throws(() => new RingProducer(buffer), /says 512 data bytes/);
    header[HeaderWord.dataBytes] = 256;
    header[HeaderWord.layoutVersion] = 99;
    assert.throws(() => new RingConsumer(buffer), /layout version 99/);
  });

  it('lets a new producer or consumer object continue where the previous one stopped', () => {
    const { buffer, producer, consumer } = ringOf(256);
    producer.write(payloadOf(20, 1));
    producer.write(payloadOf(20, 2));
    producer.publish();
    assert.equal(consumer.read(() => {}, 1), 1);
    const nextProducer = new RingProducer(buffer);
    const nextConsumer = new RingConsumer(buffer);
    nextProducer.write(payloadOf(20, 3));
    nextProducer.publish();
    assert.deepEqual(drain(nextConsumer).map((record) => record[0]), [2, 3]);
    assert.equal(readRingCounters(buffer).recordsConsumed, 3);
    assert.equal(readRingCounters(buffer).recordsPublished, 3);
  });
});

describe('ring write, publish and read', () => {
  it('reads nothing from an empty ring', () => {
    const { producer, consumer } = ringOf(256);
    assert.equal(consumer.read(() => assert.fail('no record expected'), 10), 0);
    assert.equal(consumer.usedBytes(), 0);
    assert.equal(producer.usedBytes(), 0);
    assert.ok(producer.fits([]));
  });

  it('keeps written records invisible until publish', () => {
    const { buffer, producer, consumer } = ringOf(256);
    producer.write(payloadOf(10, 7));
    assert.equal(producer.usedBytes(), 24);
    assert.equal(consumer.usedBytes(), 0);
    assert.equal(consumer.read(() => assert.fail('not published yet'), 10), 0);
    assert.equal(readRingCounters(buffer).recordsPublished, 0);
    producer.publish();
    assert.equal(consumer.usedBytes(), 24);
    assert.equal(readRingCounters(buffer).recordsPublished, 1);
    assert.equal(readRingCounters(buffer).recordsPending, 1);
    const records = drain(consumer);
    assert.deepEqual(records, [payloadOf(10, 7)]);
    assert.equal(consumer.usedBytes(), 0);
    assert.equal(producer.usedBytes(), 0);
    assert.equal(readRingCounters(buffer).recordsPending, 0);
  });

  it('reads records in order, at most recordsMax per call', () => {
    const { producer, consumer } = ringOf(1024);
    for (let tag = 1; tag <= 5; tag++) producer.write(payloadOf(tag * 3, tag));
    producer.publish();
    assert.deepEqual(drain(consumer, 2), [payloadOf(3, 1), payloadOf(6, 2)]);
    assert.deepEqual(drain(consumer, 2), [payloadOf(9, 3), payloadOf(12, 4)]);
    assert.deepEqual(drain(consumer, 2), [payloadOf(15, 5)]);
    assert.deepEqual(drain(consumer, 2), []);
  });

  it('carries zero-length payloads', () => {
    const { producer, consumer } = ringOf(64);
    producer.write(new Uint8Array(0));
    producer.write(new Uint8Array(0));
    producer.publish();
    assert.equal(consumer.usedBytes(), 16);
    assert.deepEqual(drain(consumer), [new Uint8Array(0), new Uint8Array(0)]);
  });

  it('hands the visitor a view into shared memory, not a copy', () => {
    const { buffer, producer, consumer } = ringOf(256);
    producer.write(payloadOf(8, 9));
    producer.publish();
    consumer.read((payload) => {
      assert.equal(payload.buffer, buffer);
      assert.equal(payload.byteOffset % 8, 0, 'payloads start 8-byte aligned (V8 copies shared memory word by word only then)');
      assert.equal(payload.byteOffset, headerBytes + 8);
    }, 1);
  });

  it('does nothing on a publish with nothing new', () => {
    const { buffer, producer } = ringOf(256);
    producer.publish();
    assert.equal(readRingCounters(buffer).recordsPublished, 0);
    producer.write(payloadOf(1, 1));
    producer.publish();
    producer.publish();
    assert.equal(readRingCounters(buffer).recordsPublished, 1);
  });

  it('rejects recordsMax that is not a positive integer', () => {
    const { consumer } = ringOf(256);
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity]) {
      assert.throws(() => consumer.read(() => {}, bad), /recordsMax/, `recordsMax ${bad}`);
    }
  });

  it('keeps the record whose visit threw and releases the ones before it', () => {
    const { producer, consumer } = ringOf(256);
    for (let tag = 1; tag <= 3; tag++) producer.write(payloadOf(4, tag));
    producer.publish();
    const seen: number[] = [];
    assert.throws(
      () =>
        consumer.read((payload) => {
          if (payload[0] === 2) throw new Error('visit failed');
          seen.push(payload[0] ?? -1);
        }, 10),
      /visit failed/,
    );
    assert.deepEqual(seen, [1]);
    assert.equal(consumer.usedBytes(), 32);
    assert.deepEqual(drain(consumer).map((record) => record[0]), [2, 3]);
  });
});

describe('ring capacity: full, gap, wrap and exact fit', () => {
  it('refuses the write that would close the last 8-byte gap', () => {
    // 64 data bytes hold at most three 16-byte slots plus an 8-byte record: 56 = 64 - gap.
    const { producer, consumer } = ringOf(64);
    for (let tag = 1; tag <= 3; tag++) producer.write(payloadOf(payloadForSlot(16), tag));
    assert.ok(producer.fits([0]));
    assert.ok(!producer.fits([payloadForSlot(16)]));
    producer.write(new Uint8Array(0));
    assert.equal(producer.usedBytes(), 64 - gapBytes);
    assert.ok(!producer.fits([0]));
    assert.throws(() => producer.write(new Uint8Array(0)), /without room/);
    producer.publish();
    assert.equal(consumer.usedBytes(), 56);
    assert.equal(drain(consumer).length, 4);
    // Drained at offset 56: the first 16-byte slot wastes the last 8 bytes and wraps, so
    // the same four records that fitted from offset 0 no longer do.
    assert.ok(producer.fits([payloadForSlot(16), payloadForSlot(16), payloadForSlot(16)]));
    assert.ok(!producer.fits([payloadForSlot(16), payloadForSlot(16), payloadForSlot(16), 0]));
  });

  it('lets a record end exactly at the end of the data area when the reader is not at 0', () => {
    const { buffer, producer, consumer } = ringOf(64);
    producer.write(payloadOf(payloadForSlot(16), 1));
    producer.publish();
    assert.equal(drain(consumer).length, 1);
    // read = write = 16: three 16-byte slots end exactly at 64 and the next write goes to 0.
    for (let tag = 2; tag <= 4; tag++) producer.write(payloadOf(payloadForSlot(16), tag));
    producer.publish();
    assert.equal(Atomics.load(new Int32Array(buffer, 0, headerBytes / 4), HeaderWord.writeOffset), 0);
    assert.equal(consumer.usedBytes(), 48);
    // From 0 the record may reach read - gap = 8 bytes: one 8-byte record, nothing more.
    assert.ok(producer.fits([payloadForSlot(8)]));
    assert.ok(!producer.fits([payloadForSlot(8) + 1]));
    assert.ok(!producer.fits([payloadForSlot(8), 0]));
    assert.deepEqual(drain(consumer).map((record) => record[0]), [2, 3, 4]);
  });

  it('refuses a record ending exactly at the end when the reader is at 0 (it would read as empty)', () => {
    const { producer } = ringOf(128);
    for (let tag = 1; tag <= 3; tag++) producer.write(payloadOf(payloadForSlot(32), tag));
    // write = 96, read = 0: a 32-byte slot would end at 128 and set write to 0 == read,
    // and it cannot wrap either (0 + 32 + gap > read).
    assert.ok(!producer.fits([payloadForSlot(32)]));
    assert.throws(() => producer.write(payloadOf(payloadForSlot(32), 4)), /without room/);
    assert.ok(producer.fits([payloadForSlot(24)]));
    assert.ok(!producer.fits([payloadForSlot(24), 0]));
  });

  it('moves the write offset to 0 without a marker when a record ends exactly at the end', () => {
    const { buffer, producer, consumer } = ringOf(128);
    for (let tag = 1; tag <= 3; tag++) producer.write(payloadOf(payloadForSlot(32), tag));
    producer.publish();
    assert.equal(drain(consumer, 2).length, 2); // read = 64, write = 96.
    producer.write(payloadOf(payloadForSlot(32), 4)); // 96..128, write becomes 0.
    producer.write(payloadOf(payloadForSlot(16), 5)); // 0..16
    assert.notEqual(dataWords(buffer)[96 / 4], wrapMarker);
    // From 16, records may reach read - gap = 56.
    assert.ok(producer.fits([payloadForSlot(32), payloadForSlot(8)]));
    assert.ok(!producer.fits([payloadForSlot(32), payloadForSlot(16)]));
    producer.write(payloadOf(payloadForSlot(32), 6)); // 16..48
    assert.ok(producer.fits([payloadForSlot(8)]));
    assert.ok(!producer.fits([payloadForSlot(16)]));
    producer.publish();
    assert.deepEqual(drain(consumer).map((record) => record[0]), [3, 4, 5, 6]);
  });

  it('writes a wrap marker and continues at 0 when a record does not fit before the end', () => {
    const { buffer, producer, consumer } = ringOf(128);
    for (let tag = 1; tag <= 3; tag++) producer.write(payloadOf(payloadForSlot(32), tag));
    producer.write(new Uint8Array(0)); // record 4: an 8-byte slot is a prefix alone
    producer.publish();
    assert.equal(drain(consumer, 3).length, 3); // read = 96, write = 104.
    // 24 bytes remain before the end: a 32-byte slot goes to 0..32 behind a marker at 104.
    assert.ok(producer.fits([payloadForSlot(32)]));
    producer.write(payloadOf(payloadForSlot(32), 5));
    assert.equal(dataWords(buffer)[104 / 4], wrapMarker);
    // Used bytes count the waste: record 4 (8) + 104..128 (24) + record 5 (32).
    assert.equal(producer.usedBytes(), 8 + 24 + 32);
    assert.equal(consumer.usedBytes(), 8);
    producer.publish();
    assert.equal(consumer.usedBytes(), 8 + 24 + 32);
    // From 32, records may reach read - gap = 88: 56 bytes, wrap waste already paid.
    assert.ok(producer.fits([payloadForSlot(32), payloadForSlot(24)]));
    assert.ok(!producer.fits([payloadForSlot(32), payloadForSlot(32)]));
    assert.deepEqual(drain(consumer, 1), [new Uint8Array(0)]);
    // The marker is consumed along with the record after it, never visited.
    assert.deepEqual(drain(consumer).map((record) => record[0]), [5]);
    assert.equal(consumer.usedBytes(), 0);
    assert.equal(producer.usedBytes(), 0);
  });

  it('places a marker even when the ring is empty and the record does not fit before the end', () => {
    const { buffer, producer, consumer } = ringOf(64);
    for (let i = 0; i < 7; i++) {
      producer.write(new Uint8Array(0));
      producer.publish();
      drain(consumer);
    }
    // read = write = 56: 8 bytes left; a 16-byte slot wraps to 0..16 (16 + 8 <= 56).
    producer.write(payloadOf(payloadForSlot(16), 1));
    assert.equal(dataWords(buffer)[56 / 4], wrapMarker);
    producer.publish();
    assert.deepEqual(drain(consumer), [payloadOf(payloadForSlot(16), 1)]);
  });

  it('counts wrap waste in fits() for several records near the end', () => {
    const { producer, consumer } = ringOf(256);
    // Move both offsets to 200 so only 56 bytes remain before the end.
    for (let i = 0; i < 5; i++) producer.write(payloadOf(payloadForSlot(40), i));
    producer.publish();
    drain(consumer);
    assert.equal(producer.usedBytes(), 0);
    // 48 + 8 = 56 fits exactly before the end, the next 16 starts at 0.
    assert.ok(producer.fits([payloadForSlot(48), payloadForSlot(8), payloadForSlot(64), payloadForSlot(64), payloadForSlot(56)]));
    // A 64-byte slot cannot go at 200: 56 bytes are wasted, then 64 + 64 + 64 = 192 ≤ 200 - 8.
    assert.ok(producer.fits([payloadForSlot(64), payloadForSlot(64), payloadForSlot(64)]));
    assert.ok(!producer.fits([payloadForSlot(64), payloadForSlot(64), payloadForSlot(64), payloadForSlot(8)]));
    // Without wrap waste the same bytes would fit: 56 + 192 = 248 = 256 - 8.
    assert.ok(producer.fits([payloadForSlot(56), payloadForSlot(64), payloadForSlot(64), payloadForSlot(64)]));
    assert.ok(!producer.fits([payloadForSlot(56), payloadForSlot(64), payloadForSlot(64), payloadForSlot(64), 0]));
    // fits() only looks: nothing was written.
    assert.equal(producer.usedBytes(), 0);
    for (let i = 0; i < 3; i++) producer.write(payloadOf(payloadForSlot(64), 10 + i));
    producer.publish();
    assert.equal(consumer.usedBytes(), 56 + 192);
    assert.deepEqual(drain(consumer).map((record) => record[0]), [10, 11, 12]);
  });

  it('always fits a largest record in a drained ring, wherever the offsets stand', () => {
    for (const dataBytes of [64, 72, 256, 1000, 4096]) {
      const recordBytesMax = recordBytesMaxFor(dataBytes);
      for (let offset = 0; offset < dataBytes; offset += 8) {
        const { producer, consumer } = ringOf(dataBytes);
        // Walk both offsets to `offset` with 8-byte records, draining as we go.
        for (let at = 0; at < offset; at += 8) {
          producer.write(new Uint8Array(0));
          producer.publish();
          drain(consumer);
        }
        assert.equal(producer.usedBytes(), 0);
        assert.ok(producer.fits([recordBytesMax]), `dataBytes ${dataBytes}, offset ${offset}`);
        producer.write(payloadOf(recordBytesMax, 1));
        producer.publish();
        assert.deepEqual(drain(consumer), [payloadOf(recordBytesMax, 1)]);
      }
    }
  });
});

describe('ring invalid inputs', () => {
  it('rejects records larger than recordBytesMax in write and fits', () => {
    const { producer } = ringOf(256);
    assert.equal(producer.recordBytesMax, 56);
    assert.throws(() => producer.write(new Uint8Array(57)), /0…56 bytes, got 57/);
    assert.throws(() => producer.fits([10, 57]), /got 57/);
    producer.write(new Uint8Array(56));
    assert.equal(producer.usedBytes(), 64);
  });

  it('rejects payload lengths that are not non-negative integers in fits', () => {
    const { producer } = ringOf(256);
    for (const bad of [-1, 1.5, Number.NaN, Infinity]) {
      assert.throws(() => producer.fits([bad]), assert.AssertionError, `length ${bad}`);
    }
  });

  it('leaves the ring unchanged when a write is refused', () => {
    const { producer, consumer } = ringOf(64);
    producer.write(payloadOf(8, 1));
    producer.write(payloadOf(8, 2));
    producer.write(payloadOf(8, 3));
    assert.throws(() => producer.write(payloadOf(8, 4)), /without room/);
    assert.equal(producer.usedBytes(), 48);
    producer.publish();
    assert.deepEqual(drain(consumer).map((record) => record[0]), [1, 2, 3]);
  });

  it('detects a corrupt record length instead of reading past the write offset', () => {
    const { buffer, producer, consumer } = ringOf(256);
    producer.write(payloadOf(8, 1));
    producer.publish();
    dataWords(buffer)[0] = 200;
    assert.throws(() => consumer.read(() => {}, 1), /ring corrupt/);
    dataWords(buffer)[0] = -7;
    assert.throws(() => consumer.read(() => {}, 1), /ring corrupt/);
  });
});

/**
 * A pending Atomics.waitAsync keeps no thread alive, not even the main one: without a
 * ref'd handle the test runner sees an idle event loop and cancels the test.
 */
async function keepingAlive<T>(promise: Promise<T>): Promise<T> {
  const handle = setInterval(() => {}, 1_000);
  try {
    return await promise;
  } finally {
    clearInterval(handle);
  }
}

describe('ring wait and wake', () => {
  it('returns data at once when records are published', async () => {
    const { producer, consumer } = ringOf(256);
    producer.write(payloadOf(3, 1));
    producer.publish();
    assert.equal(await keepingAlive(consumer.waitForData(10_000)), 'data');
  });

  it('times out after about timeoutMs on an empty ring', async () => {
    const { buffer, consumer } = ringOf(256);
    const startedAtMs = performance.now();
    assert.equal(await keepingAlive(consumer.waitForData(30)), 'timeout');
    const waitedMs = performance.now() - startedAtMs;
    assert.ok(waitedMs >= 29 && waitedMs < 1_000, `waited ${waitedMs} ms`);
    assert.equal(await keepingAlive(consumer.waitForData(0)), 'timeout');
    assert.equal(readRingCounters(buffer).consumerSleeping, false);
  });

  it('wakes on publish only when the consumer sleeps', async () => {
    const { buffer, producer, consumer } = ringOf(256);
    producer.write(payloadOf(3, 1));
    producer.publish();
    assert.equal(readRingCounters(buffer).wakeCount, 0);
    drain(consumer);
    const waiting = consumer.waitForData(10_000);
    assert.equal(readRingCounters(buffer).consumerSleeping, true);
    const startedAtMs = performance.now();
    setTimeout(() => {
      producer.write(payloadOf(3, 2));
      producer.publish();
    }, 20);
    assert.equal(await keepingAlive(waiting), 'data');
    assert.ok(performance.now() - startedAtMs < 2_000);
    assert.equal(readRingCounters(buffer).wakeCount, 1);
    assert.equal(readRingCounters(buffer).consumerSleeping, false);
  });

  it('answers stop on an empty ring, and data before stop while records remain', async () => {
    const { buffer, producer, consumer } = ringOf(256);
    const waiting = consumer.waitForData(10_000);
    setTimeout(() => producer.requestStop(), 10);
    assert.equal(await keepingAlive(waiting), 'stop');
    assert.ok(consumer.isStopRequested());
    assert.equal(readRingCounters(buffer).stopRequested, true);
    producer.write(payloadOf(3, 1));
    producer.publish();
    assert.equal(await keepingAlive(consumer.waitForData(0)), 'data');
    drain(consumer);
    assert.equal(await keepingAlive(consumer.waitForData(10_000)), 'stop');
  });

  it('rejects negative or NaN timeouts', async () => {
    const { consumer } = ringOf(256);
    await assert.rejects(consumer.waitForData(-1), /timeoutMs/);
    await assert.rejects(consumer.waitForData(Number.NaN), /timeoutMs/);
  });
});

test('the same id always maps to the same actor, within range', () => {
  for (let i = 0; i < 1000; i++) {
    const id = `event-${i}`;
    const shard = shardOf(id, 4);
    assert.ok(shard >= 0 && shard < 4);
    assert.equal(shardOf(id, 4), shard);
  }
});

test('known values stay stable across releases (dedupe ownership depends on it)', () => {
  assert.deepEqual(['a', 'event-1', 'ünïcode', ''].map((id) => shardOf(id, 7)), [
    shardOf('a', 7),
    shardOf('event-1', 7),
    shardOf('ünïcode', 7),
    0x811c9dc5 % 7,
  ]);
  assert.equal(shardOf('a', 1_000_000), 0xe40c292c % 1_000_000);
});

test('spreads sequential ids evenly', () => {
  const counts = new Array<number>(4).fill(0);
  for (let i = 0; i < 40_000; i++) counts[shardOf(`evt_${i}`, 4)]! += 1;
  for (const count of counts) assert.ok(count > 9_000 && count < 11_000, `uneven: ${counts.join(',')}`);
});
