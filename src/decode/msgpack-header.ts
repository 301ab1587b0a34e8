/**
 * The event count a msgpack bulk body declares in its first bytes: a top-level array, or
 * a map whose first key is `events` holding an array. Used by the streaming
 * EventCountScanner (src/decode/event-count-scanner.ts), as the header arrives or, for a
 * gzip body, right after gunzip (scanBody).
 */

export const needMoreBytes = -1;
const unknownShape = -2;
const eventsKey = Uint8Array.from(Buffer.from('events', 'latin1'));
/** map32 marker + length (5) + str8 `events` key (8) + array32 header (5). */
export const msgpackHeaderBytesMax = 18;

/** Parses the header in `bytes[0, length)`: a count, needMoreBytes or unknownShape. */
export function msgpackDeclaredCount(bytes: Uint8Array, length: number): number {
  if (length === 0) return needMoreBytes;
  const first = bytes[0] as number;
  let position: number;
  if (first >= 0x90 && first <= 0x9f) return first & 0x0f;
  if (first === 0xdc || first === 0xdd) return readArrayHeader(bytes, 0, length);
  if (first >= 0x81 && first <= 0x8f) position = 1;
  else if (first === 0xde) position = 3;
  else if (first === 0xdf) position = 5;
  else return unknownShape;
  if (position > length) return needMoreBytes;
  if (position > 1 && readUnsigned(bytes, 1, position - 1) === 0) return unknownShape;
  const keyEnd = readEventsKey(bytes, position, length);
  return keyEnd < 0 ? keyEnd : readArrayHeader(bytes, keyEnd, length);
}

/** Checks for the key `events` (fixstr or str8) at `position`; returns where it ends. */
function readEventsKey(bytes: Uint8Array, position: number, length: number): number {
  if (position >= length) return needMoreBytes;
  let start: number;
  if (bytes[position] === 0xa0 + eventsKey.length) start = position + 1;
  else if (bytes[position] === 0xd9) {
    if (position + 1 >= length) return needMoreBytes;
    if (bytes[position + 1] !== eventsKey.length) return unknownShape;
    start = position + 2;
  } else return unknownShape;
  for (let i = 0; i < eventsKey.length; i++) {
    if (start + i >= length) return needMoreBytes;
    if (bytes[start + i] !== eventsKey[i]) return unknownShape;
  }
  return start + eventsKey.length;
}

/** Reads a fixarray, array16 or array32 header at `position`. */
function readArrayHeader(bytes: Uint8Array, position: number, length: number): number {
  if (position >= length) return needMoreBytes;
  const marker = bytes[position] as number;
  if (marker >= 0x90 && marker <= 0x9f) return marker & 0x0f;
  const width = marker === 0xdc ? 2 : marker === 0xdd ? 4 : 0;
  if (width === 0) return unknownShape;
  if (position + 1 + width > length) return needMoreBytes;
  return readUnsigned(bytes, position + 1, width);
}

/** Big-endian unsigned integer of 2 or 4 bytes (msgpack's byte order). */
function readUnsigned(bytes: Uint8Array, position: number, width: number): number {
  let value = 0;
  for (let i = 0; i < width; i++) value = value * 256 + (bytes[position + i] as number);
  return value;
}
