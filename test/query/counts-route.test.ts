/**
 * GET /v1/analytics/counts against a real engine over HTTP, every number checked against
 * count(*) of the events table: zero-filled buckets, complete flags against as_of,
 * group_by series with series_limit and other, days and hours of America/New_York across
 * both DST changes of 2025 (late events, accepted by a three-year timestamp window), bad
 * parameters named. Bucket starts of odd zones (half-hour offsets and DST, a DST change at
 * midnight, a skipped day) are checked directly, without the database. Which rollup
 * answers is shown by a probe count different in each table, and the hourly table's
 * answers are compared with the minute table's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bucketsMax } from '../../src/query/counts-route';
import { bucketsOf, Zone } from '../../src/query/zone-buckets';
import { post, request, startTestEngine, type Answer, type TestEngine } from '../support/engine';

const minuteMs = 60_000;
const hourMs = 3_600_000;
const dayMs = 86_400_000;
let harness: TestEngine;
/** Five whole hours before the current one start here. */
const firstHourMs = Math.floor(Date.now() / hourMs) * hourMs - 5 * hourMs;

/** [minutes after firstHourMs, type, source, how many] */
const recent: ReadonlyArray<readonly [number, string, string, number]> = [
  [5, 'alpha', 'web', 3],
  [65, 'beta', 'mobile', 2],
  [190, 'alpha', 'mobile', 1],
  [191, 'gamma', 'web', 4],
  [192, 'delta', 'api', 1],
  [299, 'beta', 'web', 1],
];
/** New York across the 2025 DST changes: [UTC instant, type]. */
const newYork: ReadonlyArray<readonly [string, string]> = [
  ['2025-03-08T12:00:00Z', 'dst'], // Mar 8
  ['2025-03-09T06:30:00Z', 'dst'], // Mar 9 01:30 EST
  ['2025-03-09T07:30:00Z', 'dst'], // Mar 9 03:30 EDT, after the skipped hour
  ['2025-03-10T03:30:00Z', 'dst'], // Mar 9 23:30 EDT, the 23-hour day's last hour
  ['2025-11-01T12:00:00Z', 'dst'], // Nov 1
  ['2025-11-02T04:30:00Z', 'dst'], // Nov 2 00:30 EDT
  ['2025-11-02T05:30:00Z', 'dst'], // Nov 2 01:30 EDT
  ['2025-11-02T06:30:00Z', 'dst'], // Nov 2 01:30 EST, the same wall hour again
  ['2025-11-03T04:30:00Z', 'dst'], // Nov 2 23:30 EST, the 25-hour day's last hour
  ['2025-11-03T05:30:00Z', 'dst'], // Nov 3 00:30 EST
];

before(async () => {
  harness = await startTestEngine({ actorCount: 2, timestampPastMs: 3 * 365 * dayMs });
  const events: object[] = [];
  for (const [minutes, type, source, count] of recent) {
    for (let n = 0; n < count; n++) {
      events.push({ event_id: `c-${minutes}-${n}`, event_type: type, source, timestamp: new Date(firstHourMs + minutes * minuteMs + n * 1000).toISOString() });
    }
  }
  newYork.forEach(([at, type], index) => events.push({ event_id: `ny-${index}`, event_type: type, source: 'clock', timestamp: at }));
  for (const body of [events, events.slice(0, 5)]) {
    const answer = await post(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events: body }));
    assert.equal(answer.status, 200, answer.text);
  }
});
after(async () => {
  await harness?.close();
});

function get(query: string): Promise<Answer> {
  return request('GET', `${harness.baseUrl}/v1/analytics/counts?${query}`);
}

async function counts(query: string): Promise<any> {
  const answer = await get(query);
  assert.equal(answer.status, 200, `${query}: ${answer.text}`);
  return answer.json;
}

const iso = (ms: number) => new Date(ms).toISOString();
/** The ISO text the route writes for a whole-millisecond instant. */
const isoUs = (ms: number) => `${iso(ms).slice(0, -1)}000Z`;

/** count(*) per bucket (given as SQL over occurred_at returning the bucket start) and per key. */
async function stored(bucketSql: string, fromMs: number, toMs: number, keys = "''"): Promise<Map<string, Map<number, number>>> {
  const rows = await harness.query<{ key: string; start_ms: string; n: number }>(
    `SELECT ${keys} AS key, (extract(epoch FROM ${bucketSql}) * 1000)::int8::text AS start_ms, count(*)::int AS n
       FROM events WHERE occurred_at >= $1::timestamptz AND occurred_at < $2::timestamptz GROUP BY 1, 2`,
    [iso(fromMs), iso(toMs)],
  );
  const byKey = new Map<string, Map<number, number>>();
  for (const row of rows) {
    const buckets = byKey.get(row.key) ?? new Map<number, number>();
    buckets.set(Number(row.start_ms), row.n);
    byKey.set(row.key, buckets);
  }
  return byKey;
}

function zeroFilled(starts: readonly number[], buckets: Map<number, number> | undefined): number[] {
  return starts.map((start) => buckets?.get(start) ?? 0);
}

describe('shapes and values', () => {
  test('hourly totals over six hours: every bucket present, zero-filled, equal to count(*)', async () => {
    const [fromMs, toMs] = [firstHourMs - hourMs + 17 * minuteMs, firstHourMs + 5 * hourMs];
    const answer = await counts(`from=${iso(fromMs)}&to=${iso(toMs)}&interval=hour`);
    assert.deepEqual(Object.keys(answer), ['from', 'to', 'interval', 'tz', 'group_by', 'as_of', 'buckets', 'totals', 'series', 'other']);
    const starts = Array.from({ length: 6 }, (_, i) => firstHourMs - hourMs + i * hourMs);
    assert.equal(answer.from, isoUs(starts[0] as number), 'from is widened to the start of its bucket');
    assert.equal(answer.to, isoUs(toMs));
    assert.deepEqual([answer.interval, answer.tz, answer.group_by, answer.series, answer.other], ['hour', 'UTC', [], [], null]);
    assert.deepEqual(answer.buckets.map((bucket: { start: string }) => bucket.start), starts.map(isoUs));
    const expected = zeroFilled(starts, (await stored("date_bin('1 hour', occurred_at, timestamptz '1970-01-01Z')", starts[0] as number, toMs)).get(''));
    assert.deepEqual(answer.totals, expected);
    assert.deepEqual(answer.totals, [0, 3, 2, 0, 6, 1], 'the events as sent, duplicates not counted');
    assert.ok(answer.buckets.every((bucket: { complete: boolean }) => bucket.complete), 'all in the past');
  });

  test('complete is false exactly for the buckets ending after as_of; the default range is the last 24 hours', async () => {
    const before = Date.now();
    const answer = await counts(`to=${iso(before + 2 * hourMs)}&interval=hour`);
    const asOf = Date.parse(answer.as_of);
    assert.match(answer.as_of, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    assert.ok(asOf >= before - 1000 && asOf <= Date.now() + 1000, 'as_of is the database clock at the read');
    const ends = [...answer.buckets.slice(1).map((bucket: { start: string }) => Date.parse(bucket.start)), Date.parse(answer.to)];
    assert.deepEqual(answer.buckets.map((bucket: { complete: boolean }) => bucket.complete), ends.map((end) => end <= asOf));
    assert.equal(answer.buckets.filter((bucket: { complete: boolean }) => !bucket.complete).length, 3, 'the hour filling and the two ahead');
    const defaulted = await counts('');
    assert.equal(defaulted.interval, 'hour');
    assert.equal(defaulted.buckets.length, Date.now() % hourMs === 0 ? 24 : 25);
    assert.equal(defaulted.buckets.at(-1).complete, false);
    assert.equal(defaulted.totals.reduce((sum: number, n: number) => sum + n, 0), 12, 'every recent event, none twice');
  });

  test('group_by series: keys, counts per bucket, sorted by total; series_limit folds the rest into other', async () => {
    const [fromMs, toMs] = [firstHourMs, firstHourMs + 5 * hourMs];
    const starts = Array.from({ length: 5 }, (_, i) => fromMs + i * hourMs);
    const byPair = await stored("date_bin('1 hour', occurred_at, timestamptz '1970-01-01Z')", fromMs, toMs, "event_type || '/' || source");
    const answer = await counts(`from=${iso(fromMs)}&to=${iso(toMs)}&interval=hour&group_by=event_type,source`);
    assert.deepEqual(answer.group_by, ['event_type', 'source']);
    assert.equal(answer.series.length, byPair.size);
    for (const series of answer.series) {
      assert.deepEqual(Object.keys(series), ['event_type', 'source', 'counts', 'total']);
      const expected = zeroFilled(starts, byPair.get(`${series.event_type}/${series.source}`));
      assert.deepEqual(series.counts, expected, `${series.event_type}/${series.source}`);
      assert.equal(series.total, expected.reduce((sum, n) => sum + n, 0));
    }
    const totals = answer.series.map((series: { total: number }) => series.total);
    assert.deepEqual(totals, [...totals].sort((a, b) => b - a));
    assert.deepEqual(answer.series.slice(0, 2).map((series: { event_type: string }) => series.event_type), ['gamma', 'alpha']);

    const limited = await counts(`from=${iso(fromMs)}&to=${iso(toMs)}&interval=hour&group_by=event_type,source&series_limit=2`);
    assert.deepEqual(limited.series, answer.series.slice(0, 2));
    assert.equal(limited.other.series, byPair.size - 2);
    assert.equal(limited.other.total, answer.series.slice(2).reduce((sum: number, series: { total: number }) => sum + series.total, 0));
    const summed = limited.other.counts.map((n: number, i: number) => n + limited.series[0].counts[i] + limited.series[1].counts[i]);
    assert.deepEqual(summed, limited.totals);

    const bySource = await counts(`from=${iso(fromMs)}&to=${iso(toMs)}&group_by=source&event_type=beta`);
    assert.deepEqual(bySource.series, [
      { source: 'mobile', counts: [0, 2, 0, 0, 0], total: 2 },
      { source: 'web', counts: [0, 0, 0, 0, 1], total: 1 },
    ]);
    assert.deepEqual(bySource.totals, [0, 2, 0, 0, 1]);
    assert.deepEqual((await counts(`from=${iso(fromMs)}&to=${iso(toMs)}&source=api&event_type=delta`)).totals, [0, 0, 0, 1, 0]);
  });

  test('minute buckets and UTC days equal count(*)', async () => {
    const fromMs = firstHourMs + 188 * minuteMs;
    const minutes = await counts(`from=${iso(fromMs)}&to=${iso(fromMs + 6 * minuteMs)}&interval=minute`);
    assert.deepEqual(minutes.totals, [0, 0, 1, 4, 1, 0]);
    const dayFrom = Math.floor(firstHourMs / dayMs) * dayMs - 2 * dayMs;
    const days = await counts(`from=${iso(dayFrom)}&to=${iso(dayFrom + 4 * dayMs)}&interval=day&group_by=event_type`);
    const starts = Array.from({ length: 4 }, (_, i) => dayFrom + i * dayMs);
    assert.deepEqual(days.totals, zeroFilled(starts, (await stored("date_bin('1 day', occurred_at, timestamptz '1970-01-01Z')", dayFrom, dayFrom + 4 * dayMs)).get('')));
    assert.equal(days.totals.reduce((sum: number, n: number) => sum + n, 0), 12);
  });
});

describe('time zones', () => {
  test('days of America/New_York start at local midnight: 23 hours in March, 25 in November', async () => {
    for (const [first, last, expectedStarts] of [
      ['2025-03-08', '2025-03-11', ['2025-03-08T05:00:00Z', '2025-03-09T05:00:00Z', '2025-03-10T04:00:00Z']],
      ['2025-11-01', '2025-11-04', ['2025-11-01T04:00:00Z', '2025-11-02T04:00:00Z', '2025-11-03T05:00:00Z']],
    ] as const) {
      const answer = await counts(`from=${first}&to=${last}&interval=day&tz=america/new_york`);
      assert.equal(answer.tz, 'America/New_York');
      const starts = expectedStarts.map((text) => Date.parse(text));
      assert.deepEqual(answer.buckets.map((bucket: { start: string }) => bucket.start), starts.map(isoUs));
      const endMs = Date.parse(answer.to);
      const local = await stored("(date_trunc('day', occurred_at AT TIME ZONE 'America/New_York') AT TIME ZONE 'America/New_York')", starts[0] as number, endMs);
      assert.deepEqual(answer.totals, zeroFilled(starts, local.get('')));
      assert.deepEqual(answer.totals, first.startsWith('2025-03') ? [1, 3, 0] : [1, 4, 1]);
    }
  });

  test('hours of America/New_York: the repeated 01:00 is two buckets, the skipped 02:00 none', async () => {
    const fall = await counts('from=2025-11-02T04:00:00Z&to=2025-11-02T08:00:00Z&interval=hour&tz=America/New_York');
    assert.deepEqual(fall.buckets.map((bucket: { start: string }) => bucket.start.slice(11, 16)), ['04:00', '05:00', '06:00', '07:00']);
    assert.deepEqual(fall.totals, [1, 1, 1, 0]);
    const spring = await counts('from=2025-03-09T06:00:00Z&to=2025-03-09T09:00:00Z&interval=hour&tz=America/New_York&group_by=source');
    assert.deepEqual(spring.totals, [1, 1, 0]);
    assert.deepEqual(spring.series, [{ source: 'clock', counts: [1, 1, 0], total: 2 }]);
  });

  test('bucketsOf: half-hour offsets and changes, DST at midnight, a skipped day', () => {
    const startsOf = (zone: string, stepMs: number, from: string, to: string) => {
      const { starts, endMs } = bucketsOf(Zone.named(zone) as Zone, stepMs, Date.parse(from), Date.parse(to));
      return [...starts, endMs].map((ms) => iso(ms).slice(0, 16));
    };
    assert.deepEqual(startsOf('Asia/Kolkata', hourMs, '2025-03-08T05:00Z', '2025-03-08T06:00Z'), ['2025-03-08T04:30', '2025-03-08T05:30', '2025-03-08T06:30']);
    // Lord Howe moves its clocks by 30 minutes: its local hour 02 lasts 30 minutes in October, 90 in April.
    assert.deepEqual(startsOf('Australia/Lord_Howe', hourMs, '2025-10-04T14:30Z', '2025-10-04T16:01Z'), ['2025-10-04T14:30', '2025-10-04T15:30', '2025-10-04T16:00', '2025-10-04T17:00']);
    assert.deepEqual(startsOf('Australia/Lord_Howe', hourMs, '2026-04-04T14:00Z', '2026-04-04T15:31Z'), ['2026-04-04T14:00', '2026-04-04T15:30', '2026-04-04T16:30']);
    // Santiago springs forward at midnight: 7 September 2025 begins at 01:00 local, the change itself.
    assert.deepEqual(startsOf('America/Santiago', dayMs, '2025-09-06T12:00Z', '2025-09-07T12:00Z'), ['2025-09-06T04:00', '2025-09-07T04:00', '2025-09-08T03:00']);
    // Samoa skipped 30 December 2011: the 29th is followed by the 31st.
    assert.deepEqual(startsOf('Pacific/Apia', dayMs, '2011-12-29T12:00Z', '2011-12-30T12:00Z'), ['2011-12-29T10:00', '2011-12-30T10:00', '2011-12-31T10:00']);
    assert.deepEqual(startsOf('UTC', minuteMs, '2025-03-08T10:17:30Z', '2025-03-08T10:19:00Z'), ['2025-03-08T10:17', '2025-03-08T10:18', '2025-03-08T10:19']);
    for (const bad of ['Mars/Base', '+01:00', '../etc/passwd', 'Europe/', 'UTC ']) assert.equal(Zone.named(bad), null, bad);
    assert.equal(Zone.named('Etc/UTC')?.isUtc, true);
  });
});

describe('bad parameters', () => {
  test('each is a 400 naming the parameter', async () => {
    const now = Date.now();
    for (const [query, parameter] of [
      ['interval=week', 'interval'],
      ['tz=Mars/Base', 'tz'],
      ['tz=%2B01:00', 'tz'],
      [`from=${iso(now)}&to=${iso(now)}`, 'to'],
      [`from=${iso(now)}&to=${iso(now - hourMs)}`, 'to'],
      [`from=${iso(now + hourMs)}`, 'from'],
      [`from=${iso(now - 8 * dayMs)}&to=${iso(now)}&interval=minute`, 'from'],
      [`from=1900-01-01&to=1900-01-02&interval=day`, 'from'],
      ['from=2026-01-01T00:00:00', 'from'],
      ['to=tomorrow', 'to'],
      ['group_by=actor_id', 'group_by'],
      ['group_by=source,source', 'group_by'],
      ['series_limit=0', 'series_limit'],
      ['series_limit=1001', 'series_limit'],
      [`from=${iso(now - 2 * dayMs)}&to=${iso(now)}&interval=minute&group_by=source&series_limit=100`, 'series_limit'],
      ['limit=10', 'limit'],
      ['interval=hour&interval=day', 'interval'],
    ] as const) {
      const answer = await get(query);
      assert.equal(answer.status, 400, `${query}: ${answer.text}`);
      assert.equal(answer.json.error.code, 'ERR_QUERY_BAD_PARAMETER', query);
      assert.equal(answer.json.error.parameter, parameter, `${query}: ${answer.text}`);
    }
    const widest = await counts(`from=${iso(firstHourMs)}&to=${iso(firstHourMs + bucketsMax * minuteMs)}&interval=minute`);
    assert.equal(widest.buckets.length, bucketsMax, 'a week of minutes is allowed');
    const widestSeries = await counts(`from=${iso(firstHourMs)}&to=${iso(firstHourMs + bucketsMax * minuteMs)}&interval=minute&group_by=event_type`);
    assert.equal(widestSeries.series.length, 4, 'with the default series_limit too');
    assert.equal(widestSeries.series.reduce((sum: number, series: { total: number }) => sum + series.total, 0), 12);
  });
});

describe('which rollup answers', () => {
  test('the coarsest table whose buckets tile the answer: daily for UTC days, hourly on whole UTC hours, minute otherwise', async () => {
    // One probe count per table, different in each, at 12:00Z: the total names the table that answered.
    const probe = '2025-01-15T12:00:00Z';
    await harness.query("INSERT INTO event_counts_minute VALUES ($1, 'probe', 'which', 999, 1)", [probe]);
    await harness.query("INSERT INTO event_counts_hourly VALUES ($1, 'probe', 'which', 999, 10)", [probe]);
    await harness.query("INSERT INTO event_counts_daily (day, event_type, source, shard, count) VALUES ($1::date, 'probe', 'which', 999, 100)", [probe]);
    try {
      for (const [query, expected] of [
        ['from=2025-01-15&to=2025-01-16&interval=day', 100],
        ['from=2025-01-15&to=2025-01-16&interval=hour', 10],
        ['from=2025-01-15T11:00:00Z&to=2025-01-15T13:00:00Z&interval=minute', 1],
        ['from=2025-01-15&to=2025-01-16&interval=day&tz=America/New_York', 10],
        ['from=2025-01-15&to=2025-01-16&interval=hour&tz=America/New_York', 10],
        ['from=2025-01-15&to=2025-01-16&interval=day&tz=Europe/Berlin', 10],
        ['from=2025-01-01&to=2025-03-31&interval=day&tz=Asia/Tokyo', 10],
        ['from=2025-01-15&to=2025-01-16&interval=day&tz=Asia/Kolkata', 1],
        ['from=2025-01-15T11:00:00Z&to=2025-01-15T13:00:00Z&interval=hour&tz=Asia/Kolkata', 1],
        ['from=2025-01-15&to=2025-01-16&interval=day&tz=Asia/Kathmandu', 1],
        // Lord Howe is +11 in January (whole hours) and +10:30 after 6 April 2025.
        ['from=2025-01-15&to=2025-01-16&interval=day&tz=Australia/Lord_Howe', 10],
        ['from=2025-01-15&to=2025-04-10&interval=day&tz=Australia/Lord_Howe', 1],
      ] as const) {
        const answer = await counts(`${query}&event_type=probe`);
        assert.equal(answer.totals.reduce((sum: number, n: number) => sum + n, 0), expected, query);
      }
    } finally {
      for (const table of ['event_counts_minute', 'event_counts_hourly', 'event_counts_daily']) await harness.query(`DELETE FROM ${table} WHERE event_type = 'probe'`);
    }
  });

  /** The route's series, as `type/source` → counts, against the minute rollup summed per bucket by `bucketSql` (over `bucket`). */
  async function assertMinuteTableAgrees(query: string, bucketSql: string): Promise<void> {
    const answer = await counts(`${query}&group_by=event_type,source&series_limit=100`);
    const starts = answer.buckets.map((bucket: { start: string }) => Date.parse(bucket.start));
    const rows = await harness.query<{ key: string; start_ms: string; n: number }>(
      `SELECT event_type || '/' || source AS key, (extract(epoch FROM ${bucketSql}) * 1000)::int8::text AS start_ms, sum(count)::int AS n
         FROM event_counts_minute WHERE bucket >= $1::timestamptz AND bucket < $2::timestamptz GROUP BY 1, 2`,
      [iso(starts[0]), answer.to],
    );
    const expected = new Map<string, number[]>();
    for (const row of rows) {
      const cells = expected.get(row.key) ?? new Array<number>(starts.length).fill(0);
      const index = starts.indexOf(Number(row.start_ms));
      assert.ok(index >= 0, `${query}: the minute table has a bucket the answer lacks (${row.start_ms})`);
      cells[index] = (cells[index] as number) + row.n;
      expected.set(row.key, cells);
    }
    const answered = new Map(answer.series.map((series: { event_type: string; source: string; counts: number[] }) => [`${series.event_type}/${series.source}`, series.counts]));
    assert.deepEqual(answered, expected, query);
    assert.ok(expected.size > 0, `${query}: a range with counts`);
  }

  test('hours (UTC and New York) and New York days read from the hourly table equal the minute table', async () => {
    const now = Date.now();
    await assertMinuteTableAgrees(`from=${iso(now - dayMs)}&to=${iso(now)}&interval=hour`, "date_bin('1 hour', bucket, timestamptz '1970-01-01Z')");
    const newYorkDay = "(date_trunc('day', bucket AT TIME ZONE 'America/New_York') AT TIME ZONE 'America/New_York')";
    await assertMinuteTableAgrees('from=2025-03-01&to=2025-11-10&interval=day&tz=America/New_York', newYorkDay);
    // The fall-back night hour by hour: the repeated 01:00 is two buckets in both tables.
    await assertMinuteTableAgrees('from=2025-11-02T00:00:00Z&to=2025-11-02T12:00:00Z&interval=hour&tz=America/New_York', "date_bin('1 hour', bucket, timestamptz '1970-01-01Z')");
  });
});
