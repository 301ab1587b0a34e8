import { C1 } from 'msgpackr';
import type { Config } from '../config/config';
import type { ErrorCode, EventError } from '../errors';
import type { ValidEvent } from '../event';
import { deriveEventId, generateEventId } from './event-id';
import { parseTimestamp } from './timestamp';

/**
 * Per-event validation: turns one decoded item into a ValidEvent or one EventError.
 *
 * Rules (DESIGN.md "Event fields"), checked in this order so a client always sees the
 * same first error:
 * - the item is an object (a plain one: msgpack can decode dates, binary and sets);
 * - every top-level key is known; an alias given together with its field is a conflict;
 *   `null` means absent for every field;
 * - text fields are strings within their length, without NUL and without lone UTF-16
 *   surrogates. Lengths count Unicode code points, as PostgreSQL's char_length does, so
 *   an emoji is one character;
 * - timestamp parses (src/ingress/timestamp.ts) and falls in the accepted window;
 * - attributes are a plain object of JSON values, within attributesDepthMax and
 *   attributesBytesMax, with no `__proto__` key, no `\u0000` and no lone surrogate;
 * - the event's estimated encoded size is within eventBytesMax.
 *
 * Why lone surrogates are refused: measured on PostgreSQL 15, jsonb rejects `"\ud800"`
 * (SQLSTATE 22P02), and in text columns Node's UTF-8 encoder silently turns a lone
 * surrogate into U+FFFD, which would make distinct event ids collide.
 *
 * msgpack values that JSON cannot represent (NaN, Infinity, bigint, binary, Date, Map,
 * Set, undefined, the reserved 0xC1) are refused inside attributes rather than converted,
 * so that what is stored is what was sent. The one exception is `timestamp`, where a
 * Date (the msgpack timestamp extension) is accepted.
 */

export interface ValidationContext {
  /** When the request arrived (ms since the epoch): the timestamp window is relative to it. */
  readonly receivedAtMs: number;
  /** The request's idempotency key; events without an id get one derived from it. */
  readonly idempotencyKey: string | null;
  readonly limits: Pick<Config, 'eventBytesMax' | 'attributesBytesMax' | 'attributesDepthMax' | 'timestampPastMs' | 'timestampFutureMs'>;
}

export type ValidationResult = { ok: true; event: ValidEvent; idGenerated: boolean } | { ok: false; error: EventError };

/**
 * Stands in `items` for an item the decoder could not decode (an NDJSON line that is not
 * JSON, a msgpack map with a `__proto__` key…), so that one bad item never sinks the
 * others; validateEvent reports its error at the index it is given.
 */
export class UndecodableItem {
  readonly error: EventError;
  constructor(error: EventError) {
    this.error = error;
  }
}

const eventIdCharsMax = 128;
const eventTypeCharsMax = 128;
const sourceCharsMax = 64;
const actorIdCharsMax = 256;
const defaultSource = 'default';
/** Longest piece of client input quoted back in an error message. */
const quotedCharsMax = 64;

/** The top-level fields of one event as found, before checks. Reused: validation is synchronous. */
const found = {
  eventId: null as unknown,
  eventType: null as unknown,
  source: null as unknown,
  actorId: null as unknown,
  actorKey: '',
  timestamp: null as unknown,
  attributes: null as unknown,
  attributesKey: '',
};

export function validateEvent(raw: unknown, index: number, context: ValidationContext): ValidationResult {
  if (raw instanceof UndecodableItem) return { ok: false, error: { ...raw.error, index } };
  if (!isPlainObject(raw)) return { ok: false, error: eventError(index, 'ERR_EVENT_NOT_OBJECT', null, `event must be an object; got ${describeValue(raw)}`) };
  const fieldError = readFields(raw, index);
  if (fieldError !== null) return { ok: false, error: fieldError };

  const { eventId, eventType, source, actorId } = found;
  const textError =
    (eventId === null ? null : checkText('event_id', eventId, 1, eventIdCharsMax, index)) ??
    (eventType === null ? missing('event_type', index) : checkText('event_type', eventType, 1, eventTypeCharsMax, index)) ??
    (source === null ? null : checkText('source', source, 1, sourceCharsMax, index)) ??
    (actorId === null ? null : checkText(found.actorKey, actorId, 0, actorIdCharsMax, index));
  if (textError !== null) return { ok: false, error: textError };

  const occurredAtUs = checkTimestamp(found.timestamp, index, context);
  if (typeof occurredAtUs !== 'number') return { ok: false, error: occurredAtUs };
  const attributes = checkAttributes(found.attributes, found.attributesKey, index, context.limits);
  if (typeof attributes !== 'string') return { ok: false, error: attributes };

  const event: ValidEvent = {
    eventId: (eventId as string | null) ?? (context.idempotencyKey === null ? generateEventId(context.receivedAtMs) : deriveEventId(context.idempotencyKey, index)),
    eventType: eventType as string,
    source: (source as string | null) ?? defaultSource,
    actorId: actorId as string | null,
    occurredAtUs,
    attributesJson: attributes,
  };
  const sizeError = checkEventSize(event, index, context.limits.eventBytesMax);
  if (sizeError !== null) return { ok: false, error: sizeError };
  return { ok: true, event, idGenerated: eventId === null && context.idempotencyKey === null };
}

/** Sorts the event's keys into `found`; returns an error for unknown keys and alias conflicts. */
function readFields(raw: Record<string, unknown>, index: number): EventError | null {
  found.eventId = found.eventType = found.source = found.actorId = found.timestamp = found.attributes = null;
  found.actorKey = found.attributesKey = '';
  for (const key in raw) {
    const value = raw[key] ?? null;
    switch (key) {
      case 'event_id': found.eventId = value; break;
      case 'event_type': found.eventType = value; break;
      case 'source': found.source = value; break;
      case 'timestamp': found.timestamp = value; break;
      case 'actor_id':
      case 'user_id':
        if (value === null) break;
        if (found.actorId !== null) return conflict(found.actorKey, key, index);
        found.actorId = value;
        found.actorKey = key;
        break;
      case 'attributes':
      case 'metadata':
      case 'properties':
        if (value === null) break;
        if (found.attributes !== null) return conflict(found.attributesKey, key, index);
        found.attributes = value;
        found.attributesKey = key;
        break;
      default:
        return {
          index,
          code: 'ERR_EVENT_FIELD_UNKNOWN',
          field: quoteLimited(key, quotedCharsMax, false),
          message: `unknown field ${quoteLimited(key, quotedCharsMax, true)}; known fields are event_id, event_type, source, actor_id (or user_id), timestamp, attributes (or metadata, properties)`,
        };
    }
  }
  return null;
}

function conflict(first: string, second: string, index: number): EventError {
  const message = `both "${first}" and "${second}" are given; they are aliases of one field, send only one`;
  return { index, code: 'ERR_EVENT_FIELD_CONFLICT', field: second, message };
}

function missing(field: string, index: number): EventError {
  return { index, code: 'ERR_EVENT_FIELD_MISSING', field, message: `${field} is required` };
}

/** Checks a text field: a string of `min`–`max` code points, no NUL, no lone surrogate. */
function checkText(field: string, value: unknown, min: number, max: number, index: number): EventError | null {
  if (typeof value !== 'string') return eventError(index, 'ERR_EVENT_FIELD_TYPE', field, `${field} must be a string; got ${describeValue(value)}`);
  // UTF-16 length bounds the code point count from both sides (length/2 ≤ points ≤ length),
  // so the exact count is only needed between max and 2 × max.
  if (value.length < min || (value.length > max && (value.length > 2 * max || codePointCount(value) > max))) {
    const message = min > 0 && value.length === 0 ? `${field} must not be empty` : `${field} is ${codePointCount(value)} characters; the limit is ${max}`;
    return eventError(index, 'ERR_EVENT_FIELD_LENGTH', field, message);
  }
  const nulAt = value.indexOf('\0');
  if (nulAt !== -1) {
    return eventError(index, 'ERR_EVENT_FIELD_NUL', field, `${field} contains a NUL character (\\u0000) at position ${nulAt}, which PostgreSQL text cannot store`);
  }
  if (!isWellFormed.call(value)) {
    return eventError(index, 'ERR_EVENT_FIELD_TYPE', field, `${field} contains a lone UTF-16 surrogate, which is not valid Unicode text`);
  }
  return null;
}

/** The timestamp in µs, or an error (missing, unparsable, outside the window). */
function checkTimestamp(value: unknown, index: number, context: ValidationContext): number | EventError {
  if (value === null) return missing('timestamp', index);
  const us = parseTimestamp(value);
  if (us === null) {
    const got = typeof value === 'string' ? quoteLimited(value, quotedCharsMax, true) : typeof value === 'number' ? String(value) : describeValue(value);
    const message = `timestamp must be ISO-8601 with an offset (e.g. 2026-11-20T10:00:00.123Z) or epoch milliseconds as a number; got ${got}`;
    return eventError(index, 'ERR_EVENT_TIMESTAMP_FORMAT', 'timestamp', message);
  }
  const { timestampPastMs, timestampFutureMs } = context.limits;
  const earliestUs = (context.receivedAtMs - timestampPastMs) * 1000;
  const latestUs = (context.receivedAtMs + timestampFutureMs) * 1000;
  if (us >= earliestUs && us <= latestUs) return us;
  const message =
    `timestamp ${isoOf(us / 1000)} is outside the accepted window ${isoOf(earliestUs / 1000)} to ${isoOf(latestUs / 1000)} ` +
    `(timestampPastMs = ${timestampPastMs} ms before receipt, timestampFutureMs = ${timestampFutureMs} ms after)`;
  return eventError(index, 'ERR_EVENT_TIMESTAMP_RANGE', 'timestamp', message);
}

function isoOf(ms: number): string {
  const date = new Date(Math.floor(ms));
  return Number.isNaN(date.getTime()) ? `${ms} ms` : date.toISOString();
}

/** `{}` for absent attributes, the JSON text for valid ones, or an error. */
function checkAttributes(value: unknown, key: string, index: number, limits: ValidationContext['limits']): string | EventError {
  if (value === null) return emptyAttributesJson;
  const field = key;
  if (!isPlainObject(value)) {
    return eventError(index, 'ERR_EVENT_FIELD_TYPE', field, `${field} must be an object; got ${describeValue(value)}`);
  }
  walk.depthMax = limits.attributesDepthMax;
  walk.budgetBytes = limits.attributesBytesMax;
  walk.failurePath.length = 0;
  walk.empty = true;
  if (!walkContainer(value, 1)) {
    // walkFailed set the code and reason; the path was collected while unwinding.
    if (walk.failureCode === 'ERR_EVENT_ATTRIBUTES_TOO_LARGE') {
      return eventError(index, walk.failureCode, field, tooLargeMessage(field, null, limits.attributesBytesMax));
    }
    const path = field + shortPath(walk.failurePath.reverse());
    return eventError(index, walk.failureCode, path, `${path} ${walk.failureReason}`);
  }
  if (walk.empty) return emptyAttributesJson;
  const json = JSON.stringify(value);
  // UTF-8 takes at most 3 bytes per UTF-16 unit, so short JSON needs no exact count.
  if (json.length * 3 > limits.attributesBytesMax) {
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > limits.attributesBytesMax) return eventError(index, 'ERR_EVENT_ATTRIBUTES_TOO_LARGE', field, tooLargeMessage(field, bytes, limits.attributesBytesMax));
  }
  return json;
}

function tooLargeMessage(field: string, bytes: number | null, max: number): string {
  return `${field} encode to ${bytes === null ? `more than ${max}` : bytes} bytes of JSON; the limit is attributesBytesMax = ${max} bytes`;
}

const emptyAttributesJson = '{}';

/**
 * State of one attributes walk. The walk recurses, but never deeper than
 * attributesDepthMax (at most 256 by configuration) because depth is checked before
 * descending, so a nesting bomb is refused at its first excess level without touching
 * the rest and without risk to the stack.
 *
 * `budgetBytes` counts down a lower bound of the JSON size (every string, key and scalar
 * takes at least its UTF-16 length in UTF-8 bytes plus its quotes or separators), so an
 * oversized object is refused before JSON.stringify copies it.
 */
const walk = {
  depthMax: 0,
  budgetBytes: 0,
  empty: true,
  failureCode: 'ERR_EVENT_ATTRIBUTES_INVALID' as ErrorCode,
  failureReason: '',
  /** Path segments from the failing value up to the root, filled while unwinding. */
  failurePath: [] as string[],
};

function walkContainer(container: object, depth: number): boolean {
  if (Array.isArray(container)) {
    walk.budgetBytes -= 2;
    for (let i = 0; i < container.length; i++) {
      if (!walkValue(container[i], depth)) return walkFailedAt(`[${i}]`);
    }
    return walk.budgetBytes >= 0 || walkFailed('ERR_EVENT_ATTRIBUTES_TOO_LARGE', '');
  }
  walk.budgetBytes -= 2;
  for (const key in container) {
    if (depth === 1) walk.empty = false;
    walk.budgetBytes -= key.length + 3;
    // JSON.parse keeps "__proto__" as an ordinary key, but any later Object.assign or
    // merge of these attributes would set a prototype with it; refuse it at the door.
    if (key === '__proto__') walkFailed('ERR_EVENT_ATTRIBUTES_INVALID', 'is a "__proto__" key, which Floodgate refuses');
    if (key === '__proto__' || !textIsStorable(key)) return walkFailedAt(pathSegment(key));
    if (!walkValue((container as Record<string, unknown>)[key], depth)) return walkFailedAt(pathSegment(key));
  }
  return walk.budgetBytes >= 0 || walkFailed('ERR_EVENT_ATTRIBUTES_TOO_LARGE', '');
}

function walkValue(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
      walk.budgetBytes -= value.length + 2;
      return textIsStorable(value);
    case 'number':
      walk.budgetBytes -= 1;
      return Number.isFinite(value) || walkFailed('ERR_EVENT_ATTRIBUTES_INVALID', `is ${String(value)}, which JSON cannot represent`);
    case 'boolean':
      walk.budgetBytes -= 4;
      return true;
    case 'object':
      if (value === null) {
        walk.budgetBytes -= 4;
        return true;
      }
      if (!Array.isArray(value) && !isPlainObject(value)) return walkFailed('ERR_EVENT_ATTRIBUTES_INVALID', `is ${describeValue(value)}, which JSON cannot represent`);
      if (depth >= walk.depthMax) return walkFailed('ERR_EVENT_ATTRIBUTES_TOO_DEEP', `nests deeper than attributesDepthMax = ${walk.depthMax} levels`);
      if (walk.budgetBytes < 0) return walkFailed('ERR_EVENT_ATTRIBUTES_TOO_LARGE', '');
      return walkContainer(value, depth + 1);
    default:
      return walkFailed('ERR_EVENT_ATTRIBUTES_INVALID', `is ${describeValue(value)}, which JSON cannot represent`);
  }
}

/** False, with the reason, when a string or key holds NUL or a lone surrogate. */
function textIsStorable(text: string): boolean {
  if (text.indexOf('\0') !== -1) return walkFailed('ERR_EVENT_ATTRIBUTES_INVALID', 'contains \\u0000, which PostgreSQL jsonb refuses');
  if (!isWellFormed.call(text)) return walkFailed('ERR_EVENT_ATTRIBUTES_INVALID', 'contains a lone UTF-16 surrogate, which PostgreSQL jsonb refuses');
  return true;
}

function walkFailed(code: ErrorCode, reason: string): false {
  walk.failureCode = code;
  walk.failureReason = reason;
  return false;
}

function walkFailedAt(segment: string): false {
  walk.failurePath.push(segment);
  return false;
}

/** Error paths name at most this many levels (the outermost and innermost), so a message stays short. */
const pathSegmentsMax = 16;

function shortPath(segments: string[]): string {
  if (segments.length <= pathSegmentsMax) return segments.join('');
  const half = pathSegmentsMax / 2;
  return `${segments.slice(0, half).join('')}…${segments.slice(-half).join('')}`;
}
const identifierPattern = /^[A-Za-z_$][\w$]*$/;

function pathSegment(key: string): string {
  return identifierPattern.test(key) && key.length <= quotedCharsMax ? `.${key}` : `[${quoteLimited(key, quotedCharsMax, true)}]`;
}

/** Estimated encoded size: UTF-8 bytes of the text fields plus the attributes JSON. */
function checkEventSize(event: ValidEvent, index: number, eventBytesMax: number): EventError | null {
  const textUnits = event.eventId.length + event.eventType.length + event.source.length + (event.actorId?.length ?? 0);
  if ((textUnits + event.attributesJson.length) * 3 <= eventBytesMax) return null;
  const bytes =
    Buffer.byteLength(event.eventId, 'utf8') + Buffer.byteLength(event.eventType, 'utf8') + Buffer.byteLength(event.source, 'utf8') +
    (event.actorId === null ? 0 : Buffer.byteLength(event.actorId, 'utf8')) + Buffer.byteLength(event.attributesJson, 'utf8');
  if (bytes <= eventBytesMax) return null;
  const message = `event encodes to ${bytes} bytes (text fields and attributes JSON); the limit is eventBytesMax = ${eventBytesMax} bytes`;
  return eventError(index, 'ERR_EVENT_TOO_LARGE', null, message);
}

function eventError(index: number, code: ErrorCode, field: string | null, message: string): EventError {
  return { index, code, field, message };
}

/** Plain objects only: what JSON.parse makes, or msgpackr for a map. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Names what a value is, for messages: `a string`, `an array`, `binary data`… */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string': return 'a string';
    case 'number': return Number.isFinite(value) ? 'a number' : String(value);
    case 'boolean': return 'a boolean';
    case 'bigint': return 'a bigint';
    case 'undefined': return 'undefined';
    case 'object': return describeObject(value);
    default: return `a ${typeof value}`;
  }
}

function describeObject(value: object | null): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (isPlainObject(value)) return 'an object';
  if (value === C1) return 'the reserved msgpack value 0xC1';
  if (value instanceof Date) return 'a date';
  if (value instanceof Uint8Array || ArrayBuffer.isView(value)) return 'binary data';
  if (value instanceof Map) return 'a map';
  if (value instanceof Set) return 'a set';
  return 'an object of a special kind';
}

/** Code points in a string: surrogate pairs count once. */
function codePointCount(text: string): number {
  let count = text.length;
  for (let i = 0; i < text.length - 1; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        count--;
        i++;
      }
    }
  }
  return count;
}

/** JSON-quoted (or bare) text cut to `max` characters with an ellipsis, for messages. */
function quoteLimited(text: string, max: number, quoted: boolean): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return quoted ? JSON.stringify(cut) : cut;
}

/**
 * String.prototype.isWellFormed (V8 11.x, Node 20) checks for lone surrogates natively;
 * the project's `lib` setting predates its typings.
 */
const isWellFormed = (String.prototype as unknown as { isWellFormed(this: string): boolean }).isWellFormed;
