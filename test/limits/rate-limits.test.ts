/**
 * Rate limits against real engines over real sockets: a key with a small limit (per node,
 * and shared by two nodes through Redis), the answers' headers, nothing half-taken, the
 * limit on keys create / list, the per-address limit for open ingest, and a Redis outage
 * that falls back to per-node buckets with one warning.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import type { Config } from '../../src/config/config';
import { startEngine, type Engine } from '../../src/engine';
import { generateKey } from '../../src/auth/key-format';
import { createTestDatabase, redisUrlOrSkip } from '../support/database';
import { freePort } from '../support/free-port';
import { request, testConfig, type Answer } from '../support/engine';
import { wireEvents } from '../support/wire-events';

interface Running {
  readonly engine: Engine;
  readonly base: string;
  readonly logs: string[];
  readonly databaseUrl: string;
}

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function run(overrides: Partial<Config>, databaseUrl?: string): Promise<Running> {
  let url = databaseUrl;
  if (url === undefined) {
    const database = await createTestDatabase();
    cleanups.push(() => database.drop());
    url = database.url;
  }
  const logs: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logs.push(line) });
  const engine = await startEngine(testConfig(url, { logLevel: 'info', ...overrides }), log);
  cleanups.push(() => engine.stop());
  return { engine, base: `http://127.0.0.1:${engine.port}`, logs, databaseUrl: url };
}

const run36 = Date.now().toString(36);
let batchNumber = 0;
function bulk(base: string, count: number, headers: Record<string, string> = {}): Promise<Answer> {
  const body = JSON.stringify({ events: wireEvents(count, `rl-${run36}-${batchNumber++}`) });
  return request('POST', `${base}/v1/events/bulk`, { 'content-type': 'application/json', ...headers }, body);
}

async function createKey(base: string, adminKey: string, fields: Record<string, unknown>): Promise<{ key: string; json: any }> {
  const answer = await request('POST', `${base}/v1/keys`, { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, JSON.stringify({ name: 'limited', scopes: ['ingest'], ...fields }));
  assert.equal(answer.status, 201, answer.text);
  return { key: answer.json.key, json: answer.json };
}

async function countRows(engine: Running): Promise<number> {
  const pg = await import('pg');
  const client = new pg.default.Client({ connectionString: engine.databaseUrl });
  await client.connect();
  try {
    return (await client.query('SELECT count(*)::int AS n FROM events')).rows[0].n;
  } finally {
    await client.end();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The limited-key scenario: burst passes, beyond it 429 with headers, nothing half-taken, refill. */
async function limitedKeyScenario(first: Running, second: Running): Promise<void> {
  const adminKey = (first as Running & { adminKey?: string }).adminKey as string;
  const { key, json } = await createKey(first.base, adminKey, { events_per_s: 10, burst_events: 20 });
  assert.deepEqual([json.events_per_s, json.burst_events], [10, 20]);
  await sleep(1200); // the other node's key cache refreshes every second
  const auth = { authorization: `Bearer ${key}` };
  const within = await bulk(first.base, 20, auth);
  assert.equal(within.status, 200, within.text);
  assert.equal(within.headers.get('ratelimit-policy'), '"default";q=20;w=2');
  assert.match(within.headers.get('ratelimit') ?? '', /^"default";r=[0-1];t=2$/);
  const beyond = await bulk(second.base, 5, auth);
  assert.equal(beyond.status, 429, beyond.text);
  assert.equal(beyond.json.error.code, 'ERR_RATE_LIMITED');
  assert.equal(beyond.headers.get('retry-after'), '1');
  assert.equal(beyond.headers.get('ratelimit-policy'), '"default";q=20;w=2');
  assert.match(beyond.headers.get('ratelimit') ?? '', /^"default";r=\d;t=2$/);
  const tooBig = await bulk(first.base, 21, auth);
  assert.equal(tooBig.status, 413, tooBig.text);
  assert.equal(tooBig.json.error.code, 'ERR_RATE_LIMIT_BURST');
  assert.equal(await countRows(first), 20, 'nothing of the refused requests was stored');
  await sleep(1100);
  const later = await bulk(second.base, 10, auth);
  assert.equal(later.status, 200, later.text);
  assert.equal(await countRows(first), 30);
}

describe('a key with a small limit', () => {
  test('per node (no Redis)', async () => {
    const adminKey = generateKey();
    const node = Object.assign(await run({ adminKey }), { adminKey });
    await limitedKeyScenario(node, node);
    const listed = await request('GET', `${node.base}/v1/keys`, { authorization: `Bearer ${adminKey}` });
    const limited = listed.json.keys.find((item: { name: string }) => item.name === 'limited');
    assert.deepEqual([limited.events_per_s, limited.burst_events], [10, 20]);
    const admin = listed.json.keys.find((item: { name: string }) => item.name === 'bootstrap-admin');
    assert.deepEqual([admin.events_per_s, admin.burst_events], [null, null], 'no limit: unlimited');
    const metrics = await request('GET', `${node.base}/metrics`);
    assert.match(metrics.text, /floodgate_rate_limited_requests_total\{limit="key"\} 1\b/);
    assert.match(metrics.text, /floodgate_rate_limited_events_total\{limit="key"\} 5\b/);
    assert.match(metrics.text, /floodgate_rate_limited_requests_total\{limit="address"\} 0\b/);
  });

  test('shared by two nodes through Redis', async (t) => {
    const redisUrl = redisUrlOrSkip(t);
    if (redisUrl === null) return;
    const adminKey = generateKey();
    const first = Object.assign(await run({ adminKey, redisUrl }), { adminKey });
    const second = await run({ adminKey, redisUrl }, first.databaseUrl);
    await limitedKeyScenario(first, second);
  });

  test('POST /v1/keys refuses bad limits', async () => {
    const adminKey = generateKey();
    const node = await run({ adminKey });
    for (const fields of [{ events_per_s: 0 }, { events_per_s: '5' }, { burst_events: 5 }, { events_per_s: 5, burst_events: 2.5 }]) {
      const answer = await request('POST', `${node.base}/v1/keys`, { authorization: `Bearer ${adminKey}` }, JSON.stringify({ name: 'bad', scopes: ['ingest'], ...fields }));
      assert.equal(answer.status, 400, JSON.stringify(fields));
      assert.equal(answer.json.error.code, 'ERR_KEY_BAD_REQUEST');
    }
  });
});

describe('open ingest limited per client address', () => {
  test('the peer address, or X-Forwarded-For from a trusted proxy', async () => {
    const node = await run({ openIngestEventsPerS: 1, openIngestBurstEvents: 5, trustedProxies: '127.0.0.1, ::ffff:127.0.0.1' });
    assert.equal((await bulk(node.base, 5)).status, 200);
    const refused = await bulk(node.base, 1);
    assert.equal(refused.status, 429, refused.text);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    const forwarded = await bulk(node.base, 5, { 'x-forwarded-for': '203.0.113.1, 198.51.100.7' });
    assert.equal(forwarded.status, 200, 'another client behind the trusted proxy has its own bucket');
    const spoofed = await bulk(node.base, 1, { 'x-forwarded-for': '203.0.113.99, 198.51.100.7' });
    assert.equal(spoofed.status, 429, 'only the right-most untrusted entry counts');
  });

  test('off by default', async () => {
    const node = await run({});
    for (let i = 0; i < 3; i++) assert.equal((await bulk(node.base, 100)).status, 200);
  });
});

/** A Redis of our own, to stop and start: the shared one must stay up for other tests. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'], { stdio: 'ignore' });
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    if (await fetch(`http://127.0.0.1:${port}`).then(() => true, (error: { cause?: { code?: string } }) => error.cause?.code !== 'ECONNREFUSED')) return child;
  }
  throw new Error('redis-server did not start');
}

async function stopRedis(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

test('Redis outage: per-node buckets, requests answered, one warning; shared again when Redis is back', async (t) => {
  if (redisUrlOrSkip(t) === null) return;
  const port = await freePort();
  let redis = await startRedis(port);
  cleanups.push(() => stopRedis(redis).catch(() => undefined));
  const adminKey = generateKey();
  const node = await run({ adminKey, redisUrl: `redis://127.0.0.1:${port}` });
  const { key } = await createKey(node.base, adminKey, { events_per_s: 1000, burst_events: 1000 });
  const auth = { authorization: `Bearer ${key}` };
  assert.equal((await bulk(node.base, 10, auth)).status, 200);
  await stopRedis(redis);
  const statuses: number[] = [];
  for (let i = 0; i < 20; i++) statuses.push((await bulk(node.base, 10, auth)).status);
  assert.deepEqual([...new Set(statuses)], [200], 'answered from the node\'s bucket');
  const warnings = () => node.logs.filter((line) => line.includes('rate limits fall back to per-node buckets'));
  assert.equal(warnings().length, 1, 'one warning per outage');
  redis = await startRedis(port);
  await sleep(2500); // ioredis reconnects within its retry strategy's 2 s
  assert.equal((await bulk(node.base, 10, auth)).status, 200);
  assert.ok(node.logs.some((line) => line.includes('shared across nodes again')), 'the return is logged');
  assert.equal(warnings().length, 1);
});
