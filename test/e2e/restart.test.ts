/**
 * Restarts on the same database: the data stays, and dedupe still holds although the
 * new engine's in-memory windows are empty (PostgreSQL's key is the judge then).
 * Async mode: stopping drains the rings, so every 202 ends up as a row.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { post, startTestEngine } from '../support/engine';
import { wireEvents } from '../support/wire-events';

const json = { 'content-type': 'application/json' };

test('a restart keeps the data and the dedupe', async () => {
  let harness = await startTestEngine();
  try {
    const bodies = Array.from({ length: 5 }, (_, request) => JSON.stringify({ events: wireEvents(100, `rs-${request}`) }));
    for (const body of bodies) assert.equal((await post(`${harness.baseUrl}/v1/events/bulk`, body, json)).json.accepted, 100);
    harness = await harness.restart();
    assert.equal(await harness.countEvents(), 500);
    // A batch mixing old and new ids: the database sorts them out exactly.
    const mixed = JSON.stringify({ events: [...wireEvents(100, 'rs-0').slice(0, 50), ...wireEvents(50, 'rs-new')] });
    const answer = await post(`${harness.baseUrl}/v1/events/bulk`, mixed, json);
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual([answer.json.accepted, answer.json.duplicates], [50, 50]);
    const resent = await Promise.all(bodies.map((body) => post(`${harness.baseUrl}/v1/events/bulk`, body, json)));
    assert.equal(resent.reduce((sum, r) => sum + r.json.duplicates, 0), 500);
    assert.equal(await harness.countEvents(), 550);
  } finally {
    await harness.close();
  }
});

test('async mode: 202 at once, and stopping the engine writes everything acknowledged', async () => {
  const harness = await startTestEngine({ ackMode: 'async', batchWaitMs: 50 });
  try {
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, request) => post(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events: wireEvents(100, `as-${request}`) }), json)),
    );
    let acknowledged = 0;
    for (const answer of answers) {
      assert.equal(answer.status, 202, answer.text);
      acknowledged += answer.json.accepted;
    }
    assert.equal(acknowledged, 2000);
    await harness.stopEngine();
    assert.equal(await harness.countEvents(), 2000);
  } finally {
    await harness.close();
  }
});

test('a request larger than a ring can ever hold is refused with 503 and Retry-After, nothing stored', async () => {
  // The smallest ring the config allows for 1 KiB events; 4,000 events (~400 KB) do not fit in it.
  const harness = await startTestEngine({ eventBytesMax: 1024, attributesBytesMax: 512, ringBytes: 68 * 1024 });
  try {
    const answer = await post(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events: wireEvents(4000, 'full') }), json);
    assert.equal(answer.status, 503, answer.text);
    assert.equal(answer.json.error.code, 'ERR_INGEST_OVERLOADED');
    assert.equal(answer.headers.get('retry-after'), '1');
    assert.equal(await harness.countEvents(), 0);
    const small = await post(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events: wireEvents(10, 'fits') }), json);
    assert.equal(small.status, 200, small.text);
  } finally {
    await harness.close();
  }
});
