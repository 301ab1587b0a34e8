import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultConfig } from '../../src/config/load-config';
import { decodeBulkBody, decodeSingleBody } from '../../src/decode/decode-body';
import { scanBody } from '../../src/decode/event-count-scanner';
import { validateEvent } from '../../src/validate/validate-event';
import { buildBodyTemplate, eventIdOf, stampBody, streamBatchIdOf } from '../../bench/load/bodies';
import { decodeBatchFrame } from '../../src/stream/stream-frames';
import { countAnswer } from '../../bench/load/interval-stats';
import type { Format } from '../../bench/load/scenario';

const context = { receivedAtMs: Date.now(), idempotencyKey: null, limits: defaultConfig() };

for (const format of ['json', 'msgpack', 'ndjson'] as const satisfies readonly Format[]) {
  test(`a stamped ${format} bulk body decodes and validates in the engine with the request's own ids`, () => {
    const template = buildBodyTemplate('/v1/events/bulk', format, 25, 'lbtest-c01-');
    assert.equal(template.sequenceOffsets.length, 25);
    for (const sequence of [0, 1, 35, 123_456_789]) {
      const sentAtMs = context.receivedAtMs - sequence;
      const body = stampBody(template, sequence, sentAtMs);
      assert.equal(body.length, template.bytes.length, 'the body length must not depend on the sequence');
      const decoded = decodeBulkBody(format, body, defaultConfig(), scanBody(format, body));
      assert.ok(decoded.ok, decoded.ok ? '' : decoded.error.message);
      const ids = decoded.items.map((item, index) => {
        const result = validateEvent(item, index, context);
        assert.ok(result.ok, result.ok ? '' : result.error.message);
        assert.equal(result.event.occurredAtUs, sentAtMs * 1000, 'every event carries the send time');
        return result.event.eventId;
      });
      assert.deepEqual(ids, Array.from({ length: 25 }, (_, index) => eventIdOf('lbtest-c01-', sequence, index)));
    }
  });
}

for (const format of ['json', 'msgpack', 'ndjson'] as const satisfies readonly Format[]) {
  test(`a stamped ${format} stream frame names its batch by the request's sequence and decodes in the engine`, () => {
    const template = buildBodyTemplate('/v1/events/stream', format, 10, 'lbtest-c02-');
    assert.equal(template.timestampOffsets.length, 10);
    for (const sequence of [0, 7, 99_999]) {
      const frame = decodeBatchFrame(stampBody(template, sequence, context.receivedAtMs), format === 'msgpack', defaultConfig());
      assert.ok(frame.ok, frame.ok ? '' : frame.error.message);
      assert.equal(frame.batchId, streamBatchIdOf('lbtest-c02-', sequence));
      const ids = frame.items.map((item, index) => (validateEvent(item, index, context) as { event: { eventId: string } }).event.eventId);
      assert.deepEqual(ids, Array.from({ length: 10 }, (_, index) => eventIdOf('lbtest-c02-', sequence, index)));
    }
  });
}

test('single-event bodies carry one event, stamped like the rest', () => {
  const template = buildBodyTemplate('/webhook/events', 'json', 1, 'lbtest-c00-');
  const decoded = decodeSingleBody('json', stampBody(template, 42), defaultConfig());
  assert.ok(decoded.ok);
  const result = validateEvent(decoded.item, 0, context);
  assert.ok(result.ok);
  assert.equal(result.event.eventId, 'lbtest-c00-00000016-0000');
});

test('stamping does not touch the template, and refuses sequences beyond 8 base-36 digits', () => {
  const template = buildBodyTemplate('/v1/events/bulk', 'json', 3, 'lbtest-c02-');
  const before = Buffer.from(template.bytes);
  stampBody(template, 99);
  assert.deepEqual(template.bytes, before);
  assert.throws(() => stampBody(template, 36 ** 8), RangeError);
  assert.throws(() => buildBodyTemplate('/v1/events/bulk', 'json', 3, 'Upper Case'), /must be \[a-z0-9-\]/);
});

test('answers are counted per route: only 2xx acknowledges, webhooks by status', () => {
  const bulk = '{"request_id":"r","accepted":97,"duplicates":1,"rejected":2,"errors":[],"queued":98}';
  assert.deepEqual(countAnswer('/v1/events/bulk', 'floodgate', 200, bulk), { acknowledged: 97, duplicates: 1, rejected: 2 });
  assert.deepEqual(countAnswer('/v1/events/bulk', 'floodgate', 503, bulk), { acknowledged: 0, duplicates: 0, rejected: 0 });
  assert.deepEqual(countAnswer('/webhook/events', 'floodgate', 202, '{"status":"accepted"}'), { acknowledged: 1, duplicates: 0, rejected: 0 });
  assert.deepEqual(countAnswer('/webhook/events', 'floodgate', 200, '{"status":"ignored"}'), { acknowledged: 0, duplicates: 1, rejected: 0 });
  assert.deepEqual(countAnswer('/webhook/events', 'baseline', 200, '{"accepted":1,"duplicates":0,"rejected":0}'), { acknowledged: 1, duplicates: 0, rejected: 0 });
  const batch = '{"status":"processed","results":{"accepted":9,"duplicates":0,"errors":1},"total_events":10}';
  assert.deepEqual(countAnswer('/webhook/batch', 'floodgate', 202, batch), { acknowledged: 9, duplicates: 0, rejected: 1 });
});
