import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffBaseMs, backoffCeilingMs, backoffMs, classifyDatabaseError } from '../../src/sink/retry-policy';

const withCode = (code: unknown): object => Object.assign(new Error('x'), { code });

test('classifyDatabaseError follows the rule table', () => {
  const table: Array<[unknown, ReturnType<typeof classifyDatabaseError>]> = [
    ['23505', 'duplicate'],
    ['22P04', 'fatal'],
    ['08P01', 'fatal'],
    ['08006', 'transient'],
    ['08001', 'transient'],
    ['08003', 'transient'],
    ['40001', 'transient'],
    ['40P01', 'transient'],
    ['40003', 'transient'],
    ['53000', 'transient'],
    ['53100', 'transient'],
    ['53200', 'transient'],
    ['53300', 'transient'],
    ['57P01', 'transient'],
    ['57P02', 'transient'],
    ['57P03', 'transient'],
    ['57014', 'transient'],
    ['55P03', 'transient'],
    ['58030', 'transient'],
    ['22P02', 'row-data'],
    ['22P05', 'row-data'],
    ['22021', 'row-data'],
    ['22008', 'row-data'],
    ['23502', 'row-data'],
    ['23514', 'row-data'],
    ['54000', 'row-data'],
    ['54001', 'row-data'],
    ['42P01', 'fatal'],
    ['42601', 'fatal'],
    ['25P02', 'fatal'],
    ['XX000', 'fatal'],
    ['ECONNREFUSED', 'transient'],
    ['ECONNRESET', 'transient'],
    ['EPIPE', 'transient'],
    ['ETIMEDOUT', 'transient'],
    ['EHOSTUNREACH', 'transient'],
    ['ENETUNREACH', 'transient'],
    ['EAI_AGAIN', 'transient'],
  ];
  for (const [code, expected] of table) {
    assert.equal(classifyDatabaseError(withCode(code)), expected, `code ${String(code)}`);
  }
});

test('classifyDatabaseError calls anything unrecognisable fatal', () => {
  for (const value of [
    undefined,
    null,
    42,
    'ECONNRESET',
    new Error('Connection terminated unexpectedly'),
    withCode(undefined),
    withCode(57014),
    withCode(''),
    withCode('ERR_ASSERTION'),
    withCode('ENOENT'),
    withCode('2350'),
    withCode('235055'),
    withCode('23505 '),
    withCode('08p01'),
  ]) {
    assert.equal(classifyDatabaseError(value), 'fatal', `value ${String(value)}`);
  }
});

test('backoffMs doubles from 50 ms, caps at 2 s, and keeps at least half the delay', () => {
  const low = (attempt: number): number => backoffMs(attempt, () => 0);
  const high = (attempt: number): number => backoffMs(attempt, () => 0.999999);
  assert.equal(high(0), backoffBaseMs);
  assert.equal(low(0), backoffBaseMs / 2);
  assert.equal(high(1), 100);
  assert.equal(high(3), 400);
  assert.equal(high(5), 1_600);
  assert.equal(high(6), backoffCeilingMs);
  assert.equal(high(1_000), backoffCeilingMs);
  assert.equal(low(1_000), backoffCeilingMs / 2);
  for (let attempt = 0; attempt < 40; attempt++) {
    const delayMs = backoffMs(attempt);
    assert.ok(delayMs >= low(attempt) && delayMs <= high(attempt), `attempt ${attempt}: ${delayMs}`);
  }
});

test('backoffMs rejects attempts that are not non-negative integers', () => {
  for (const attempt of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => backoffMs(attempt), RangeError);
  }
});
