/**
 * The reading side of an actor ring: exactly one per ring, on the actor's worker thread.
 * read() hands out published records in order and releases their space with one
 * Atomics.store; waitForData() sleeps on the ring without blocking the worker's event
 * loop (timers and the database socket keep running).
 *
 * The memory layout and the ordering argument live in layout.ts.
 */
import assert from 'node:assert';
import { HeaderWord, openRing, recordPrefixBytes, recordSlotBytesFor, usedBytesBetween, wrapMarker } from './layout';

/** What waitForData() saw: records to read, the time limit, or a stop request on an empty ring. */
export type WaitOutcome = 'data' | 'timeout' | 'stop';

/**
 * Atomics.waitAsync exists in Node 20 but its type lives in lib ES2024, beyond this
 * project's lib setting, so the one signature used is declared here.
 */
type WaitAsyncResult =
  | { readonly async: false; readonly value: 'not-equal' | 'timed-out' }
  | { readonly async: true; readonly value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number): WaitAsyncResult;
}).waitAsync;

export class RingConsumer {
  readonly #header: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #words: Int32Array;
  readonly #dataBytes: number;
  readonly #recordBytesMax: number;
  #readOffset: number;
  #recordsConsumed: number;

  constructor(buffer: SharedArrayBuffer) {
    const views = openRing(buffer);
    this.#header = views.header;
    this.#bytes = views.bytes;
    this.#words = views.words;
    this.#dataBytes = views.dataBytes;
    this.#recordBytesMax = views.recordBytesMax;
    // Only this object writes these words; taking them over lets a restarted actor resume.
    this.#readOffset = Atomics.load(this.#header, HeaderWord.readOffset);
    this.#recordsConsumed = Atomics.load(this.#header, HeaderWord.recordsConsumed);
  }

  get dataBytes(): number {
    return this.#dataBytes;
  }

  /**
   * Visits up to recordsMax published records in order, then releases their space with a
   * single Atomics.store and returns how many it visited.
   *
   * The payload is a view into shared memory that is valid ONLY during the callback: once
   * read() returns, the producer may overwrite those bytes. Copy or decode inside visit.
   * If visit throws, the records visited before it are released and the failing one is
   * kept, so the next read() starts with it again.
   */
  read(visit: (payload: Uint8Array) => void, recordsMax: number): number {
    if (!Number.isInteger(recordsMax) || recordsMax < 1) assert.fail(`recordsMax must be an integer ≥ 1, got ${recordsMax}`);
    // Loading the write offset first is what makes the plain reads below see whole records.
    const writeOffset = Atomics.load(this.#header, HeaderWord.writeOffset);
    let readOffset = this.#readOffset;
    let visited = 0;
    try {
      while (visited < recordsMax && readOffset !== writeOffset) {
        const payloadBytes = this.#words[readOffset >> 2] ?? 0;
        if (payloadBytes === wrapMarker) {
          readOffset = 0;
          continue;
        }
        const end = readOffset + recordSlotBytesFor(payloadBytes);
        this.#assertRecord(readOffset, payloadBytes, end, writeOffset);
        const start = readOffset + recordPrefixBytes;
        visit(this.#bytes.subarray(start, start + payloadBytes));
        readOffset = end === this.#dataBytes ? 0 : end;
        visited += 1;
      }
    } finally {
      this.#release(readOffset, visited);
    }
    return visited;
  }

  /**
   * Resolves 'data' as soon as a record is readable, 'stop' when a stop was requested and
   * nothing is left to read, 'timeout' after timeoutMs (Infinity allowed) otherwise. Data
   * wins over stop so that an actor told to stop drains its ring first.
   *
   * A pending Atomics.waitAsync does NOT keep its thread alive (nodejs/node#44729; the
   * ring tests see the same on the main thread): if it is all that is pending, the thread
   * exits and a notify wakes nobody. The caller (the actor) must hold a ref'd handle (its
   * MessagePort, a timer) while it waits.
   */
  async waitForData(timeoutMs: number): Promise<WaitOutcome> {
    if (!(timeoutMs >= 0)) assert.fail(`timeoutMs must be ≥ 0, got ${timeoutMs}`);
    const deadlineMs = performance.now() + timeoutMs;
    for (;;) {
      if (this.#hasData()) return 'data';
      if (this.isStopRequested()) return 'stop';
      const remainingMs = deadlineMs - performance.now();
      if (remainingMs <= 0) return 'timeout';
      // Load the sequence before raising the flag: a wake that lands in between changes
      // it, and the wait below then returns at once instead of sleeping through it.
      const sequence = Atomics.load(this.#header, HeaderWord.wakeSequence);
      Atomics.store(this.#header, HeaderWord.consumerSleeping, 1);
      try {
        // Re-check after raising the flag: a producer that published before it could see
        // the flag did not notify, so its data must be visible now (see layout.ts).
        if (this.#hasData() || this.isStopRequested()) continue;
        const waited = waitAsync(this.#header, HeaderWord.wakeSequence, sequence, remainingMs);
        if (waited.async) await waited.value;
      } finally {
        Atomics.store(this.#header, HeaderWord.consumerSleeping, 0);
      }
    }
  }

  isStopRequested(): boolean {
    return Atomics.load(this.#header, HeaderWord.stopRequested) === 1;
  }

  /** Bytes published and not yet released, wrap waste included. */
  usedBytes(): number {
    return usedBytesBetween(Atomics.load(this.#header, HeaderWord.writeOffset), this.#readOffset, this.#dataBytes);
  }

  #hasData(): boolean {
    return Atomics.load(this.#header, HeaderWord.writeOffset) !== this.#readOffset;
  }

  #release(readOffset: number, visited: number): void {
    if (readOffset === this.#readOffset) return;
    this.#readOffset = readOffset;
    this.#recordsConsumed = (this.#recordsConsumed + visited) | 0;
    Atomics.store(this.#header, HeaderWord.readOffset, readOffset);
    Atomics.store(this.#header, HeaderWord.recordsConsumed, this.#recordsConsumed);
  }

  /**
   * A record must lie between the read offset and the published write offset. Anything
   * else means the two sides disagree about the layout, which is a bug, not an input.
   */
  #assertRecord(readOffset: number, payloadBytes: number, end: number, writeOffset: number): void {
    const limit = readOffset < writeOffset ? writeOffset : this.#dataBytes;
    if (payloadBytes < 0 || payloadBytes > this.#recordBytesMax || end > limit) {
      assert.fail(`ring corrupt: record of ${payloadBytes} bytes at offset ${readOffset}, write offset ${writeOffset}`);
    }
  }
}
