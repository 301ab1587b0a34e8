import { gunzipSync } from 'node:zlib';
import type { ErrorInfo } from '../errors';

export type ContentEncoding = 'gzip' | 'identity';

export type GunzipResult = { ok: true; bytes: Buffer } | { ok: false; error: ErrorInfo };

/**
 * Returns the body's Content-Encoding, or null when Floodgate cannot undo it (the caller
 * answers 415 ERR_INGEST_UNSUPPORTED_ENCODING).
 *
 * Stacked encodings (`gzip, gzip`) are refused rather than unwrapped in a loop: no real
 * client sends them, and each layer would multiply the decompression work an attacker
 * gets for one request.
 */
export function contentEncodingOf(header: string | undefined): ContentEncoding | null {
  if (header === undefined) return 'identity';
  const coding = header.trim().toLowerCase();
  if (coding === '' || coding === 'identity') return 'identity';
  if (coding === 'gzip' || coding === 'x-gzip') return 'gzip';
  return null;
}

/**
 * Inflates a gzip body, refusing to produce more than `outputBytesMax` bytes.
 *
 * zlib's `maxOutputLength` stops inflation as soon as the output would pass the cap, so
 * a gzip bomb costs at most the cap in memory and about a millisecond per MiB of CPU
 * (measured: a 200 KiB bomb of 200 MiB zeros stopped at a 1 MiB cap in ~1 ms, RSS +1 MiB).
 * Concatenated gzip members are inflated as one body, as HTTP allows; trailing garbage,
 * a bad CRC and truncation are malformed bodies (zero bytes after the last member are
 * skipped by zlib, and change nothing). Measured by test/fuzz: 10 MiB of empty members
 * (52,000 of them) inflate in ~35 ms.
 */
export function gunzipBounded(bytes: Uint8Array, outputBytesMax: number): GunzipResult {
  try {
    return { ok: true, bytes: gunzipSync(bytes, { maxOutputLength: outputBytesMax }) };
  } catch (error) {
    if (error instanceof RangeError && (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      return {
        ok: false,
        error: {
          code: 'ERR_INGEST_BODY_TOO_LARGE',
          message: `gzip body inflates to more than bodyDecodedBytesMax (${outputBytesMax} bytes)`,
        },
      };
    }
    const reason = error instanceof Error ? error.message : String(error);
    return { ok: false, error: { code: 'ERR_INGEST_MALFORMED_BODY', message: `body is not valid gzip: ${reason}` } };
  }
}
