import { C1 } from 'msgpackr';
import type { ErrorCode, EventError } from '../errors';

/**
 * Small helpers for judging client input and talking about it in error messages, shared
 * by body decoding (src/decode/decode-body.ts), event validation and the attributes walk.
 */

/** Longest piece of client input quoted back in an error message. */
export const quotedCharsMax = 64;

export function eventError(index: number, code: ErrorCode, field: string | null, message: string): EventError {
  return { index, code, field, message };
}

/** Plain objects only: what JSON.parse makes, or msgpackr for a map. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Names what a value is, for messages: `a string`, `an array`, `binary data`… */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string': return 'a string';
    case 'number': return Number.isFinite(value) ? 'a number' : String(value);
    case 'boolean': return 'a boolean';
    case 'bigint': return 'a bigint';
    case 'undefined': return 'undefined';
    case 'object': return describeObject(value);
    default: return `a ${typeof value}`;
  }
}

function describeObject(value: object | null): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (isPlainObject(value)) return 'an object';
  if (value === C1) return 'the reserved msgpack value 0xC1';
  if (value instanceof Date) return 'a date';
  if (value instanceof Uint8Array || ArrayBuffer.isView(value)) return 'binary data';
  if (value instanceof Map) return 'a map';
  if (value instanceof Set) return 'a set';
  return 'an object of a special kind';
}

/** JSON-quoted (or bare) text cut to `max` characters with an ellipsis, for messages. */
export function quoteLimited(text: string, max: number, quoted: boolean): string {
  const cut = text.length > max ? `${text.slice(0, max)}…` : text;
  return quoted ? JSON.stringify(cut) : cut;
}

/**
 * String.prototype.isWellFormed (V8 11.x, Node 20) checks for lone surrogates natively;
 * the project's `lib` setting predates its typings.
 */
export const isWellFormed = (String.prototype as unknown as { isWellFormed(this: string): boolean }).isWellFormed;
