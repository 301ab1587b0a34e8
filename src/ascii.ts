/**
 * Writes `text` into `target` at `offset` as one byte per UTF-16 unit if every unit is
 * ASCII, and returns the bytes written; returns -1 (having written garbage that the caller
 * overwrites) at the first unit that is not ASCII.
 *
 * Why: both binary encoders on the hot path (src/ring/envelope.ts, src/sink/copy-encoder.ts)
 * write several short strings per event — ids, types, sources — and for those a JS loop
 * beats a call into Node's native UTF-8 writer (bench/micro/envelope.ts and
 * bench/micro/copy-encoder.ts; docs/decisions/0017-envelopes-written-and-read-in-place.md).
 * Longer strings and anything not ASCII go through the native writer.
 */
export function writeAscii(target: Uint8Array, offset: number, text: string): number {
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0x80) return -1;
    target[offset + i] = unit;
  }
  return length;
}

/** Strings shorter than this (UTF-16 units) are tried with writeAscii first. */
export const asciiLoopUnitsMax = 64;
