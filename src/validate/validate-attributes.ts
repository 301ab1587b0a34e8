import type { ErrorCode, EventError } from '../errors';
import { describeValue, eventError, isPlainObject, isWellFormed, quotedCharsMax, quoteLimited } from '../decode/client-input';
import type { RawAttributes } from '../decode/decode-body';
import { attributesKeyIds } from '../decode/body-scan';
import type { ValidationContext } from './validate-event';

/**
 * The `attributes` (or `metadata`, `properties`) rule of event validation
 * (src/validate/validate-event.ts): a plain object of JSON values within attributesDepthMax
 * and attributesBytesMax, with no `__proto__` key, no `\u0000` and no lone surrogate, in
 * one bounded walk before JSON.stringify makes the text that is stored.
 */

/**
 * `{}` for absent attributes, the JSON for valid ones, or an error. The JSON is the
 * client's own bytes when the body's scanner vouched for them (context.rawAttributes) and
 * they are within attributesBytesMax, else JSON.stringify of the parsed value. The walk
 * below runs either way: the bytes are stored only for a value that passed it.
 *
 * What the bytes keep that re-serialising would not: whitespace, escapes, and numbers as
 * written (`1.50`, integers past 2^53), which jsonb stores exactly; duplicate keys inside
 * the object, where jsonb keeps the last as JSON.parse does. The bytes are valid UTF-8
 * (the whole body was checked) and valid JSON (JSON.parse read them).
 */
export function checkAttributes(value: unknown, key: string, index: number, context: Pick<ValidationContext, 'limits' | 'rawAttributes'>): string | Uint8Array | EventError {
  const { limits } = context;
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
  const raw = context.rawAttributes;
  if (raw !== null && raw !== undefined) {
    const bytes = rawAttributesOf(raw, index, key);
    if (bytes !== null && bytes.byteLength <= limits.attributesBytesMax) return bytes;
  }
  const json = JSON.stringify(value);
  // UTF-8 takes at most 3 bytes per UTF-16 unit, so short JSON needs no exact count.
  if (json.length * 3 > limits.attributesBytesMax) {
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > limits.attributesBytesMax) return eventError(index, 'ERR_EVENT_ATTRIBUTES_TOO_LARGE', field, tooLargeMessage(field, bytes, limits.attributesBytesMax));
  }
  return json;
}

/** Item `index`'s attributes bytes, if the scanner found them under this very key. */
function rawAttributesOf(raw: RawAttributes, index: number, key: string): Uint8Array | null {
  const { spans } = raw;
  if (index >= spans.keys.length) return null;
  const id = spans.keys[index];
  if (id === 0 || id !== attributesKeyIds[key]) return null;
  return raw.bytes.subarray(spans.starts[index], spans.ends[index]);
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
