/**
 * Several nodes: two engines share one PostgreSQL and one Redis, as behind a load balancer
 * that retries on another node. An event must be stored once whichever node gets it, and
 * Redis trouble must degrade dedupe, never ingest.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startEngine, type Engine } from '../../src/engine';
import { createLogger } from '../../src/log';
import { post, startTestEngine, testConfig, type TestEngine } from '../support/engine';
import { freePort } from '../support/free-port';
import { redisUrlOrSkip } from '../support/database';
import { wireEvent, wireEvents } from '../support/wire-events';

const json = { 'content-type': 'application/json' };
const run = Date.now().toString(36);
let nodeA: TestEngine | null = null;
let nodeB: Engine | null = null;

before(async () => {
  const redisUrl = process.env.REDIS_URL;
  if (!redisUrl) return;
  nodeA = await startTestEngine({ redisUrl });
  nodeB = await startEngine(testConfig(nodeA.databaseUrl, { redisUrl }), createLogger('silent'));
});
after(async () => {
  await nodeB?.stop();
  await nodeA?.close();
});

const bulk = (engine: { port: number }): string => `http://127.0.0.1:${engine.port}/v1/events/bulk`;

test('the same events reaching both nodes at once are stored once', async (t) => {
  if (redisUrlOrSkip(t) === null || nodeA === null || nodeB === null) return;
  const bodies = Array.from({ length: 10 }, (_, b) => JSON.stringify({ events: wireEvents(100, `both-${run}-${b}`) }));
  const answers = await Promise.all(bodies.flatMap((body) => [post(bulk(nodeA!.engine), body, json), post(bulk(nodeB!), body, json)]));
  for (const answer of answers) assert.equal(answer.status, 200, answer.text);
  const accepted = answers.reduce((sum, answer) => sum + answer.json.accepted, 0);
  const duplicates = answers.reduce((sum, answer) => sum + answer.json.duplicates, 0);
  assert.deepEqual([accepted, duplicates], [1000, 1000]);
  const [stored] = await nodeA.query<{ rows: number; ids: number }>('SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS ids FROM events WHERE event_id LIKE $1', [`both-${run}-%`]);
  assert.deepEqual(stored, { rows: 1000, ids: 1000 });
});

test('a retry on the other node with a different timestamp is a duplicate (Redis layer)', async (t) => {
  if (redisUrlOrSkip(t) === null || nodeA === null || nodeB === null) return;
  const id = `moved-${run}`;
  const first = await post(bulk(nodeA.engine), JSON.stringify({ events: [wireEvent(id)] }), json);
  assert.equal(first.json.accepted, 1);
  // Node A records committed ids in Redis just after its answer; give it a moment.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const retried = { ...wireEvent(id), timestamp: new Date(Date.now() - 5000).toISOString() };
  const second = await post(bulk(nodeB), JSON.stringify({ events: [retried] }), json);
  assert.deepEqual([second.json.accepted, second.json.duplicates], [0, 1]);
  const rows = await nodeA.query('SELECT 1 FROM events WHERE event_id = $1', [id]);
  assert.equal(rows.length, 1);
});

test('two deployments sharing one Redis but not a database each store the same ids', async (t) => {
  const redisUrl = redisUrlOrSkip(t);
  if (redisUrl === null) return;
  // A regression test: Redis keys were not scoped to a database, so the second deployment
  // answered these events as duplicates and never stored them.
  const other = await startTestEngine({ redisUrl });
  const elsewhere = await startTestEngine({ redisUrl });
  try {
    const body = JSON.stringify({ events: wireEvents(20, `two-databases-${run}`) });
    const first = await post(`${other.baseUrl}/v1/events/bulk`, body, json);
    assert.deepEqual([first.status, first.json.accepted], [200, 20], first.text);
    const second = await post(`${elsewhere.baseUrl}/v1/events/bulk`, body, json);
    assert.deepEqual([second.status, second.json.accepted, second.json.duplicates], [200, 20, 0], second.text);
    assert.equal(await elsewhere.countEvents(), 20);
  } finally {
    await other.close();
    await elsewhere.close();
  }
});

test('Redis unreachable: ingest continues with in-memory and database dedupe', async (t) => {
  if (redisUrlOrSkip(t) === null) return;
  const harness = await startTestEngine({ redisUrl: `redis://127.0.0.1:${await freePort()}` });
  try {
    const body = JSON.stringify({ events: wireEvents(20, `noredis-${run}`) });
    const first = await post(`${harness.baseUrl}/v1/events/bulk`, body, json);
    assert.equal(first.status, 200, first.text);
    assert.equal(first.json.accepted, 20);
    const again = await post(`${harness.baseUrl}/v1/events/bulk`, body, json);
    assert.equal(again.json.duplicates, 20);
    assert.equal((await fetch(`${harness.baseUrl}/readyz`)).status, 200, 'Redis trouble is not an outage');
  } finally {
    await harness.close();
  }
});
