import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isoOfMicros, ParameterError, QueryParameters } from '../../src/query/query-parameters';

function problemOf(work: () => unknown): { code: string; parameter: string | null; message: string } {
  try {
    work();
  } catch (error) {
    assert.ok(error instanceof ParameterError, String(error));
    return error.problem;
  }
  assert.fail('expected a ParameterError');
}

test('unknown and repeated parameters are refused by name', () => {
  assert.deepEqual(problemOf(() => QueryParameters.parse('limt=5', ['limit'])).parameter, 'limt');
  assert.match(problemOf(() => QueryParameters.parse('limt=5', ['limit', 'from'])).message, /known: limit, from/);
  assert.equal(problemOf(() => QueryParameters.parse('limit=5&limit=6', ['limit'])).parameter, 'limit');
});

test('integers: bounds, fallback, and no signs, fractions or exponents', () => {
  const range = { min: 1, max: 100, fallback: 10 };
  assert.equal(QueryParameters.parse('', ['limit']).integer('limit', range), 10);
  assert.equal(QueryParameters.parse('limit=', ['limit']).integer('limit', range), 10);
  assert.equal(QueryParameters.parse('limit=100', ['limit']).integer('limit', range), 100);
  for (const bad of ['0', '101', '-1', '1.5', '1e2', 'ten']) {
    const problem = problemOf(() => QueryParameters.parse(`limit=${bad}`, ['limit']).integer('limit', range));
    assert.equal(problem.code, 'ERR_QUERY_BAD_PARAMETER');
    assert.equal(problem.parameter, 'limit');
    assert.match(problem.message, /from 1 to 100/);
  }
});

test('instants: offsets required unless naive is read as UTC; days are UTC midnights', () => {
  const parse = (value: string) => QueryParameters.parse(`from=${encodeURIComponent(value)}`, ['from']);
  assert.equal(parse('2026-12-07T10:00:00Z').instantUs('from'), Date.UTC(2026, 11, 7, 10) * 1000);
  assert.equal(parse('2026-12-07T11:00:00.000001+01:00').instantUs('from'), Date.UTC(2026, 11, 7, 10) * 1000 + 1);
  assert.equal(parse('2026-12-07').instantUs('from'), Date.UTC(2026, 11, 7) * 1000);
  assert.equal(problemOf(() => parse('2026-12-07T10:00:00').instantUs('from')).parameter, 'from');
  assert.equal(parse('2026-12-07T10:00:00').instantUs('from', { naiveIsUtc: true }), Date.UTC(2026, 11, 7, 10) * 1000);
  assert.match(problemOf(() => parse('2026-02-30').instantUs('from')).message, /YYYY-MM-DD/);
  assert.equal(problemOf(() => parse('yesterday').dayMs('from')).parameter, 'from');
  assert.equal(parse('2024-02-29').dayMs('from'), Date.UTC(2024, 1, 29));
});

test('choices and lists name the allowed values', () => {
  const params = QueryParameters.parse('interval=week&group_by=event_type,source', ['interval', 'group_by']);
  assert.match(problemOf(() => params.choice('interval', ['minute', 'hour', 'day'], 'hour')).message, /minute, hour, day/);
  assert.deepEqual(params.list('group_by', ['event_type', 'source']), ['event_type', 'source']);
  assert.equal(problemOf(() => QueryParameters.parse('g=source,source', ['g']).list('g', ['source'])).parameter, 'g');
  assert.equal(problemOf(() => QueryParameters.parse('g=actor', ['g']).list('g', ['source'])).parameter, 'g');
});

test('text refuses NUL and overlong values', () => {
  assert.equal(problemOf(() => QueryParameters.parse('source=a%00b', ['source']).text('source')).parameter, 'source');
  assert.equal(problemOf(() => QueryParameters.parse(`source=${'x'.repeat(300)}`, ['source']).text('source')).parameter, 'source');
  assert.equal(QueryParameters.parse('source=web%20app', ['source']).text('source'), 'web app');
});

test('isoOfMicros keeps microseconds', () => {
  assert.equal(isoOfMicros(Date.UTC(2026, 11, 7, 10) * 1000 + 123_456), '2026-12-07T10:00:00.123456Z');
  assert.equal(isoOfMicros(Date.UTC(2026, 11, 7, 10) * 1000 + 7), '2026-12-07T10:00:00.000007Z');
});
