/**
 * The writing side of an actor ring: exactly one per ring, on the ingress thread. Records
 * are copied in with write() and become visible to the actor only at publish(), so a
 * whole request (or a whole batch of requests) costs one Atomics.store and at most one
 * notify; publishing per batch measured ~3× faster than per record
 * (docs/decisions/0001-shared-memory-rings.md).
 *
 * The memory layout and the ordering argument live in layout.ts.
 */
import assert from 'node:assert';
import {
  HeaderWord,
  gapBytes,
  openRing,
  recordPrefixBytes,
  recordSlotBytesFor,
  usedBytesBetween,
  wrapMarker,
} from './layout';

/**
 * Where a record of `slotBytes` would start, or -1 when it does not fit now. This is the
 * one placement rule: fits() simulates it and write() follows it, so the two cannot
 * disagree. When the record does not fit before the end it goes to offset 0 and the tail
 * becomes waste (the wrap marker); the gap keeps a full ring distinguishable from an
 * empty one.
 */
function placementOf(writeOffset: number, readOffset: number, slotBytes: number, dataBytes: number): number {
  if (writeOffset >= readOffset) {
    const end = writeOffset + slotBytes;
    // Ending exactly at dataBytes moves the write offset to 0, which is only allowed when
    // the read offset is not also 0 (that would read as empty).
    if (end < dataBytes || (end === dataBytes && readOffset !== 0)) return writeOffset;
    return slotBytes + gapBytes <= readOffset ? 0 : -1;
  }
  return writeOffset + slotBytes + gapBytes <= readOffset ? writeOffset : -1;
}

export class RingProducer {
  readonly #header: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #words: Int32Array;
  readonly #dataBytes: number;
  readonly #recordBytesMax: number;
  /** Where the next record goes; ahead of the published offset while records are unpublished. */
  #writeOffset: number;
  #publishedOffset: number;
  /** Records written since creation (wrapping int32), published or not. */
  #recordsWritten: number;

  constructor(buffer: SharedArrayBuffer) {
    const views = openRing(buffer);
    this.#header = views.header;
    this.#bytes = views.bytes;
    this.#words = views.words;
    this.#dataBytes = views.dataBytes;
    this.#recordBytesMax = views.recordBytesMax;
    // Only this object writes these words, so taking them over from the header lets a new
    // producer continue a ring whose previous producer object was discarded.
    this.#writeOffset = Atomics.load(this.#header, HeaderWord.writeOffset);
    this.#publishedOffset = this.#writeOffset;
    this.#recordsWritten = Atomics.load(this.#header, HeaderWord.recordsPublished);
  }

  get dataBytes(): number {
    return this.#dataBytes;
  }

  /** Largest payload write() accepts (a quarter of the data area, minus the prefix). */
  get recordBytesMax(): number {
    return this.#recordBytesMax;
  }

  /**
   * Whether ALL these records (payload byte lengths, in write order) can be written now,
   * wrap waste included. Exact: true means the writes will succeed, false means at least
   * one would not. Space only grows until the next write (the consumer can only release),
   * so the answer stays valid until this producer writes.
   */
  fits(payloadByteLengths: readonly number[]): boolean {
    const readOffset = Atomics.load(this.#header, HeaderWord.readOffset);
    let writeOffset = this.#writeOffset;
    for (const payloadBytes of payloadByteLengths) {
      this.#assertPayloadBytes(payloadBytes);
      const slotBytes = recordSlotBytesFor(payloadBytes);
      const start = placementOf(writeOffset, readOffset, slotBytes, this.#dataBytes);
      if (start < 0) return false;
      writeOffset = this.#nextOffset(start + slotBytes);
    }
    return true;
  }

  /**
   * Copies one record into the ring without making it visible. Calling it for a record
   * that does not fit, or is larger than recordBytesMax, is a programmer error: ingress
   * asks fits() for the whole request first and splits envelopes at recordBytesMax.
   */
  write(payload: Uint8Array): void {
    this.#assertPayloadBytes(payload.byteLength);
    const slotBytes = recordSlotBytesFor(payload.byteLength);
    const readOffset = Atomics.load(this.#header, HeaderWord.readOffset);
    const start = placementOf(this.#writeOffset, readOffset, slotBytes, this.#dataBytes);
    if (start < 0) assert.fail('ring write without room: call fits() first');
    // Plain stores are enough: nothing here is visible to the consumer until publish()
    // stores the write offset with Atomics.store.
    if (start !== this.#writeOffset) this.#words[this.#writeOffset >> 2] = wrapMarker;
    this.#words[start >> 2] = payload.byteLength;
    this.#bytes.set(payload, start + recordPrefixBytes);
    this.#writeOffset = this.#nextOffset(start + slotBytes);
    this.#recordsWritten = (this.#recordsWritten + 1) | 0;
  }

  /** Makes every written record visible, and wakes the consumer only if it sleeps. */
  publish(): void {
    if (this.#writeOffset === this.#publishedOffset) return;
    this.#publishedOffset = this.#writeOffset;
    Atomics.store(this.#header, HeaderWord.writeOffset, this.#writeOffset);
    Atomics.store(this.#header, HeaderWord.recordsPublished, this.#recordsWritten);
    // Must come after the store of writeOffset: see the sleeping protocol in layout.ts.
    if (Atomics.load(this.#header, HeaderWord.consumerSleeping) === 1) this.#wake();
  }

  /**
   * Asks the consumer to drain what is published and stop, waking it if it sleeps. It is
   * rare, so it notifies unconditionally instead of consulting the sleeping flag.
   */
  requestStop(): void {
    Atomics.store(this.#header, HeaderWord.stopRequested, 1);
    this.#wake();
  }

  /** Bytes taken in the data area, counting written-but-unpublished records and wrap waste. */
  usedBytes(): number {
    const readOffset = Atomics.load(this.#header, HeaderWord.readOffset);
    return usedBytesBetween(this.#writeOffset, readOffset, this.#dataBytes);
  }

  #wake(): void {
    Atomics.add(this.#header, HeaderWord.wakeSequence, 1);
    Atomics.notify(this.#header, HeaderWord.wakeSequence);
  }

  #nextOffset(end: number): number {
    return end === this.#dataBytes ? 0 : end;
  }

  #assertPayloadBytes(payloadBytes: number): void {
    if (!Number.isInteger(payloadBytes) || payloadBytes < 0 || payloadBytes > this.#recordBytesMax) {
      assert.fail(`ring record payload must be 0…${this.#recordBytesMax} bytes, got ${payloadBytes}`);
    }
  }
}
