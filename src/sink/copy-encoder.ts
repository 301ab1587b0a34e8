import assert from 'node:assert/strict';
import { asciiLoopUnitsMax, writeAscii } from '../ascii';
import type { ValidEvent } from '../event';
import type { RingEvent } from '../ring/envelope-reader';

/** The columns every row carries, in the order CopyEncoder writes them. */
export const copyColumns = 'event_id, event_type, source, actor_id, occurred_at, received_at, attributes';
/** The statement CopyEncoder's output is for. */
export const copyIntoEventsSql = `COPY events (${copyColumns}) FROM STDIN (FORMAT binary)`;

/**
 * Encodes a batch of events in PostgreSQL's binary COPY format, for copyIntoEventsSql
 * (or the same column list into another table).
 *
 *   header  "PGCOPY\n\377\r\n\0" | int32 flags = 0 | int32 extension length = 0
 *   tuple   int16 field count = 7, then per field: int32 byte length (-1 = NULL) | bytes
 *             text         UTF-8 bytes, no terminator
 *             timestamptz  int64 µs since 2000-01-01 00:00 UTC
 *             jsonb        version byte 1 | JSON text
 *   trailer int16 -1
 *   (all integers big-endian)
 *
 * One buffer is reused across batches: it grows by doubling when a row might not fit and
 * never shrinks, so a steady workload allocates nothing per batch or per row. Strings go
 * straight into it, no intermediate Buffer per field: short ASCII text (ids, types,
 * sources) by a JS loop, the rest with buffer.write: the loop cut a row's encoding by
 * about 30% (bench/micro/copy-encoder.ts).
 *
 * 64-bit timestamps are written as two 32-bit halves through a DataView, an order of
 * magnitude cheaper than writeBigInt64BE(BigInt(v)) or Buffer's 32-bit writers, so the
 * DataView is used for every integer in the format
 * (docs/decisions/0017-envelopes-written-and-read-in-place.md).
 */

const signature = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const headerBytes = signature.length + 8;
const fieldCount = 7;
/** Field count, seven lengths, two int64 timestamps and the jsonb version byte. */
const rowFixedBytes = 2 + fieldCount * 4 + 16 + 1;
/** UTF-8 needs at most three bytes per UTF-16 code unit (a surrogate pair: four for two). */
const utf8BytesPerCodeUnitMax = 3;
const unixToPostgresEpochUs = 946_684_800_000_000;
const twoPow32 = 4_294_967_296;
/** Spans shorter than this are copied by a loop (see #copyBytes). */
const shortCopyBytesMax = 64;

export const copyEncoderInitialBytesDefault = 1 << 20;
/** Far beyond any legal batch (5,000 rows × 32 KiB attributes ≈ 160 MiB): a bug if reached. */
export const copyEncoderBytesMax = 1 << 30;

export class CopyEncoder {
  #buffer: Buffer;
  #view: DataView;
  #offset = 0;
  #rowCount = 0;
  #finished = false;

  constructor(initialBytes: number = copyEncoderInitialBytesDefault) {
    assert.ok(Number.isInteger(initialBytes) && initialBytes >= headerBytes + 2, 'CopyEncoder: initialBytes too small');
    assert.ok(initialBytes <= copyEncoderBytesMax, 'CopyEncoder: initialBytes above copyEncoderBytesMax');
    this.#buffer = Buffer.allocUnsafe(initialBytes);
    this.#view = new DataView(this.#buffer.buffer, this.#buffer.byteOffset, this.#buffer.byteLength);
    this.reset();
  }

  get rowCount(): number {
    return this.#rowCount;
  }

  /** Current capacity, for tests and telemetry. */
  get capacityBytes(): number {
    return this.#buffer.length;
  }

  /** Starts a new batch. Invalidates the Buffer returned by the previous finish(). */
  reset(): void {
    signature.copy(this.#buffer, 0);
    this.#view.setInt32(signature.length, 0);
    this.#view.setInt32(signature.length + 4, 0);
    this.#offset = headerBytes;
    this.#rowCount = 0;
    this.#finished = false;
  }

  addRow(event: ValidEvent, receivedAtUs: number): void {
    assert.ok(!this.#finished, 'CopyEncoder: addRow after finish without reset');
    assert.ok(Number.isSafeInteger(event.occurredAtUs), 'CopyEncoder: occurredAtUs must be a safe integer');
    assert.ok(Number.isSafeInteger(receivedAtUs), 'CopyEncoder: receivedAtUs must be a safe integer');
    const actorLength = event.actorId === null ? 0 : event.actorId.length;
    const codeUnits =
      event.eventId.length + event.eventType.length + event.source.length + actorLength + event.attributesJson.length;
    this.#reserve(rowFixedBytes + codeUnits * utf8BytesPerCodeUnitMax);

    const view = this.#view;
    view.setInt16(this.#offset, fieldCount);
    this.#offset += 2;
    this.#writeText(event.eventId);
    this.#writeText(event.eventType);
    this.#writeText(event.source);
    if (event.actorId === null) {
      view.setInt32(this.#offset, -1);
      this.#offset += 4;
    } else {
      this.#writeText(event.actorId);
    }
    this.#writeTimestamp(event.occurredAtUs);
    this.#writeTimestamp(receivedAtUs);
    const lengthOffset = this.#offset;
    this.#buffer[lengthOffset + 4] = 1;
    const json = event.attributesJson;
    let jsonBytes: number;
    if (typeof json === 'string') jsonBytes = this.#buffer.write(json, lengthOffset + 5, 'utf8');
    else {
      this.#buffer.set(json, lengthOffset + 5);
      jsonBytes = json.byteLength;
    }
    view.setInt32(lengthOffset, jsonBytes + 1);
    this.#offset = lengthOffset + 5 + jsonBytes;
    this.#rowCount += 1;
  }

  /**
   * Adds an event as the ring carried it: its fields' bytes are copied from the envelope
   * as they are (they are the same UTF-8 and JSON bytes a row holds), so nothing is decoded
   * or encoded again. The bytes written equal addRow(ringEvent.toValidEvent(), …)'s.
   */
  addRingEvent(event: RingEvent, receivedAtUs: number): void {
    assert.ok(!this.#finished, 'CopyEncoder: addRingEvent after finish without reset');
    assert.ok(Number.isSafeInteger(receivedAtUs), 'CopyEncoder: receivedAtUs must be a safe integer');
    const source = event.bytes;
    const actorBytes = event.actorStart < 0 ? 0 : event.actorEnd - event.actorStart;
    const spanBytes =
      event.idEnd - event.idStart + event.typeEnd - event.typeStart + event.sourceEnd - event.sourceStart + actorBytes +
      event.attributesEnd - event.attributesStart;
    this.#reserve(rowFixedBytes + spanBytes);
    this.#view.setInt16(this.#offset, fieldCount);
    this.#offset += 2;
    this.#copyField(source, event.idStart, event.idEnd);
    this.#copyField(source, event.typeStart, event.typeEnd);
    this.#copyField(source, event.sourceStart, event.sourceEnd);
    if (event.actorStart < 0) {
      this.#view.setInt32(this.#offset, -1);
      this.#offset += 4;
    } else {
      this.#copyField(source, event.actorStart, event.actorEnd);
    }
    this.#writeTimestamp(event.occurredAtUs);
    this.#writeTimestamp(receivedAtUs);
    const lengthOffset = this.#offset;
    this.#view.setInt32(lengthOffset, event.attributesEnd - event.attributesStart + 1);
    this.#buffer[lengthOffset + 4] = 1;
    this.#offset = lengthOffset + 5;
    this.#copyBytes(source, event.attributesStart, event.attributesEnd);
    this.#rowCount += 1;
  }

  /**
   * Appends the trailer and returns the encoded batch: a view into the reused buffer, valid
   * until the next reset(). The writer awaits the COPY's completion before encoding again.
   */
  finish(): Buffer {
    assert.ok(!this.#finished, 'CopyEncoder: finish called twice');
    this.#reserve(2);
    this.#view.setInt16(this.#offset, -1);
    this.#offset += 2;
    this.#finished = true;
    return this.#buffer.subarray(0, this.#offset);
  }

  /** Short ASCII text by a JS loop, the rest by Node's UTF-8 writer (src/ascii.ts says why). */
  #writeText(value: string): void {
    const lengthOffset = this.#offset;
    let written = value.length < asciiLoopUnitsMax ? writeAscii(this.#buffer, lengthOffset + 4, value) : -1;
    if (written < 0) written = this.#buffer.write(value, lengthOffset + 4, 'utf8');
    this.#view.setInt32(lengthOffset, written);
    this.#offset = lengthOffset + 4 + written;
  }

  /** A length-prefixed field whose bytes are source[start, end). */
  #copyField(source: Uint8Array, start: number, end: number): void {
    this.#view.setInt32(this.#offset, end - start);
    this.#offset += 4;
    this.#copyBytes(source, start, end);
  }

  /**
   * Short spans (ids, types, sources) by a JS loop: TypedArray#set needs a view object per
   * call, which costs more than copying a few dozen bytes.
   */
  #copyBytes(source: Uint8Array, start: number, end: number): void {
    const length = end - start;
    const target = this.#buffer;
    const offset = this.#offset;
    if (length < shortCopyBytesMax) {
      for (let i = 0; i < length; i++) target[offset + i] = source[start + i] as number;
    } else {
      target.set(source.subarray(start, end), offset);
    }
    this.#offset = offset + length;
  }

  #writeTimestamp(unixUs: number): void {
    const postgresUs = unixUs - unixToPostgresEpochUs;
    // Math.floor keeps the split right for negative values (before 2000): the high half
    // is the signed part, the low half is always the unsigned remainder.
    const high = Math.floor(postgresUs / twoPow32);
    const view = this.#view;
    view.setInt32(this.#offset, 8);
    view.setInt32(this.#offset + 4, high);
    view.setUint32(this.#offset + 8, postgresUs - high * twoPow32);
    this.#offset += 12;
  }

  #reserve(bytes: number): void {
    const needed = this.#offset + bytes;
    if (needed <= this.#buffer.length) return;
    let capacity = this.#buffer.length;
    while (capacity < needed) capacity *= 2;
    assert.ok(capacity <= copyEncoderBytesMax, `CopyEncoder: batch would need ${needed} bytes`);
    const grown = Buffer.allocUnsafe(capacity);
    this.#buffer.copy(grown, 0, 0, this.#offset);
    this.#buffer = grown;
    this.#view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
  }
}
