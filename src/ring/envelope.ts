/**
 * The payload of one ring record ("envelope"): some events of ONE request for ONE actor.
 *
 *   0        4            8                16
 *   ┌────────┬────────────┬────────────────┬──────────────────────────────────────────┐
 *   │ ticket │ eventCount │ receivedAtUs   │ eventCount msgpack tuples, back to back: │
 *   │ uint32 │ uint32     │ float64        │ [index, eventId, eventType, source,      │
 *   │        │            │                │  actorId|null, occurredAtUs, attrsJson]  │
 *   └────────┴────────────┴────────────────┴──────────────────────────────────────────┘
 *   header fields little-endian
 *
 * The ticket names the request waiting on the main thread; index is the event's position
 * in that request, so acknowledgements can be matched back per event. The tuples are plain
 * msgpack (msgpackr with records off) so any msgpack tool can read a dumped ring. Both
 * sides are ours: a malformed payload is a bug, reported with an assertion.
 */
import assert from 'node:assert';
import { Packr, Unpackr, REUSE_BUFFER_MODE, RESET_BUFFER_MODE } from 'msgpackr';
import type { ValidEvent } from '../event';

/** Bytes of the fixed header in front of the msgpack tuples. */
export const envelopeHeaderBytes = 16;
const tupleLength = 7;
const uint32Max = 0xffff_ffff;

export interface Envelope {
  readonly ticket: number;
  readonly receivedAtUs: number;
  /** indexes[i] is the position of events[i] in its request. */
  readonly indexes: number[];
  readonly events: ValidEvent[];
}

/**
 * Builds envelopes one at a time, reusing its buffers: after the first few envelopes no
 * call allocates per event (the tuple array is refilled, msgpackr packs into its own
 * reused buffer in REUSE|RESET mode, and the bytes are copied into ours).
 *
 * Measured on the 2-core machine, ~117-byte events, 50 per envelope: ~390–450 ns per
 * event, ~90 ns of it the copy out of msgpackr's buffer. msgpackr's records/shared
 * structures only apply to objects, not tuples; objects with shared structures packed at
 * ~365 ns/event against ~300 ns for one pack of a tuple array and decoded at the same
 * ~150 ns, into the same byte count, so the plain, tool-readable form stays.
 */
export class EnvelopeEncoder {
  readonly #packr = new Packr({ useRecords: false });
  readonly #tuple: unknown[] = new Array<unknown>(tupleLength).fill(null);
  /**
   * A plain Uint8Array on purpose, not a Buffer: Buffer#slice() returns a view, so a caller
   * that copies the finished bytes with slice() would silently keep aliasing this buffer.
   */
  #buffer: Uint8Array;
  #view: DataView;
  #byteLength = 0;
  #eventCount = 0;
  #ticket = 0;
  #receivedAtUs = 0;
  #open = false;

  /** initialBytes only sizes the first buffer; it grows (doubling) for bigger envelopes. */
  constructor(initialBytes = 64 * 1024) {
    this.#buffer = new Uint8Array(Math.max(initialBytes, envelopeHeaderBytes));
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
    const tuple = this.#tuple;
    tuple[0] = index;
    tuple[1] = event.eventId;
    tuple[2] = event.eventType;
    tuple[3] = event.source;
    tuple[4] = event.actorId;
    tuple[5] = event.occurredAtUs;
    tuple[6] = event.attributesJson;
    // REUSE returns msgpackr's own buffer with start/end set instead of a new subarray;
    // RESET lets the next pack overwrite the same bytes instead of moving on.
    const packed = this.#packr.pack(tuple, REUSE_BUFFER_MODE | RESET_BUFFER_MODE) as Buffer & { start: number; end: number };
    const packedBytes = packed.end - packed.start;
    this.#reserve(packedBytes);
    packed.copy(this.#buffer, this.#byteLength, packed.start, packed.end);
    this.#byteLength += packedBytes;
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

  #reserve(moreBytes: number): void {
    const neededBytes = this.#byteLength + moreBytes;
    if (neededBytes <= this.#buffer.byteLength) return;
    let grownBytes = this.#buffer.byteLength * 2;
    while (grownBytes < neededBytes) grownBytes *= 2;
    const grown = new Uint8Array(grownBytes);
    grown.set(this.#buffer.subarray(0, this.#byteLength));
    this.#buffer = grown;
    this.#view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
  }
}

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
/**
 * Private memory the payload is copied into before decoding. Measured: msgpackr decodes a
 * view into a SharedArrayBuffer ~3× slower (≈570 vs ≈180 ns per event) than the same bytes
 * in ordinary memory, so one memcpy per envelope pays for itself many times over. It
 * also guarantees that nothing decoded can refer to shared memory. It grows to the
 * largest envelope seen, which the ring bounds (recordBytesMaxFor).
 */
let scratch = new Uint8Array(64 * 1024);
let scratchView = new DataView(scratch.buffer);

/**
 * Decodes an envelope. Everything returned is a copy: the payload may be a view into a
 * ring's shared memory that is overwritten as soon as the read callback returns.
 */
export function decodeEnvelope(payload: Uint8Array): Envelope {
  const payloadBytes = payload.byteLength;
  if (payloadBytes <= envelopeHeaderBytes) assert.fail(`envelope of ${payloadBytes} bytes has no events`);
  if (payloadBytes > scratch.byteLength) {
    scratch = new Uint8Array(Math.max(payloadBytes, scratch.byteLength * 2));
    scratchView = new DataView(scratch.buffer);
  }
  scratch.set(payload);
  const ticket = scratchView.getUint32(0, true);
  const eventCount = scratchView.getUint32(4, true);
  const receivedAtUs = scratchView.getFloat64(8, true);
  const indexes: number[] = [];
  const events: ValidEvent[] = [];
  try {
    unpackr.unpackMultiple(scratch.subarray(envelopeHeaderBytes, payloadBytes), (tuple: unknown) => {
      events.push(eventOfTuple(tuple, indexes));
    });
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    assert.fail(`envelope body is not a msgpack tuple sequence: ${(error as Error).message}`);
  }
  if (events.length !== eventCount) assert.fail(`envelope header says ${eventCount} events, body holds ${events.length}`);
  return { ticket, receivedAtUs, indexes, events };
}

function eventOfTuple(tuple: unknown, indexes: number[]): ValidEvent {
  if (!Array.isArray(tuple) || tuple.length !== tupleLength) assert.fail('envelope entry is not a 7-element tuple');
  const fields = tuple as unknown[];
  const index = fields[0];
  const eventId = fields[1];
  const eventType = fields[2];
  const source = fields[3];
  const actorId = fields[4];
  const occurredAtUs = fields[5];
  const attributesJson = fields[6];
  if (
    typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > uint32Max ||
    typeof eventId !== 'string' || typeof eventType !== 'string' || typeof source !== 'string' ||
    (actorId !== null && typeof actorId !== 'string') ||
    typeof occurredAtUs !== 'number' || !Number.isSafeInteger(occurredAtUs) ||
    typeof attributesJson !== 'string'
  ) {
    assert.fail(`envelope tuple has the wrong field types at index ${String(index)}`);
  }
  indexes.push(index);
  return { eventId, eventType, source, actorId, occurredAtUs, attributesJson };
}
