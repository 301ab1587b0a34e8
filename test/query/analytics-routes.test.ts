/**
 * EventFlux's read routes against a real engine over HTTP: events with chosen days, types
 * and sources (ties in count included, duplicates resent) go in through the ingest API on
 * two actors, and every answer is checked against count(*) of the events table. Then the
 * daily cursor walks every row exactly once, the raw route keeps microseconds, bad
 * parameters are named, the read scope is required, and migration v8 upgrades a v7 database.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { generateKey } from '../../src/auth/key-format';
import { isoOfMicros } from '../../src/query/query-parameters';
import { dayRangeOf, rebuildRollups } from '../../src/rollups/rollup-check';
import { RollupCounts } from '../../src/sink/rollup-counts';
import { migrate } from '../../src/sink/migrations';
import { createTestDatabase } from '../support/database';
import { callRoute, post, request, startLoggedEngine, startTestEngine, type Answer, type TestEngine } from '../support/engine';
import { buildEvent, recordingLogger } from '../sink/fixtures';

const dayMs = 86_400_000;
/** The migration adding event_counts_daily.updated_at (src/sink/migrations.ts). */
const updatedAtVersion = 9;
const types = ['signup', 'click', 'purchase'];
const sources = ['web', 'mobile', 'api'];
const daysBack = [1, 2, 3, 4];
let harness: TestEngine;
let startedMs: number;

/** `YYYY-MM-DD` of the UTC day `back` days before today. */
function dayAgo(back: number): string {
  return new Date(Date.now() - back * dayMs).toISOString().slice(0, 10);
}

/** How many events each (day, type, source) gets: 1 to 3, so counts tie within a day. */
function countOf(back: number, typeIndex: number, sourceIndex: number): number {
  return ((back + typeIndex + sourceIndex) % 3) + 1;
}

function rollupEvents(): object[] {
  const events: object[] = [];
  for (const back of daysBack) {
    types.forEach((type, t) => {
      sources.forEach((source, s) => {
        for (let n = 0; n < countOf(back, t, s); n++) {
          const atMs = Date.parse(`${dayAgo(back)}T09:00:00Z`) + (t * 3 + s) * 7 * 60_000 + n * 1000;
          events.push({ event_id: `d-${back}-${type}-${source}-${n}`, event_type: type, source, user_id: `u-${n}`, timestamp: new Date(atMs).toISOString(), properties: { n } });
        }
      });
    });
  }
  return events;
}

async function postEvents(events: readonly object[]): Promise<void> {
  const answer = await post(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events }));
  assert.equal(answer.status, 200, answer.text);
}

function get(path: string): Promise<Answer> {
  return request('GET', `${harness.baseUrl}${path}`);
}

async function getOk(path: string): Promise<any> {
  const answer = await get(path);
  assert.equal(answer.status, 200, `${path}: ${answer.text}`);
  return answer.json;
}

function assertBadParameter(answer: Answer, parameter: string, code = 'ERR_QUERY_BAD_PARAMETER'): void {
  assert.equal(answer.status, 400, answer.text);
  assert.equal(answer.json.error.code, code, answer.text);
  assert.equal(answer.json.error.parameter, parameter, answer.text);
  assert.equal(typeof answer.json.request_id, 'string');
}

interface DailyExpected {
  day: string;
  event_type: string;
  source: string;
  count: number;
}

/** count(*) per (UTC day, type, source), in the route's order. */
async function expectedDaily(first: string, last: string, where = ''): Promise<DailyExpected[]> {
  const rows = await harness.query<DailyExpected>(
    `SELECT to_char((occurred_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD') AS day, event_type, source, count(*)::int AS count
       FROM events WHERE (occurred_at AT TIME ZONE 'UTC')::date BETWEEN $1::date AND $2::date ${where} GROUP BY 1, 2, 3`,
    [first, last],
  );
  const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return rows.sort((a, b) => byText(b.day, a.day) || b.count - a.count || byText(a.event_type, b.event_type) || byText(a.source, b.source));
}

before(async () => {
  harness = await startTestEngine({ actorCount: 2 });
  startedMs = Date.now();
  const events = rollupEvents();
  await postEvents(events);
  // Resent whole: every one is a duplicate now and must not count again.
  await postEvents(events);
});
after(async () => {
  await harness?.close();
});

describe('GET /v1/analytics/events/daily', () => {
  test('rows, counts and order equal count(*) of the events; updated_at is the latest over shards', async () => {
    const [first, last] = [dayAgo(4), dayAgo(1)];
    const answer = await getOk(`/v1/analytics/events/daily?start_date=${first}&end_date=${last}`);
    const expected = await expectedDaily(first, last);
    assert.equal(expected.length, daysBack.length * types.length * sources.length);
    assert.deepEqual(answer.data.map(({ updated_at: _, ...row }: DailyExpected & { updated_at: string }) => row), expected);
    assert.equal(answer.count, expected.length);
    assert.equal(answer.next_cursor, null, 'the whole range fits the default limit of 500');
    const [stored] = await harness.query<{ us: string }>(
      `SELECT (extract(epoch FROM max(updated_at)) * 1000000)::int8::text AS us FROM event_counts_daily WHERE day = $1::date AND event_type = 'click' AND source = 'web'`,
      [last],
    );
    const row = answer.data.find((entry: DailyExpected) => entry.day === last && entry.event_type === 'click' && entry.source === 'web');
    assert.equal(row.updated_at, isoOfMicros(Number(stored?.us)));
    assert.match(row.updated_at, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    assert.ok(Date.parse(row.updated_at) >= startedMs - 1000 && Date.parse(row.updated_at) <= Date.now() + 1000);
  });

  test('filters by type and source; a date-time is read as its UTC day; the default range is the last 30 days', async () => {
    const [first, last] = [dayAgo(3), dayAgo(2)];
    const filtered = await getOk(`/v1/analytics/events/daily?start_date=${first}T23:59:59&end_date=${last}T00:00:00Z&event_type=click&source=mobile`);
    assert.deepEqual(
      filtered.data.map(({ updated_at: _, ...row }: DailyExpected & { updated_at: string }) => row),
      await expectedDaily(first, last, "AND event_type = 'click' AND source = 'mobile'"),
    );
    assert.equal(filtered.count, 2);
    const defaulted = await getOk('/v1/analytics/events/daily');
    assert.equal(defaulted.count, (await expectedDaily(dayAgo(29), dayAgo(0))).length);
  });

  test('the cursor walks every row exactly once with small limits, ties included, as cursor or as after_day', async () => {
    const [first, last] = [dayAgo(4), dayAgo(1)];
    const expected = await expectedDaily(first, last);
    for (const limit of [1, 2, 5, 7, 36]) {
      for (const name of ['cursor', 'after_day']) {
        const walked: DailyExpected[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const more: string = cursor === null ? '' : `&${name}=${cursor}`;
          const page = await getOk(`/v1/analytics/events/daily?start_date=${first}&end_date=${last}&limit=${limit}${more}`);
          assert.ok(page.count <= limit);
          walked.push(...page.data.map(({ updated_at: _, ...row }: DailyExpected & { updated_at: string }) => row));
          cursor = page.next_cursor;
          if (cursor !== null) assert.match(cursor, /^[A-Za-z0-9_-]+$/);
          pages++;
        } while (cursor !== null && pages < 100);
        assert.deepEqual(walked, expected, `limit ${limit} via ${name}`);
        assert.equal(pages, Math.ceil(expected.length / limit), 'next_cursor is null on the last page, not one empty page later');
      }
    }
  });

  test('a plain day in after_day keeps EventFlux meaning: the rows of earlier days', async () => {
    const answer = await getOk(`/v1/analytics/events/daily?start_date=${dayAgo(4)}&end_date=${dayAgo(1)}&after_day=${dayAgo(2)}`);
    assert.deepEqual(answer.data.map(({ updated_at: _, ...row }: DailyExpected & { updated_at: string }) => row), await expectedDaily(dayAgo(4), dayAgo(3)));
  });

  test('a cursor is bound to its filters and must be ours', async () => {
    const path = `/v1/analytics/events/daily?start_date=${dayAgo(4)}&end_date=${dayAgo(1)}&limit=3`;
    const first = await getOk(path);
    assertBadParameter(await get(`${path}&event_type=click&cursor=${first.next_cursor}`), 'cursor', 'ERR_QUERY_BAD_CURSOR');
    assertBadParameter(await get(`/v1/analytics/events/daily?start_date=${dayAgo(5)}&end_date=${dayAgo(1)}&limit=3&cursor=${first.next_cursor}`), 'cursor', 'ERR_QUERY_BAD_CURSOR');
    assertBadParameter(await get(`${path}&cursor=bm90LW91cnM`), 'cursor', 'ERR_QUERY_BAD_CURSOR');
    assertBadParameter(await get(`${path}&after_day=2026-13-01`), 'after_day');
    assertBadParameter(await get(`${path}&after_day=garbage!`), 'after_day', 'ERR_QUERY_BAD_CURSOR');
    assertBadParameter(await get(`${path}&after_day=${dayAgo(2)}&cursor=${first.next_cursor}`), 'after_day');
    const second = await getOk(`${path}&cursor=${first.next_cursor}`);
    assert.equal(second.count, 3);
  });

  test('bad parameters are 400 naming the parameter', async () => {
    const base = '/v1/analytics/events/daily?';
    assertBadParameter(await get(`${base}limit=0`), 'limit');
    assertBadParameter(await get(`${base}limit=10001`), 'limit');
    assertBadParameter(await get(`${base}start_date=yesterday`), 'start_date');
    assertBadParameter(await get(`${base}start_date=2026-02-30`), 'start_date');
    assertBadParameter(await get(`${base}start_date=2026-03-02&end_date=2026-03-01`), 'end_date');
    assertBadParameter(await get(`${base}start_date=2024-01-01&end_date=2025-12-31`), 'start_date');
    assertBadParameter(await get(`${base}start_date=2999-01-01`), 'start_date');
    assertBadParameter(await get(`${base}evnt_type=click`), 'evnt_type');
    assertBadParameter(await get(`${base}source=a&source=b`), 'source');
    assert.equal((await get(`${base}limit=10000&start_date=2025-01-01&end_date=2025-12-31`)).status, 200, '366 days is allowed');
  });
});

describe('GET /v1/analytics/events/summary', () => {
  test('totals, distinct counts and top lists equal count(*); top_n limits both lists; filters apply', async () => {
    const [first, last] = [dayAgo(4), dayAgo(1)];
    const range = `start_date=${first}&end_date=${last}`;
    const answer = await getOk(`/v1/analytics/events/summary?${range}`);
    const stored = await harness.query<{ event_type: string; source: string; n: number }>(
      "SELECT event_type, source, count(*)::int AS n FROM events WHERE (occurred_at AT TIME ZONE 'UTC')::date BETWEEN $1::date AND $2::date GROUP BY 1, 2",
      [first, last],
    );
    const totalOf = (pick: (row: { event_type: string; source: string }) => string) => {
      const sums = new Map<string, number>();
      for (const row of stored) sums.set(pick(row), (sums.get(pick(row)) ?? 0) + row.n);
      return [...sums.entries()].sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1));
    };
    const total = stored.reduce((sum, row) => sum + row.n, 0);
    assert.equal(answer.total_events, total);
    assert.equal(answer.unique_event_types, 3);
    assert.equal(answer.unique_sources, 3);
    assert.deepEqual(answer.top_event_types, totalOf((row) => row.event_type).map(([event_type, n]) => ({ event_type, total: n })));
    assert.deepEqual(answer.top_sources, totalOf((row) => row.source).map(([source, n]) => ({ source, total: n })));

    const top = await getOk(`/v1/analytics/events/summary?${range}&top_n=1`);
    assert.equal(top.top_event_types.length, 1);
    assert.equal(top.top_sources.length, 1, 'top_n limits the sources too (EventFlux did not)');
    assert.equal(top.total_events, total);

    const filtered = await getOk(`/v1/analytics/events/summary?${range}&event_type=click`);
    assert.equal(filtered.total_events, stored.filter((row) => row.event_type === 'click').reduce((sum, row) => sum + row.n, 0));
    assert.equal(filtered.unique_event_types, 1);
    const empty = await getOk('/v1/analytics/events/summary?start_date=2020-01-01&end_date=2020-01-31');
    assert.deepEqual(empty, { total_events: 0, unique_event_types: 0, unique_sources: 0, top_event_types: [], top_sources: [] });
  });

  test('bad parameters are 400 naming the parameter', async () => {
    assertBadParameter(await get('/v1/analytics/events/summary?top_n=0'), 'top_n');
    assertBadParameter(await get('/v1/analytics/events/summary?top_n=101'), 'top_n');
    assertBadParameter(await get('/v1/analytics/events/summary?end_date=2026-1-1'), 'end_date');
    assertBadParameter(await get('/v1/analytics/events/summary?limit=5'), 'limit');
  });
});

describe('GET /v1/analytics/event-types', () => {
  test('a sorted bare array of the counted types, a new type listed as soon as its request is answered', async () => {
    assert.deepEqual(await getOk('/v1/analytics/event-types'), ['click', 'purchase', 'signup']);
    await postEvents([{ event_id: 'new-type-1', event_type: 'Zebra', source: 'web', timestamp: new Date().toISOString() }]);
    assert.deepEqual(await getOk('/v1/analytics/event-types'), ['Zebra', 'click', 'purchase', 'signup'], 'byte order: upper case first');
    assert.deepEqual(await getOk(`/v1/analytics/event-types?start_date=${dayAgo(4)}&end_date=${dayAgo(1)}`), ['click', 'purchase', 'signup']);
    assertBadParameter(await get('/v1/analytics/event-types?source=web'), 'source');
    assertBadParameter(await get('/v1/analytics/event-types?start_date=2020-01-01&end_date=2022-01-01'), 'start_date');
  });
});

describe('GET /v1/analytics/events/raw', () => {
  const baseUs = (Date.now() - 20 * 60_000) * 1000 + 123;
  const rawEvents = Array.from({ length: 6 }, (_, i) => ({
    event_id: `raw-${i}`,
    event_type: i % 2 === 0 ? 'raw_even' : 'raw_odd',
    source: 'probe',
    user_id: `actor-${i % 3}`,
    timestamp: isoOfMicros(baseUs + i * 1_000_001),
    properties: { i, nested: { list: [1, 'two', null] } },
  }));

  before(async () => {
    await postEvents(rawEvents);
  });

  test('newest first, with event_id, microsecond timestamps, attributes as an object, ingested_at', async () => {
    const since = isoOfMicros(baseUs);
    const answer = await getOk(`/v1/analytics/events/raw?since=${since}&source=probe`);
    assert.equal(answer.length, 6);
    assert.deepEqual(answer.map((row: { event_id: string }) => row.event_id), ['raw-5', 'raw-4', 'raw-3', 'raw-2', 'raw-1', 'raw-0']);
    const row = answer[0];
    assert.deepEqual(Object.keys(row).sort(), ['actor_id', 'attributes', 'event_id', 'event_type', 'ingested_at', 'source', 'timestamp']);
    assert.equal(row.timestamp, rawEvents[5]?.timestamp, 'the microseconds survive');
    assert.match(row.timestamp, /\.\d{6}Z$/);
    assert.deepEqual(row.attributes, { i: 5, nested: { list: [1, 'two', null] } });
    assert.deepEqual([row.event_type, row.actor_id, row.source], ['raw_odd', 'actor-2', 'probe']);
    const [stored] = await harness.query<{ us: string }>("SELECT (extract(epoch FROM received_at) * 1000000)::int8::text AS us FROM events WHERE event_id = 'raw-5'");
    assert.equal(row.ingested_at, isoOfMicros(Number(stored?.us)));
  });

  test('filters, limit, [since, until) and naive date-times as UTC', async () => {
    const since = isoOfMicros(baseUs);
    const byActor = await getOk(`/v1/analytics/events/raw?since=${since}&actor_id=actor-1`);
    assert.deepEqual(byActor.map((row: { event_id: string }) => row.event_id), ['raw-4', 'raw-1']);
    const byType = await getOk(`/v1/analytics/events/raw?since=${since}&event_type=raw_even&limit=2`);
    assert.deepEqual(byType.map((row: { event_id: string }) => row.event_id), ['raw-4', 'raw-2']);
    const until = rawEvents[3]?.timestamp as string;
    const naiveSince = since.slice(0, -1);
    const window = await getOk(`/v1/analytics/events/raw?since=${naiveSince}&until=${until}&source=probe`);
    assert.deepEqual(window.map((row: { event_id: string }) => row.event_id), ['raw-2', 'raw-1', 'raw-0'], 'until is exclusive');
    const defaulted = await getOk('/v1/analytics/events/raw?source=probe');
    assert.equal(defaulted.length, 6, 'the last hour by default');
    const old = isoOfMicros((Date.now() - 5 * 3_600_000) * 1000);
    assert.deepEqual(await getOk(`/v1/analytics/events/raw?since=${old}&source=probe`), [], 'since alone: the hour from since');
  });

  test('a window over one hour, until before since, bad limits: 400 naming the parameter', async () => {
    const now = Date.now();
    const iso = (ms: number) => new Date(ms).toISOString();
    assertBadParameter(await get(`/v1/analytics/events/raw?since=${iso(now - 3_600_001)}&until=${iso(now)}`), 'until');
    assert.equal((await get(`/v1/analytics/events/raw?since=${iso(now - 3_600_000)}&until=${iso(now)}`)).status, 200, 'exactly one hour');
    assertBadParameter(await get(`/v1/analytics/events/raw?since=${iso(now)}&until=${iso(now - 1)}`), 'until');
    assertBadParameter(await get('/v1/analytics/events/raw?limit=0'), 'limit');
    assertBadParameter(await get('/v1/analytics/events/raw?limit=5001'), 'limit');
    assertBadParameter(await get('/v1/analytics/events/raw?since=noon'), 'since');
    assertBadParameter(await get('/v1/analytics/events/raw?after_day=2026-01-01'), 'after_day');
  });
});

test('the analytics routes need the read scope once keys exist', async () => {
  const adminKey = generateKey();
  const engine = await startLoggedEngine({ adminKey });
  try {
    const keyOf = async (scopes: string[]): Promise<string> => {
      const created = await callRoute(engine.base, 'POST', '/v1/keys', { authorization: `Bearer ${adminKey}` }, { name: scopes.join('-'), scopes });
      assert.equal(created.status, 201, created.text);
      return created.json.key;
    };
    const [ingestKey, readKey] = [await keyOf(['ingest']), await keyOf(['read'])];
    for (const path of ['/v1/analytics/events/daily', '/v1/analytics/events/summary', '/v1/analytics/event-types', '/v1/analytics/events/raw', '/v1/analytics/counts']) {
      assert.equal((await callRoute(engine.base, 'GET', path)).status, 401, path);
      const refused = await callRoute(engine.base, 'GET', path, { authorization: `Bearer ${ingestKey}` });
      assert.equal(refused.status, 403, path);
      assert.equal(refused.json.error.code, 'ERR_AUTH_SCOPE');
      assert.equal((await callRoute(engine.base, 'GET', path, { authorization: `Bearer ${readKey}` })).status, 200, path);
    }
  } finally {
    await engine.close();
  }
});

test('migration v8 gives an existing daily rollup updated_at; the writer and rebuild set it', async () => {
  const database = await createTestDatabase();
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await migrate(client, recordingLogger(), updatedAtVersion - 1);
    await client.query("INSERT INTO event_counts_daily (day, event_type, source, shard, count) VALUES ('2026-03-01', 't', 's', 0, 5)");
    const logger = recordingLogger();
    await migrate(client, logger);
    const applied = logger.entries.map((entry) => entry.obj).filter((entry) => (entry as { version: number }).version === updatedAtVersion);
    assert.deepEqual(applied, [{ version: updatedAtVersion, name: 'event_counts_daily.updated_at' }]);
    const [kept] = (await client.query("SELECT count::int AS count, updated_at IS NOT NULL AS stamped, updated_at AS at FROM event_counts_daily")).rows;
    assert.deepEqual([kept.count, kept.stamped], [5, true]);
    const column = await client.query("SELECT is_nullable FROM information_schema.columns WHERE table_name = 'event_counts_daily' AND column_name = 'updated_at'");
    assert.deepEqual(column.rows, [{ is_nullable: 'NO' }]);

    // The writer's upsert moves updated_at forward on the row it adds to.
    const counts = new RollupCounts(0);
    counts.add(buildEvent({ eventType: 't', source: 's', occurredAtUs: Date.UTC(2026, 2, 1, 12) * 1000 }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await client.query(counts.upsertSql());
    const [added] = (await client.query('SELECT count::int AS count, updated_at AS at FROM event_counts_daily')).rows;
    assert.equal(added.count, 6);
    assert.ok(added.at.getTime() > kept.at.getTime(), 'updated_at moved on the upsert');

    // A rebuild recounts the day from the events and stamps the rows it writes.
    await client.query("CREATE TABLE events_p20260301 PARTITION OF events FOR VALUES FROM ('2026-03-01 00:00+00') TO ('2026-03-02 00:00+00')");
    await client.query("INSERT INTO events VALUES ('e1', 't', 's', NULL, '2026-03-01 12:00+00', now(), '{}')");
    await new Promise((resolve) => setTimeout(resolve, 20));
    await rebuildRollups(client, dayRangeOf(new Date('2026-03-01T00:00:00Z'), new Date('2026-03-02T00:00:00Z')));
    const [rebuilt] = (await client.query('SELECT count::int AS count, updated_at AS at FROM event_counts_daily')).rows;
    assert.equal(rebuilt.count, 1);
    assert.ok(rebuilt.at.getTime() > added.at.getTime(), 'updated_at set by the rebuild');
  } finally {
    await client.end();
    await database.drop();
  }
});
