import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deadLetterPayload, deadLetterReasonOf } from '../../src/sink/dead-letters';
import { buildEvent } from './fixtures';

test('the payload is the whole event as JSON, attributes embedded as sent', () => {
  const event = buildEvent({ actorId: null, attributesJson: '{"b":[1,2],"a":"\\u0000"}' });
  const payload = deadLetterPayload(event, 17);
  assert.deepEqual(JSON.parse(payload.toString('utf8')), {
    event_id: event.eventId,
    event_type: event.eventType,
    source: event.source,
    actor_id: null,
    occurred_at_us: event.occurredAtUs,
    received_at_us: 17,
    attributes: { b: [1, 2], a: '\u0000' },
  });
  assert.ok(payload.toString('utf8').endsWith(',"attributes":{"b":[1,2],"a":"\\u0000"}}'), 'attributes kept byte for byte');
});

test('the payload survives what text columns refuse: NUL, lone surrogates, broken JSON', () => {
  const event = buildEvent({ eventId: 'id\u0000x', eventType: 'half \ud800 pair', attributesJson: '{"open": [' });
  const payload = deadLetterPayload(event, 0);
  assert.ok(!payload.includes(0), 'no raw NUL byte');
  assert.equal(payload.toString('utf8'), Buffer.from(payload.toString('utf8'), 'utf8').toString('utf8'), 'valid UTF-8');
  const parsed = JSON.parse(payload.toString('utf8'));
  assert.equal(parsed.event_id, 'id\u0000x');
  assert.equal(parsed.event_type, 'half \ud800 pair');
  assert.equal(parsed.attributes_text, '{"open": [');
  assert.equal('attributes' in parsed, false);
});

test('deadLetterReasonOf keeps SQLSTATE, message and detail, and never throws', () => {
  const databaseError = Object.assign(new Error('no partition of relation "events" found for row'), {
    code: '23514',
    detail: 'Partition key of the failing row contains (occurred_at).',
  });
  assert.deepEqual(deadLetterReasonOf(databaseError), {
    code: '23514',
    message: 'no partition of relation "events" found for row (Partition key of the failing row contains (occurred_at).)',
  });
  assert.deepEqual(deadLetterReasonOf(Object.assign(new Error('plain'), { code: '22P05', detail: '' })), { code: '22P05', message: 'plain' });
  assert.deepEqual(deadLetterReasonOf('text thrown'), { code: 'XX000', message: 'text thrown' });
  assert.deepEqual(deadLetterReasonOf(null), { code: 'XX000', message: 'null' });
  assert.deepEqual(deadLetterReasonOf({ code: 42, message: 7 }), { code: 'XX000', message: '[object Object]' });
});
