/**
 * Small readers for the fields schemes take from a payload. A provider's payload is
 * trusted once its signature verifies, but not its shape: every reader falls back
 * rather than throw, so a delivery with an odd field is still stored.
 */
import { createHash } from 'node:crypto';
import { isPlainObject } from '../decode/client-input';
import { parseTimestamp } from '../validate/timestamp';

/** A top-level field of an object payload, or undefined. */
export function fieldOf(payload: unknown, name: string): unknown {
  return isPlainObject(payload) && Object.hasOwn(payload, name) ? payload[name] : undefined;
}

/** A non-empty string field, or an integer field as decimal text; else null. */
export function idText(value: unknown): string | null {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return null;
}

/** A non-empty string field, else null. */
export function text(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/**
 * An id for a delivery that carries none: `wh_` + the first 128 bits of SHA-256 of the
 * body in base64url. The same bytes sent again (a retry) get the same id and dedupe; the
 * flip side is that two deliveries with identical bodies are stored once.
 */
export function bodyHashId(body: Buffer): string {
  return `wh_${createHash('sha256').update(body).digest().toString('base64url', 0, 16)}`;
}

/** A timestamp field the engine's validation will accept (ISO-8601 text or epoch ms), else null. */
export function usableTimestamp(value: unknown): number | string | null {
  if (typeof value !== 'string' && typeof value !== 'number') return null;
  return parseTimestamp(value) === null ? null : value;
}

/** A unix-seconds integer field as epoch milliseconds, else null. */
export function unixSecondsMs(value: unknown): number | null {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value * 1000 : null;
}
