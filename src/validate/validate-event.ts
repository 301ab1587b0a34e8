import type { Config } from '../config/config';
import type { EventError } from '../errors';
import type { ValidEvent } from '../event';
import { describeValue, eventError, isPlainObject, isWellFormed, quotedCharsMax, quoteLimited } from '../decode/client-input';
import { deriveEventId, generateEventId } from './event-id';
import { parseTimestamp } from './timestamp';
import type { RawAttributes } from '../decode/decode-body';
import { UndecodableItem } from '../decode/undecodable-item';
import { checkAttributes } from './validate-attributes';

/**
 * Per-event validation: turns one decoded item into a ValidEvent or one EventError.
 *
 * Rules (docs/api.md, "Event fields"), checked in this order so a client always sees the
 * same first error:
 * - the item is an object (a plain one: msgpack can decode dates, binary and sets);
 * - every top-level key is known; an alias given together with its field is a conflict;
 *   `null` means absent for every field;
 * - text fields are strings within their length, without NUL and without lone UTF-16
 *   surrogates. Lengths count Unicode code points, as PostgreSQL's char_length does, so
 *   an emoji is one character;
 * - timestamp parses (src/validate/timestamp.ts) and falls in the accepted window;
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
  /** Where the items' attributes lie in the body's bytes, when known (see checkAttributes). */
  readonly rawAttributes?: RawAttributes | null;
}

export type ValidationResult = { ok: true; event: ValidEvent; idGenerated: boolean } | { ok: false; error: EventError };

const eventIdCharsMax = 128;
const eventTypeCharsMax = 128;
const sourceCharsMax = 64;
const actorIdCharsMax = 256;
const defaultSource = 'default';

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
  const attributes = checkAttributes(found.attributes, found.attributesKey, index, context);
  if (typeof attributes !== 'string' && !(attributes instanceof Uint8Array)) return { ok: false, error: attributes };

  let event: ValidEvent = {
    eventId: (eventId as string | null) ?? (context.idempotencyKey === null ? generateEventId(context.receivedAtMs) : deriveEventId(context.idempotencyKey, index)),
    eventType: eventType as string,
    source: (source as string | null) ?? defaultSource,
    actorId: actorId as string | null,
    occurredAtUs,
    attributesJson: attributes,
  };
  let sizeError = checkEventSize(event, index, context.limits.eventBytesMax);
  if (sizeError !== null && typeof attributes !== 'string') {
    // The client's bytes may carry whitespace the compact form does not: judge the size
    // on the compact form, as without kept bytes, and store that form if it fits.
    event = { ...event, attributesJson: JSON.stringify(found.attributes) };
    sizeError = checkEventSize(event, index, context.limits.eventBytesMax);
  }
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
