/**
 * Event timestamps: ISO-8601 text with a mandatory offset, or epoch milliseconds.
 *
 * Date.parse is not used: it accepts text without an offset (and then guesses local
 * time), two-digit years, month names and impossible dates that it rolls over
 * (2026-02-30 becomes March 2nd), and it keeps only millisecond precision. This parser
 * reads characters by position with no regular expression and no allocation, so a
 * timestamp costs about a hundred nanoseconds.
 */

/** The largest epoch milliseconds a JavaScript Date holds (ECMAScript's time value range). */
const dateMsMax = 8.64e15;
const zero = 0x30;
const dash = 0x2d;
const colon = 0x3a;
const dot = 0x2e;
const plus = 0x2b;
const minus = 0x2d;
const spaceChar = 0x20;
const upperT = 0x54;
const lowerT = 0x74;
const upperZ = 0x5a;
const lowerZ = 0x7a;

/**
 * Returns the timestamp as integer microseconds since the Unix epoch, or null when the
 * value is neither an ISO-8601 timestamp with an offset nor epoch milliseconds.
 *
 * Accepted:
 * - text `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM)`, where `T` may also be `t` or a
 *   space, `Z` may be `z`, and the fraction has 1–9 digits (digits past the sixth are
 *   truncated, as PostgreSQL keeps microseconds);
 * - a non-negative number of milliseconds since the epoch, at most 8.64e15 (the last
 *   instant a JavaScript Date can hold); a fractional part is rounded to the nearest
 *   microsecond, because a double holding ~1.7e12 ms cannot represent every microsecond
 *   exactly and rounding recovers the one the client meant. Larger numbers are not
 *   instants at all: 1e308 became Infinity µs and its error message read
 *   "timestamp Infinity ms is outside the accepted window" (found by test/fuzz);
 * - a valid Date (what msgpackr makes of the msgpack timestamp extension).
 *
 * Strings of digits are refused: a number sent as text is ambiguous between seconds and
 * milliseconds, and clients that mean epoch time send a number.
 */
export function parseTimestamp(value: unknown): number | null {
  if (typeof value === 'string') return parseIsoTimestamp(value);
  if (typeof value === 'number') {
    if (!(value >= 0 && value <= dateMsMax)) return null;
    return Math.round(value * 1000);
  }
  if (value instanceof Date) {
    const ms = value.getTime();
    return Number.isFinite(ms) ? ms * 1000 : null;
  }
  return null;
}

/** Parses ISO-8601 text with an offset; see parseTimestamp. */
export function parseIsoTimestamp(text: string): number | null {
  // The shortest form is `2026-01-01T00:00:00Z` (20 characters); the longest has nine
  // fraction digits and a `+HH:MM` offset (35).
  const length = text.length;
  if (length < 20 || length > 35) return null;
  const year = digits4(text, 0);
  const month = digits2(text, 5);
  const day = digits2(text, 8);
  const hour = digits2(text, 11);
  const minute = digits2(text, 14);
  const second = digits2(text, 17);
  if (year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return null;
  if (text.charCodeAt(4) !== dash || text.charCodeAt(7) !== dash || text.charCodeAt(13) !== colon || text.charCodeAt(16) !== colon) return null;
  const separator = text.charCodeAt(10);
  if (separator !== upperT && separator !== lowerT && separator !== spaceChar) return null;
  if (day > daysInMonth(year, month)) return null;

  let position = 19;
  let fractionUs = 0;
  if (text.charCodeAt(position) === dot) {
    const fractionStart = ++position;
    while (position < length && isDigit(text.charCodeAt(position))) {
      // Only the first six digits matter; later ones are truncated.
      if (position - fractionStart < 6) fractionUs = fractionUs * 10 + (text.charCodeAt(position) - zero);
      position++;
    }
    const fractionDigits = position - fractionStart;
    if (fractionDigits < 1 || fractionDigits > 9) return null;
    for (let i = fractionDigits; i < 6; i++) fractionUs *= 10;
  }

  const offsetMinutes = parseOffset(text, position);
  if (offsetMinutes === null) return null;
  const epochSeconds = daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offsetMinutes * 60;
  return epochSeconds * 1_000_000 + fractionUs;
}

/** Reads `Z`, `±HH:MM` or `±HHMM` ending exactly at the end of the text; minutes east of UTC. */
function parseOffset(text: string, position: number): number | null {
  const remaining = text.length - position;
  const first = text.charCodeAt(position);
  if (first === upperZ || first === lowerZ) return remaining === 1 ? 0 : null;
  if (first !== plus && first !== minus) return null;
  let hours: number;
  let minutes: number;
  if (remaining === 6 && text.charCodeAt(position + 3) === colon) {
    hours = digits2(text, position + 1);
    minutes = digits2(text, position + 4);
  } else if (remaining === 5) {
    hours = digits2(text, position + 1);
    minutes = digits2(text, position + 3);
  } else return null;
  if (hours < 0 || hours > 23 || minutes < 0 || minutes > 59) return null;
  const total = hours * 60 + minutes;
  return first === minus ? -total : total;
}

/** Two ASCII digits at `position` as a number, or -1. */
function digits2(text: string, position: number): number {
  const tens = text.charCodeAt(position) - zero;
  const ones = text.charCodeAt(position + 1) - zero;
  // Written as negations so that NaN (a position past the end) fails too.
  if (!(tens >= 0 && tens <= 9 && ones >= 0 && ones <= 9)) return -1;
  return tens * 10 + ones;
}

function digits4(text: string, position: number): number {
  const high = digits2(text, position);
  const low = digits2(text, position + 2);
  return high < 0 || low < 0 ? -1 : high * 100 + low;
}

function isDigit(code: number): boolean {
  return code >= zero && code <= zero + 9;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * Days since 1970-01-01 of a proleptic Gregorian date. Counting years from March makes
 * the leap day the last day of the year, so each 400-year era has a fixed shape and the
 * day of the era is a closed formula (the well-known civil-to-days construction).
 */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const monthFromMarch = month > 2 ? month - 3 : month + 9;
  const dayOfYear = Math.floor((153 * monthFromMarch + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}
