/**
 * src/decode: a request body's bytes to the items validation checks. Data flows one way:
 * each step takes the previous step's output and never calls back into it.
 *
 *   src/ingress   readBody ──chunk──▶ EventCountScanner.feed (refuses: too many, too deep)
 *                    │                           │
 *                 gunzipBounded                  │ gzip bodies: scanBody after gunzip
 *                    │ bytes                     ▼
 *                    │             BodyScan (count, depth, attribute spans)
 *                    ▼                           │
 *   src/decode    decodeBulkBody(format, bytes, limits, scan)
 *                    │ items, lineErrors (UndecodableItem), RawAttributes (bytes + spans)
 *                    ▼
 *   src/ingress   IngestPipeline.submit
 *                    ├─▶ src/validate  validateEvent(item, index, {rawAttributes})
 *                    └─▶ RingRouter ─▶ src/ring
 *
 * Why one way: the decoder used to take the live scanner, build its own for gzip bodies
 * and read spans back from it, so the body's path crossed this module and the scanner's
 * five times. The scanner now hands over a BodyScan (src/decode/body-scan.ts), and the
 * depth rule both need lives in src/decode/body-depth.ts.
 */
import { isUtf8 } from 'node:buffer';
import { Unpackr } from 'msgpackr';
import type { Config } from '../config/config';
import type { ErrorInfo, EventError } from '../errors';
import { isValidRequestId, requestIdCharsMax } from '../ingress/request-id';
import { bodyDepthMax, jsonNestsDeeperThan, nestedTooDeep } from './body-depth';
import type { BodyFormat } from './body-format';
import type { AttributeSpans, BodyScan } from './body-scan';
import { describeValue, isPlainObject } from './client-input';
import { jsonErrorOffset } from './json-syntax';
import { msgpackProblem } from './msgpack-check';
import { UndecodableItem } from './undecodable-item';

export { jsonErrorOffset } from './json-syntax';
export { msgpackProblem } from './msgpack-check';

/**
 * Body decoding: bytes (already gunzipped) to the list of items validateEvent checks.
 *
 * Request-level problems (the body is not JSON/msgpack, has the wrong shape, too many or
 * no events) fail the whole request. NDJSON is the exception that makes streaming
 * producers practical: a line that is not JSON, not UTF-8 or too long becomes an
 * UndecodableItem in its slot, reported in `lineErrors` and again by validateEvent, so
 * one bad line never sinks the others. msgpack maps that held a `__proto__` key are
 * treated the same way (see markProtoKeys).
 */
export type DecodedBody =
  | { ok: true; items: unknown[]; requestId: string | null; lineErrors: EventError[]; rawAttributes: RawAttributes | null }
  | { ok: false; error: ErrorInfo };

/**
 * Where each item's attributes object lies in the body's own bytes (JSON bulk bodies), so
 * validation can store those bytes instead of re-serialising the parsed object. In a
 * load profile (node --cpu-prof) JSON.stringify of attributes was the ingress thread's
 * second-largest item after JSON.parse; without it decode + validate cost about a quarter
 * less per event (bench/micro/decode-validate.ts;
 * docs/decisions/0006-attributes-stored-as-sent.md).
 */
export interface RawAttributes {
  readonly bytes: Buffer;
  readonly spans: AttributeSpans;
}

export type DecodedSingle = { ok: true; item: unknown } | { ok: false; error: ErrorInfo };

export type BulkLimits = Pick<Config, 'eventsPerRequestMax' | 'eventBytesMax'>;

/**
 * msgpackr settings for bodies clients send: standard maps as plain objects, no records
 * extension, 64-bit integers as numbers (BigInt would not survive JSON.stringify), and no
 * structured-clone references (see msgpackProblem). One instance, made at start-up;
 * decoding is synchronous, so sharing it is safe.
 */
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number', structuredClone: false });

const byteOrderMark = [0xef, 0xbb, 0xbf] as const;

/**
 * Decodes a POST /v1/events/bulk body: `{"events": [...], "request_id"?: "..."}` or a
 * top-level array (JSON or msgpack), or one event per line (NDJSON). `scan` is the
 * EventCountScanner's summary of these same bytes (see BodyScan): a body it found too deep
 * or too long is refused before anything is allocated for it, and a JSON body's attribute
 * spans come from it.
 */
/**
 * The key that names a bulk body's batch: `request_id` in HTTP bodies (optional, a top-level
 * array allowed too), `batch_id` in WebSocket frames (required: it is the frame's ack key).
 */
export type BatchIdKey = 'request_id' | 'batch_id';

export function decodeBulkBody(format: BodyFormat, bytes: Buffer, limits: BulkLimits, scan: BodyScan, idKey: BatchIdKey = 'request_id'): DecodedBody {
  if (scan.format !== format) throw new Error(`decodeBulkBody: a ${scan.format} scan was given for a ${format} body`);
  if (format === 'ndjson') return decodeNdjson(bytes, limits);
  if (bytes.length === 0) return { ok: false, error: { code: 'ERR_INGEST_EMPTY', message: 'request body is empty' } };
  // A body scanned while it streamed in was refused then; these catch gzip bodies.
  if (scan.nestsTooDeep) return { ok: false, error: nestedTooDeep };
  if (scan.count > limits.eventsPerRequestMax) return tooManyEvents(scan.count, limits.eventsPerRequestMax);
  const decoded = format === 'json' ? decodeJson(bytes) : decodeMsgpack(bytes);
  if (!decoded.ok) return decoded;
  const shaped = bulkShape(decoded.value, idKey);
  if (!shaped.ok) return shaped;
  const count = shaped.items.length;
  if (count === 0) return { ok: false, error: { code: 'ERR_INGEST_EMPTY', message: 'request holds no events (the events array is empty)' } };
  if (count > limits.eventsPerRequestMax) return tooManyEvents(count, limits.eventsPerRequestMax);
  const lineErrors: EventError[] = [];
  if (format === 'msgpack') markProtoKeys(bytes, shaped.items, lineErrors);
  const spans = format === 'json' ? scan.attributeSpans : null;
  const rawAttributes = spans === null ? null : { bytes, spans };
  return { ok: true, items: shaped.items, requestId: shaped.requestId, lineErrors, rawAttributes };
}

/**
 * Decodes a POST /v1/events body: one event object. Anything that decodes but is not an
 * array is returned as is, for validateEvent to judge (ERR_EVENT_NOT_OBJECT); an array is
 * refused here because it almost certainly belongs to the bulk route.
 */
export function decodeSingleBody(format: 'json' | 'msgpack', bytes: Buffer, limits: Pick<Config, 'eventBytesMax'>): DecodedSingle {
  if (bytes.length === 0) return { ok: false, error: { code: 'ERR_INGEST_EMPTY', message: 'request body is empty' } };
  if (bytes.length > limits.eventBytesMax) {
    return { ok: false, error: { code: 'ERR_EVENT_TOO_LARGE', message: `event body is ${bytes.length} bytes; the limit is eventBytesMax = ${limits.eventBytesMax} bytes` } };
  }
  if (format === 'json' && jsonNestsDeeperThan(bytes, bodyDepthMax)) return { ok: false, error: nestedTooDeep };
  const decoded = format === 'json' ? decodeJson(bytes) : decodeMsgpack(bytes);
  if (!decoded.ok) return decoded;
  if (Array.isArray(decoded.value)) {
    return { ok: false, error: { code: 'ERR_INGEST_BAD_SHAPE', message: 'a single-event body must be one event object; got an array (send batches to the bulk route)' } };
  }
  if (format === 'msgpack') {
    const items = [decoded.value];
    markProtoKeys(bytes, items, []);
    return { ok: true, item: items[0] };
  }
  return { ok: true, item: decoded.value };
}

type Decoded = { ok: true; value: unknown } | { ok: false; error: ErrorInfo };

/**
 * One JSON document of any shape, with the same checks as every JSON body (depth, strict
 * UTF-8, a byte-order mark skipped): for bodies whose shape their route judges itself,
 * the Segment-spec calls (src/segment/segment-mapping.ts).
 */
export function decodeJsonDocument(bytes: Buffer): Decoded {
  if (jsonNestsDeeperThan(bytes, bodyDepthMax)) return { ok: false, error: nestedTooDeep };
  return decodeJson(bytes);
}

function malformed(message: string): { ok: false; error: ErrorInfo } {
  return { ok: false, error: { code: 'ERR_INGEST_MALFORMED_BODY', message } };
}

function tooManyEvents(count: number, max: number): { ok: false; error: ErrorInfo } {
  return { ok: false, error: { code: 'ERR_INGEST_TOO_MANY_EVENTS', message: `request holds ${count} events; the limit is eventsPerRequestMax = ${max}` } };
}

/** Strict UTF-8 (no silent U+FFFD), an optional byte-order mark skipped, then JSON.parse. */
function decodeJson(bytes: Buffer): Decoded {
  if (!isUtf8(bytes)) return malformed('body is not valid UTF-8');
  const text = bytes.toString('utf8', startsWithByteOrderMark(bytes, 0, bytes.length) ? byteOrderMark.length : 0);
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return malformed(`body is not valid JSON: ${jsonErrorDescription(text, error, true)}`);
  }
}

function startsWithByteOrderMark(bytes: Uint8Array, start: number, end: number): boolean {
  return end - start >= 3 && bytes[start] === byteOrderMark[0] && bytes[start + 1] === byteOrderMark[1] && bytes[start + 2] === byteOrderMark[2];
}

/**
 * Decodes msgpack: msgpackProblem checks the bytes first, then msgpackr builds the values.
 * msgpackr itself refuses what is left (a map key that is not a string…). The stack
 * overflow branch is a last guard: bodyDepthMax keeps msgpackr far from it.
 */
function decodeMsgpack(bytes: Buffer): Decoded {
  const problem = msgpackProblem(bytes);
  if (problem !== null) return malformed(`body is not valid msgpack: ${problem}`);
  try {
    return { ok: true, value: unpackr.unpack(bytes) };
  } catch (error) {
    if (error instanceof RangeError && /call stack/i.test(error.message)) return malformed('body is not valid msgpack: values nest too deeply');
    return malformed(`body is not valid msgpack: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Checks the decoded value is `{"events": [...], <idKey>?: string}` or (HTTP only) an array. */
function bulkShape(value: unknown, idKey: BatchIdKey): { ok: true; items: unknown[]; requestId: string | null } | { ok: false; error: ErrorInfo } {
  const required = idKey === 'batch_id';
  if (Array.isArray(value) && !required) return { ok: true, items: value, requestId: null };
  if (!isPlainObject(value)) return badShape(`${required ? 'a batch' : 'bulk body'} must be {"events": [...]${required ? ', "batch_id": "..."' : '} or an array'}; got ${describeValue(value)}`);
  let events: unknown;
  let requestId: unknown = null;
  for (const key in value) {
    if (key === 'events') events = value[key];
    else if (key === idKey) requestId = value[key] ?? null;
    else return badShape(`${required ? 'batch' : 'bulk body'} has an unknown key ${JSON.stringify(key.slice(0, 64))}; only "events" and "${idKey}" are allowed`);
  }
  if (requestId === null && required) return badShape('batch has no "batch_id": every batch needs one, its ack carries it back');
  if (events === undefined) return badShape(`${required ? 'batch' : 'bulk body object'} has no "events" key`);
  if (!Array.isArray(events)) return badShape(`"events" must be an array; got ${describeValue(events)}`);
  if (requestId !== null && (typeof requestId !== 'string' || !isValidRequestId(requestId))) {
    return badShape(`"${idKey}" must be 1-${requestIdCharsMax} printable ASCII characters; got ${typeof requestId === 'string' ? 'a string that is not' : describeValue(requestId)}`);
  }
  return { ok: true, items: events, requestId: requestId as string | null };
}

function badShape(message: string): { ok: false; error: ErrorInfo } {
  return { ok: false, error: { code: 'ERR_INGEST_BAD_SHAPE', message } };
}

/**
 * NDJSON: one event per line that holds anything but whitespace. Lines end with `\n`
 * (`\r\n` tolerated); the last may lack it. A line's index is its position among
 * non-blank lines; messages also give its line number in the body.
 *
 * UTF-8 is checked once for the whole body (~30 µs/MB, simdutf) and per line only when
 * the body as a whole fails, to find the guilty lines.
 */
function decodeNdjson(bytes: Buffer, limits: BulkLimits): DecodedBody {
  const items: unknown[] = [];
  const lineErrors: EventError[] = [];
  const bodyIsUtf8 = isUtf8(bytes);
  const length = bytes.length;
  let position = startsWithByteOrderMark(bytes, 0, length) ? byteOrderMark.length : 0;
  let lineStart = position;
  let lineNumber = 1;
  // Blank stretches are skipped byte by byte rather than line by line: one native search
  // per blank line made 32 MiB of newlines (a 32 KB gzip) cost 0.7 s (found by test/fuzz).
  while (position < length) {
    const byte = bytes[position];
    if (byte === newlineByte) {
      lineNumber++;
      lineStart = ++position;
    } else if (byte === 0x20 || byte === 0x09 || byte === carriageReturn) {
      position++;
    } else {
      const newline = bytes.indexOf(newlineByte, position);
      const lineEnd = newline === -1 ? length : newline;
      const end = bytes[lineEnd - 1] === carriageReturn ? lineEnd - 1 : lineEnd;
      if (items.length === limits.eventsPerRequestMax) return tooManyLines(limits.eventsPerRequestMax);
      const item = decodeNdjsonLine(bytes, lineStart, end, { index: items.length, lineNumber, bodyIsUtf8, eventBytesMax: limits.eventBytesMax });
      if (item instanceof UndecodableItem) lineErrors.push(item.error);
      items.push(item);
      lineNumber++;
      position = lineStart = lineEnd + 1;
    }
  }
  if (items.length === 0) return { ok: false, error: { code: 'ERR_INGEST_EMPTY', message: 'request holds no events (the NDJSON body has no non-blank line)' } };
  return { ok: true, items, requestId: null, lineErrors, rawAttributes: null };
}

function tooManyLines(max: number): { ok: false; error: ErrorInfo } {
  return { ok: false, error: { code: 'ERR_INGEST_TOO_MANY_EVENTS', message: `request holds more than ${max} events; the limit is eventsPerRequestMax = ${max}` } };
}

const newlineByte = 0x0a;
const carriageReturn = 0x0d;

interface LineContext {
  readonly index: number;
  readonly lineNumber: number;
  readonly bodyIsUtf8: boolean;
  readonly eventBytesMax: number;
}

function decodeNdjsonLine(bytes: Buffer, start: number, end: number, line: LineContext): unknown {
  const undecodable = (code: EventError['code'], message: string): UndecodableItem =>
    new UndecodableItem({ index: line.index, code, field: null, message: `line ${line.lineNumber} ${message}` });
  if (end - start > line.eventBytesMax) return undecodable('ERR_EVENT_TOO_LARGE', `is ${end - start} bytes; the limit is eventBytesMax = ${line.eventBytesMax} bytes`);
  if (!line.bodyIsUtf8 && !isUtf8(bytes.subarray(start, end))) return undecodable('ERR_EVENT_MALFORMED', 'is not valid UTF-8');
  // A line as long as eventBytesMax could hold tens of thousands of levels; see bodyDepthMax.
  if (end - start > bodyDepthMax && jsonNestsDeeperThan(bytes.subarray(start, end), bodyDepthMax)) return undecodable('ERR_EVENT_ATTRIBUTES_TOO_DEEP', `nests deeper than ${bodyDepthMax} levels`);
  const text = bytes.toString('utf8', start, end);
  try {
    return JSON.parse(text);
  } catch (error) {
    return undecodable('ERR_EVENT_MALFORMED', `is not valid JSON: ${jsonErrorDescription(text, error, false)}`);
  }
}

/**
 * msgpackr renames a map key `__proto__` to `__proto_` (so decoding cannot pollute a
 * prototype), which would store a key the client never sent. JSON bodies keep the key and
 * validateEvent refuses it; to treat msgpack the same, an item is replaced by an
 * UndecodableItem when it holds a `__proto_` key and the body holds the bytes of a
 * `__proto__` string. Bodies without those bytes (nearly all) cost one native search.
 */
function markProtoKeys(bytes: Buffer, items: unknown[], lineErrors: EventError[]): void {
  if (bytes.indexOf(protoKeyBytes) === -1) return;
  for (let index = 0; index < items.length; index++) {
    if (!holdsRenamedProtoKey(items[index])) continue;
    const error: EventError = {
      index,
      code: 'ERR_EVENT_ATTRIBUTES_INVALID',
      field: null,
      message: 'the event holds a "__proto__" map key, which Floodgate refuses',
    };
    items[index] = new UndecodableItem(error);
    lineErrors.push(error);
  }
}

const protoKeyBytes = Buffer.from('__proto__', 'latin1');

function holdsRenamedProtoKey(root: unknown): boolean {
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (Array.isArray(value)) for (const element of value) pending.push(element);
    else if (isPlainObject(value)) {
      for (const key in value) {
        if (key === '__proto_') return true;
        pending.push(value[key]);
      }
    }
  }
  return false;
}

/**
 * Describes a JSON syntax error with its position. V8's messages give a position for
 * some errors but only a snippet of the input for others ("Unexpected token '}', ..."),
 * so the position comes from jsonErrorOffset, a small syntax checker that runs only on
 * this error path.
 */
function jsonErrorDescription(text: string, error: unknown, withLine: boolean): string {
  const offset = jsonErrorOffset(text);
  if (offset === -1) return error instanceof Error ? error.message : String(error);
  const what = offset >= text.length ? 'end of input' : JSON.stringify(text.charAt(offset));
  if (!withLine) return `unexpected ${what} at column ${offset + 1}`;
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return `unexpected ${what} at position ${offset} (line ${line}, column ${offset - lineStart + 1})`;
}
