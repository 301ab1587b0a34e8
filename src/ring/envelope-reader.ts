/**
 * Reading envelopes (the format and its writer: src/ring/envelope.ts) on the actor side.
 * Only the rare paths that need a whole event (dead letters) decode one
 * (RingEvent.toValidEvent).
 */
import assert from 'node:assert';
import type { ValidEvent } from '../event';
import { bin8, envelopeHeaderBytes, str8, tupleLength } from './envelope';

export interface Envelope {
  readonly ticket: number;
  readonly receivedAtUs: number;
  /** indexes[i] is the position of events[i] in its request. */
  readonly indexes: number[];
  readonly events: ValidEvent[];
}

/**
 * One event as an actor read it from its ring: the fields the actor needs to dedupe, route
 * and acknowledge it, and where the others lie in the envelope's private copy (`bytes`):
 * each span is [start, end) of the value's UTF-8 (or, for attributes, JSON) bytes, without
 * its msgpack header. actorStart is -1 when the event has no actor.
 */
export class RingEvent {
  constructor(
    readonly index: number,
    readonly eventId: string,
    readonly occurredAtUs: number,
    readonly bytes: Buffer,
    readonly idStart: number,
    readonly idEnd: number,
    readonly typeStart: number,
    readonly typeEnd: number,
    readonly sourceStart: number,
    readonly sourceEnd: number,
    readonly actorStart: number,
    readonly actorEnd: number,
    readonly attributesStart: number,
    readonly attributesEnd: number,
  ) {}

  /** The whole event, for the paths that need one (dead letters); attributes stay a view. */
  toValidEvent(): ValidEvent {
    const bytes = this.bytes;
    return {
      eventId: this.eventId,
      eventType: bytes.toString('utf8', this.typeStart, this.typeEnd),
      source: bytes.toString('utf8', this.sourceStart, this.sourceEnd),
      actorId: this.actorStart < 0 ? null : bytes.toString('utf8', this.actorStart, this.actorEnd),
      occurredAtUs: this.occurredAtUs,
      attributesJson: bytes.subarray(this.attributesStart, this.attributesEnd),
    };
  }
}

export interface RingEnvelope {
  readonly ticket: number;
  readonly receivedAtUs: number;
  readonly events: RingEvent[];
}

/**
 * Reads an envelope without decoding its events into objects. The payload may be a view
 * into a ring's shared memory that is overwritten as soon as the read callback returns, so
 * it is first copied into memory of its own (one allocation per envelope), which the
 * events' spans point into; it lives as long as the envelope's last event.
 *
 * Why not msgpackr: it builds an array, five strings, a view and an event object per
 * event, and the actor needs one string of them. bench/micro/envelope.ts (50 events of
 * ~250 bytes per envelope) measures both.
 *
 * The reader accepts exactly the forms EnvelopeEncoder writes (any str/bin header width,
 * index as fixint/uint8/16/32, occurredAtUs as float64); anything else is a bug.
 */
export function readEnvelope(payload: Uint8Array): RingEnvelope {
  const payloadBytes = payload.byteLength;
  if (payloadBytes <= envelopeHeaderBytes) assert.fail(`envelope of ${payloadBytes} bytes has no events`);
  const bytes = Buffer.allocUnsafeSlow(payloadBytes);
  bytes.set(payload);
  const ticket = bytes.readUInt32LE(0);
  const eventCount = bytes.readUInt32LE(4);
  const receivedAtUs = bytes.readDoubleLE(8);
  const events: RingEvent[] = [];
  let offset = envelopeHeaderBytes;
  while (offset < payloadBytes) {
    if (bytes[offset] !== (0x90 | tupleLength)) assert.fail('envelope entry is not a 7-element tuple');
    const index = readIndex(bytes, offset + 1);
    const idStart = readStrStart(bytes, cursor, false);
    const idEnd = cursor;
    const typeStart = readStrStart(bytes, idEnd, false);
    const typeEnd = cursor;
    const sourceStart = readStrStart(bytes, typeEnd, false);
    const sourceEnd = cursor;
    const actorStart = readStrStart(bytes, sourceEnd, true);
    const actorEnd = cursor;
    if (actorEnd + 9 > payloadBytes) truncated();
    if (bytes[actorEnd] !== 0xcb) wrongTypes(index);
    const occurredAtUs = bytes.readDoubleBE(actorEnd + 1);
    if (!Number.isSafeInteger(occurredAtUs)) wrongTypes(index);
    const attributesStart = readBinStart(bytes, actorEnd + 9);
    const attributesEnd = cursor;
    const eventId = bytes.toString('utf8', idStart, idEnd);
    events.push(new RingEvent(index, eventId, occurredAtUs, bytes, idStart, idEnd, typeStart, typeEnd, sourceStart, sourceEnd, actorStart, actorEnd, attributesStart, attributesEnd));
    offset = attributesEnd;
  }
  if (events.length !== eventCount) assert.fail(`envelope header says ${eventCount} events, body holds ${events.length}`);
  return { ticket, receivedAtUs, events };
}

/** Decodes an envelope into whole events (tests and tools; actors use readEnvelope). */
export function decodeEnvelope(payload: Uint8Array): Envelope {
  const { ticket, receivedAtUs, events } = readEnvelope(payload);
  return { ticket, receivedAtUs, indexes: events.map((event) => event.index), events: events.map((event) => event.toValidEvent()) };
}

/*
 * The readers below return where a value starts and leave where it ends in `cursor`: a
 * module-level out-parameter, so reading a field allocates nothing. Every length is
 * checked against the buffer before it is trusted.
 */
let cursor = 0;

function readIndex(bytes: Buffer, offset: number): number {
  if (offset >= bytes.length) truncated();
  const marker = bytes[offset] as number;
  let width: number;
  if (marker < 0x80) {
    cursor = offset + 1;
    return marker;
  }
  if (marker === 0xcc) width = 1;
  else if (marker === 0xcd) width = 2;
  else if (marker === 0xce) width = 4;
  else return wrongTypes(Number.NaN);
  if (offset + 1 + width > bytes.length) truncated();
  cursor = offset + 1 + width;
  return bytes.readUIntBE(offset + 1, width);
}

/** A str's content start (or -1 for nil when allowed); its end goes to `cursor`. */
function readStrStart(bytes: Buffer, offset: number, nilAllowed: boolean): number {
  if (offset >= bytes.length) truncated();
  const marker = bytes[offset] as number;
  if (marker === 0xc0 && nilAllowed) {
    cursor = offset + 1;
    return -1;
  }
  if ((marker & 0xe0) === 0xa0) return spanAt(bytes, offset + 1, marker & 0x1f);
  if (marker < str8 || marker > str8 + 2) return wrongTypes(Number.NaN);
  return sizedSpan(bytes, offset, marker - str8);
}

function readBinStart(bytes: Buffer, offset: number): number {
  if (offset >= bytes.length) truncated();
  const marker = bytes[offset] as number;
  if (marker < bin8 || marker > bin8 + 2) return wrongTypes(Number.NaN);
  return sizedSpan(bytes, offset, marker - bin8);
}

/** A str8/16/32 or bin8/16/32 at `offset`; `form` 0, 1, 2 = 8-, 16-, 32-bit length. */
function sizedSpan(bytes: Buffer, offset: number, form: number): number {
  const lengthBytes = 1 << form;
  if (offset + 1 + lengthBytes > bytes.length) truncated();
  return spanAt(bytes, offset + 1 + lengthBytes, bytes.readUIntBE(offset + 1, lengthBytes));
}

function spanAt(bytes: Buffer, start: number, length: number): number {
  if (start + length > bytes.length) truncated();
  cursor = start + length;
  return start;
}

function truncated(): never {
  assert.fail('envelope body is not a msgpack tuple sequence: an event runs past its end');
}

function wrongTypes(index: number): never {
  assert.fail(`envelope tuple has the wrong field types${Number.isNaN(index) ? '' : ` at index ${index}`}`);
}
