/**
 * Everything about an actor ring that crosses threads is declared here and only here: the
 * header words, who writes each of them, which Atomics operation publishes it, and the
 * shape of a record in the data area. RingProducer (ingress, main thread) and RingConsumer
 * (one actor worker thread) are the only two parties, so the ring is single-producer,
 * single-consumer (SPSC) and needs no compare-and-swap anywhere.
 *
 * Memory layout of one ring (one SharedArrayBuffer, byte offsets on the left):
 *
 *        0 ┌──────────────────────────────────────────────────────────────┐
 *          │ line 0: constants   magic │ layoutVersion │ dataBytes │ …   │ written once
 *       64 ├──────────────────────────────────────────────────────────────┤
 *          │ line 1: producer    writeOffset │ wakeSequence │            │ main thread
 *          │                     stopRequested │ recordsPublished │ …    │
 *      128 ├──────────────────────────────────────────────────────────────┤
 *          │ line 2: consumer    readOffset │ consumerSleeping │          │ actor thread
 *          │                     recordsConsumed │ …                      │
 *      192 ├──────────────────────────────────────────────────────────────┤ ← data area
 *          │ [len│pad│payload…│pad] [len│pad│payload│pad] … [WRAP│ waste…] │ dataBytes
 *          └──────────────────────────────────────────────────────────────┘
 *
 * A record is a 4-byte little-endian (native) int32 length and 4 bytes of padding, followed
 * by that many payload bytes, padded so the next record starts on an 8-byte boundary. The
 * payload starts 8-byte aligned on purpose: V8 copies into and out of a SharedArrayBuffer
 * with relaxed atomic accesses, word by word only when source and target share their
 * alignment and byte by byte otherwise: with a 4-byte prefix an 8 KB envelope's write +
 * publish + read took about six times as long (bench/micro/ring.ts;
 * docs/decisions/0001-shared-memory-rings.md).
 *
 * Offsets are byte offsets into the data area, always multiples of 8 and always in
 * [0, dataBytes). A record never
 * wraps around the end: when it does not fit before the end, the producer writes the wrap
 * marker (-1) as the length at the current offset and puts the record at offset 0. Because
 * dataBytes and every offset are multiples of 8, at least 8 bytes always remain before the
 * end, so there is always room for the marker. A record that ends exactly at dataBytes
 * needs no marker: the next offset is simply 0.
 *
 * Empty is writeOffset == readOffset. The producer never lets writeOffset catch up with
 * readOffset from behind, keeping at least one 8-byte gap, so a full ring never looks empty.
 * The usable capacity is therefore dataBytes - 8, minus whatever the wrap waste costs.
 *
 * Header words, writers and publication:
 *
 * | word             | written by | how                        | read by                     |
 * | ---------------- | ---------- | -------------------------- | --------------------------- |
 * | magic, version,  | creator    | plain stores before the    | both, once, at construction |
 * | dataBytes        |            | buffer is posted (1)       |                             |
 * | writeOffset      | producer   | Atomics.store in publish() | consumer: Atomics.load      |
 * | wakeSequence     | producer   | Atomics.add, then notify   | consumer: waitAsync on it   |
 * | stopRequested    | producer   | Atomics.store(1), then     | consumer: Atomics.load      |
 * |                  | (main)     | Atomics.add + notify       |                             |
 * | recordsPublished | producer   | Atomics.store per publish  | metrics: Atomics.load       |
 * | readOffset       | consumer   | Atomics.store per read()   | producer: Atomics.load      |
 * | consumerSleeping | consumer   | Atomics.store 1 / 0        | producer: Atomics.load      |
 * | recordsConsumed  | consumer   | Atomics.store per read()   | metrics: Atomics.load       |
 *
 * (1) postMessage of the SharedArrayBuffer (or piscina's task hand-off) orders everything
 * the creating thread wrote before it with everything the receiving thread reads after it.
 *
 * Why the ordering is safe. Atomics operations are sequentially consistent and, in the
 * JavaScript memory model, order the plain reads and writes around them on the same
 * buffer:
 * - The producer copies a record's bytes (length, payload) with plain stores and only then
 *   does Atomics.store(writeOffset). The consumer does Atomics.load(writeOffset) before it
 *   reads any record byte below that offset, so it can only see completely written records.
 * - The consumer finishes copying or decoding a record before Atomics.store(readOffset)
 *   moves past it. The producer does Atomics.load(readOffset) before deciding where it may
 *   write, so it never overwrites bytes the consumer is still looking at.
 * - Sleeping without a lost wake-up: the consumer loads wakeSequence, stores
 *   consumerSleeping = 1, then re-checks writeOffset and stopRequested, and only then
 *   waits on wakeSequence with the value it loaded. The producer stores writeOffset (or
 *   stopRequested) and only then loads consumerSleeping. Sequential consistency forbids
 *   both loads from missing both stores, so either the consumer's re-check sees the new
 *   data or the producer sees the flag, bumps wakeSequence and notifies. A bump that
 *   lands before the consumer starts waiting makes the wait return "not-equal" at once.
 * - Notify is guarded by consumerSleeping because Atomics.notify costs ~67 ns even when no
 *   one waits, which would be paid on every publish otherwise
 *   (docs/decisions/0001-shared-memory-rings.md).
 *
 * Cache lines. Producer-written and consumer-written words live on different 64-byte lines
 * so each side's stores do not invalidate the line holding the other side's hot words;
 * the constants get their own line because both sides read them. SharedArrayBuffer memory
 * is not guaranteed to start on a 64-byte boundary, so the separation is best effort.
 * Packing all words into one line measured no different beyond noise (the per-record
 * JavaScript work dominates); the separation is kept because it costs 128 bytes per ring
 * and nothing else (docs/decisions/0001-shared-memory-rings.md).
 */
import assert from 'node:assert';

/** Identifies a Floodgate ring buffer ("FGRB"), so a stray buffer is rejected at once. */
export const ringMagic = 0x46475242;
/** Bumped whenever anything in this file changes meaning. */
export const ringLayoutVersion = 2;

const cacheLineWords = 16;

/** Int32 word indexes into the header (see the table above for writers and readers). */
export const HeaderWord = {
  magic: 0,
  layoutVersion: 1,
  dataBytes: 2,
  writeOffset: cacheLineWords,
  wakeSequence: cacheLineWords + 1,
  stopRequested: cacheLineWords + 2,
  recordsPublished: cacheLineWords + 3,
  readOffset: 2 * cacheLineWords,
  consumerSleeping: 2 * cacheLineWords + 1,
  recordsConsumed: 2 * cacheLineWords + 2,
} as const;

/** Bytes before the data area: three 64-byte lines (constants, producer, consumer). */
export const headerBytes = 3 * cacheLineWords * 4;
/** Every record starts on this boundary, so the length prefix is one aligned int32. */
export const recordAlignBytes = 8;
/** The int32 length (and 4 bytes of padding) in front of every payload: see the layout comment. */
export const recordPrefixBytes = 8;
/** Written as a record's length when the rest of the data area is skipped. */
export const wrapMarker = -1;
/** Space the producer always leaves free so that write == read can only mean empty. */
export const gapBytes = recordAlignBytes;
/** Smallest data area: room for a useful quarter-sized record (payload of 8 bytes). */
export const dataBytesMin = 64;
/** Largest data area: offsets and lengths must stay far inside int32. */
export const dataBytesMax = 1 << 30;

/** Bytes a record of this payload length occupies in the data area, padding included. */
export function recordSlotBytesFor(payloadBytes: number): number {
  return (recordPrefixBytes + payloadBytes + recordAlignBytes - 1) & ~(recordAlignBytes - 1);
}

function assertDataBytes(dataBytes: number): void {
  if (!Number.isInteger(dataBytes) || dataBytes < dataBytesMin || dataBytes > dataBytesMax) {
    assert.fail(`ring dataBytes must be an integer in [${dataBytesMin}, ${dataBytesMax}] bytes, got ${dataBytes}`);
  }
  if (dataBytes % recordAlignBytes !== 0) {
    assert.fail(`ring dataBytes must be a multiple of ${recordAlignBytes} bytes, got ${dataBytes}`);
  }
}

/** Total SharedArrayBuffer length (header + data area) for a ring with this data area. */
export function ringByteLengthFor(dataBytes: number): number {
  assertDataBytes(dataBytes);
  return headerBytes + dataBytes;
}

/**
 * Largest payload one record may carry: its slot is at most a quarter of the data area.
 * That bound makes a record always fit in a drained ring wherever the offsets stand: an
 * empty ring at offset p either has R bytes before the end, or p > 3/4 of the area and the
 * record fits at offset 0 with the gap to spare. Ingress splits bigger envelopes.
 */
export function recordBytesMaxFor(dataBytes: number): number {
  assertDataBytes(dataBytes);
  const slotBytesMax = Math.floor(dataBytes / 4 / recordAlignBytes) * recordAlignBytes;
  return slotBytesMax - recordPrefixBytes;
}

/** A new, empty ring: header constants written, both offsets at 0, no stop requested. */
export function createRingBuffer(dataBytes: number): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(ringByteLengthFor(dataBytes));
  const header = new Int32Array(buffer, 0, headerBytes / 4);
  header[HeaderWord.magic] = ringMagic;
  header[HeaderWord.layoutVersion] = ringLayoutVersion;
  header[HeaderWord.dataBytes] = dataBytes;
  return buffer;
}

/** The typed views both sides build once over a ring buffer. */
export interface RingViews {
  readonly header: Int32Array;
  /** The data area as bytes, for payloads. */
  readonly bytes: Uint8Array;
  /** The data area as int32 words, for length prefixes (index = offset / 4). */
  readonly words: Int32Array;
  readonly dataBytes: number;
  readonly recordBytesMax: number;
}

/** Checks that a buffer really is a ring of this layout and returns views over it. */
export function openRing(buffer: SharedArrayBuffer): RingViews {
  if (!(buffer instanceof SharedArrayBuffer)) assert.fail('a ring must be a SharedArrayBuffer');
  if (buffer.byteLength < headerBytes + dataBytesMin) assert.fail(`ring buffer too small: ${buffer.byteLength} bytes`);
  const header = new Int32Array(buffer, 0, headerBytes / 4);
  if (header[HeaderWord.magic] !== ringMagic) assert.fail('ring buffer has no ring header (bad magic)');
  if (header[HeaderWord.layoutVersion] !== ringLayoutVersion) {
    assert.fail(`ring layout version ${header[HeaderWord.layoutVersion]} is not ${ringLayoutVersion}`);
  }
  const dataBytes = header[HeaderWord.dataBytes] ?? 0;
  if (ringByteLengthFor(dataBytes) !== buffer.byteLength) {
    assert.fail(`ring header says ${dataBytes} data bytes but the buffer holds ${buffer.byteLength} bytes`);
  }
  return {
    header,
    bytes: new Uint8Array(buffer, headerBytes, dataBytes),
    words: new Int32Array(buffer, headerBytes, dataBytes / 4),
    dataBytes,
    recordBytesMax: recordBytesMaxFor(dataBytes),
  };
}

/** Bytes between read and write offsets, wrap waste included; always < dataBytes. */
export function usedBytesBetween(writeOffset: number, readOffset: number, dataBytes: number): number {
  const used = writeOffset - readOffset;
  return used < 0 ? used + dataBytes : used;
}

/**
 * Counters for metrics; any thread may read them. The words are loaded one by one while
 * both sides keep running, so the snapshot is approximate, never torn within one word.
 */
export interface RingCounters {
  readonly dataBytes: number;
  /** Published bytes not yet released by the consumer (wrap waste included). */
  readonly usedBytes: number;
  /** Records made visible since creation, as a wrapping int32. */
  readonly recordsPublished: number;
  /** Records released by the consumer since creation, as a wrapping int32. */
  readonly recordsConsumed: number;
  /** Published records not yet consumed; exact while fewer than 2^31 are in flight. */
  readonly recordsPending: number;
  /** How many times the consumer was woken (publish to a sleeping consumer, or stop). */
  readonly wakeCount: number;
  readonly consumerSleeping: boolean;
  readonly stopRequested: boolean;
}

export function readRingCounters(buffer: SharedArrayBuffer): RingCounters {
  const { header, dataBytes } = openRing(buffer);
  // Consumed before published and read before write: each pair is then at worst stale in
  // the direction that overstates the backlog, never a negative one.
  const recordsConsumed = Atomics.load(header, HeaderWord.recordsConsumed);
  const recordsPublished = Atomics.load(header, HeaderWord.recordsPublished);
  const readOffset = Atomics.load(header, HeaderWord.readOffset);
  const writeOffset = Atomics.load(header, HeaderWord.writeOffset);
  return {
    dataBytes,
    usedBytes: usedBytesBetween(writeOffset, readOffset, dataBytes),
    recordsPublished,
    recordsConsumed,
    recordsPending: (recordsPublished - recordsConsumed) | 0,
    wakeCount: Atomics.load(header, HeaderWord.wakeSequence),
    consumerSleeping: Atomics.load(header, HeaderWord.consumerSleeping) === 1,
    stopRequested: Atomics.load(header, HeaderWord.stopRequested) === 1,
  };
}
