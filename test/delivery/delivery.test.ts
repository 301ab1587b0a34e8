/**
 * Delivery actors end to end: a real engine (its delivery thread), real PostgreSQL, real
 * node:http receivers on 127.0.0.1. Each test owns its subscription, whose `sources`
 * filter names the test, so no test's events reach another's receiver. Delivery records
 * are made by a test-local fan-out (INSERT of the events that have none yet + NOTIFY),
 * which leaves any the sink made itself alone.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { Registry } from 'prom-client';
import { Webhook } from 'standardwebhooks';
import { changeSubscriptions } from '../../src/delivery/delivery-schema';
import { EndpointBreaker, TokenBucket } from '../../src/delivery/endpoint-health';
import { retryAfterMs, retryDelayMs, verdictOfError, verdictOfStatus } from '../../src/delivery/outcome-rules';
import { DeliveryMetrics, type DeliveryStatsMessage } from '../../src/delivery/delivery-pool';
import { Sender, storedResponseBytesMax, webhookBody, webhookIdOf } from '../../src/delivery/sender';
import { post, startTestEngine, type TestEngine } from '../support/engine';
import { wireEvents } from '../support/wire-events';

let engine: TestEngine;
let db: pg.Pool;
const receivers: Receiver[] = [];

before(async () => {
  engine = await startTestEngine({
    // Two threads: subscriptions are split between them by id, and their stats merged.
    deliveryActorCount: 2,
    deliveryAllowPrivateNetworks: true,
    deliveryTimeoutMs: 2000,
    deliveryConnectTimeoutMs: 500,
    deliveryLeaseMs: 5000,
    deliveryRetryAfterMaxMs: 3000,
  });
  db = new pg.Pool({ connectionString: engine.databaseUrl, max: 8 });
});
after(async () => {
  for (const receiver of receivers) await receiver.close();
  await db.end();
  await engine.close();
});

interface Received {
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly atMs: number;
}
type Reply = { status: number; headers?: Record<string, string>; hang?: boolean; delayMs?: number };

class Receiver {
  readonly received: Received[] = [];
  reply: (request: Received, seen: number) => Reply;
  readonly #server: http.Server;
  readonly #seen = new Map<string, number>();
  url = '';

  constructor(reply: (request: Received, seen: number) => Reply) {
    this.reply = reply;
    this.#server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const received = { headers: request.headers, body: Buffer.concat(chunks).toString('utf8'), atMs: Date.now() };
        this.received.push(received);
        const id = String(request.headers['webhook-id']);
        const seen = (this.#seen.get(id) ?? 0) + 1;
        this.#seen.set(id, seen);
        const answer = this.reply(received, seen);
        if (answer.hang === true) return;
        setTimeout(() => response.writeHead(answer.status, answer.headers ?? {}).end('ok'), answer.delayMs ?? 0);
      });
    });
  }

  static async start(reply: (request: Received, seen: number) => Reply): Promise<Receiver> {
    const receiver = new Receiver(reply);
    await new Promise<void>((resolve) => receiver.#server.listen(0, '127.0.0.1', resolve));
    receiver.url = `http://127.0.0.1:${(receiver.#server.address() as { port: number }).port}/hook`;
    receivers.push(receiver);
    return receiver;
  }

  ids(): string[] {
    return this.received.map((r) => String(r.headers['webhook-id']));
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

/** A subscription change on a client of its own (tests run concurrently; a transaction must not be shared). */
async function change<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    return await changeSubscriptions(client, () => work(client));
  } finally {
    client.release();
  }
}

function newSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

interface SubscriptionOptions {
  source: string;
  secret?: string;
  maxInFlight?: number;
  rateLimitPerS?: number;
  retryScheduleS?: number[];
}

async function subscribe(url: string, options: SubscriptionOptions): Promise<{ id: number; secret: string }> {
  const secret = options.secret ?? newSecret();
  const id = await change(async (client) => {
    const result = await client.query<{ id: string }>(
      `INSERT INTO subscriptions (url, sources, secrets, max_in_flight, rate_limit_per_s, retry_schedule_s)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
      [url, [options.source], [secret], options.maxInFlight ?? 16, options.rateLimitPerS ?? null, options.retryScheduleS ?? null],
    );
    return Number(result.rows[0]!.id);
  });
  return { id, secret };
}

/** Posts `count` events whose source is `source` (ids `<source>-<i>`); they are stored when this returns. */
async function ingest(source: string, count: number): Promise<void> {
  const events = wireEvents(count, source).map((event) => ({ ...event, source }));
  const answer = await post(`${engine.baseUrl}/v1/events/bulk`, JSON.stringify({ events }));
  assert.equal(answer.status, 200, answer.text);
}

/** What the sink's fan-out does for these events: one record each, then NOTIFY. */
async function fanOut(subscriptionId: number, source: string, lane = 0): Promise<void> {
  await db.query(
    `INSERT INTO deliveries (subscription_id, event_id, occurred_at, lane)
     SELECT $1, e.event_id, e.occurred_at, $3 FROM events e WHERE e.source = $2
        AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.subscription_id = $1 AND d.event_id = e.event_id AND d.occurred_at = e.occurred_at)`,
    [subscriptionId, source, lane],
  );
  await db.query("SELECT pg_notify('floodgate_deliveries', $1)", [String(subscriptionId)]);
}

interface DeliveryRow {
  event_id: string;
  status: string;
  attempts: number;
  last_error: string | null;
  last_status_code: number | null;
  lease_token: string | null;
}

async function deliveries(subscriptionId: number): Promise<DeliveryRow[]> {
  const sql = 'SELECT event_id, status, attempts, last_error, last_status_code, lease_token FROM deliveries WHERE subscription_id = $1 ORDER BY id';
  return (await db.query<DeliveryRow>(sql, [subscriptionId])).rows;
}

interface AttemptRow {
  attempt: number;
  outcome: string;
  status_code: number | null;
  error_class: string | null;
}

async function attempts(subscriptionId: number): Promise<AttemptRow[]> {
  const sql = 'SELECT attempt, outcome, status_code, error_class FROM delivery_attempts WHERE subscription_id = $1 ORDER BY attempted_at, attempt';
  return (await db.query<AttemptRow>(sql, [subscriptionId])).rows;
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function allInStatus(subscriptionId: number, status: string, count: number): Promise<boolean> {
  const rows = await deliveries(subscriptionId);
  return rows.length === count && rows.every((row) => row.status === status);
}

/** The value of one sample of the engine's /metrics, or 0 when absent. */
async function metric(name: string, labels: Record<string, string | number> = {}): Promise<number> {
  const text = await (await fetch(`${engine.baseUrl}/metrics`)).text();
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (wanted.every((pair) => line.includes(pair))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

test('outcome rules, retry schedule and Retry-After (the table in outcome-rules.ts)', () => {
  assert.equal(verdictOfStatus(204).outcome, 'delivered');
  assert.equal(verdictOfStatus(410).disableSubscription, true);
  assert.equal(verdictOfStatus(410).outcome, 'failed');
  assert.deepEqual([verdictOfStatus(429).outcome, verdictOfStatus(429).breakerSuccess, verdictOfStatus(429).retryAfter], ['retry', null, 'pause-subscription']);
  assert.deepEqual([verdictOfStatus(503).breakerSuccess, verdictOfStatus(503).retryAfter], [false, 'delivery']);
  assert.equal(verdictOfStatus(500).breakerSuccess, false);
  assert.equal(verdictOfStatus(408).breakerSuccess, false);
  assert.equal(verdictOfStatus(413).outcome, 'failed');
  for (const status of [301, 302, 400, 401, 404]) assert.deepEqual([verdictOfStatus(status).outcome, verdictOfStatus(status).breakerSuccess], ['retry', null], String(status));
  assert.equal(verdictOfError('UND_ERR_HEADERS_TIMEOUT', 'X').errorClass, 'timeout');
  assert.equal(verdictOfError('ECONNREFUSED', 'X').errorClass, 'connection');
  assert.deepEqual([verdictOfError('X', 'X').outcome, verdictOfError('X', 'X').errorClass], ['failed', 'destination_refused']);
  assert.equal(verdictOfError(null, 'X').outcome, 'retry');

  assert.equal(retryDelayMs([5, 300], 1, 0, 100, () => 0.5), 5000);
  assert.equal(retryDelayMs([5, 300], 1, 0, 100, () => 0), 4500, 'jitter -10%');
  assert.equal(retryDelayMs([5, 300], 2, 0, 1000, () => 1), 330_000, 'jitter +10%');
  assert.equal(retryDelayMs([5, 300], 3, 0, 1000), null, 'schedule exhausted');
  assert.equal(retryDelayMs([5, 300], 1, 101_000, 100), null, 'too old');

  const nowMs = Date.parse('2026-12-07T10:00:00Z');
  assert.equal(retryAfterMs('2', nowMs, 60_000), 2000);
  assert.equal(retryAfterMs('120', nowMs, 60_000), 60_000, 'capped');
  assert.equal(retryAfterMs('Mon, 07 Dec 2026 10:00:30 GMT', nowMs, 60_000), 30_000);
  assert.equal(retryAfterMs('Mon, 07 Dec 2026 09:00:00 GMT', nowMs, 60_000), 0, 'a past date means now');
  assert.equal(retryAfterMs('soon', nowMs, 60_000), null);
  assert.equal(retryAfterMs(null, nowMs, 60_000), null);
  assert.equal(retryAfterMs('-3', nowMs, 60_000), null);
});

test('breaker: trips at 50% of ≥ 10 results, one probe when half-open, slow start doubles per round', () => {
  const breaker = new EndpointBreaker({ windowMs: 30_000, resultsMin: 10, failureRatioMin: 0.5, openMs: 1000, openMsMax: 4000 });
  let nowMs = 1_000_000;
  const send = (success: boolean | null): void => breaker.finished(success, breaker.started(nowMs), nowMs);
  for (let i = 0; i < 5; i++) send(true);
  for (let i = 0; i < 4; i++) send(false);
  assert.equal(breaker.state(nowMs), 'closed', '9 results are below the minimum');
  send(null);
  assert.equal(breaker.state(nowMs), 'closed', 'a 4xx or 429 does not count');
  send(false);
  assert.equal(breaker.state(nowMs), 'open');
  assert.equal(breaker.allowance(nowMs), 0);
  nowMs += 1000;
  assert.equal(breaker.state(nowMs), 'half-open');
  assert.equal(breaker.allowance(nowMs), 1);
  const probe = breaker.started(nowMs);
  assert.equal(probe, true);
  assert.equal(breaker.allowance(nowMs), 0, 'one probe at a time');
  breaker.finished(false, probe, nowMs);
  assert.equal(breaker.openUntilMs, nowMs + 2000, 'a failed probe doubles the open time');
  nowMs += 2000;
  breaker.finished(true, breaker.started(nowMs), nowMs);
  assert.equal(breaker.state(nowMs), 'closed');
  const limits: number[] = [];
  for (let round = 0; round < 4; round++) {
    const limit = breaker.slowStartLimit as number;
    limits.push(limit);
    const probes = Array.from({ length: limit }, () => breaker.started(nowMs));
    assert.equal(breaker.allowance(nowMs), 0);
    for (const isProbe of probes) breaker.finished(true, isProbe, nowMs);
  }
  assert.deepEqual(limits, [1, 2, 4, 8]);

  const bucket = new TokenBucket(5, 0);
  assert.equal(bucket.available(0), 5, 'burst = rate');
  bucket.take(5, 0);
  assert.equal(bucket.available(100), 0);
  assert.equal(bucket.msUntilToken(100), 100);
  assert.equal(bucket.available(400), 2);
});

test('metrics merge the actors\' stats with bounded labels; liveState answers for owned subscriptions only', async () => {
  const metrics = new DeliveryMetrics(2);
  const stats = (actorIndex: number, fields: Partial<DeliveryStatsMessage>): DeliveryStatsMessage => ({
    type: 'stats', actorIndex, subscriptions: [], latencyHistogram: null, latencySumUs: 0, reclaimed: 0, deferrals: [0, 0, 0],
    inFlight: 0, breakersOpen: [], live: [], owned: null, ...fields,
  });
  const many = Array.from({ length: 102 }, (_, i) => ({ id: 2 * i, outcomes: [1, 0, 0, 0], classes: [1, 0, 0, 0, 0, 0, 0] }));
  metrics.onStats(stats(1, {
    subscriptions: [{ id: 1, outcomes: [0, 2, 1, 0], classes: [0, 3, 0, 0, 0, 0, 0] }],
    owned: [1, 3],
    inFlight: 2,
    breakersOpen: ['http://a.example'],
    live: [{ id: 1, breaker: 1, inFlight: 2, pausedUntilMs: Date.now() + 60_000 }, { id: 3, breaker: 0, inFlight: 0, pausedUntilMs: Date.now() - 1 }],
  }));
  metrics.onStats(stats(1, {
    subscriptions: [{ id: 1, outcomes: [1, 0, 0, 0], classes: [1, 0, 0, 0, 0, 0, 0] }],
    inFlight: 2,
    breakersOpen: ['http://a.example'],
    live: [{ id: 1, breaker: 1, inFlight: 2, pausedUntilMs: null }],
  }));
  // Labels go to the first 100 ids seen: 1, then 0, 2, …, 196; 198, 200 and 202 share "other".
  metrics.onStats(stats(0, { subscriptions: many, owned: many.map((s) => s.id), inFlight: 3, reclaimed: 2, deferrals: [1, 0, 4] }));
  const registry = new Registry();
  for (const metric of metrics.metrics()) registry.registerMetric(metric);
  const text = await registry.metrics();
  const sample = (line: string): number => Number(text.split('\n').find((l) => l.startsWith(line + ' '))?.split(' ').at(-1) ?? Number.NaN);
  assert.equal(sample('floodgate_deliveries_total{subscription="0",outcome="delivered"}'), 1);
  assert.equal(sample('floodgate_deliveries_total{subscription="1",outcome="delivered"}'), 1, 'counts add up across messages');
  assert.equal(sample('floodgate_deliveries_total{subscription="1",outcome="retry"}'), 2);
  assert.equal(sample('floodgate_deliveries_total{subscription="other",outcome="delivered"}'), 3, 'past 100 subscriptions, one "other" label');
  assert.equal(sample('floodgate_delivery_attempts_total{subscription="1",class="http_status"}'), 3);
  assert.equal(sample('floodgate_delivery_in_flight'), 5, 'the latest in-flight of each actor, summed');
  assert.equal(sample('floodgate_delivery_reclaimed_total'), 2);
  assert.equal(sample('floodgate_delivery_deferrals_total{reason="in_flight"}'), 4);
  assert.equal(sample('floodgate_delivery_breaker_open{endpoint="http://a.example"}'), 1);
  assert.deepEqual(metrics.liveState(1), { breaker: 'open', inFlight: 2, pausedUntilMs: null });
  assert.deepEqual(metrics.liveState(3), { breaker: 'closed', inFlight: 0, pausedUntilMs: null }, 'owned and idle');
  assert.deepEqual(metrics.liveState(2), { breaker: 'closed', inFlight: 0, pausedUntilMs: null });
  assert.equal(metrics.liveState(5), null, 'not owned by its actor');
  assert.equal(metrics.liveState(-1), null);
  assert.equal(new DeliveryMetrics(0).liveState(1), null, 'no delivery actors');
  metrics.close();
});

test('webhook-id: printable ASCII ids as they are, any other id percent-encoded (never colliding)', () => {
  assert.equal(webhookIdOf('evt_01J9-abc.def:1'), 'evt_01J9-abc.def:1');
  assert.equal(webhookIdOf('café'), 'caf%C3%A9');
  assert.equal(webhookIdOf('a b'), 'a%20b');
  assert.equal(webhookIdOf('line\nbreak'), 'line%0Abreak');
  assert.equal(webhookIdOf('100%'), '100%25', "a literal '%' is encoded, so an encoded id never equals a plain one");
  assert.notEqual(webhookIdOf('caf%C3%A9'), webhookIdOf('café'));
});

// Independent subscriptions, receivers and events: the tests run together, which is also
// what delivery is for (one thread serving many subscriptions at once).
describe('delivery through a running engine', { concurrency: true }, () => {
  test('delivers each event once, signed (standardwebhooks verifies), with the documented body and headers', async () => {
    const receiver = await Receiver.start(() => ({ status: 200 }));
    const { id, secret } = await subscribe(receiver.url, { source: 'basic' });
    await ingest('basic', 20);
    await fanOut(id, 'basic');
    await waitFor('20 deliveries delivered', () => allInStatus(id, 'delivered', 20));
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const ids = receiver.ids();
    assert.equal(ids.length, 20, 'exactly once each');
    assert.equal(new Set(ids).size, 20);
    const storedSql = `SELECT event_id, event_type, actor_id, attributes,
                              to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ts
                         FROM events WHERE source = 'basic'`;
    const stored = new Map((await db.query(storedSql)).rows.map((row) => [row.event_id, row]));
    const verifier = new Webhook(secret);
    for (const request of receiver.received) {
      const headers = request.headers as Record<string, string>;
      assert.equal(headers['content-type'], 'application/json');
      assert.equal(headers['user-agent'], 'Floodgate-Webhooks/1');
      assert.equal(headers['webhook-attempt'], '1');
      assert.ok(Math.abs(Number(headers['webhook-timestamp']) - Date.now() / 1000) < 30);
      verifier.verify(request.body, headers);
      const body = JSON.parse(request.body);
      const row = stored.get(headers['webhook-id']);
      assert.ok(row !== undefined);
      assert.deepEqual(body, {
        type: row.event_type,
        timestamp: row.ts,
        data: { event_id: row.event_id, event_type: row.event_type, source: 'basic', actor_id: row.actor_id, timestamp: row.ts, attributes: row.attributes },
      });
      assert.match(body.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    }
    const rows = await deliveries(id);
    assert.ok(rows.every((row) => row.attempts === 1 && row.lease_token === null && row.last_status_code === 200));
    const log = await attempts(id);
    assert.equal(log.length, 20);
    assert.ok(log.every((row) => row.outcome === 'delivered' && row.status_code === 200 && row.error_class === null));
    await waitFor('the delivered counter', async () => (await metric('floodgate_deliveries_total', { subscription: id, outcome: 'delivered' })) === 20, 3000);
    assert.equal(await metric('floodgate_delivery_attempts_total', { subscription: id, class: 'none' }), 20);
    assert.ok((await metric('floodgate_delivery_latency_seconds_count')) >= 20);
  });

  test('an event id that cannot be a header value is sent percent-encoded, and still verifies', async () => {
    const receiver = await Receiver.start(() => ({ status: 200 }));
    const { id, secret } = await subscribe(receiver.url, { source: 'unicode' });
    const events = [{ event_id: 'ünï ✓\tid', event_type: 'x', source: 'unicode', timestamp: new Date().toISOString() }];
    assert.equal((await post(`${engine.baseUrl}/v1/events/bulk`, JSON.stringify({ events }))).status, 200);
    await fanOut(id, 'unicode');
    await waitFor('delivered', () => allInStatus(id, 'delivered', 1));
    const [request] = receiver.received;
    assert.equal(request!.headers['webhook-id'], encodeURIComponent('ünï ✓\tid'));
    new Webhook(secret).verify(request!.body, request!.headers as Record<string, string>);
    assert.equal(JSON.parse(request!.body).data.event_id, 'ünï ✓\tid');
  });

  test('webhookBody: strings are escaped, attributes pass through as PostgreSQL wrote them', () => {
    const body = webhookBody({ eventId: 'a"b', eventType: 't\n', source: 's', actorId: null, timestamp: '2026-01-01T00:00:00.000001Z', attributesJson: '{"k": [1, "x"]}' });
    const timestamp = '2026-01-01T00:00:00.000001Z';
    assert.deepEqual(JSON.parse(body), {
      type: 't\n',
      timestamp,
      data: { event_id: 'a"b', event_type: 't\n', source: 's', actor_id: null, timestamp, attributes: { k: [1, 'x'] } },
    });
  });

  test('sender: the SSRF guard refuses private destinations at connect time; a large response is cut, its status kept', async () => {
    const event = { eventId: 'e-1', eventType: 't', source: 's', actorId: null, timestamp: '2026-01-01T00:00:00.000000Z', attributesJson: '{}' };
    const settings = { connectionsPerOrigin: 2, connectTimeoutMs: 500, timeoutMs: 1000, responseBytesMax: 16 * 1024, allowPrivateNetworks: false };
    const guarded = new Sender(settings);
    const open = new Sender({ ...settings, allowPrivateNetworks: true });
    const big = http.createServer((request, response) => {
      request.resume();
      response.writeHead(202, { 'content-type': 'text/plain' }).end('x'.repeat(200_000));
    });
    await new Promise<void>((resolve) => big.listen(0, '127.0.0.1', resolve));
    const port = (big.address() as { port: number }).port;
    try {
      for (const host of ['localhost', '127.0.0.1', '[::1]']) {
        const refused = await guarded.send(new URL(`http://${host}:${port}/`), [Buffer.from('k')], event, 1);
        assert.equal(refused.errorCode, 'EDESTINATIONREFUSED', host);
        assert.equal(verdictOfError(refused.errorCode, 'EDESTINATIONREFUSED').outcome, 'failed');
      }
      const answered = await open.send(new URL(`http://127.0.0.1:${port}/`), [Buffer.from('k')], event, 1);
      assert.equal(answered.statusCode, 202);
      assert.equal(answered.responseBody?.length, storedResponseBytesMax);
      const again = await open.send(new URL(`http://127.0.0.1:${port}/`), [Buffer.from('k')], event, 1);
      assert.equal(again.statusCode, 202, 'the connection pool still works after a body was cut');
    } finally {
      await guarded.close();
      await open.close();
      big.closeAllConnections();
      await new Promise((resolve) => big.close(resolve));
    }
  });

  test('secret rotation: both secrets sign during the grace period, the expired one no longer', async () => {
    const receiver = await Receiver.start(() => ({ status: 200 }));
    const oldSecret = newSecret();
    const { id } = await subscribe(receiver.url, { source: 'rotate', secret: oldSecret });
    const newer = newSecret();
    await change((client) =>
      client.query(
        "UPDATE subscriptions SET secrets = $2::text[] || secrets, secret_expires_at = ARRAY[now() + interval '1 hour'] || secret_expires_at WHERE id = $1",
        [id, [newer]],
      ));
    await new Promise((resolve) => setTimeout(resolve, 1500)); // the actor re-reads the epoch every second
    await ingest('rotate', 3);
    await fanOut(id, 'rotate');
    await waitFor('3 delivered', () => allInStatus(id, 'delivered', 3));
    for (const request of receiver.received) {
      const headers = request.headers as Record<string, string>;
      assert.equal(headers['webhook-signature']!.split(' ').length, 2);
      new Webhook(newer).verify(request.body, headers);
      new Webhook(oldSecret).verify(request.body, headers);
    }
    await change((client) => client.query("UPDATE subscriptions SET secret_expires_at = ARRAY[now() - interval '1 second'] WHERE id = $1", [id]));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    receiver.received.length = 0;
    await ingest('rotate2', 2);
    await db.query("UPDATE events SET source = 'rotate' WHERE source = 'rotate2'");
    await fanOut(id, 'rotate');
    await waitFor('5 delivered', () => allInStatus(id, 'delivered', 5));
    for (const request of receiver.received) {
      const headers = request.headers as Record<string, string>;
      assert.equal(headers['webhook-signature']!.split(' ').length, 1);
      new Webhook(newer).verify(request.body, headers);
      assert.throws(() => new Webhook(oldSecret).verify(request.body, headers));
    }
  });

  test('a URL change while a send is in flight: its slot comes back and the rest go to the new URL', async () => {
    // Regression: the reload replaced the subscription's state, so the slow send's slot was
    // returned to a state no longer used and the subscription stayed "full" for good.
    const slow = await Receiver.start(() => ({ status: 200, delayMs: 1500 }));
    const next = await Receiver.start(() => ({ status: 200 }));
    const { id } = await subscribe(slow.url, { source: 'moved', maxInFlight: 1 });
    await ingest('moved', 3);
    await fanOut(id, 'moved');
    await waitFor('the first send', () => slow.received.length === 1, 5000);
    await change((client) => client.query('UPDATE subscriptions SET url = $2 WHERE id = $1', [id, next.url]));
    await waitFor('3 delivered', () => allInStatus(id, 'delivered', 3), 8000);
    assert.equal(slow.received.length, 1);
    assert.equal(next.received.length, 2);
  });

  test('500 then 200: retried on the schedule and delivered; the attempt log has both', async () => {
    const receiver = await Receiver.start((_, seen) => ({ status: seen === 1 ? 500 : 200 }));
    const { id } = await subscribe(receiver.url, { source: 'flaky', retryScheduleS: [0, 1] });
    await ingest('flaky', 3);
    await fanOut(id, 'flaky');
    await waitFor('3 delivered', () => allInStatus(id, 'delivered', 3));
    assert.ok((await deliveries(id)).every((row) => row.attempts === 2));
    const log = await attempts(id);
    assert.deepEqual(log.map((row) => row.outcome).sort(), ['delivered', 'delivered', 'delivered', 'retry', 'retry', 'retry']);
    assert.ok(log.filter((row) => row.outcome === 'retry').every((row) => row.status_code === 500 && row.error_class === 'http_status'));
    assert.deepEqual(receiver.received.map((r) => r.headers['webhook-attempt']).sort(), ['1', '1', '1', '2', '2', '2']);
  });

  test('a schedule that runs out ends in failed, with the last status and error', async () => {
    const receiver = await Receiver.start(() => ({ status: 500 }));
    const { id } = await subscribe(receiver.url, { source: 'doomed', retryScheduleS: [0] });
    await ingest('doomed', 3);
    await fanOut(id, 'doomed');
    await waitFor('3 failed', () => allInStatus(id, 'failed', 3));
    for (const row of await deliveries(id)) {
      assert.equal(row.attempts, 2);
      assert.equal(row.last_status_code, 500);
      assert.equal(row.last_error, 'endpoint answered 500');
    }
    assert.deepEqual((await attempts(id)).map((row) => row.outcome).sort(), ['failed', 'failed', 'failed', 'retry', 'retry', 'retry']);
    await waitFor('the failed counter', async () => (await metric('floodgate_deliveries_total', { subscription: id, outcome: 'failed' })) === 3, 3000);
  });

  test('410 Gone disables the subscription; its other deliveries wait unsent', async () => {
    const receiver = await Receiver.start(() => ({ status: 410 }));
    const { id } = await subscribe(receiver.url, { source: 'gone', maxInFlight: 1 });
    await ingest('gone', 4);
    const epochBefore = Number((await db.query('SELECT epoch FROM floodgate_subscription_epoch')).rows[0].epoch);
    await fanOut(id, 'gone');
    await waitFor('the subscription disabled', async () => (await db.query('SELECT enabled FROM subscriptions WHERE id = $1', [id])).rows[0].enabled === false);
    const subscription = (await db.query('SELECT disabled_reason, covered_until FROM subscriptions WHERE id = $1', [id])).rows[0];
    assert.equal(subscription.disabled_reason, 'endpoint answered 410 Gone');
    assert.ok(subscription.covered_until instanceof Date);
    assert.ok(Number((await db.query('SELECT epoch FROM floodgate_subscription_epoch')).rows[0].epoch) > epochBefore, 'changed through changeSubscriptions');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(receiver.received.length, 1);
    const statuses = (await deliveries(id)).map((row) => row.status).sort();
    assert.deepEqual(statuses, ['failed', 'pending', 'pending', 'pending']);
  });

  test('429 with Retry-After: the next attempt waits that long', async () => {
    const receiver = await Receiver.start((_, seen) => (seen === 1 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }));
    const { id } = await subscribe(receiver.url, { source: 'throttled', retryScheduleS: [0, 0] });
    await ingest('throttled', 1);
    await fanOut(id, 'throttled');
    await waitFor('delivered', () => allInStatus(id, 'delivered', 1));
    const [first, second] = receiver.received;
    assert.ok(second!.atMs - first!.atMs >= 900, `second attempt after ${second!.atMs - first!.atMs} ms`);
    assert.deepEqual((await attempts(id)).map((row) => [row.outcome, row.status_code]), [['retry', 429], ['delivered', 200]]);
  });

  test('a receiver that never answers: the attempt times out and is retried later', async () => {
    const receiver = await Receiver.start(() => ({ status: 0, hang: true }));
    const { id } = await subscribe(receiver.url, { source: 'silent', retryScheduleS: [60] });
    await ingest('silent', 1);
    await fanOut(id, 'silent');
    await waitFor('a timed-out attempt', async () => (await attempts(id)).length === 1, 5000);
    const [attempt] = await attempts(id);
    assert.deepEqual([attempt!.outcome, attempt!.error_class, attempt!.status_code], ['retry', 'timeout', null]);
    const sql = "SELECT status, attempts, lease_token, next_attempt_at > now() + interval '50 seconds' AS later FROM deliveries WHERE subscription_id = $1";
    const row = (await db.query(sql, [id])).rows[0];
    assert.deepEqual([row.status, row.attempts, row.lease_token, row.later], ['pending', 1, null, true]);
  });

  test('isolation: a dead and a failing endpoint do not delay a healthy one; the breaker parks and recovers', { timeout: 60_000 }, async () => {
    const dead = await Receiver.start(() => ({ status: 0, hang: true }));
    let failing = true;
    const flaky = await Receiver.start(() => ({ status: failing ? 500 : 200 }));
    const healthy = await Receiver.start(() => ({ status: 200 }));
    const zeros = Array.from({ length: 20 }, () => 0);
    const deadSub = await subscribe(dead.url, { source: 'iso-dead', retryScheduleS: zeros });
    const flakySub = await subscribe(flaky.url, { source: 'iso-flaky', retryScheduleS: zeros });
    const healthySub = await subscribe(healthy.url, { source: 'iso-ok' });
    await ingest('iso-dead', 40);
    await ingest('iso-flaky', 40);
    await fanOut(deadSub.id, 'iso-dead');
    await fanOut(flakySub.id, 'iso-flaky');
    await new Promise((resolve) => setTimeout(resolve, 300)); // both bad endpoints are now busy
    await ingest('iso-ok', 30);
    const startedAt = Date.now();
    await fanOut(healthySub.id, 'iso-ok');
    await waitFor('the healthy deliveries', () => allInStatus(healthySub.id, 'delivered', 30), 3000);
    const lagMs = Date.now() - startedAt;
    assert.ok(lagMs < 1500, `healthy deliveries took ${lagMs} ms`);

    const origin = new URL(flaky.url).origin;
    await waitFor('the failing endpoint\'s breaker open', async () => (await metric('floodgate_delivery_breaker_open', { endpoint: origin })) === 1, 5000);
    const spent = async (): Promise<number> => Number((await db.query('SELECT sum(attempts)::int AS n FROM deliveries WHERE subscription_id = $1', [flakySub.id])).rows[0].n);
    const before = await spent();
    const received = flaky.received.length;
    await new Promise((resolve) => setTimeout(resolve, 3000));
    assert.equal(await spent(), before, 'no attempt spent while the breaker is open');
    assert.equal(flaky.received.length, received, 'nothing sent while open');
    assert.ok((await metric('floodgate_delivery_deferrals_total', { reason: 'breaker' })) > 0);
    const pending = (await deliveries(flakySub.id)).filter((row) => row.status === 'pending').length;
    assert.ok(pending > 0, 'deliveries parked as pending');

    failing = false;
    await waitFor('the parked deliveries drained after the probe', () => allInStatus(flakySub.id, 'delivered', 40), 20_000);
    await waitFor('the breaker closed', async () => (await metric('floodgate_delivery_breaker_open', { endpoint: origin })) === 0, 3000);
  });

  test('rate limit: deliveries are deferred to the rate, never failed', async () => {
    const receiver = await Receiver.start(() => ({ status: 200 }));
    const { id } = await subscribe(receiver.url, { source: 'limited', rateLimitPerS: 5 });
    const deferralsBefore = await metric('floodgate_delivery_deferrals_total', { reason: 'rate_limit' });
    await ingest('limited', 15);
    await fanOut(id, 'limited');
    await waitFor('15 delivered', () => allInStatus(id, 'delivered', 15), 10_000);
    const times = receiver.received.map((r) => r.atMs).sort((a, b) => a - b);
    const spanMs = times.at(-1)! - times[0]!;
    assert.ok(spanMs >= 1500, `15 deliveries at 5/s (burst 5) took only ${spanMs} ms`);
    assert.ok((await deliveries(id)).every((row) => row.attempts === 1));
    await waitFor('rate-limit deferrals counted', async () => (await metric('floodgate_delivery_deferrals_total', { reason: 'rate_limit' })) > deferralsBefore, 3000);
  });

  test('a lease left by a dead sender expires: reclaimed (counted), sent again as attempt 2', async () => {
    const receiver = await Receiver.start(() => ({ status: 200 }));
    await ingest('lease', 1);
    const { id } = await subscribe(receiver.url, { source: 'lease' });
    const reclaimedBefore = await metric('floodgate_delivery_reclaimed_total');
    await db.query(
      `INSERT INTO deliveries (subscription_id, event_id, occurred_at, attempts, lease_token, next_attempt_at)
       SELECT $1, event_id, occurred_at, 1, 42, now() - interval '1 second' FROM events WHERE source = 'lease'`,
      [id],
    );
    await db.query("SELECT pg_notify('floodgate_deliveries', $1)", [String(id)]);
    await waitFor('delivered', () => allInStatus(id, 'delivered', 1));
    assert.equal(receiver.received[0]!.headers['webhook-attempt'], '2');
    await waitFor('the reclaim counted', async () => (await metric('floodgate_delivery_reclaimed_total')) >= reclaimedBefore + 1, 3000);
  });

  test('a delivery whose event is gone is discarded; the replay lane is sent too', async () => {
    const receiver = await Receiver.start(() => ({ status: 200 }));
    const { id } = await subscribe(receiver.url, { source: 'lanes' });
    await db.query("INSERT INTO deliveries (subscription_id, event_id, occurred_at) VALUES ($1, 'ghost', now() - interval '1 day')", [id]);
    await ingest('lanes', 3);
    await fanOut(id, 'lanes', 1);
    await waitFor('all settled', async () => (await deliveries(id)).every((row) => row.status !== 'pending'), 5000);
    const rows = await deliveries(id);
    assert.deepEqual(rows.map((row) => row.status), ['discarded', 'delivered', 'delivered', 'delivered']);
    assert.equal(rows[0]!.last_error, 'the event is no longer stored');
    assert.deepEqual((await attempts(id)).filter((row) => row.outcome === 'discarded').map((row) => row.error_class), ['missing_event']);
    assert.equal(receiver.received.length, 3);
  });
});
