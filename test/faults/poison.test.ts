/**
 * Poison events must not block the pipeline or sink their batch.
 * - What validation can see (\u0000 in attributes, NUL in a text field, lone surrogates)
 *   is refused per event at once.
 * - What only PostgreSQL refuses is isolated by bisecting the batch: the good rows
 *   commit, the bad one goes to dead_letters with the database's reason. To make the
 *   database refuse rows that pass validation, the test adds a CHECK constraint, as an
 *   operator might.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { post, startTestEngine, type TestEngine } from '../support/engine';
import { wireEvent, wireEvents } from '../support/wire-events';

const json = { 'content-type': 'application/json' };
let harness: TestEngine;

before(async () => {
  harness = await startTestEngine();
  await harness.query("ALTER TABLE events ADD CONSTRAINT events_no_poison CHECK (event_type <> 'poison')");
});
after(async () => {
  await harness?.close();
});

test('what validation can see is refused per event; the rest of the batch is stored', async () => {
  const body =
    '{"events": [' +
    [
      JSON.stringify(wireEvent('v-ok-1')),
      JSON.stringify({ ...wireEvent('v-nul-attr'), properties: { note: 'a\u0000b' } }),
      JSON.stringify({ ...wireEvent('v-nul-type'), event_type: 'click\u0000' }),
      JSON.stringify(wireEvent('v-ok-2')).replace('"web"', '"\\ud800"'),
      JSON.stringify(wireEvent('v-ok-3')),
    ].join(',') +
    ']}';
  const answer = await post(`${harness.baseUrl}/v1/events/bulk`, body, json);
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.json.accepted, 2);
  assert.deepEqual(
    answer.json.errors.map((error: { index: number; code: string }) => [error.index, error.code]),
    [
      [1, 'ERR_EVENT_ATTRIBUTES_INVALID'],
      [2, 'ERR_EVENT_FIELD_NUL'],
      [3, 'ERR_EVENT_FIELD_TYPE'],
    ],
  );
});

test('rows PostgreSQL refuses are dead-lettered alone; good rows commit; the pipeline keeps flowing', async () => {
  const events = wireEvents(100, 'p');
  for (const index of [7, 50, 93]) events[index] = { ...(events[index] as (typeof events)[number]), event_type: 'poison' };
  const answer = await post(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events }), json);
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.json.accepted, 97);
  assert.deepEqual(
    answer.json.errors.map((error: { index: number; code: string }) => [error.index, error.code]),
    [
      [7, 'ERR_EVENT_DEAD_LETTERED'],
      [50, 'ERR_EVENT_DEAD_LETTERED'],
      [93, 'ERR_EVENT_DEAD_LETTERED'],
    ],
  );
  const letters = await harness.query<{ event_id: string; reason_code: string; reason: string }>('SELECT event_id, reason_code, reason FROM dead_letters ORDER BY event_id');
  assert.deepEqual(letters.map((letter) => [letter.event_id, letter.reason_code]), [['p-50', '23514'], ['p-7', '23514'], ['p-93', '23514']]);
  assert.match(letters[0]?.reason ?? '', /events_no_poison/);
  const [stored] = await harness.query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE event_id LIKE 'p-%'");
  assert.equal(stored?.n, 97);

  const next = await post(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events: wireEvents(50, 'after-poison') }), json);
  assert.equal(next.json.accepted, 50, 'the pipeline still flows');
});

test('a batch of only poison answers 400 with every event dead-lettered, and stores nothing', async () => {
  const events = wireEvents(3, 'all-poison').map((event) => ({ ...event, event_type: 'poison' }));
  const answer = await post(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events }), json);
  assert.equal(answer.status, 400, answer.text);
  assert.equal(answer.json.error.code, 'ERR_INGEST_ALL_INVALID');
  assert.ok(answer.json.errors.every((error: { code: string }) => error.code === 'ERR_EVENT_DEAD_LETTERED'));
});
