import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTimestamp } from '../../src/validate/timestamp';

/** µs since the epoch from Date.UTC arguments plus extra microseconds. */
function utcUs(year: number, month: number, day: number, hour = 0, minute = 0, second = 0, us = 0): number {
  return Date.UTC(year, month - 1, day, hour, minute, second) * 1000 + us;
}

describe('parseTimestamp, ISO-8601', () => {
  it('parses UTC with Z, with and without a fraction', () => {
    assert.equal(parseTimestamp('2026-11-20T10:00:00Z'), utcUs(2026, 11, 20, 10));
    assert.equal(parseTimestamp('1970-01-01T00:00:00Z'), 0);
    assert.equal(parseTimestamp('2026-11-20T10:00:00.5Z'), utcUs(2026, 11, 20, 10, 0, 0, 500_000));
    assert.equal(parseTimestamp('2026-11-20T10:00:00.123Z'), utcUs(2026, 11, 20, 10, 0, 0, 123_000));
  });

  it('keeps microseconds and truncates digits past the sixth', () => {
    assert.equal(parseTimestamp('2026-11-20T10:00:00.123456Z'), utcUs(2026, 11, 20, 10, 0, 0, 123_456));
    assert.equal(parseTimestamp('2026-11-20T10:00:00.1234569Z'), utcUs(2026, 11, 20, 10, 0, 0, 123_456));
    assert.equal(parseTimestamp('2026-11-20T10:00:00.999999999Z'), utcUs(2026, 11, 20, 10, 0, 0, 999_999));
    assert.equal(parseTimestamp('2026-11-20T10:00:00.000001Z'), utcUs(2026, 11, 20, 10, 0, 0, 1));
  });

  it('applies ±HH:MM and ±HHMM offsets', () => {
    const utc = utcUs(2026, 11, 20, 10);
    assert.equal(parseTimestamp('2026-11-20T12:00:00+02:00'), utc);
    assert.equal(parseTimestamp('2026-11-20T12:00:00+0200'), utc);
    assert.equal(parseTimestamp('2026-11-20T04:30:00-05:30'), utc);
    assert.equal(parseTimestamp('2026-11-20T10:00:00+00:00'), utc);
    assert.equal(parseTimestamp('2026-11-20T10:00:00-00:00'), utc);
    assert.equal(parseTimestamp('2026-11-21T00:45:00+14:45'), utc);
    assert.equal(parseTimestamp('2026-11-20T10:00:00.25+01:00'), utc - 3600_000_000 + 250_000);
    assert.equal(parseTimestamp('2026-01-01T00:30:00+01:00'), utcUs(2025, 12, 31, 23, 30), 'offset crossing a year');
  });

  it('accepts lowercase t and z and a space for T', () => {
    const utc = utcUs(2026, 11, 20, 10);
    assert.equal(parseTimestamp('2026-11-20t10:00:00z'), utc);
    assert.equal(parseTimestamp('2026-11-20 10:00:00Z'), utc);
    assert.equal(parseTimestamp('2026-11-20 11:00:00+01:00'), utc);
  });

  it('knows month lengths and leap years', () => {
    assert.equal(parseTimestamp('2024-02-29T00:00:00Z'), utcUs(2024, 2, 29));
    assert.equal(parseTimestamp('2000-02-29T00:00:00Z'), utcUs(2000, 2, 29));
    assert.equal(parseTimestamp('2026-12-31T23:59:59.999999Z'), utcUs(2026, 12, 31, 23, 59, 59, 999_999));
    for (const text of ['2026-02-29T00:00:00Z', '1900-02-29T00:00:00Z', '2026-02-30T00:00:00Z', '2026-04-31T00:00:00Z', '2026-11-31T00:00:00Z', '2026-01-32T00:00:00Z']) {
      assert.equal(parseTimestamp(text), null, text);
    }
  });

  it('agrees with Date.UTC on every day of several years', () => {
    for (const year of [1970, 1999, 2000, 2024, 2026, 2100]) {
      for (let day = 0; day < 366; day++) {
        const date = new Date(Date.UTC(year, 0, 1 + day));
        if (date.getUTCFullYear() !== year) break;
        const text = date.toISOString().replace('.000Z', 'Z');
        assert.equal(parseTimestamp(text), date.getTime() * 1000, text);
      }
    }
  });

  it('refuses text without an offset, and malformed offsets', () => {
    for (const text of ['2026-11-20T10:00:00', '2026-11-20T10:00:00.123', '2026-11-20T10:00:00+02', '2026-11-20T10:00:00+2:00', '2026-11-20T10:00:00+02:0', '2026-11-20T10:00:00+24:00', '2026-11-20T10:00:00+02:60', '2026-11-20T10:00:00 +02:00', '2026-11-20T10:00:00ZZ', '2026-11-20T10:00:00UTC', '2026-11-20T10:00:00Z ', '2026-11-20T10:00:00+02:00:00']) {
      assert.equal(parseTimestamp(text), null, text);
    }
  });

  it('refuses impossible times and malformed dates', () => {
    const refused = [
      '2026-11-20T24:00:00Z', '2026-11-20T10:60:00Z', '2026-11-20T10:00:60Z', '2026-13-01T00:00:00Z', '2026-00-10T00:00:00Z', '2026-11-00T00:00:00Z',
      '2026-11-20T10:00:00.Z', '2026-11-20T10:00:00.1234567890Z', '2026-11-20T10:00:00,5Z', '2026-11-20X10:00:00Z', '2026/11/20T10:00:00Z',
      '26-11-20T10:00:00Z', '+2026-11-20T10:00:00Z', '2026-1-20T10:00:00Z', '2026-11-20T1:00:00Z', '2026-11-20T10:00Z', '2026-11-20',
      'Fri, 20 Nov 2026 10:00:00 GMT', 'Nov 20 2026', '', 'now', '1700000000000', '２０２６-11-20T10:00:00Z', '2026-11-20T10:00:0aZ', '2026-11-20T10:00:00.1a3Z',
    ];
    for (const text of refused) assert.equal(parseTimestamp(text), null, text);
  });
});

describe('parseTimestamp, epoch milliseconds and other values', () => {
  it('turns milliseconds into microseconds, rounding a fraction to the nearest µs', () => {
    assert.equal(parseTimestamp(1_763_632_800_000), 1_763_632_800_000_000);
    assert.equal(parseTimestamp(0), 0);
    assert.equal(parseTimestamp(1_763_632_800_000.123), 1_763_632_800_000_123);
    assert.equal(parseTimestamp(1_763_632_800_000.5), 1_763_632_800_000_500);
  });

  it('refuses negative, non-finite and non-numeric values', () => {
    for (const value of [-1, -0.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, null, undefined, true, {}, [], [2026], 1n]) {
      assert.equal(parseTimestamp(value), null, String(value));
    }
  });

  it('refuses milliseconds past the last instant a Date holds (1e308 used to become Infinity µs)', () => {
    assert.equal(parseTimestamp(8.64e15), 8.64e18);
    for (const value of [8.64e15 + 1, 1e20, 1e308, Number.MAX_VALUE]) assert.equal(parseTimestamp(value), null, String(value));
  });

  it('accepts a valid Date (the msgpack timestamp extension) and refuses an invalid one', () => {
    assert.equal(parseTimestamp(new Date(Date.UTC(2026, 10, 20, 10))), utcUs(2026, 11, 20, 10));
    assert.equal(parseTimestamp(new Date(Number.NaN)), null);
  });
});
