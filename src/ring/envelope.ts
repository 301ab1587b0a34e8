/**
 * The payload of one ring record ("envelope"): some events of ONE request for ONE actor.
 *
 *   0        4            8                16
 *   ┌────────┬────────────┬────────────────┬──────────────────────────────────────────┐
 *   │ ticket │ eventCount │ receivedAtUs   │ eventCount msgpack tuples, back to back: │
 *   │ uint32 │ uint32     │ float64        │ [index, eventId, eventType, source,      │
 *   │        │            │                │  actorId|null, occurredAtUs, attributes] │
 *   └────────┴────────────┴────────────────┴──────────────────────────────────────────┘
 *   header fields little-endian
 *
 * The ticket names the request waiting on the main thread; index is the event's position
 * in that request, so acknowledgements can be matched back per event. The tuples are plain
 * msgpack so any msgpack tool can read a dumped ring. Both sides are ours: a malformed
 * payload is a bug, reported with an assertion.
 *
 * This file writes envelopes (the ingress side). The actor does not turn tuples back into
 * objects: src/ring/envelope-reader.ts reads the id, the index and the time, and notes
 * where each field's bytes lie; the sink copies those bytes into its COPY rows as they are
 * (CopyEncoder.addRingEvent).
 */
import assert from 'node:assert';
import { asciiLoopUnitsMax, writeAscii } from '../ascii';
import type { ValidEvent } from '../event';

/** Bytes of the fixed header in front of the msgpack tuples. */
export const envelopeHeaderBytes = 16;
/** Fields per event tuple. */
export const tupleLength = 7;
const uint32Max = 0xffff_ffff;

/** msgpack markers of the 8-bit str and bin forms; the 16- and 32-bit forms are the next two. */
export const str8 = 0xd9;
export const bin8 = 0xc4;

/** Header bytes (marker + length) of a str or bin of at most `bytesMax` bytes: 2, 3 or 5. */
function sizedHeaderBytes(bytesMax: number): number {
  return bytesMax <= 0xff ? 2 : bytesMax <= 0xffff ? 3 : 5;
}

/**
 * Builds envelopes one at a time into one reused buffer, writing the msgpack tuples itself:
 * after the first few envelopes no call allocates per event.
 *
 * Why not msgpackr's pack(): it costs a call with generic type dispatch and a copy out of
 * its own buffer per tuple; this writer takes less than half its time per event
 * (bench/micro/envelope.ts; docs/decisions/0017-envelopes-written-and-read-in-place.md),
 * and both decode with msgpackr to the same values.
 *
 * The bytes are standard msgpack, which msgpackr (and any msgpack tool) reads:
 *   tuple        fixarray of 7
 *   index        positive fixint, uint8, uint16 or uint32
 *   strings      fixstr/str8/str16/str32 of UTF-8. The header is chosen from the string's
 *                worst-case size (3 bytes per UTF-16 unit) before encoding, so it may be
 *                wider than the shortest form; msgpack allows that and decoders accept it.
 *   actorId      nil when absent
 *   occurredAtUs float64: exact for every safe integer, and decodes to a plain number
 *   attributes   bin8/bin16/bin32 holding the attributes JSON as UTF-8: bytes the ingress
 *                kept from the body are copied as they are, text is encoded into place
 *                (header sized for the worst case, as for strings). bin rather than str
 *                so that the actor gets bytes it copies into the COPY buffer as they are,
 *                with no UTF-8 decode and encode in between.
 */
export class EnvelopeEncoder {
  /**
   * A plain Uint8Array on purpose, not a Buffer: Buffer#slice() returns a view, so a caller
   * that copies the finished bytes with slice() would silently keep aliasing this buffer.
   * #text is a Buffer over the same memory, for Node's native UTF-8 writer.
   */
  #buffer: Uint8Array;
  #text: Buffer;
  #view: DataView;
  #byteLength = 0;
  #eventCount = 0;
  #ticket = 0;
  #receivedAtUs = 0;
  #open = false;

  /** initialBytes only sizes the first buffer; it grows (doubling) for bigger envelopes. */
  constructor(initialBytes = 64 * 1024) {
    this.#buffer = new Uint8Array(Math.max(initialBytes, envelopeHeaderBytes));
    this.#text = Buffer.from(this.#buffer.buffer, this.#buffer.byteOffset, this.#buffer.byteLength);
    this.#view = new DataView(this.#buffer.buffer, this.#buffer.byteOffset, this.#buffer.byteLength);
  }

  /** Starts a new envelope; the bytes of the previous one become invalid. */
  begin(ticket: number, receivedAtUs: number): void {
    if (!Number.isInteger(ticket) || ticket < 0 || ticket > uint32Max) assert.fail(`envelope ticket must be a uint32, got ${ticket}`);
    if (!Number.isFinite(receivedAtUs)) assert.fail(`envelope receivedAtUs must be finite, got ${receivedAtUs}`);
    this.#ticket = ticket;
    this.#receivedAtUs = receivedAtUs;
    this.#byteLength = envelopeHeaderBytes;
    this.#eventCount = 0;
    this.#open = true;
  }

  /** Appends one event; index is its position in the request (0-based). */
  add(index: number, event: ValidEvent): void {
    if (!this.#open) assert.fail('envelope add() before begin()');
    if (!Number.isInteger(index) || index < 0 || index > uint32Max) assert.fail(`envelope event index must be a uint32, got ${index}`);
    if (!Number.isSafeInteger(event.occurredAtUs)) assert.fail(`occurredAtUs must be an integer, got ${event.occurredAtUs}`);
    const actorId = event.actorId;
    const units = event.eventId.length + event.eventType.length + event.source.length + (actorId === null ? 0 : actorId.length) + event.attributesJson.length;
    // fixarray + uint32 index + five str32 headers + float64, and 3 bytes per UTF-16 unit.
    this.#reserve(1 + 5 + 5 * 5 + 9 + units * 3);
    const buffer = this.#buffer;
    let offset = this.#byteLength;
    buffer[offset++] = 0x90 | tupleLength;
    offset = this.#writeIndex(offset, index);
    offset = this.#writeString(offset, event.eventId);
    offset = this.#writeString(offset, event.eventType);
    offset = this.#writeString(offset, event.source);
    if (actorId === null) buffer[offset++] = 0xc0;
    else offset = this.#writeString(offset, actorId);
    buffer[offset] = 0xcb;
    this.#view.setFloat64(offset + 1, event.occurredAtUs);
    offset = this.#writeJson(offset + 9, event.attributesJson);
    this.#byteLength = offset;
    this.#eventCount += 1;
  }

  /** Bytes the envelope would take if finished now (header included). */
  get byteLength(): number {
    return this.#byteLength;
  }

  get eventCount(): number {
    return this.#eventCount;
  }

  /**
   * The envelope's bytes, valid until the next begin(): copy them into the ring at once
   * (or keep a copy with slice(), which copies because this is a plain Uint8Array).
   */
  finish(): Uint8Array {
    if (!this.#open) assert.fail('envelope finish() before begin()');
    if (this.#eventCount === 0) assert.fail('envelope finish() with no events');
    this.#view.setUint32(0, this.#ticket, true);
    this.#view.setUint32(4, this.#eventCount, true);
    this.#view.setFloat64(8, this.#receivedAtUs, true);
    this.#open = false;
    return this.#buffer.subarray(0, this.#byteLength);
  }

  #writeIndex(offset: number, index: number): number {
    const buffer = this.#buffer;
    if (index < 0x80) {
      buffer[offset] = index;
      return offset + 1;
    }
    if (index <= 0xff) {
      buffer[offset] = 0xcc;
      buffer[offset + 1] = index;
      return offset + 2;
    }
    if (index <= 0xffff) {
      buffer[offset] = 0xcd;
      this.#view.setUint16(offset + 1, index);
      return offset + 3;
    }
    buffer[offset] = 0xce;
    this.#view.setUint32(offset + 1, index);
    return offset + 5;
  }

  /**
   * Short ASCII strings (nearly every id, type and source) are copied by a JS loop
   * (src/ascii.ts); anything longer or not ASCII goes through Node's UTF-8 writer after a
   * header sized for the worst case.
   */
  #writeString(offset: number, text: string): number {
    const length = text.length;
    const buffer = this.#buffer;
    if (length < asciiLoopUnitsMax) {
      const headerBytes = length < 32 ? 1 : 2;
      if (writeAscii(buffer, offset + headerBytes, text) === length) {
        if (headerBytes === 1) {
          buffer[offset] = 0xa0 | length;
          return offset + 1 + length;
        }
        return this.#writeSizedHeader(offset, 2, str8, length);
      }
    }
    const bytesMax = length * 3;
    if (bytesMax < 32) {
      const written = this.#text.write(text, offset + 1, 'utf8');
      buffer[offset] = 0xa0 | written;
      return offset + 1 + written;
    }
    const headerBytes = sizedHeaderBytes(bytesMax);
    const written = this.#text.write(text, offset + headerBytes, 'utf8');
    return this.#writeSizedHeader(offset, headerBytes, str8, written);
  }

  #writeJson(offset: number, json: string | Uint8Array): number {
    const typed = typeof json !== 'string';
    const headerBytes = sizedHeaderBytes(typed ? json.byteLength : json.length * 3);
    let written: number;
    if (typed) {
      this.#buffer.set(json, offset + headerBytes);
      written = json.byteLength;
    } else written = this.#text.write(json, offset + headerBytes, 'utf8');
    return this.#writeSizedHeader(offset, headerBytes, bin8, written);
  }

  /**
   * Writes the header of a str or bin of `length` bytes in the `headerBytes` chosen before
   * its content was written; marker8 is the 8-bit form's marker (str8 or bin8), and the
   * 16- and 32-bit forms follow it in msgpack's marker table. Returns where the value ends.
   */
  #writeSizedHeader(offset: number, headerBytes: number, marker8: number, length: number): number {
    const buffer = this.#buffer;
    if (headerBytes === 2) {
      buffer[offset] = marker8;
      buffer[offset + 1] = length;
    } else if (headerBytes === 3) {
      buffer[offset] = marker8 + 1;
      this.#view.setUint16(offset + 1, length);
    } else {
      buffer[offset] = marker8 + 2;
      this.#view.setUint32(offset + 1, length);
    }
    return offset + headerBytes + length;
  }

  #reserve(moreBytes: number): void {
    const neededBytes = this.#byteLength + moreBytes;
    if (neededBytes <= this.#buffer.byteLength) return;
    let grownBytes = this.#buffer.byteLength * 2;
    while (grownBytes < neededBytes) grownBytes *= 2;
    const grown = new Uint8Array(grownBytes);
    grown.set(this.#buffer.subarray(0, this.#byteLength));
    this.#buffer = grown;
    this.#text = Buffer.from(grown.buffer, grown.byteOffset, grown.byteLength);
    this.#view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
  }
}
