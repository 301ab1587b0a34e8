/**
 * HDR histograms (hdr-histogram-js, WebAssembly build) with the one configuration every
 * Floodgate histogram shares, so an actor's encoded histogram can always be added to the
 * main thread's without losing precision.
 *
 * WebAssembly is initialised once per thread (each worker has its own instance). WASM
 * histograms live outside the JS heap: whoever creates one must destroy() it.
 * WASM records in about half the time of the JS build
 * (docs/decisions/0013-hdr-histograms-merged.md).
 */
import { initWebAssemblySync, WasmHistogram, build, type Histogram } from 'hdr-histogram-js';

/**
 * Largest value a histogram tracks: one hour in microseconds (ackTimeoutMs is at most ten
 * minutes). Larger values are clamped to it, never dropped, so counts stay exact.
 */
export const histogramValueMax = 3_600_000_000;
/** Three significant digits: a reported value is at most 0.1% above the true one. */
const significantDigits = 3;

let webAssemblyInitialised = false;

/** Module state is per thread, so this runs once in each thread that uses histograms. */
export function ensureWebAssembly(): void {
  if (webAssemblyInitialised) return;
  initWebAssemblySync();
  webAssemblyInitialised = true;
}

export function createHistogram(): Histogram {
  ensureWebAssembly();
  return build({
    useWebAssembly: true,
    lowestDiscernibleValue: 1,
    highestTrackableValue: histogramValueMax,
    numberOfSignificantValueDigits: significantDigits,
    autoResize: false,
  });
}

/** Clamps a measured value into the tracked range (a negative value is clock jitter). */
export function trackable(value: number): number {
  if (!(value > 0)) return 0;
  return value > histogramValueMax ? histogramValueMax : Math.round(value);
}

/** The encoded form actors post (a copy, safe to transfer). */
export function encodeHistogram(histogram: Histogram): Uint8Array {
  return (histogram as WasmHistogram).encode();
}

/** Adds an encoded histogram into `target`; the decoded temporary is destroyed at once. */
export function addEncoded(target: Histogram, encoded: Uint8Array): void {
  ensureWebAssembly();
  const decoded = WasmHistogram.decode(encoded);
  try {
    target.add(decoded);
  } finally {
    decoded.destroy();
  }
}
