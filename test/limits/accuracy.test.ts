/**
 * The accuracy test: two engine nodes share PostgreSQL and Redis; one key limited
 * to 2,000 events/s (burst 2,000) is offered about twice that for 60 s, split across both
 * nodes, open loop (requests leave on a schedule, not when the previous answer came).
 * Accepted events must be within ±10% of limit × duration + burst; every refusal a 429
 * with Retry-After; every accepted event in PostgreSQL exactly once. Also measured: the
 * latency a Redis-checked limit adds to a request, against an unlimited key.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import pg from 'pg';
import { generateKey } from '../../src/auth/key-format';
import { startEngine, type Engine } from '../../src/engine';
import { createLogger } from '../../src/log';
import { createTestDatabase, redisUrlOrSkip, type TestDatabase } from '../support/database';
import { request, testConfig } from '../support/engine';
import { wireEvents } from '../support/wire-events';

const limitEventsPerS = 2000;
const burstEvents = 2000;
const durationMs = 60_000;
const eventsPerRequest = 100;
/** Each node is offered the whole limit: twice the limit in all. */
const requestsPerSPerNode = limitEventsPerS / eventsPerRequest;

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function createKey(base: string, adminKey: string, name: string, fields: Record<string, unknown>): Promise<string> {
  const answer = await request('POST', `${base}/v1/keys`, { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, JSON.stringify({ name, scopes: ['ingest'], ...fields }));
  assert.equal(answer.status, 201, answer.text);
  return answer.json.key;
}

interface Tally {
  accepted: number;
  refused: number;
  refusedWithoutRetryAfter: number;
  other: string[];
}

async function offer(bases: readonly string[], key: string, prefix: string): Promise<{ tally: Tally; elapsedMs: number }> {
  const tally: Tally = { accepted: 0, refused: 0, refusedWithoutRetryAfter: 0, other: [] };
  const inFlight: Promise<void>[] = [];
  const intervalMs = 1000 / requestsPerSPerNode;
  const startedAt = performance.now();
  let sent = 0;
  for (let tick = 0; tick * intervalMs < durationMs; tick++) {
    const due = startedAt + tick * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    for (const base of bases) {
      const body = JSON.stringify({ events: wireEvents(eventsPerRequest, `${prefix}-${sent++}`) });
      inFlight.push(request('POST', `${base}/v1/events/bulk`, { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body).then((answer) => {
        if (answer.status === 200) tally.accepted += answer.json.accepted;
        else if (answer.status === 429) {
          tally.refused += 1;
          if (!/^[1-9]\d*$/.test(answer.headers.get('retry-after') ?? '')) tally.refusedWithoutRetryAfter += 1;
        } else tally.other.push(`${answer.status} ${answer.text.slice(0, 200)}`);
      }));
    }
  }
  const elapsedMs = performance.now() - startedAt;
  await Promise.all(inFlight);
  return { tally, elapsedMs };
}

/** Median of sequential one-event requests: the added cost of one Redis script call. */
async function medianMs(base: string, key: string, prefix: string, count: number): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const body = JSON.stringify({ events: wireEvents(1, `${prefix}-${i}`) });
    const started = performance.now();
    const answer = await request('POST', `${base}/v1/events/bulk`, { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body);
    times.push(performance.now() - started);
    assert.equal(answer.status, 200, answer.text);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] as number;
}

test('two nodes, one key offered twice its limit for 60 s: accepted within ±10%, refusals 429, nothing lost or doubled', { timeout: 180_000 }, async (t) => {
  const redisUrl = redisUrlOrSkip(t);
  if (redisUrl === null) return;
  const database: TestDatabase = await createTestDatabase();
  cleanups.push(() => database.drop());
  const adminKey = generateKey();
  const nodes: Engine[] = [];
  for (let i = 0; i < 2; i++) {
    const engine = await startEngine(testConfig(database.url, { adminKey, redisUrl, logLevel: 'warn' }), createLogger('warn'));
    cleanups.push(() => engine.stop());
    nodes.push(engine);
  }
  const bases = nodes.map((engine) => `http://127.0.0.1:${engine.port}`);
  const run = Date.now().toString(36);
  const key = await createKey(bases[0] as string, adminKey, 'accuracy', { events_per_s: limitEventsPerS, burst_events: burstEvents });
  const unlimited = await createKey(bases[0] as string, adminKey, 'unlimited', {});
  const generous = await createKey(bases[0] as string, adminKey, 'generous', { events_per_s: 1_000_000 });
  await new Promise((resolve) => setTimeout(resolve, 1500)); // the second node's key cache

  // Alternating rounds, so that drift in the machine's load falls on both alike.
  const medians = { unlimited: [] as number[], limited: [] as number[] };
  for (let round = 0; round < 4; round++) {
    medians.unlimited.push(await medianMs(bases[1] as string, unlimited, `lat-u-${run}-${round}`, 100));
    medians.limited.push(await medianMs(bases[1] as string, generous, `lat-l-${run}-${round}`, 100));
  }
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  t.diagnostic(`latency (median of 100 sequential 1-event durable requests, mean of 4 alternating rounds): unlimited key ${mean(medians.unlimited).toFixed(3)} ms, Redis-limited key ${mean(medians.limited).toFixed(3)} ms, added ${(mean(medians.limited) - mean(medians.unlimited)).toFixed(3)} ms`);

  const { tally, elapsedMs } = await offer(bases, key, `acc-${run}`);
  const expected = limitEventsPerS * (elapsedMs / 1000) + burstEvents;
  const ratio = tally.accepted / expected;
  t.diagnostic(`offered ${(2 * limitEventsPerS * elapsedMs) / 1000 | 0} events over ${(elapsedMs / 1000).toFixed(1)} s; accepted ${tally.accepted}, expected ${Math.round(expected)} (limit × duration + burst), ratio ${ratio.toFixed(4)}; refused ${tally.refused} requests`);
  assert.deepEqual(tally.other, [], 'every answer is 200 or 429');
  assert.equal(tally.refusedWithoutRetryAfter, 0, 'every 429 carries Retry-After');
  assert.ok(ratio >= 0.9 && ratio <= 1.1, `accepted/expected = ${ratio}`);

  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    const { rows } = await client.query('SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS ids FROM events WHERE event_id LIKE $1', [`acc-${run}-%`]);
    assert.deepEqual(rows[0], { n: tally.accepted, ids: tally.accepted }, 'every accepted event stored once');
  } finally {
    await client.end();
  }
});
