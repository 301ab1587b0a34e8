/**
 * GET /v1/events and GET /v1/events/:event_id against a real engine over HTTP: events are
 * posted with chosen timestamps, many tied on one microsecond with ids that sort
 * differently as bytes than in any locale; pages in both orders return every row once in
 * (occurred_at, event_id) order, also while rows arrive between pages; filters; the
 * cursor's binding; every bad parameter named; one event by id; the `read` scope.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateKey } from '../../src/auth/key-format';
import { encodeEventCursor, type EventQuery } from '../../src/query/event-cursor';
import { isoOfMicros } from '../../src/query/query-parameters';
import { parseIsoTimestamp } from '../../src/validate/timestamp';
import { callRoute, post, startTestEngine, type Answer, type TestEngine } from '../support/engine';

interface Sent {
  readonly event_id: string;
  readonly event_type: string;
  readonly source: string;
  readonly actor_id?: string;
  readonly timestamp: string;
  readonly attributes: Record<string, unknown>;
  /** µs since the epoch of `timestamp`. */
  readonly us: number;
}

const hourUs = 3_600_000_000;
/** Two hours ago on a whole second, plus a µs part, so every test's window holds it. */
const baseUs = (Math.floor(Date.now() / 1000) * 1000 - 2 * 3_600_000) * 1000 + 123_456;
const window = `from=${encodeURIComponent(isoOfMicros(baseUs - hourUs))}&to=${encodeURIComponent(isoOfMicros(baseUs + hourUs))}`;

let harness: TestEngine;
const sent: Sent[] = [];

function event(eventId: string, us: number, fields: Partial<Omit<Sent, 'us' | 'timestamp' | 'event_id'>> = {}): Sent {
  return { event_id: eventId, event_type: 'view', source: 'web', attributes: { n: eventId.length, big: bigPlaceholder }, ...fields, timestamp: isoOfMicros(us), us };
}

/** Written into the body as an integer past 2^53, which no JS number holds exactly. */
const bigPlaceholder = 'big-integer';
const bigDigits = '12345678901234567890';

async function store(events: readonly Sent[]): Promise<void> {
  const body = JSON.stringify({ events: events.map(({ us: _us, ...wire }) => wire) }).replaceAll(`"${bigPlaceholder}"`, bigDigits);
  const answer = await post(`${harness.baseUrl}/v1/events/bulk`, body);
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.json.accepted, events.length, answer.text);
}

function get(path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return callRoute(harness.baseUrl, 'GET', path, headers);
}

/** (occurred_at, event_id) order, ids compared as UTF-8 bytes as PostgreSQL's "C" does. */
function byKey(a: Sent, b: Sent): number {
  return a.us - b.us || Buffer.compare(Buffer.from(a.event_id), Buffer.from(b.event_id));
}

/** Every page of `query` with `limit`, following next_cursor; returns the ids in order. */
async function pageAll(query: string, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const answer = await get(`/v1/events?${query}&limit=${limit}${cursor === null ? '' : `&cursor=${cursor}`}`);
    assert.equal(answer.status, 200, answer.text);
    assert.ok(answer.json.data.length <= limit);
    ids.push(...answer.json.data.map((row: { event_id: string }) => row.event_id));
    cursor = answer.json.next_cursor;
    pages++;
  } while (cursor !== null);
  return { ids, pages };
}

before(async () => {
  harness = await startTestEngine();
  // Thirty-two events on one microsecond, with ids whose byte order differs from a
  // locale's (upper before lower case, '~' before 'é', a digit before a letter).
  const tiedUs = baseUs;
  const tieIds = ['a', 'B', 'é', '~', 'Z', 'z', '0', '_', 'ab', 'a0', 'A', 'É', 'e', 'ß', '-', '.'].flatMap((tail) => [`t-${tail}`, `T${tail}`]);
  for (const id of tieIds) sent.push(event(id, tiedUs, { event_type: 'click', source: 'ios', actor_id: 'user-tie' }));
  // Eighty more, a millisecond apart around the tie, in pairs on one microsecond.
  for (let index = 0; index < 80; index++) {
    const us = baseUs + (Math.floor(index / 2) - 20) * 1000;
    const fields = { event_type: ['view', 'click', 'buy'][index % 3] as string, source: index % 4 === 0 ? 'ios' : 'web', ...(index % 5 === 0 ? {} : { actor_id: `user-${index % 7}` }) };
    sent.push(event(`e-${String(index).padStart(3, '0')}`, us, fields));
  }
  await store(sent);
});
after(() => harness?.close());

describe('pages', () => {
  test('newest first with small pages: every row once, in (occurred_at, event_id) order', async () => {
    const expected = [...sent].sort(byKey).reverse().map((row) => row.event_id);
    for (const limit of [1, 7, 32, 1000]) {
      const { ids, pages } = await pageAll(window, limit);
      assert.deepEqual(ids, expected, `limit ${limit}`);
      assert.equal(pages, Math.max(1, Math.ceil(expected.length / limit)), `limit ${limit}: no empty last page`);
    }
  });

  test('oldest first with order=asc: every row once, in order', async () => {
    const expected = [...sent].sort(byKey).map((row) => row.event_id);
    for (const limit of [3, 31]) assert.deepEqual((await pageAll(`${window}&order=asc`, limit)).ids, expected, `limit ${limit}`);
  });

  test('a row holds the fields as stored: timestamps in UTC with microseconds, attributes as an object', async () => {
    const answer = await get(`/v1/events?${window}&limit=1000`);
    const rows = answer.json.data as Array<Record<string, unknown>>;
    assert.equal(answer.headers.get('content-type'), 'application/json');
    for (const row of rows) {
      const original = sent.find((candidate) => candidate.event_id === row.event_id) as Sent;
      assert.deepEqual(Object.keys(row), ['event_id', 'event_type', 'source', 'actor_id', 'timestamp', 'received_at', 'attributes']);
      assert.equal(row.timestamp, isoOfMicros(original.us));
      assert.match(row.received_at as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      assert.equal(row.actor_id, original.actor_id ?? null);
      assert.deepEqual([row.event_type, row.source, row.attributes], [original.event_type, original.source, { ...original.attributes, big: Number(bigDigits) }]);
    }
    // The integer past 2^53 keeps its digits: the text comes from jsonb, not from a JS number.
    assert.equal(answer.text.split(`"big": ${bigDigits}`).length - 1, rows.length);
  });

  test('filters: event_type, source and actor_id, alone and together', async () => {
    const cases: Array<[string, (row: Sent) => boolean]> = [
      ['event_type=click', (row) => row.event_type === 'click'],
      ['source=ios', (row) => row.source === 'ios'],
      ['actor_id=user-3', (row) => row.actor_id === 'user-3'],
      ['event_type=click&source=ios&actor_id=user-tie', (row) => row.event_type === 'click' && row.source === 'ios' && row.actor_id === 'user-tie'],
      ['event_type=nothing-like-this', () => false],
    ];
    for (const [filter, keep] of cases) {
      const expected = sent.filter(keep).sort(byKey).reverse().map((row) => row.event_id);
      assert.deepEqual((await pageAll(`${window}&${filter}`, 5)).ids, expected, filter);
    }
  });

  test('without from and to: the last 24 hours, and the cursor keeps that window', async () => {
    const expected = [...sent].sort(byKey).reverse().map((row) => row.event_id);
    assert.deepEqual((await pageAll('source=web', 9)).ids, expected.filter((id) => sent.find((row) => row.event_id === id)?.source === 'web'));
    const old = await get(`/v1/events?to=${encodeURIComponent(isoOfMicros(baseUs - 3 * 24 * hourUs))}`);
    assert.deepEqual(old.json, { data: [], next_cursor: null });
  });

  test('rows stored between pages: none repeated, none before the cursor skipped', async () => {
    const startUs = baseUs + 10 * 60_000_000;
    const original = Array.from({ length: 30 }, (_, index) => event(`p-${String(index).padStart(2, '0')}`, startUs - Math.floor(index / 3) * 1000, { source: 'pager' }));
    await store(original);
    const query = `${window}&source=pager&limit=4`;
    const seen: string[] = [];
    const arrivedBehind: string[] = [];
    let cursor: string | null = null;
    let round = 0;
    do {
      const answer = await get(`/v1/events?${query}${cursor === null ? '' : `&cursor=${cursor}`}`);
      assert.equal(answer.status, 200, answer.text);
      seen.push(...answer.json.data.map((row: { event_id: string }) => row.event_id));
      cursor = answer.json.next_cursor;
      if (cursor === null) break;
      // The last row's key, and four new rows around it: newer, tied and sorting before it
      // (both already passed), tied and sorting after it, and older (both still ahead).
      const last = answer.json.data.at(-1) as { event_id: string; timestamp: string };
      const lastUs = parseIsoTimestamp(last.timestamp) as number;
      round++;
      const arrivals = [
        event(`p-newer-${round}`, lastUs + 1, { source: 'pager' }),
        event(`${last.event_id}~`, lastUs, { source: 'pager' }),
        event(`${last.event_id.slice(0, -1)}!${round}`, lastUs, { source: 'pager' }),
        event(`p-older-${round}`, startUs - 60_000_000 - round, { source: 'pager' }),
      ];
      await store(arrivals);
      arrivedBehind.push(arrivals[2]?.event_id as string, arrivals[3]?.event_id as string);
    } while (round < 20);
    assert.equal(new Set(seen).size, seen.length, 'no row twice');
    for (const row of original) assert.ok(seen.includes(row.event_id), `${row.event_id} seen`);
    for (const id of arrivedBehind) assert.ok(seen.includes(id), `${id}, stored after the cursor passed its neighbour, is seen`);
    for (const id of seen) assert.ok(!id.includes('newer') && !id.endsWith('~'), `${id} sorts before a cursor it arrived behind`);
    const stored = await harness.query<{ event_id: string }>("SELECT event_id FROM events WHERE source = 'pager' ORDER BY occurred_at DESC, event_id DESC");
    assert.deepEqual(seen, stored.map((row) => row.event_id).filter((id) => seen.includes(id)), 'newest first throughout');
  });
});

describe('the cursor', () => {
  async function firstCursor(query: string): Promise<string> {
    const answer = await get(`/v1/events?${query}&limit=2`);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(typeof answer.json.next_cursor, 'string');
    assert.match(answer.json.next_cursor, /^[A-Za-z0-9_-]+$/);
    return answer.json.next_cursor;
  }

  test('is refused with other filters, another order or another window', async () => {
    const cursor = await firstCursor(`${window}&event_type=click`);
    const otherWindow = `from=${encodeURIComponent(isoOfMicros(baseUs - 2 * hourUs))}&to=${encodeURIComponent(isoOfMicros(baseUs + hourUs))}`;
    for (const query of [`${window}&event_type=view`, window, `${window}&event_type=click&source=web`, `${window}&event_type=click&order=asc`, `${otherWindow}&event_type=click`]) {
      const answer = await get(`/v1/events?${query}&cursor=${cursor}`);
      assert.equal(answer.status, 400, query);
      assert.deepEqual([answer.json.error.code, answer.json.error.parameter], ['ERR_QUERY_BAD_CURSOR', 'cursor'], query);
      assert.equal(answer.json.request_id, answer.headers.get('x-request-id'));
    }
    // The window may be left out: the cursor carries it.
    assert.equal((await get(`/v1/events?event_type=click&cursor=${cursor}`)).status, 200);
  });

  test('malformed or foreign cursors are refused naming cursor', async () => {
    const real = await firstCursor(window);
    const foreign = Buffer.from('dl:list:7').toString('base64url');
    const outside = Buffer.from(Buffer.from(real, 'base64url').toString('utf8').replace(/^(e1\|[ad]\|\d+\|\d+\|)\d+/, '$11')).toString('base64url');
    for (const cursor of ['abc', 'not base64!', foreign, real.slice(0, -4), outside, 'x'.repeat(1025)]) {
      const answer = await get(`/v1/events?${window}&cursor=${encodeURIComponent(cursor)}`);
      assert.equal(answer.status, 400, cursor);
      assert.equal(answer.json.error.parameter, 'cursor', cursor);
    }
  });

  test('a cursor over a window wider than pages allow continues as an export only', async () => {
    const wide: EventQuery = { fromUs: baseUs - 40 * 24 * hourUs, toUs: baseUs + hourUs, filters: { eventType: null, source: 'web', actorId: null }, order: 'desc', after: null };
    const web = [...sent].filter((row) => row.source === 'web').sort(byKey).reverse();
    const cursor = encodeEventCursor(wide, { occurredAtUs: web[4]?.us as number, eventId: web[4]?.event_id as string });
    const page = await get(`/v1/events?source=web&cursor=${cursor}`);
    assert.deepEqual([page.status, page.json.error.parameter], [400, 'cursor']);
    const exported = await get(`/v1/events?source=web&cursor=${cursor}`, { accept: 'application/x-ndjson' });
    assert.equal(exported.status, 200);
    const ids = exported.text.trimEnd().split('\n').map((line) => (JSON.parse(line) as { event_id: string }).event_id);
    assert.deepEqual(ids, web.slice(5).map((row) => row.event_id));
  });
});

describe('bad parameters', () => {
  test('each is refused with 400 naming it', async () => {
    const day = (offsetDays: number): string => new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
    const cases: Array<[string, string]> = [
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=ten', 'limit'],
      ['order=sideways', 'order'],
      ['from=yesterday', 'from'],
      ['from=2026-12-01T10:00:00', 'from'],
      ['to=2026-13-01', 'to'],
      ['from=1969-12-31', 'from'],
      [`from=${day(-1)}&to=${day(-2)}`, 'to'],
      [`from=${day(-40)}&to=${day(-8)}`, 'from'],
      [`from=${day(-32)}`, 'from'],
      [`event_type=${'x'.repeat(129)}`, 'event_type'],
      [`source=${'x'.repeat(65)}`, 'source'],
      [`actor_id=${'x'.repeat(257)}`, 'actor_id'],
      ['evnt_type=click', 'evnt_type'],
      ['limit=5&limit=6', 'limit'],
    ];
    for (const [query, parameter] of cases) {
      const answer = await get(`/v1/events?${query}`);
      assert.equal(answer.status, 400, query);
      assert.deepEqual([answer.json.error.code, answer.json.error.parameter], ['ERR_QUERY_BAD_PARAMETER', parameter], `${query}: ${answer.text}`);
    }
    // Thirty-one days is the widest page window.
    assert.equal((await get(`/v1/events?from=${day(-31)}&to=${day(0)}&limit=1`)).status, 200);
  });

  test('an export refuses limit and a window past 366 days', async () => {
    const ndjson = { accept: 'application/x-ndjson' };
    const refused = [['limit=5', 'limit'], ['from=2025-01-01&to=2026-01-03', 'from'], ['order=up', 'order']];
    for (const [query, parameter] of refused) {
      const answer = await get(`/v1/events?${query}`, ndjson);
      assert.equal(answer.status, 400, query);
      assert.equal(answer.headers.get('content-type'), 'application/json');
      assert.equal(answer.json.error.parameter, parameter, query);
    }
  });
});

describe('one event', () => {
  test('by id, the same object as in a page; an id nobody stored is 404 naming event_id', async () => {
    const page = await get(`/v1/events?${window}&limit=1000`);
    for (const id of ['t-é', 'Tß', 'e-007', 't-~']) {
      const answer = await get(`/v1/events/${encodeURIComponent(id)}`);
      assert.equal(answer.status, 200, answer.text);
      assert.deepEqual(answer.json, page.json.data.find((row: { event_id: string }) => row.event_id === id));
    }
    for (const id of ['nobody', 'bulk']) {
      const answer = await get(`/v1/events/${id}`);
      assert.equal(answer.status, 404, id);
      assert.deepEqual([answer.json.error.code, answer.json.error.parameter], ['ERR_QUERY_NOT_FOUND', 'event_id']);
    }
    const long = await get(`/v1/events/${'x'.repeat(129)}`);
    assert.deepEqual([long.status, long.json.error.parameter], [400, 'event_id']);
    const extra = await get('/v1/events/e-007?limit=1');
    assert.deepEqual([extra.status, extra.json.error.parameter], [400, 'limit']);
  });
});

test('the read scope: a key without it gets 403, a read key gets the rows', async () => {
  const adminKey = generateKey();
  const guarded = await startTestEngine({ adminKey });
  try {
    const keys: Record<string, string> = {};
    for (const scope of ['ingest', 'read'] as const) {
      const created = await callRoute(guarded.baseUrl, 'POST', '/v1/keys', { authorization: `Bearer ${adminKey}` }, { name: scope, scopes: [scope] });
      assert.equal(created.status, 201, created.text);
      keys[scope] = created.json.key;
    }
    for (const [path, headers] of [['/v1/events', {}], ['/v1/events', { accept: 'application/x-ndjson' }], ['/v1/events/e-1', {}]] as const) {
      const refused = await callRoute(guarded.baseUrl, 'GET', path, { ...headers, authorization: `Bearer ${keys.ingest}` });
      assert.deepEqual([refused.status, refused.json?.error?.code], [403, 'ERR_AUTH_SCOPE'], path);
      assert.equal((await callRoute(guarded.baseUrl, 'GET', path, headers)).status, 401, path);
    }
    const allowed = await callRoute(guarded.baseUrl, 'GET', '/v1/events', { authorization: `Bearer ${keys.read}` });
    assert.deepEqual([allowed.status, allowed.json], [200, { data: [], next_cursor: null }]);
  } finally {
    await guarded.close();
  }
});
