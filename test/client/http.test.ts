/**
 * The client SDK (client/src) over HTTP, against real engines: batching by count, bytes
 * and time; flush and close drain; per-event errors reach the right events; the bounded
 * queue refuses instead of dropping; Retry-After is honoured with the same Idempotency-Key
 * (a small real server answers 503 first, a real engine answers 429); gzip; refusals are
 * not retried; and a kill -9 of the engine mid-stream, restarted on the same port and
 * database, leaves every tracked event stored exactly once, over HTTP and over the stream.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { WebSocket } from 'undici';
import {
  FloodgateClient,
  backoffDelayMs,
  httpOutcome,
  httpTransport,
  retryAfterMsOf,
  type FloodgateEventError,
  type OutgoingBatch,
  type TrackResult,
} from '../../client/src/index';
import { createTestDatabase } from '../support/database';
import { startTestEngine, type TestEngine } from '../support/engine';
import { engineEnv, spawnEngine, type EngineProcess } from '../support/engine-process';
import { freePort } from '../support/free-port';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const marker = (name: string): string => `${name}-${Math.random().toString(36).slice(2, 10)}`;

/** A transport that records every batch and answers each with all its events accepted. */
function recordingTransport(): { batches: OutgoingBatch[]; send: (batch: OutgoingBatch) => Promise<{ accepted: number; duplicates: number; errors: [] }> } {
  const batches: OutgoingBatch[] = [];
  return {
    batches,
    send: async (batch) => {
      batches.push({ ...batch });
      return { accepted: batch.eventCount, duplicates: 0, errors: [] };
    },
  };
}

describe('options', () => {
  test('unknown options and out-of-range values are refused at once, each named', () => {
    assert.throws(
      () => new FloodgateClient({ url: 'ftp://x', batchEvents: 0, batchBytes: 10, retry: { attemptsMax: 0, nope: 1 } as never, colour: 'red' } as never),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, 'ERR_CLIENT_OPTIONS');
        for (const name of ['colour: unknown option', 'url:', 'batchEvents: must be an integer in 1..5000', 'batchBytes:', 'retry.attemptsMax:', 'retry.nope: unknown option']) {
          assert.ok(error.message.includes(name), `${name} in ${error.message}`);
        }
        return true;
      },
    );
    assert.throws(() => new FloodgateClient({ url: 'http://x', retry: { baseMs: 500, maxMs: 100 } }), /retry.maxMs: must be at least retry.baseMs/);
    assert.throws(() => new FloodgateClient({ url: 'http://x', transport: 'websocket', gzip: true }), /gzip: only the HTTP transport/);
  });

  test('backoff: full jitter under an exponential ceiling, never below the engine\'s hint', () => {
    const retry = { attemptsMax: 10, baseMs: 100, maxMs: 1_000 };
    assert.equal(backoffDelayMs(1, retry, null, () => 0.999), 99);
    assert.equal(backoffDelayMs(3, retry, null, () => 0.5), 200);
    assert.equal(backoffDelayMs(20, retry, null, () => 0.999), 999);
    assert.equal(backoffDelayMs(1, retry, 2_000, () => 0.5), 2_000);
    assert.equal(retryAfterMsOf('2'), 2_000);
    assert.equal(retryAfterMsOf(null), null);
    assert.equal(retryAfterMsOf(new Date(10_000).toUTCString(), 4_000), 6_000);
  });

  test('answers map onto acks and errors: 400 with errors is an ack, 401 is final, 503 retriable', () => {
    const ack = httpOutcome(400, null, JSON.stringify({ accepted: 0, duplicates: 0, errors: [{ index: 0, field: 'timestamp', code: 'ERR_EVENT_TIMESTAMP_RANGE', message: 'm' }] }));
    assert.equal(ack.errors[0]?.code, 'ERR_EVENT_TIMESTAMP_RANGE');
    assert.throws(() => httpOutcome(401, null, '{"error":{"code":"ERR_AUTH_INVALID","message":"bad key"}}'), { code: 'ERR_AUTH_INVALID', retriable: false, status: 401 });
    assert.throws(() => httpOutcome(503, '3', '{"error":{"code":"ERR_INGEST_OVERLOADED","message":"full"}}'), { code: 'ERR_INGEST_OVERLOADED', retriable: true, retryAfterMs: 3_000 });
    assert.throws(() => httpOutcome(502, null, '<html>bad gateway</html>'), { code: 'ERR_CLIENT_HTTP_502', retriable: true });
  });
});

describe('batching without a network (the transport option)', () => {
  test('batches form by count, by bytes and by time, each with its own batch_id, and never change', async () => {
    const transport = recordingTransport();
    const client = new FloodgateClient({ url: 'http://unused', transport: transport.send, batchEvents: 10, batchBytes: 2_048, flushIntervalMs: 50 });
    for (let i = 0; i < 25; i++) client.track({ event_type: 'count', event_id: `c-${i}` });
    assert.equal(transport.batches.length, 2, 'two full batches sealed at once');
    await sleep(120);
    assert.equal(transport.batches.length, 3, 'the rest sealed by the flush interval');
    assert.deepEqual(transport.batches.map((batch) => batch.eventCount), [10, 10, 5]);
    client.track({ event_type: 'big', attributes: { blob: 'x'.repeat(1_500) } });
    client.track({ event_type: 'big', attributes: { blob: 'y'.repeat(1_500) } });
    await client.flush();
    assert.deepEqual(transport.batches.slice(3).map((batch) => batch.eventCount), [1, 1], 'a batch never grows past batchBytes');
    const ids = new Set(transport.batches.map((batch) => batch.batchId));
    assert.equal(ids.size, 5);
    for (const batch of transport.batches) {
      const events = JSON.parse(batch.eventsJson) as { timestamp: unknown }[];
      assert.equal(events.length, batch.eventCount);
      for (const event of events) assert.equal(typeof event.timestamp, 'number', 'a missing timestamp is fixed at track()');
    }
    assert.throws(() => client.track({} as never), TypeError);
    assert.throws(() => client.track({ event_type: 'cyclic', attributes: { big: 10n } }), TypeError, 'what JSON.stringify refuses is refused at track()');
    await client.close();
    assert.throws(() => client.track({ event_type: 'late' }), { code: 'ERR_CLIENT_CLOSED' });
  });

  test('a full queue throws QueueFullError and takes nothing; room returns once batches settle', async () => {
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const sent: OutgoingBatch[] = [];
    const client = new FloodgateClient({
      url: 'http://unused', batchEvents: 2, queueEventsMax: 5, flushIntervalMs: 10,
      transport: async (batch) => (sent.push(batch), await gate, { accepted: batch.eventCount, duplicates: 0, errors: [] }),
    });
    const receipts = Array.from({ length: 5 }, (_, i) => client.track({ event_type: 'q', event_id: `q-${i}` }));
    assert.throws(() => client.track({ event_type: 'q', event_id: 'q-5' }), { name: 'QueueFullError', code: 'ERR_CLIENT_QUEUE_FULL' });
    assert.equal(client.stats().queued, 5);
    release();
    const results = await Promise.all(receipts);
    assert.deepEqual(results.map((result) => result.status), ['accepted', 'accepted', 'accepted', 'accepted', 'accepted']);
    assert.equal(client.stats().queued, 0);
    await client.track({ event_type: 'q', event_id: 'q-5' });
    await client.close();
    assert.equal(client.stats().tracked, 6);
  });

  test('a transport that throws or rejects with a plain error is retried; the batch gives up after attemptsMax, naming the last error', async () => {
    const seen: string[] = [];
    const errors: FloodgateEventError[] = [];
    const client = new FloodgateClient({
      url: 'http://unused', retry: { attemptsMax: 3, baseMs: 1, maxMs: 5 }, onError: (error) => errors.push(error),
      transport: (batch) => {
        seen.push(batch.batchId);
        throw new Error('socket hang up');
      },
    });
    const receipt = client.track({ event_type: 'doomed' });
    await client.close();
    await assert.rejects(receipt, (error: FloodgateEventError) => {
      assert.equal(error.code, 'ERR_CLIENT_RETRIES_EXHAUSTED');
      assert.match(error.message, /after 3 attempts.*ERR_CLIENT_NETWORK.*socket hang up/);
      assert.equal(error.index, 0);
      return true;
    });
    assert.equal(seen.length, 3);
    assert.equal(new Set(seen).size, 1, 'every attempt carries the same batch_id');
    assert.equal(errors.length, 1);
    assert.equal(client.stats().failed, 1);
  });
});

describe('HTTP against a real engine', () => {
  let engine: TestEngine;
  before(async () => {
    engine = await startTestEngine();
  });
  after(async () => {
    await engine.close();
  });

  const storedCount = async (source: string): Promise<{ rows: number; ids: number }> => {
    const [row] = await engine.query<{ rows: number; ids: number }>('SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS ids FROM events WHERE source = $1', [source]);
    return row!;
  };

  for (const gzip of [false, true]) {
    test(`${gzip ? 'gzip: ' : ''}250 events in batches of 100: close() drains, every event stored once`, async () => {
      const source = marker(gzip ? 'gz' : 'plain');
      const client = new FloodgateClient({ url: engine.baseUrl, gzip, batchEvents: 100, flushIntervalMs: 5_000 });
      const receipts = Array.from({ length: 250 }, (_, i) => client.track({ event_type: 'page_view', source, actor_id: `u-${i % 7}`, attributes: { i, price: 1.5 } }));
      await client.close();
      const results = await Promise.all(receipts);
      assert.ok(results.every((result) => result.status === 'accepted' && result.eventId === null));
      assert.deepEqual(await storedCount(source), { rows: 250, ids: 250 });
      const stats = client.stats();
      assert.deepEqual([stats.accepted, stats.batchesSent, stats.queued, stats.failed], [250, 3, 0, 0]);
    });
  }

  test('per-event errors reach exactly the events they name; duplicates are reported', async () => {
    const source = marker('errors');
    const failures: FloodgateEventError[] = [];
    const client = new FloodgateClient({ url: engine.baseUrl, onError: (error) => failures.push(error) });
    const receipts = [
      client.track({ event_type: 'ok', source, event_id: `${source}-0` }),
      client.track({ event_type: 'ok', source, timestamp: '2001-01-01T00:00:00Z' }),
      client.track({ event_type: 'x'.repeat(129), source }),
      client.track({ event_type: 'ok', source, event_id: `${source}-3`, attributes: { nested: { a: 1 } } }),
    ];
    await client.flush();
    const outcomes = await Promise.allSettled(receipts);
    assert.deepEqual(outcomes.map((outcome) => outcome.status), ['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    const rejected = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected').map((outcome) => outcome.reason as FloodgateEventError);
    assert.deepEqual(rejected.map((error) => [error.index, error.code, error.field]), [[1, 'ERR_EVENT_TIMESTAMP_RANGE', 'timestamp'], [2, 'ERR_EVENT_FIELD_LENGTH', 'event_type']]);
    assert.equal(rejected[0]!.event.timestamp, '2001-01-01T00:00:00Z', 'the error carries the event as tracked');
    assert.deepEqual(failures.map((error) => error.index), [1, 2]);
    assert.equal((outcomes[0] as PromiseFulfilledResult<TrackResult>).value.eventId, `${source}-0`);

    // The same ids again, in a batch of their own: stored once, reported as duplicates.
    const again = [client.track({ event_type: 'ok', source, event_id: `${source}-0` }), client.track({ event_type: 'ok', source, event_id: `${source}-3` })];
    await client.close();
    const statuses = (await Promise.allSettled(again)).map((outcome) => (outcome.status === 'fulfilled' ? outcome.value.status : 'failed'));
    // Each copy got its own timestamp at track(); the engine's dedupe window knows the ids.
    assert.deepEqual(statuses, ['duplicate', 'duplicate']);
    assert.deepEqual(await storedCount(source), { rows: 2, ids: 2 });
  });

  test('an answer lost after the commit: the resent batch is all duplicates, derived ids included, and nothing is stored twice', async () => {
    const source = marker('lost');
    const send = httpTransport({ url: engine.baseUrl, apiKey: null, gzip: false, timeoutMs: 5_000, fetch: fetch as never });
    const keys: string[] = [];
    const client = new FloodgateClient({
      url: engine.baseUrl, retry: { baseMs: 1, maxMs: 5 },
      transport: async (batch) => {
        keys.push(batch.batchId);
        const ack = await send(batch);
        if (batch.attempt === 0) throw new Error('the answer was lost on the way back');
        return ack;
      },
    });
    const receipts = Array.from({ length: 10 }, (_, i) => client.track(i < 5 ? { event_type: 'lost', source, event_id: `${source}-${i}` } : { event_type: 'lost', source }));
    await client.close();
    assert.deepEqual((await Promise.all(receipts)).map((result) => result.status), Array(10).fill('duplicate'));
    assert.deepEqual(keys, [keys[0], keys[0]]);
    assert.deepEqual([client.stats().accepted, client.stats().duplicates], [0, 10], 'the stats count the answer that arrived');
    assert.deepEqual(await storedCount(source), { rows: 10, ids: 10 });
  });

  test('a batch of only invalid events (400) fails each event with its own error, without retrying', async () => {
    let attempts = 0;
    const counting = (url: string, init: never): Promise<Response> => (attempts++, fetch(url, init));
    const client = new FloodgateClient({ url: engine.baseUrl, fetch: counting as never });
    const receipts = [client.track({ event_type: '' }), client.track({ event_type: 'bad', timestamp: 'yesterday' })];
    await client.close();
    const codes = (await Promise.allSettled(receipts)).map((outcome) => (outcome.status === 'rejected' ? (outcome.reason as FloodgateEventError).code : 'stored'));
    assert.deepEqual(codes, ['ERR_EVENT_FIELD_LENGTH', 'ERR_EVENT_TIMESTAMP_FORMAT']);
    assert.equal(attempts, 1);
  });
});

describe('HTTP retries and refusals', () => {
  test('503 with Retry-After: the batch is resent after the delay, with the same Idempotency-Key and body', async () => {
    const seen: { key: string; body: string; atMs: number }[] = [];
    const server = http.createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        seen.push({ key: String(request.headers['idempotency-key']), body, atMs: Date.now() });
        if (seen.length === 1) {
          response.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"error":{"code":"ERR_INGEST_OVERLOADED","message":"ring full"}}');
          return;
        }
        const events = (JSON.parse(body) as { events: unknown[] }).events.length;
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ request_id: 'r', accepted: events, duplicates: 0, rejected: 0, errors: [], queued: events }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const client = new FloodgateClient({ url, retry: { baseMs: 1, maxMs: 10 } });
      const receipt = client.track({ event_type: 'retry', event_id: 'r-1' });
      await client.close();
      assert.equal((await receipt).status, 'accepted');
      assert.equal(seen.length, 2);
      assert.equal(seen[0]!.key, seen[1]!.key);
      assert.match(seen[0]!.key, /^[0-9a-f-]{36}$/);
      assert.equal(seen[0]!.body, seen[1]!.body);
      assert.ok(seen[1]!.atMs - seen[0]!.atMs >= 950, `resent ${seen[1]!.atMs - seen[0]!.atMs} ms later, Retry-After said 1 s`);
      assert.equal(client.stats().batchesRetried, 1);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('a rate-limited engine (429 + Retry-After): every event arrives, once, after waiting', async () => {
    const engine = await startTestEngine({ openIngestEventsPerS: 200, openIngestBurstEvents: 200 });
    try {
      const source = marker('limited');
      const client = new FloodgateClient({ url: engine.baseUrl, batchEvents: 100, batchesInFlightMax: 2, retry: { baseMs: 10, maxMs: 100 } });
      const startedMs = Date.now();
      for (let i = 0; i < 600; i++) client.track({ event_type: 'limited', source });
      await client.close();
      const stats = client.stats();
      const [row] = await engine.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE source = $1', [source]);
      assert.equal(row!.n, 600);
      assert.equal(stats.accepted, 600);
      assert.ok(stats.batchesRetried > 0, 'some batches met the limit');
      assert.ok(Date.now() - startedMs >= 1_500, '600 events at 200/s with a 200 burst take at least 2 s of refills');
    } finally {
      await engine.close();
    }
  });

  test('401 is not retried: every event of the batch fails with the engine\'s code', async () => {
    const engine = await startTestEngine({ authMode: 'required' });
    try {
      let attempts = 0;
      const counting = (url: string, init: never): Promise<Response> => (attempts++, fetch(url, init));
      const client = new FloodgateClient({ url: engine.baseUrl, apiKey: 'fgk_not-a-real-key', fetch: counting as never });
      const receipts = [client.track({ event_type: 'a' }), client.track({ event_type: 'b' })];
      await client.close();
      for (const outcome of await Promise.allSettled(receipts)) {
        assert.equal(outcome.status, 'rejected');
        const error = outcome.reason as FloodgateEventError;
        assert.equal(error.code, 'ERR_AUTH_INVALID');
        assert.equal((error.cause as { status?: number }).status, 401);
      }
      assert.equal(attempts, 1);
    } finally {
      await engine.close();
    }
  });
});

// Both transports, here in one place: the stream's reconnect and resend face the same kill.
for (const transport of ['http', 'websocket'] as const) {
test(`kill -9 of the engine mid-stream (${transport}), restart on the same port and database: every tracked event stored exactly once`, { timeout: 90_000 }, async () => {
  const database = await createTestDatabase();
  const port = await freePort();
  const env = engineEnv({ DATABASE_URL: database.url, PORT: String(port), FLOODGATE_HOST: '127.0.0.1' });
  let engine: EngineProcess = await spawnEngine(env);
  const source = marker('crash');
  const total = 6_000;
  const client = new FloodgateClient({
    url: `http://127.0.0.1:${port}`, transport, WebSocket, batchEvents: 100, flushIntervalMs: 20, retry: { attemptsMax: 30, baseMs: 50, maxMs: 1_000 },
  });
  try {
    let restarted: Promise<EngineProcess> | null = null;
    for (let i = 0; i < total; i++) {
      // Half with ids of their own, half with ids the engine derives from the batch_id.
      client.track(i % 2 === 0 ? { event_type: 'crash', source, event_id: `${source}-${i}` } : { event_type: 'crash', source, attributes: { i } });
      if (i % 100 !== 99) continue;
      await sleep(15);
      // Kill by progress, not by time: a fast engine could finish before a timed kill.
      if (restarted === null && client.stats().accepted >= total / 3) {
        engine.child.kill('SIGKILL');
        await engine.exited;
        restarted = spawnEngine(env);
      }
    }
    assert.ok(restarted !== null, 'the engine was killed mid-stream');
    engine = await restarted;
    await client.close();
    const stats = client.stats();
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const [row] = (await admin.query<{ rows: number; ids: number }>('SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS ids FROM events WHERE source = $1', [source])).rows;
    await admin.end();
    process.stdout.write(`# client kill -9 (${transport}): ${total} tracked, ${stats.batchesSent} sends, ${stats.batchesRetried} retried, accepted ${stats.accepted}, duplicates ${stats.duplicates}, stored ${row!.rows}\n`);
    assert.equal(stats.failed, 0);
    assert.ok(stats.batchesRetried > 0, 'the kill interrupted some batches');
    assert.equal(row!.ids, total, 'loss: every event is stored');
    assert.equal(row!.rows, total, 'duplicates: no event is stored twice');
  } finally {
    engine.child.kill('SIGKILL');
    await engine.exited;
    await database.drop();
  }
});
}
