import type { ErrorInfo } from '../errors';

/**
 * Deepest nesting any JSON or msgpack body may have: twice the deepest attributes a
 * configuration allows (attributesDepthMax ≤ 256, inside at most three wrapper levels),
 * so attributes nested a little too deep still get their per-event error.
 *
 * Why a body-level limit at all: attributes depth is checked per event, after decoding,
 * and decoding a deep body is what costs. Measured (test/fuzz): JSON.parse of 9.5 MiB of
 * nested arrays took 2.4 s and kept 258 MB of heap; a 32 KB gzip body inflating to 16
 * million levels took 7.1 s and 928 MB, one request stalling the main thread. msgpackr
 * recurses per level and runs out of stack between 3,000 and 10,000 levels.
 *
 * Bulk JSON bodies are held to it by the EventCountScanner as they stream in; single
 * bodies and NDJSON lines, which are not scanned, by jsonNestsDeeperThan below; msgpack
 * bodies by msgpackProblem. This module depends on none of them, so each stage reads the
 * limit from here instead of from the stage before it.
 */
export const bodyDepthMax = 512;

/** The answer to a body nested deeper than bodyDepthMax, while it streams in or after gunzip. */
export const nestedTooDeep: ErrorInfo = {
  code: 'ERR_INGEST_MALFORMED_BODY',
  message: `body nests deeper than ${bodyDepthMax} levels; no event can be valid that deep (attributesDepthMax is checked per event)`,
};

/** JSON's structural bytes, shared with the event-count scanner. */
export const quote = 0x22;
export const backslash = 0x5c;
export const openBrace = 0x7b;
export const closeBrace = 0x7d;
export const openBracket = 0x5b;
export const closeBracket = 0x5d;

export const stringContinues = -1;
export const stringContinuesEscaped = -2;

/**
 * Where the JSON string whose content starts at `start` ends (the index of its closing
 * quote), or stringContinues / stringContinuesEscaped when it runs past the chunk (the
 * latter when the chunk ends in the middle of an escape, so the next chunk's first byte
 * is escaped). A backslash always consumes the byte after it, which is all JSON escapes
 * need for finding the closing quote (`\u` digits are never quotes).
 *
 * Measured on typical events: skipping strings with this tight loop made the scanner
 * ~1.7 ms/MB, down from ~2.9 with one state check per byte; finding quotes with the
 * native indexOf instead was slower (~2.1), because event strings are short.
 */
export function stringEnd(chunk: Uint8Array, start: number): number {
  const length = chunk.length;
  let i = start;
  while (i < length) {
    const byte = chunk[i] as number;
    if (byte === quote) return i;
    i += byte === backslash ? 2 : 1;
  }
  return i === length ? stringContinues : stringContinuesEscaped;
}

/**
 * True when the JSON text in `bytes` nests deeper than `depthMax`. Text of `depthMax`
 * bytes or fewer cannot, so short bodies and lines (nearly all) cost nothing; longer ones
 * cost one pass that skips strings (measured ~1.5 ms/MB on typical events).
 */
export function jsonNestsDeeperThan(bytes: Uint8Array, depthMax: number): boolean {
  if (bytes.length <= depthMax) return false;
  let depth = 0;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i] as number;
    if (byte === quote) {
      const end = stringEnd(bytes, i + 1);
      if (end < 0) return false;
      i = end;
    } else if (byte === openBrace || byte === openBracket) {
      if (++depth > depthMax) return true;
    } else if (byte === closeBrace || byte === closeBracket) depth--;
  }
  return false;
}
