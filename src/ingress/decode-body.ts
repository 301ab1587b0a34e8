import { isUtf8 } from 'node:buffer';
import { Unpackr } from 'msgpackr';
import type { Config } from '../config/config';
import type { ErrorInfo, EventError } from '../errors';
import type { BodyFormat } from './body-format';
import { bodyDepthMax, EventCountScanner, jsonNestsDeeperThan, msgpackDeclaredEventCount } from './event-count-scanner';
import { describeValue, isPlainObject, UndecodableItem } from './validate-event';

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
  | { ok: true; items: unknown[]; requestId: string | null; lineErrors: EventError[] }
  | { ok: false; error: ErrorInfo };

export type DecodedSingle = { ok: true; item: unknown } | { ok: false; error: ErrorInfo };

export type BulkLimits = Pick<Config, 'eventsPerRequestMax' | 'eventBytesMax'>;

export interface BulkOptions {
  /**
   * True when the caller already ran an EventCountScanner over these exact bytes while
   * they streamed in (an uncompressed body), so the JSON pre-count can be skipped.
   */
  readonly eventsCounted?: boolean;
}

/** The answer to a body nested deeper than bodyDepthMax; the server also uses it while a body streams in. */
export const nestedTooDeep: ErrorInfo = {
  code: 'ERR_INGEST_MALFORMED_BODY',
  message: `body nests deeper than ${bodyDepthMax} levels; no event can be valid that deep (attributesDepthMax is checked per event)`,
};

/**
 * msgpackr settings for bodies clients send: standard maps as plain objects, no records
 * extension, 64-bit integers as numbers (BigInt would not survive JSON.stringify), and no
 * structured-clone references (see msgpackProblem). One instance, made at start-up;
 * decoding is synchronous, so sharing it is safe.
 */
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number', structuredClone: false });

/** Longest `request_id` in a bulk body; the same bound the server puts on X-Request-ID. */
const requestIdCharsMax = 200;
const printableAscii = /^[\x21-\x7e]+$/;
const byteOrderMark = [0xef, 0xbb, 0xbf] as const;

/**
 * Decodes a POST /v1/events/bulk body: `{"events": [...], "request_id"?: "..."}` or a
 * top-level array (JSON or msgpack), or one event per line (NDJSON).
 */
export function decodeBulkBody(format: BodyFormat, bytes: Buffer, limits: BulkLimits, options: BulkOptions = {}): DecodedBody {
  if (format === 'ndjson') return decodeNdjson(bytes, limits);
  if (bytes.length === 0) return { ok: false, error: { code: 'ERR_INGEST_EMPTY', message: 'request body is empty' } };
  let decoded: Decoded;
  if (format === 'json') {
    // JSON.parse allocates for every element before its length can be checked; measured,
    // 32 MiB of `{},` (a 100 KiB gzip) took 6.2 s and 750 MB of heap. Counting first costs
    // ~1.7 ms/MB and refuses such a body before any allocation.
    // The same pass refuses bodies nested deeper than bodyDepthMax (see there).
    if (options.eventsCounted !== true) {
      const scanner = new EventCountScanner('json');
      scanner.feed(bytes);
      if (scanner.nestsTooDeep) return { ok: false, error: nestedTooDeep };
      if (scanner.count > limits.eventsPerRequestMax) return tooManyEvents(scanner.count, limits.eventsPerRequestMax);
    }
    decoded = decodeJson(bytes);
  } else {
    const declared = msgpackDeclaredEventCount(bytes);
    if (declared !== null && declared > limits.eventsPerRequestMax) return tooManyEvents(declared, limits.eventsPerRequestMax);
    decoded = decodeMsgpack(bytes);
  }
  if (!decoded.ok) return decoded;
  const shaped = bulkShape(decoded.value);
  if (!shaped.ok) return shaped;
  const count = shaped.items.length;
  if (count === 0) return { ok: false, error: { code: 'ERR_INGEST_EMPTY', message: 'request holds no events (the events array is empty)' } };
  if (count > limits.eventsPerRequestMax) return tooManyEvents(count, limits.eventsPerRequestMax);
  const lineErrors: EventError[] = [];
  if (format === 'msgpack') markProtoKeys(bytes, shaped.items, lineErrors);
  return { ok: true, items: shaped.items, requestId: shaped.requestId, lineErrors };
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

/** The standard timestamp extension (-1) and msgpackr's encoding of `undefined` (0). */
const timestampExtType = 0xff;
const undefinedExtType = 0x00;

/** What tokenEnd found besides an end position (reused: the walk is synchronous). */
const token = { children: 0, extType: 0 };
const endTruncated = -1;
const endReservedByte = -2;
const endExtension = -3;
const endNotUtf8 = -4;

/**
 * Walks a msgpack body token by token without building any value, and says why it cannot
 * be accepted, or returns null. It refuses:
 * - the reserved byte 0xC1 as a value (msgpackr returns a marker object instead of throwing);
 * - strings that are not valid UTF-8: msgpackr silently turns them into U+FFFD or Latin-1
 *   characters, which stored something the client never sent (found by test/fuzz), while
 *   JSON bodies were already refused for the same bytes;
 * - extension types other than timestamp and undefined. msgpackr decodes its own by
 *   default: structured-clone references (0x69/0x70) build cyclic values, and a 16-byte
 *   body of them froze the engine's main thread in an endless walk (found by test/fuzz);
 *   records (0x72) and bundled strings (0x62) change how later bytes are read; others
 *   construct Sets, Errors, RegExps and typed arrays. None is standard msgpack;
 * - declared lengths and element counts beyond the body, before anything is allocated;
 * - nesting deeper than bodyDepthMax, so msgpackr (which recurses per level) never unwinds
 *   a stack overflow from the middle of its module-level decoding state; and bytes after
 *   the value.
 * It costs one pass over the tokens and, for strings, a byte loop until the first non-ASCII
 * byte, where the native UTF-8 check takes over.
 */
export function msgpackProblem(bytes: Uint8Array): string | null {
  const length = bytes.length;
  const outer: number[] = []; // values still unread in each enclosing container
  let unread = 1; // values still unread at the current level; the root is one value
  let position = 0;
  for (;;) {
    if (position >= length) return 'it ends inside a value (truncated, or a declared length runs past the end)';
    const end = tokenEnd(bytes, position);
    if (end === endReservedByte) return `it holds the reserved byte 0xC1 at byte ${position}`;
    if (end === endExtension) {
      return `extension type ${(token.extType << 24) >> 24} at byte ${position} is not supported: send standard msgpack, whose only extension Floodgate reads is the timestamp (-1) (with msgpackr: new Packr({ useRecords: false }))`;
    }
    if (end === endNotUtf8) return `the string at byte ${position} is not valid UTF-8`;
    if (end === endTruncated || end > length || token.children > length - end) {
      return `the value at byte ${position} declares more bytes or elements than the body holds`;
    }
    position = end;
    unread--;
    if (token.children > 0) {
      if (outer.length === bodyDepthMax) return `values nest too deeply (more than ${bodyDepthMax} levels)`;
      outer.push(unread);
      unread = token.children;
      continue;
    }
    while (unread === 0) {
      const enclosing = outer.pop();
      if (enclosing === undefined) return position === length ? null : `${length - position} bytes follow the end of the value`;
      unread = enclosing;
    }
  }
}

/**
 * Where the token at `at` ends (its header and payload), with the number of values a map
 * or array header announces in token.children; or one of the negative end codes. The end
 * may lie past the body: the caller checks.
 */
function tokenEnd(bytes: Uint8Array, at: number): number {
  const marker = bytes[at] as number;
  token.children = 0;
  if (marker <= 0x7f || marker >= 0xe0) return at + 1; // positive and negative fixint
  if (marker <= 0x8f) {
    token.children = (marker & 0x0f) * 2; // fixmap: keys and values
    return at + 1;
  }
  if (marker <= 0x9f) {
    token.children = marker & 0x0f; // fixarray
    return at + 1;
  }
  if (marker <= 0xbf) return msgpackStringEnd(bytes, at + 1, marker & 0x1f); // fixstr
  switch (marker) {
    case 0xc0: case 0xc2: case 0xc3: return at + 1; // nil, false, true
    case 0xc1: return endReservedByte;
    case 0xca: return at + 5; // float32
    case 0xcb: return at + 9; // float64
    case 0xcc: case 0xd0: return at + 2; // (u)int8
    case 0xcd: case 0xd1: return at + 3; // (u)int16
    case 0xce: case 0xd2: return at + 5; // (u)int32
    case 0xcf: case 0xd3: return at + 9; // (u)int64
    case 0xc4: case 0xc5: case 0xc6: { // bin8/16/32
      const size = lengthAt(bytes, at + 1, 1 << (marker - 0xc4));
      return size < 0 ? endTruncated : at + 1 + (1 << (marker - 0xc4)) + size;
    }
    case 0xd9: case 0xda: case 0xdb: { // str8/16/32
      const width = 1 << (marker - 0xd9);
      const size = lengthAt(bytes, at + 1, width);
      return size < 0 ? endTruncated : msgpackStringEnd(bytes, at + 1 + width, size);
    }
    case 0xdc: case 0xdd: { // array16/32
      const width = 2 << (marker - 0xdc);
      token.children = Math.max(0, lengthAt(bytes, at + 1, width));
      return at + 1 + width;
    }
    case 0xde: case 0xdf: { // map16/32
      const width = 2 << (marker - 0xde);
      token.children = Math.max(0, lengthAt(bytes, at + 1, width)) * 2;
      return at + 1 + width;
    }
    case 0xc7: case 0xc8: case 0xc9: { // ext8/16/32: length, then type
      const width = 1 << (marker - 0xc7);
      const size = lengthAt(bytes, at + 1, width);
      return size < 0 ? endTruncated : extensionEnd(bytes, at + 1 + width, size);
    }
    default: // fixext1/2/4/8/16 (0xd4-0xd8): type, then 1-16 bytes
      return extensionEnd(bytes, at + 1, 1 << (marker - 0xd4));
  }
}

function msgpackStringEnd(bytes: Uint8Array, start: number, size: number): number {
  const end = start + size;
  if (end > bytes.length) return endTruncated;
  for (let i = start; i < end; i++) {
    // Bytes before the first non-ASCII one are valid on their own, so the check starts there.
    if ((bytes[i] as number) >= 0x80) return isUtf8(bytes.subarray(i, end)) ? end : endNotUtf8;
  }
  return end;
}

/** `typeAt` holds the extension type; its payload of `size` bytes follows. */
function extensionEnd(bytes: Uint8Array, typeAt: number, size: number): number {
  if (typeAt >= bytes.length) return endTruncated;
  token.extType = bytes[typeAt] as number;
  if (token.extType !== timestampExtType && token.extType !== undefinedExtType) return endExtension;
  return typeAt + 1 + size;
}

/** A big-endian length of `width` bytes (1, 2 or 4) at `at`, or -1 past the end. */
function lengthAt(bytes: Uint8Array, at: number, width: number): number {
  if (at + width > bytes.length) return -1;
  let value = 0;
  for (let i = 0; i < width; i++) value = value * 256 + (bytes[at + i] as number);
  return value;
}

/** Checks the decoded value is `{"events": [...], "request_id"?: string}` or an array. */
function bulkShape(value: unknown): { ok: true; items: unknown[]; requestId: string | null } | { ok: false; error: ErrorInfo } {
  if (Array.isArray(value)) return { ok: true, items: value, requestId: null };
  if (!isPlainObject(value)) return badShape(`bulk body must be {"events": [...]} or an array; got ${describeValue(value)}`);
  let events: unknown;
  let requestId: unknown = null;
  for (const key in value) {
    if (key === 'events') events = value[key];
    else if (key === 'request_id') requestId = value[key] ?? null;
    else return badShape(`bulk body has an unknown key ${JSON.stringify(key.slice(0, 64))}; only "events" and "request_id" are allowed`);
  }
  if (events === undefined) return badShape('bulk body object has no "events" key');
  if (!Array.isArray(events)) return badShape(`"events" must be an array; got ${describeValue(events)}`);
  if (requestId !== null && (typeof requestId !== 'string' || requestId.length > requestIdCharsMax || !printableAscii.test(requestId))) {
    return badShape(`"request_id" must be 1-${requestIdCharsMax} printable ASCII characters; got ${typeof requestId === 'string' ? 'a string that is not' : describeValue(requestId)}`);
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
  return { ok: true, items, requestId: null, lineErrors };
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

const expectValue = 0;
const expectKey = 1;
const afterValue = 2;
const inObject = 1;
const inArray = 2;

/** The offset of the first JSON syntax error in `text` (RFC 8259), or -1 if there is none. */
export function jsonErrorOffset(text: string): number {
  const containers: number[] = [];
  let state = expectValue;
  let i = 0;
  for (;;) {
    i = skipWhitespace(text, i);
    const code = text.charCodeAt(i);
    if (state === expectValue) {
      if (code === 0x7b || code === 0x5b) {
        i = skipWhitespace(text, i + 1);
        if (text.charCodeAt(i) === code + 2) { // `}` and `]` follow `{` and `[` by two.
          i++;
          state = afterValue;
        } else {
          containers.push(code === 0x7b ? inObject : inArray);
          state = code === 0x7b ? expectKey : expectValue;
        }
        continue;
      }
      const end = scalarEnd(text, i);
      if (end < 0) return ~end;
      i = end;
      state = afterValue;
    } else if (state === expectKey) {
      if (code !== 0x22) return i;
      const end = stringEnd(text, i);
      if (end < 0) return ~end;
      i = skipWhitespace(text, end);
      if (text.charCodeAt(i) !== 0x3a) return i;
      i++;
      state = expectValue;
    } else {
      const top = containers[containers.length - 1];
      if (top === undefined) return i >= text.length ? -1 : i;
      if (code === 0x2c) {
        i++;
        state = top === inObject ? expectKey : expectValue;
      } else if ((top === inObject && code === 0x7d) || (top === inArray && code === 0x5d)) {
        containers.pop();
        i++;
      } else return i;
    }
  }
}

function skipWhitespace(text: string, start: number): number {
  let i = start;
  for (;;) {
    const code = text.charCodeAt(i);
    if (code !== 0x20 && code !== 0x0a && code !== 0x0d && code !== 0x09) return i;
    i++;
  }
}

/** End of the string, number or literal at `start`; `~offset` of the error otherwise. */
function scalarEnd(text: string, start: number): number {
  const code = text.charCodeAt(start);
  if (code === 0x22) return stringEnd(text, start);
  if (code === 0x2d || (code >= 0x30 && code <= 0x39)) return numberEnd(text, start);
  for (const literal of ['true', 'false', 'null']) {
    if (code !== literal.charCodeAt(0)) continue;
    for (let k = 1; k < literal.length; k++) if (text.charCodeAt(start + k) !== literal.charCodeAt(k)) return ~(start + k);
    return start + literal.length;
  }
  return ~start;
}

function stringEnd(text: string, start: number): number {
  let i = start + 1;
  for (;;) {
    if (i >= text.length) return ~text.length;
    const code = text.charCodeAt(i);
    if (code === 0x22) return i + 1;
    if (code < 0x20) return ~i;
    if (code === 0x5c) {
      const escape = text.charAt(i + 1);
      if (escape === 'u') {
        for (let k = 2; k < 6; k++) if (!/[0-9a-fA-F]/.test(text.charAt(i + k))) return ~(i + k);
        i += 6;
      } else if (escape !== '' && '"\\/bfnrt'.includes(escape)) i += 2;
      else return ~(i + 1);
    } else i++;
  }
}

function numberEnd(text: string, start: number): number {
  let i = start;
  if (text.charCodeAt(i) === 0x2d) i++;
  if (text.charCodeAt(i) === 0x30) i++;
  else if (isDigit(text.charCodeAt(i))) while (isDigit(text.charCodeAt(i))) i++;
  else return ~i;
  if (text.charCodeAt(i) === 0x2e) {
    i++;
    if (!isDigit(text.charCodeAt(i))) return ~i;
    while (isDigit(text.charCodeAt(i))) i++;
  }
  const exponent = text.charCodeAt(i);
  if (exponent === 0x65 || exponent === 0x45) {
    i++;
    const sign = text.charCodeAt(i);
    if (sign === 0x2b || sign === 0x2d) i++;
    if (!isDigit(text.charCodeAt(i))) return ~i;
    while (isDigit(text.charCodeAt(i))) i++;
  }
  return i;
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}
