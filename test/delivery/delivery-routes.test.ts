/**
 * Delivery inspection, replay and health against a real engine over HTTP and a real
 * PostgreSQL: deliveries and attempts are written with SQL (subscriptions through
 * changeSubscriptions, disabled, so neither fan-out nor senders touch these rows), events
 * through the ingest API. Pages return every row once newest first and the cursor is bound
 * to its filters; one delivery comes with its attempt log; a replay's preview, its job and
 * progress, its chunks (also with two more runners racing the engine's), what it must not
 * touch, and its cancellation; health numbers computed from known rows; every bad
 * parameter and field named; 404s; 503 when the tables cannot be read in time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import { ensureAttemptPartitions, dayOfMs } from '../../src/delivery/attempt-partitions';
import { changeSubscriptions } from '../../src/delivery/delivery-schema';
import { ReplayRunner, replayChunkRowsMax } from '../../src/delivery/replay-runner';
import { isoOfMicros } from '../../src/query/query-parameters';
import { callRoute, post, startTestEngine, type Answer, type TestEngine } from '../support/engine';

let harness: TestEngine;
let client: pg.Client;

const secondMs = 1000;
const dayMs = 86_400_000;
/** Events a minute old: inside every window the tests use. */
const eventAtMs = Math.floor(Date.now() / secondMs) * secondMs - 60 * secondMs;

function get(path: string): Promise<Answer> {
  return callRoute(harness.baseUrl, 'GET', path);
}

function replay(subscriptionId: string, body: unknown): Promise<Answer> {
  return callRoute(harness.baseUrl, 'POST', `/v1/subscriptions/${subscriptionId}/replay`, {}, body);
}

async function sql<Row extends pg.QueryResultRow = Record<string, any>>(text: string, values: unknown[] = []): Promise<Row[]> {
  return (await client.query<Row>(text, values)).rows;
}

/** A disabled subscription (fan-out ignores it, senders leave its rows pending). */
function subscription(): Promise<string> {
  return changeSubscriptions(client, async () => {
    const [row] = await sql<{ id: string }>(`INSERT INTO subscriptions (url, secrets, enabled) VALUES ('http://127.0.0.1:9/hook', ARRAY['whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3Q='], false) RETURNING id::text`);
    return (row as { id: string }).id;
  });
}

function deleteSubscription(id: string): Promise<void> {
  return changeSubscriptions(client, async () => {
    await sql('UPDATE subscriptions SET deleted_at = now(), covered_until = clock_timestamp() WHERE id = $1', [id]);
  });
}

/** Stores events `prefix-0` … `prefix-(count-1)` through the API; returns their occurred_at as ISO. */
async function storeEvents(prefix: string, count: number, eventType = 'user.signup'): Promise<string> {
  const timestamp = new Date(eventAtMs).toISOString();
  const events = Array.from({ length: count }, (_, index) => ({ event_id: `${prefix}-${index}`, event_type: eventType, source: 'web', timestamp, attributes: { index } }));
  const answer = await post(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events }));
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.json.accepted, count, answer.text);
  return timestamp;
}

/**
 * `count` deliveries of `prefix-n` (n from `first`), status cycling through `statuses`,
 * created `ageS + n` seconds ago; returns their ids in insertion order.
 */
async function insertDeliveries(subscriptionId: string, options: { prefix: string; count: number; statuses: string[]; ageS?: number; first?: number }): Promise<string[]> {
  const rows = await sql<{ id: string }>(
    `INSERT INTO deliveries (subscription_id, event_id, occurred_at, status, created_at, attempts, last_attempt_at, delivered_at)
     SELECT $1, $2 || '-' || n, $3::timestamptz, s.status, now() - make_interval(secs => $5 + n), 1,
            now() - make_interval(secs => $5 + n), CASE WHEN s.status = 'delivered' THEN now() END
       FROM generate_series($6::int, $6::int + $4::int - 1) n
      CROSS JOIN LATERAL (SELECT ($7::text[])[1 + n % cardinality($7::text[])] AS status) s
      ORDER BY n RETURNING id::text`,
    [subscriptionId, options.prefix, new Date(eventAtMs).toISOString(), options.count, options.ageS ?? 0, options.first ?? 0, options.statuses],
  );
  return rows.map((row) => row.id);
}

function assertProblem(answer: Answer, status: number, code: string, parameter: string | null, label: string): void {
  assert.equal(answer.status, status, `${label}: ${answer.text}`);
  assert.equal(answer.json.error.code, code, label);
  assert.equal(answer.json.error.parameter, parameter, `${label}: ${answer.text}`);
}

before(async () => {
  // A short statement timeout lets the 503 test wait one second instead of five.
  harness = await startTestEngine({ deliveryAllowPrivateNetworks: true, readStatementTimeoutMs: 1000 });
  client = new pg.Client({ connectionString: harness.databaseUrl });
  await client.connect();
});
after(async () => {
  await client?.end();
  await harness?.close();
});

describe('GET /v1/deliveries', () => {
  let listed: string;
  let other: string;

  before(async () => {
    listed = await subscription();
    other = await subscription();
    await storeEvents('listed', 2, 'invoice.paid');
    await insertDeliveries(listed, { prefix: 'listed', count: 2, statuses: ['delivered', 'pending'] });
    await insertDeliveries(listed, { prefix: 'ghost', count: 120, statuses: ['pending', 'delivered', 'failed', 'discarded'], ageS: 5 });
    await insertDeliveries(listed, { prefix: 'old', count: 4, statuses: ['failed'], ageS: 3 * 86_400 });
    await insertDeliveries(other, { prefix: 'other', count: 9, statuses: ['failed'] });
  });

  async function pageAll(query: string, limit: number): Promise<string[]> {
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const answer = await get(`/v1/deliveries?${query}&limit=${limit}${cursor === null ? '' : `&cursor=${cursor}`}`);
      assert.equal(answer.status, 200, answer.text);
      assert.ok(answer.json.data.length <= limit);
      ids.push(...answer.json.data.map((row: { id: string }) => row.id));
      cursor = answer.json.next_cursor;
    } while (cursor !== null);
    return ids;
  }

  async function expectedIds(where: string, values: unknown[]): Promise<string[]> {
    return (await sql<{ id: string }>(`SELECT id::text FROM deliveries WHERE ${where} ORDER BY deliveries.id DESC`, values)).map((row) => row.id);
  }

  test('pages newest first by id: every row of the last 24 hours once, for each page size', async () => {
    const expected = await expectedIds("subscription_id = $1 AND created_at >= now() - interval '1 day'", [listed]);
    assert.equal(expected.length, 122);
    for (const limit of [1, 7, 122, 1000]) assert.deepEqual(await pageAll(`subscription_id=${listed}`, limit), expected, `limit ${limit}`);
  });

  test('filters: status, no subscription, and an explicit window that reaches older rows', async () => {
    assert.deepEqual(await pageAll(`subscription_id=${listed}&status=failed`, 9), await expectedIds("subscription_id = $1 AND status = 'failed' AND created_at >= now() - interval '1 day'", [listed]));
    assert.deepEqual(await pageAll('status=failed', 50), await expectedIds("status = 'failed' AND created_at >= now() - interval '1 day'", []));
    const from = encodeURIComponent(new Date(Date.now() - 4 * dayMs).toISOString());
    const to = encodeURIComponent(new Date(Date.now() - 2 * dayMs).toISOString());
    const old = await pageAll(`subscription_id=${listed}&from=${from}&to=${to}`, 3);
    assert.deepEqual(old, await expectedIds("subscription_id = $1 AND event_id LIKE 'old-%'", [listed]));
    assert.equal(old.length, 4);
  });

  test('an item holds the delivery, its event type from the stored event, and times in UTC with µs', async () => {
    const answer = await get(`/v1/deliveries?subscription_id=${listed}&limit=1000`);
    const byEvent = new Map<string, Record<string, unknown>>(answer.json.data.map((row: Record<string, unknown>) => [row.event_id, row]));
    const delivered = byEvent.get('listed-0') as Record<string, unknown>;
    const pending = byEvent.get('listed-1') as Record<string, unknown>;
    assert.deepEqual(Object.keys(delivered), [
      'id', 'subscription_id', 'event_id', 'event_type', 'occurred_at', 'created_at', 'status', 'lane', 'attempts',
      'next_attempt_at', 'last_attempt_at', 'last_status_code', 'last_error', 'delivered_at', 'replay_id',
    ]);
    assert.equal(delivered.subscription_id, listed);
    assert.equal(delivered.event_type, 'invoice.paid');
    assert.equal(delivered.occurred_at, isoOfMicros(eventAtMs * 1000));
    assert.equal(delivered.status, 'delivered');
    assert.equal(delivered.lane, 'live');
    assert.equal(delivered.next_attempt_at, null, 'only pending rows show their next attempt');
    assert.match(delivered.delivered_at as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.equal(pending.status, 'pending');
    assert.match(pending.next_attempt_at as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.equal(pending.delivered_at, null);
    assert.equal(byEvent.get('ghost-3')?.event_type, null, 'no stored event: no type');
  });

  test('the cursor is bound to its filters and window, and must be one this route made', async () => {
    const first = await get(`/v1/deliveries?subscription_id=${listed}&limit=5`);
    const cursor = first.json.next_cursor as string;
    assert.equal(typeof cursor, 'string');
    const cases: Array<[string, string]> = [
      [`subscription_id=${other}&cursor=${cursor}`, 'another subscription'],
      [`subscription_id=${listed}&status=failed&cursor=${cursor}`, 'another status'],
      [`subscription_id=${listed}&from=2026-01-01&cursor=${cursor}`, 'another window'],
      [`subscription_id=${listed}&cursor=${cursor.slice(0, -3)}`, 'cut short'],
      [`subscription_id=${listed}&cursor=${Buffer.from('d1|1|2|3|aaaaaaaaaaaaaaaaaaaaaa').toString('base64url')}`, 'forged'],
      [`subscription_id=${listed}&cursor=not%20a%20cursor`, 'garbage'],
    ];
    for (const [query, label] of cases) assertProblem(await get(`/v1/deliveries?${query}`), 400, 'ERR_DELIVERY_BAD_CURSOR', 'cursor', label);
    const next = await get(`/v1/deliveries?subscription_id=${listed}&limit=5&cursor=${cursor}`);
    assert.equal(next.status, 200, next.text);
    assert.ok(BigInt(next.json.data[0].id) < BigInt(first.json.data[4].id));
  });

  test('every bad parameter is named', async () => {
    const now = Date.now();
    const cases: Array<[string, string]> = [
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=ten', 'limit'],
      ['status=sent', 'status'],
      ['subscription_id=abc', 'subscription_id'],
      ['subscription_id=0', 'subscription_id'],
      ['subscription_id=99999999999999999999', 'subscription_id'],
      ['from=yesterday', 'from'],
      ['to=2026-13-01', 'to'],
      ['from=2026-12-07T10:00:00', 'from'],
      [`from=${encodeURIComponent(new Date(now).toISOString())}&to=${encodeURIComponent(new Date(now - 1000).toISOString())}`, 'to'],
      [`from=${encodeURIComponent(new Date(now - 40 * dayMs).toISOString())}`, 'from'],
      ['subscription=1', 'subscription'],
      ['status=failed&status=pending', 'status'],
    ];
    for (const [query, parameter] of cases) assertProblem(await get(`/v1/deliveries?${query}`), 400, 'ERR_DELIVERY_BAD_PARAMETER', parameter, query);
  });
});

describe('GET /v1/deliveries/:id', () => {
  test('one delivery with its attempt log, oldest attempt first', async () => {
    const subscriptionId = await subscription();
    await storeEvents('one', 1, 'order.created');
    const [id] = await insertDeliveries(subscriptionId, { prefix: 'one', count: 1, statuses: ['failed'] });
    await ensureAttemptPartitions(client, [dayOfMs(Date.now()) - 1, dayOfMs(Date.now())]);
    await sql(
      `INSERT INTO delivery_attempts (delivery_id, subscription_id, attempt, attempted_at, duration_ms, outcome, status_code, error_class, error, response_body)
       VALUES ($1, $2, 1, now() - interval '3 seconds', 12, 'retry', 500, 'status_5xx', 'answered 500', 'oops'),
              ($1, $2, 2, now() - interval '2 seconds', 15000, 'retry', NULL, 'timeout', 'no answer within 15000 ms', NULL),
              ($1, $2, 3, now() - interval '1 second', 8, 'failed', 404, 'status_4xx', 'answered 404', 'not here')`,
      [id, subscriptionId],
    );
    const answer = await get(`/v1/deliveries/${id}`);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.json.id, id);
    assert.equal(answer.json.event_type, 'order.created');
    assert.equal(answer.json.status, 'failed');
    const log = answer.json.attempt_log as Array<Record<string, unknown>>;
    assert.deepEqual(log.map((row) => [row.attempt, row.duration_ms, row.outcome, row.status_code, row.error_class, row.response_body]), [
      [1, 12, 'retry', 500, 'status_5xx', 'oops'],
      [2, 15000, 'retry', null, 'timeout', null],
      [3, 8, 'failed', 404, 'status_4xx', 'not here'],
    ]);
    assert.deepEqual(Object.keys(log[0] as object), ['attempt', 'attempted_at', 'duration_ms', 'outcome', 'status_code', 'error_class', 'error', 'response_body']);
  });

  test('an unknown id is 404, a malformed one 400 naming id', async () => {
    assertProblem(await get('/v1/deliveries/987654321'), 404, 'ERR_DELIVERY_NOT_FOUND', 'id', 'unknown');
    for (const id of ['abc', '0', '-1', '1.5', '99999999999999999999']) assertProblem(await get(`/v1/deliveries/${id}`), 400, 'ERR_DELIVERY_BAD_PARAMETER', 'id', id);
    assertProblem(await get('/v1/deliveries/1?verbose=1'), 400, 'ERR_DELIVERY_BAD_PARAMETER', 'verbose', 'unknown parameter');
  });
});

describe('POST /v1/subscriptions/:id/replay', () => {
  const window = () => ({ from: new Date(Date.now() - dayMs).toISOString(), to: new Date(Date.now() + 60_000).toISOString() });

  async function progress(subscriptionId: string, replayId: string, until: (job: any) => boolean): Promise<any> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const answer = await get(`/v1/subscriptions/${subscriptionId}/replays/${replayId}`);
      assert.equal(answer.status, 200, answer.text);
      if (until(answer.json) || Date.now() > deadline) return answer.json;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  test('a dry run counts, a job requeues on the replay lane in chunks, and leaves everything else alone', async () => {
    const subscriptionId = await subscription();
    const chunked = replayChunkRowsMax + 150;
    await storeEvents('replayed', chunked);
    // Matching (failed, discarded) with their events stored, and four whose events are gone.
    const matching = await insertDeliveries(subscriptionId, { prefix: 'replayed', count: chunked, statuses: ['failed', 'discarded'] });
    const gone = await insertDeliveries(subscriptionId, { prefix: 'gone', count: 4, statuses: ['failed'] });
    // Not matching: delivered and pending rows, and failed rows older than the window.
    const untouched = [
      ...(await insertDeliveries(subscriptionId, { prefix: 'replayed', count: 20, statuses: ['delivered', 'pending'], first: chunked })),
      ...(await insertDeliveries(subscriptionId, { prefix: 'replayed', count: 3, statuses: ['failed'], first: chunked + 20, ageS: 2 * 86_400 })),
    ];
    await sql('UPDATE deliveries SET lease_token = 42, attempts = 8 WHERE id = ANY($1::bigint[])', [matching.slice(0, 3)]);
    const before = await sql('SELECT id, status, lane, attempts, next_attempt_at, replay_id FROM deliveries WHERE id = ANY($1::bigint[]) ORDER BY id', [[...untouched, ...gone]]);

    const dry = await replay(subscriptionId, { ...window(), dry_run: true });
    assert.equal(dry.status, 200, dry.text);
    assert.equal(dry.json.count, chunked + gone.length);
    assert.deepEqual(dry.json.statuses, ['failed', 'discarded']);
    const dryDelivered = await replay(subscriptionId, { ...window(), status: 'delivered', dry_run: true });
    assert.equal(dryDelivered.json.count, 10);
    assert.equal((await sql('SELECT count(*)::int AS n FROM delivery_replays'))[0]?.n, 0, 'a dry run writes nothing');

    const created = await replay(subscriptionId, window());
    assert.equal(created.status, 202, created.text);
    assert.deepEqual(Object.keys(created.json), ['id', 'subscription_id', 'from', 'to', 'statuses', 'state', 'total', 'processed', 'requeued', 'created_at', 'finished_at']);
    assert.equal(created.json.subscription_id, subscriptionId);
    assert.equal(created.json.total, chunked + gone.length);
    assert.ok(Date.parse(created.json.to) <= Date.now(), 'the window ends when the replay was asked for');
    // Two more runners, as on two more nodes, race the engine's for the same job.
    const log = pino({ level: 'silent' });
    const runners = [new ReplayRunner(harness.databaseUrl, log), new ReplayRunner(harness.databaseUrl, log)];
    const racing = runners.map(async (runner) => {
      for (let round = 0; round < 10; round++) await runner.runOnce();
    });
    const job = await progress(subscriptionId, created.json.id, (row) => row.state === 'done');
    await Promise.all(racing);
    await Promise.all(runners.map((runner) => runner.stop()));
    assert.equal(job.state, 'done');
    assert.equal(job.processed, chunked + gone.length, 'each matching row looked at once');
    assert.equal(job.requeued, chunked, 'rows whose event is gone are not requeued');
    assert.ok(job.finished_at !== null);

    const requeued = await sql('SELECT status, lane, attempts, lease_token, replay_id::text, next_attempt_at <= now() AS due FROM deliveries WHERE id = ANY($1::bigint[])', [matching]);
    assert.equal(requeued.length, chunked);
    for (const row of requeued) assert.deepEqual(row, { status: 'pending', lane: 1, attempts: 0, lease_token: null, replay_id: created.json.id, due: true });
    const after = await sql('SELECT id, status, lane, attempts, next_attempt_at, replay_id FROM deliveries WHERE id = ANY($1::bigint[]) ORDER BY id', [[...untouched, ...gone]]);
    assert.deepEqual(after, before, 'delivered, pending, out-of-window and event-less rows are untouched');
  });

  test('an empty replay is done at once; a deleted subscription is 404, and its running job is cancelled untouched', async () => {
    const subscriptionId = await subscription();
    const empty = await replay(subscriptionId, window());
    assert.equal(empty.status, 202, empty.text);
    assert.deepEqual([empty.json.state, empty.json.total], ['done', 0]);

    const rows = await insertDeliveries(subscriptionId, { prefix: 'cancelled', count: 5, statuses: ['failed'] });
    await deleteSubscription(subscriptionId);
    assertProblem(await replay(subscriptionId, window()), 404, 'ERR_SUBSCRIPTION_NOT_FOUND', 'id', 'deleted');
    assertProblem(await replay(subscriptionId, { ...window(), dry_run: true }), 404, 'ERR_SUBSCRIPTION_NOT_FOUND', 'id', 'deleted, dry run');
    assertProblem(await replay('987654321', window()), 404, 'ERR_SUBSCRIPTION_NOT_FOUND', 'id', 'unknown');
    // A job created before the deletion (written here directly) stops without requeuing.
    const [job] = await sql<{ id: string }>(
      `INSERT INTO delivery_replays (subscription_id, from_time, to_time, statuses, total) VALUES ($1, now() - interval '1 day', now(), '{failed}', 5) RETURNING id::text`,
      [subscriptionId],
    );
    const finished = await progress(subscriptionId, (job as { id: string }).id, (row) => row.state !== 'running');
    assert.deepEqual([finished.state, finished.processed, finished.requeued], ['cancelled', 0, 0]);
    const statuses = await sql("SELECT count(*)::int AS n FROM deliveries WHERE id = ANY($1::bigint[]) AND status = 'failed'", [rows]);
    assert.equal(statuses[0]?.n, 5);
  });

  test('every bad field is named', async () => {
    const subscriptionId = await subscription();
    const { from, to } = window();
    const cases: Array<[unknown, string | null]> = [
      ['not json', null],
      [[1, 2], null],
      [{ from, to, since: from }, 'since'],
      [{ to }, 'from'],
      [{ from }, 'to'],
      [{ from: 12, to }, 'from'],
      [{ from: 'last week', to }, 'from'],
      [{ from, to: '2026-02-30' }, 'to'],
      [{ from: to, to: from }, 'to'],
      [{ from: new Date(Date.now() - 40 * dayMs).toISOString(), to }, 'from'],
      [{ from, to, status: 'pending' }, 'status'],
      [{ from, to, status: ['failed', 'pending'] }, 'status'],
      [{ from, to, status: [] }, 'status'],
      [{ from, to, status: 'lost' }, 'status'],
      [{ from, to, status: 3 }, 'status'],
      [{ from, to, dry_run: 'yes' }, 'dry_run'],
    ];
    for (const [body, parameter] of cases) assertProblem(await replay(subscriptionId, typeof body === 'string' ? body : body), 400, 'ERR_DELIVERY_BAD_PARAMETER', parameter, JSON.stringify(body));
    for (const id of ['abc', '0']) assertProblem(await replay(id, { from, to }), 400, 'ERR_SUBSCRIPTION_BAD_REQUEST', 'id', `path ${id}`);
    const big = await replay(subscriptionId, { from, to, status: 'x'.repeat(5000) });
    assert.equal(big.status, 413, big.text);
  });

  test('progress of an unknown replay, or of another subscription\'s, is 404 naming replay_id', async () => {
    const [first, second] = [await subscription(), await subscription()];
    const created = await replay(first, window());
    assertProblem(await get(`/v1/subscriptions/${second}/replays/${created.json.id}`), 404, 'ERR_DELIVERY_NOT_FOUND', 'replay_id', 'other subscription');
    assertProblem(await get(`/v1/subscriptions/${first}/replays/987654321`), 404, 'ERR_DELIVERY_NOT_FOUND', 'replay_id', 'unknown');
    assertProblem(await get(`/v1/subscriptions/${first}/replays/x`), 400, 'ERR_DELIVERY_BAD_PARAMETER', 'replay_id', 'malformed');
  });
});

describe('GET /v1/subscriptions/:id/health', () => {
  test('rates, percentiles, last error and backlog from the attempt log and the deliveries', async () => {
    const subscriptionId = await subscription();
    const delivered = await insertDeliveries(subscriptionId, { prefix: 'healthy', count: 4, statuses: ['delivered'] });
    // Commit → delivered of 100, 200, 300 and 400 ms; the replayed one does not count.
    await sql(`UPDATE deliveries SET delivered_at = created_at + make_interval(secs => (SELECT array_position($1::bigint[], id)) * 0.1) WHERE id = ANY($1::bigint[])`, [delivered]);
    const [replayedId] = await insertDeliveries(subscriptionId, { prefix: 'replayed-health', count: 1, statuses: ['delivered'], ageS: 3600 * 5 });
    await sql('UPDATE deliveries SET replay_id = 1 WHERE id = $1', [replayedId]);
    await ensureAttemptPartitions(client, [dayOfMs(Date.now()) - 1, dayOfMs(Date.now())]);
    const attempt = (deliveryId: string, agoS: number, durationMs: number, statusCode: number | null, errorClass: string | null) =>
      sql(
        `INSERT INTO delivery_attempts (delivery_id, subscription_id, attempt, attempted_at, duration_ms, outcome, status_code, error_class, error)
         VALUES ($1, $2, 1, now() - make_interval(secs => $3), $4, $5, $6, $7, $8)`,
        [deliveryId, subscriptionId, agoS, durationMs, statusCode !== null && statusCode < 300 ? 'delivered' : 'retry', statusCode, errorClass, errorClass === null ? null : `error ${errorClass}`],
      );
    // Last 5 minutes: three 2xx, one 500 (the latest failure). Earlier in the hour: a 2xx
    // and two failures. Two hours ago: a failure outside every window but the last error's.
    for (const [index, id] of delivered.slice(0, 3).entries()) await attempt(id, 10 + index, 10 * (index + 1), 200, null);
    await attempt(delivered[3] as string, 30 * 60, 40, 204, null);
    await attempt(replayedId as string, 5, 50, 200, null);
    await attempt(delivered[0] as string, 20, 60, 500, 'status_5xx');
    await attempt(delivered[1] as string, 1800, 70, null, 'timeout');
    await attempt(delivered[2] as string, 1900, 80, null, 'connect');
    await attempt(delivered[2] as string, 7200, 90, 503, 'status_5xx');
    // Backlog: three pending, one with a retry scheduled, the oldest due for 100 s.
    const pending = await insertDeliveries(subscriptionId, { prefix: 'waiting', count: 3, statuses: ['pending'] });
    await sql("UPDATE deliveries SET schedule_started_at = now() - interval '100 seconds' WHERE id = $1", [pending[0]]);
    await sql("UPDATE deliveries SET attempts = 2, next_attempt_at = '2099-01-01T00:00:00Z' WHERE id = $1", [pending[1]]);
    await sql("UPDATE deliveries SET attempts = 0 WHERE id = ANY($1::bigint[])", [[pending[0], pending[2]]]);

    const answer = await get(`/v1/subscriptions/${subscriptionId}/health`);
    assert.equal(answer.status, 200, answer.text);
    const health = answer.json;
    assert.equal(health.subscription_id, subscriptionId);
    assert.equal(health.enabled, false);
    assert.equal(health.success_rate_5m, 4 / 5);
    assert.equal(health.success_rate_1h, 5 / 8);
    assert.deepEqual(health.attempt_ms, { p50: 40, p95: 80 });
    assert.deepEqual(health.commit_to_delivered_ms, { p50: 200, p95: 400 });
    assert.equal(health.last_error.class, 'status_5xx');
    assert.equal(health.last_error.status_code, 500);
    assert.equal(health.last_error.error, 'error status_5xx');
    assert.match(health.last_error.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.equal(health.backlog, 3);
    assert.ok(health.oldest_pending_age_s >= 100 && health.oldest_pending_age_s < 130, String(health.oldest_pending_age_s));
    assert.equal(health.next_retry_at, '2099-01-01T00:00:00.000000Z');
    assert.deepEqual([health.breaker, health.in_flight, health.paused_until], [null, null, null], 'no delivery pool reports live state here');
  });

  test('a subscription with nothing yet: null rates and an empty backlog', async () => {
    const subscriptionId = await subscription();
    const answer = await get(`/v1/subscriptions/${subscriptionId}/health`);
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.json, {
      subscription_id: subscriptionId, enabled: false, success_rate_5m: null, success_rate_1h: null, attempts_5m: 0, attempts_1h: 0,
      attempt_ms: { p50: null, p95: null }, commit_to_delivered_ms: { p50: null, p95: null }, last_error: null,
      breaker: null, in_flight: null, paused_until: null, backlog: 0, oldest_pending_age_s: null, next_retry_at: null,
    });
  });

  test('unknown and deleted subscriptions are 404, malformed ids 400', async () => {
    const subscriptionId = await subscription();
    await deleteSubscription(subscriptionId);
    assertProblem(await get(`/v1/subscriptions/${subscriptionId}/health`), 404, 'ERR_SUBSCRIPTION_NOT_FOUND', 'id', 'deleted');
    assertProblem(await get('/v1/subscriptions/987654321/health'), 404, 'ERR_SUBSCRIPTION_NOT_FOUND', 'id', 'unknown');
    assertProblem(await get('/v1/subscriptions/one/health'), 400, 'ERR_SUBSCRIPTION_BAD_REQUEST', 'id', 'malformed');
  });
});

describe('unavailable', () => {
  test('a read that cannot finish in time is 503 ERR_DELIVERY_UNAVAILABLE with Retry-After', async () => {
    const locker = new pg.Client({ connectionString: harness.databaseUrl });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE');
      const answers = await Promise.all([get('/v1/deliveries'), get('/v1/deliveries/1')]);
      for (const answer of answers) {
        assertProblem(answer, 503, 'ERR_DELIVERY_UNAVAILABLE', null, 'locked');
        assert.equal(answer.headers.get('retry-after'), '1');
      }
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
  });
});
