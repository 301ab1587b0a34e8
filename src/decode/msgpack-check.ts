/**
 * A pass over msgpack bytes before msgpackr decodes them, refusing what msgpackr would
 * accept silently or loop on: truncated values and declared lengths beyond the body, the
 * reserved byte 0xC1, extensions other than the standard timestamp (msgpackr's records,
 * bundled strings and structured clone produced cyclic values that froze the validator —
 * found by test/fuzz), invalid UTF-8 in strings and keys, and nesting deeper than
 * bodyDepthMax. Costs ~2–3 ms/MB against ~6 ms/MB for msgpackr's own decoding.
 */
import { isUtf8 } from 'node:buffer';
import { bodyDepthMax } from './body-depth';

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
