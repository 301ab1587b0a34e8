/**
 * End to end over real sockets: uWS ingress → rings → actor threads → PostgreSQL.
 * Every assertion about storage reads the database itself.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { pack } from 'msgpackr';
import { post, startTestEngine, type TestEngine } from '../support/engine';
import { wireEvent, wireEvents } from '../support/wire-events';

let harness: TestEngine;

before(async () => {
  // Two actors (the default is one): requests are split across rings and answers joined back.
  harness = await startTestEngine({ actorCount: 2, eventsPerRequestMax: 1000, bodyBytesMax: 2 * 1024 * 1024 });
});
after(async () => {
  await harness?.close();
});

const bulkUrl = (): string => `${harness.baseUrl}/v1/events/bulk`;
const json = { 'content-type': 'application/json' };

async function inParallel<T>(jobs: Array<() => Promise<T>>, concurrency: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const workers = Array.from({ length: concurrency }, async () => {
    while (next < jobs.length) {
      const index = next++;
      results[index] = await (jobs[index] as () => Promise<T>)();
    }
  });
  await Promise.all(workers);
  return results;
}

describe('bulk ingest, exactly once', () => {
  test('20,000 events in concurrent 100-event requests arrive once; resending them adds nothing', async () => {
    const bodies = Array.from({ length: 200 }, (_, request) => JSON.stringify({ events: wireEvents(100, `load-${request}`) }));
    const first = await inParallel(bodies.map((body) => () => post(bulkUrl(), body, json)), 20);
    for (const answer of first) {
      assert.equal(answer.status, 200, answer.text);
      assert.equal(answer.json.accepted, 100);
      assert.equal(answer.json.duplicates, 0);
      assert.equal(answer.json.queued, 100);
      assert.equal(answer.headers.get('x-request-id'), answer.json.request_id);
    }
    const [stored] = await harness.query<{ rows: number; ids: number }>(
      "SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS ids FROM events WHERE event_id LIKE 'load-%'",
    );
    assert.deepEqual(stored, { rows: 20_000, ids: 20_000 });

    const again = await inParallel(bodies.map((body) => () => post(bulkUrl(), body, json)), 20);
    assert.equal(again.reduce((sum, answer) => sum + answer.json.duplicates, 0), 20_000);
    assert.equal(again.reduce((sum, answer) => sum + answer.json.accepted, 0), 0);
    const [after] = await harness.query<{ rows: number }>("SELECT count(*)::int AS rows FROM events WHERE event_id LIKE 'load-%'");
    assert.equal(after?.rows, 20_000);
  });

  test('the same id twice in one request is stored once and reported once as a duplicate', async () => {
    const event = wireEvent('twin-1');
    const answer = await post(bulkUrl(), JSON.stringify({ events: [event, event] }), json);
    assert.equal(answer.status, 200);
    assert.equal(answer.json.accepted, 1);
    assert.equal(answer.json.duplicates, 1);
    const rows = await harness.query("SELECT 1 FROM events WHERE event_id = 'twin-1'");
    assert.equal(rows.length, 1);
  });
});

describe('formats store the same rows', () => {
  const columns = 'event_type, source, actor_id, occurred_at, attributes';
  const stripId = (events: ReturnType<typeof wireEvents>, prefix: string) =>
    events.map((event, i) => ({ ...event, event_id: `${prefix}-${i}` }));
  const base = wireEvents(3, 'fmt').map(({ properties: _replaced, ...event }, i) => ({ ...event, attributes: { n: i, nested: { list: [1, 'two', null], ok: true }, text: 'héllo ✓' } }));

  test('JSON, NDJSON, msgpack and gzip bodies', async () => {
    const bodies: Array<[string, string | Uint8Array, Record<string, string>]> = [
      ['json', JSON.stringify({ events: stripId(base, 'f-json') }), json],
      ['ndjson', stripId(base, 'f-ndjson').map((event) => JSON.stringify(event)).join('\n') + '\n', { 'content-type': 'application/x-ndjson' }],
      ['msgpack', pack({ events: stripId(base, 'f-msgpack') }), { 'content-type': 'application/msgpack' }],
      ['gzip', gzipSync(JSON.stringify({ events: stripId(base, 'f-gzip') })), { ...json, 'content-encoding': 'gzip' }],
    ];
    for (const [name, body, headers] of bodies) {
      const answer = await post(bulkUrl(), body, headers);
      assert.equal(answer.status, 200, `${name}: ${answer.text}`);
      assert.equal(answer.json.accepted, 3, name);
    }
    const rowsOf = (prefix: string) => harness.query(`SELECT ${columns} FROM events WHERE event_id LIKE '${prefix}-%' ORDER BY event_id`);
    const reference = await rowsOf('f-json');
    assert.equal(reference.length, 3);
    for (const prefix of ['f-ndjson', 'f-msgpack', 'f-gzip']) assert.deepEqual(await rowsOf(prefix), reference, prefix);
  });

  test('JSON bulk bodies, plain or gzip, store attributes as sent: decimals keep their digits, big integers stay exact', async () => {
    const attributes = '{ "price" : 1.50, "big": 12345678901234567890, "text": "h\\u00e9llo" }';
    const body = (prefix: string): string => `{"events":[{"event_id":"${prefix}-1","event_type":"t","timestamp":${Date.now()},"attributes": ${attributes} }]}`;
    assert.equal((await post(bulkUrl(), body('raw-json'), json)).status, 200);
    assert.equal((await post(bulkUrl(), gzipSync(body('raw-gzip')), { ...json, 'content-encoding': 'gzip' })).status, 200);
    const rows = await harness.query<{ id: string; price: string; big: string; text: string }>(
      "SELECT event_id AS id, attributes->>'price' AS price, attributes->>'big' AS big, attributes->>'text' AS text FROM events WHERE event_id LIKE 'raw-%' ORDER BY event_id",
    );
    assert.deepEqual(rows, [
      { id: 'raw-gzip-1', price: '1.50', big: '12345678901234567890', text: 'héllo' },
      { id: 'raw-json-1', price: '1.50', big: '12345678901234567890', text: 'héllo' },
    ]);
  });

  test('a single event via POST /v1/events, JSON and msgpack', async () => {
    const a = await post(`${harness.baseUrl}/v1/events`, JSON.stringify(wireEvent('single-json')), json);
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.event_id, 'single-json');
    assert.equal(a.json.accepted, 1);
    const b = await post(`${harness.baseUrl}/v1/events`, pack(wireEvent('single-msgpack')), { 'content-type': 'application/msgpack' });
    assert.equal(b.status, 200, b.text);
    const again = await post(`${harness.baseUrl}/v1/events`, JSON.stringify(wireEvent('single-json')), json);
    assert.equal(again.status, 200);
    assert.deepEqual([again.json.accepted, again.json.duplicates], [0, 1]);
  });
});

describe('validation', () => {
  test('a mixed batch stores the valid events and reports each invalid one', async () => {
    const events: unknown[] = [wireEvent('mix-0'), { ...wireEvent('mix-1'), event_type: '' }, wireEvent('mix-2'), 'not an object', { ...wireEvent('mix-4'), colour: 'red' }];
    const answer = await post(bulkUrl(), JSON.stringify({ events }), json);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.accepted, 2);
    assert.equal(answer.json.rejected, 3);
    assert.deepEqual(
      answer.json.errors.map((error: { index: number; code: string; field: string | null }) => [error.index, error.code, error.field]),
      [
        [1, 'ERR_EVENT_FIELD_LENGTH', 'event_type'],
        [3, 'ERR_EVENT_NOT_OBJECT', null],
        [4, 'ERR_EVENT_FIELD_UNKNOWN', 'colour'],
      ],
    );
    for (const error of answer.json.errors) assert.ok(error.message.length > 10, error.message);
    const rows = await harness.query<{ event_id: string }>("SELECT event_id FROM events WHERE event_id LIKE 'mix-%' ORDER BY 1");
    assert.deepEqual(rows.map((row) => row.event_id), ['mix-0', 'mix-2']);
  });

  test('every event invalid → 400 with all errors', async () => {
    const answer = await post(bulkUrl(), JSON.stringify({ events: [{ event_type: 'x' }, { timestamp: new Date().toISOString() }] }), json);
    assert.equal(answer.status, 400);
    assert.equal(answer.json.error.code, 'ERR_INGEST_ALL_INVALID');
    assert.equal(answer.json.errors.length, 2);
    assert.equal(answer.json.errors[0].code, 'ERR_EVENT_FIELD_MISSING');
  });

  test('a broken NDJSON line is a per-event error, the other lines are stored', async () => {
    const body = `${JSON.stringify(wireEvent('nd-0'))}\n{"event_type": oops}\n${JSON.stringify(wireEvent('nd-2'))}`;
    const answer = await post(bulkUrl(), body, { 'content-type': 'application/x-ndjson' });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.accepted, 2);
    assert.equal(answer.json.errors[0].index, 1);
  });
});

describe('request-level limits and malformed bodies', () => {
  const cases: Array<[string, () => Promise<Awaited<ReturnType<typeof post>>>, number, string]> = [
    ['malformed JSON', () => post(bulkUrl(), '{"events": [', json), 400, 'ERR_INGEST_MALFORMED_BODY'],
    ['malformed msgpack', () => post(bulkUrl(), Uint8Array.from([0x82, 0xa6, 0x65]), { 'content-type': 'application/msgpack' }), 400, 'ERR_INGEST_MALFORMED_BODY'],
    ['wrong shape', () => post(bulkUrl(), '{"items": []}', json), 400, 'ERR_INGEST_BAD_SHAPE'],
    ['no events', () => post(bulkUrl(), '{"events": []}', json), 400, 'ERR_INGEST_EMPTY'],
    ['unsupported type', () => post(bulkUrl(), 'a,b,c', { 'content-type': 'text/csv' }), 415, 'ERR_INGEST_UNSUPPORTED_MEDIA_TYPE'],
    ['unsupported encoding', () => post(bulkUrl(), '{}', { ...json, 'content-encoding': 'br' }), 415, 'ERR_INGEST_UNSUPPORTED_ENCODING'],
    ['broken gzip', () => post(bulkUrl(), Uint8Array.from([0x1f, 0x8b, 1, 2, 3]), { ...json, 'content-encoding': 'gzip' }), 400, 'ERR_INGEST_MALFORMED_BODY'],
    ['body over bodyBytesMax', () => post(bulkUrl(), 'x'.repeat(2 * 1024 * 1024 + 1), json), 413, 'ERR_INGEST_BODY_TOO_LARGE'],
    [
      'more events than eventsPerRequestMax',
      () => post(bulkUrl(), JSON.stringify({ events: wireEvents(1001, 'too-many') }), json),
      413,
      'ERR_INGEST_TOO_MANY_EVENTS',
    ],
    [
      'too many NDJSON lines',
      () => post(bulkUrl(), wireEvents(1001, 'too-many-nd').map((event) => JSON.stringify(event)).join('\n'), { 'content-type': 'application/x-ndjson' }),
      413,
      'ERR_INGEST_TOO_MANY_EVENTS',
    ],
    [
      'gzip bomb beyond bodyDecodedBytesMax',
      () => post(bulkUrl(), gzipSync(Buffer.alloc(40 * 1024 * 1024, 0x20)), { ...json, 'content-encoding': 'gzip' }),
      413,
      'ERR_INGEST_BODY_TOO_LARGE',
    ],
    ['NDJSON on the single-event route', () => post(`${harness.baseUrl}/v1/events`, '{}', { 'content-type': 'application/x-ndjson' }), 415, 'ERR_INGEST_UNSUPPORTED_MEDIA_TYPE'],
  ];
  for (const [name, send, status, code] of cases) {
    test(name, async () => {
      const answer = await send();
      assert.equal(answer.status, status, answer.text);
      assert.equal(answer.json?.error?.code, code, answer.text);
      assert.ok(answer.json.error.message.length > 10);
      assert.equal(answer.headers.get('x-request-id'), answer.json.request_id);
    });
  }

  test('unknown route 404, wrong method 405', async () => {
    assert.equal((await fetch(`${harness.baseUrl}/nope`)).status, 404);
    // GET /v1/events/bulk is a read (an event named "bulk": src/query/event-routes.ts); DELETE is no route.
    const wrong = await fetch(`${harness.baseUrl}/v1/events/bulk`, { method: 'DELETE' });
    assert.equal(wrong.status, 405);
    assert.equal(((await wrong.json()) as any).error.code, 'ERR_METHOD_NOT_ALLOWED');
  });

  test('nothing from the rejected requests was stored', async () => {
    const rows = await harness.query("SELECT 1 FROM events WHERE event_id LIKE 'too-many%'");
    assert.equal(rows.length, 0);
  });
});

describe('request ids and idempotency', () => {
  test('X-Request-ID is echoed, or generated, and equals request_id', async () => {
    const echoed = await post(bulkUrl(), JSON.stringify({ events: [wireEvent('rid-1')] }), { ...json, 'x-request-id': 'req-abc-123' });
    assert.equal(echoed.headers.get('x-request-id'), 'req-abc-123');
    assert.equal(echoed.json.request_id, 'req-abc-123');
    const generated = await post(bulkUrl(), JSON.stringify({ events: [wireEvent('rid-2')] }), json);
    assert.match(generated.json.request_id, /^[0-9a-f-]{36}$/);
    assert.equal(generated.headers.get('x-request-id'), generated.json.request_id);
  });

  test('events without event_id under an Idempotency-Key dedupe when the request is resent', async () => {
    const events = wireEvents(5, 'ignored').map(({ event_id: _ignored, ...rest }) => rest);
    const body = JSON.stringify({ events });
    const headers = { ...json, 'idempotency-key': 'batch-2026-11-22-0001' };
    const first = await post(bulkUrl(), body, headers);
    assert.equal(first.json.accepted, 5);
    assert.equal(first.json.generated_ids, undefined);
    const second = await post(bulkUrl(), body, headers);
    assert.deepEqual([second.json.accepted, second.json.duplicates], [0, 5]);
  });

  test('the body request_id also works as the key (EventFlux-style clients read `queued`)', async () => {
    const events = wireEvents(3, 'ef').map(({ event_id: _ignored, ...rest }) => rest);
    const body = JSON.stringify({ request_id: 'ef-req-77', events });
    const first = await post(bulkUrl(), body, json);
    assert.equal(first.json.queued, 3);
    const second = await post(bulkUrl(), body, json);
    assert.equal(second.json.queued, 3);
    assert.equal(second.json.duplicates, 3);
  });

  test('without any key, generated ids are announced as not deduplicable', async () => {
    const events = wireEvents(2, 'nokey').map(({ event_id: _ignored, ...rest }) => rest);
    const answer = await post(bulkUrl(), JSON.stringify({ events }), json);
    assert.equal(answer.json.accepted, 2);
    assert.equal(answer.json.generated_ids, 2);
    assert.match(answer.json.warnings[0], /would store them again/);
  });
});

describe('webhook compatibility routes', () => {
  test('POST /webhook/events: 202 accepted, then 200 ignored as duplicate', async () => {
    const body = JSON.stringify(wireEvent('wh-1'));
    const first = await post(`${harness.baseUrl}/webhook/events`, body, json);
    assert.equal(first.status, 202, first.text);
    assert.equal(first.json.status, 'accepted');
    assert.equal(first.json.event_id, 'wh-1');
    assert.ok(!Number.isNaN(Date.parse(first.json.queued_at)));
    assert.equal(typeof first.json.latency_ms, 'number');
    const second = await post(`${harness.baseUrl}/webhook/events`, body, json);
    assert.equal(second.status, 200);
    assert.deepEqual(second.json, { status: 'ignored', reason: 'duplicate_event', event_id: 'wh-1' });
  });

  test('POST /webhook/batch: 202 processed with counts', async () => {
    const events = [wireEvent('whb-1'), wireEvent('whb-2'), wireEvent('wh-1'), { event_type: 'broken' }];
    const answer = await post(`${harness.baseUrl}/webhook/batch`, JSON.stringify({ events }), json);
    assert.equal(answer.status, 202, answer.text);
    assert.equal(answer.json.status, 'processed');
    assert.deepEqual(answer.json.results, { accepted: 2, duplicates: 1, errors: 1 });
    assert.equal(answer.json.total_events, 4);
  });

  test('GET /health, /healthz and /readyz', async () => {
    const health = await fetch(`${harness.baseUrl}/health`);
    assert.equal(health.status, 200);
    const body = (await health.json()) as any;
    assert.equal(body.status, 'healthy');
    assert.equal(typeof body.queue_depth, 'number');
    assert.equal((await fetch(`${harness.baseUrl}/healthz`)).status, 200);
    const ready = await fetch(`${harness.baseUrl}/readyz`);
    assert.equal(ready.status, 200);
    const report = (await ready.json()) as any;
    assert.equal(report.checks.database.ok, true);
  });
});
