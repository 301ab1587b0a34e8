import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { C1 } from 'msgpackr';
import type { ErrorCode } from '../../src/errors';
import { attributesText } from '../../src/event';
import { deriveEventId } from '../../src/validate/event-id';
import { UndecodableItem } from '../../src/decode/undecodable-item';
import { validateEvent, type ValidationContext, type ValidationResult } from '../../src/validate/validate-event';
import { buildContext, buildEvent, receivedAtMs, testLimits } from '../support/builders';

function valid(raw: unknown, context: ValidationContext = buildContext(), index = 0): Extract<ValidationResult, { ok: true }> {
  const result = validateEvent(raw, index, context);
  assert.ok(result.ok, `expected valid, got ${JSON.stringify(!result.ok && result.error)}`);
  return result;
}

function invalid(raw: unknown, code: ErrorCode, field: string | null, context: ValidationContext = buildContext(), index = 4): string {
  const result = validateEvent(raw, index, context);
  assert.ok(!result.ok, `expected ${code}, got a valid event`);
  assert.equal(result.error.code, code, result.error.message);
  assert.equal(result.error.field, field, result.error.message);
  assert.equal(result.error.index, index);
  return result.error.message;
}

const emoji = '😀'; // one code point, two UTF-16 units, four UTF-8 bytes

describe('validateEvent, a typical event', () => {
  it('maps every field into a ValidEvent', () => {
    const result = valid(buildEvent());
    assert.deepEqual(result.event, {
      eventId: 'evt_01HZX3K9Q2W8',
      eventType: 'page_view',
      source: 'web',
      actorId: 'user_4821',
      occurredAtUs: Date.UTC(2026, 10, 20, 9, 59, 58) * 1000 + 123_456,
      attributesJson: '{"path":"/pricing","referrer":"https://www.google.com/","plan":"team","seats":12,"trial":true,"utm":{"campaign":"autumn"}}',
    });
    assert.equal(result.idGenerated, false);
  });

  it('fills defaults: source "default", actorId null, attributes {}', () => {
    const result = valid(buildEvent({ source: undefined, actor_id: undefined, attributes: undefined }));
    assert.equal(result.event.source, 'default');
    assert.equal(result.event.actorId, null);
    assert.equal(result.event.attributesJson, '{}');
  });

  it('treats null as absent for every optional field', () => {
    const result = valid(buildEvent({ event_id: null, source: null, actor_id: null, attributes: null }));
    assert.equal(result.event.source, 'default');
    assert.equal(result.event.actorId, null);
    assert.equal(result.event.attributesJson, '{}');
    assert.equal(result.idGenerated, true);
  });

  it('accepts an object without a prototype and an empty attributes object', () => {
    const raw = Object.assign(Object.create(null) as object, buildEvent({ attributes: {} }));
    assert.equal(valid(raw).event.attributesJson, '{}');
  });
});

describe('validateEvent, the event as a whole', () => {
  it('refuses anything but a plain object', () => {
    const cases: Array<[unknown, RegExp]> = [
      [[buildEvent()], /got an array/], [null, /got null/], ['{"event_type":"x"}', /got a string/], [42, /got a number/],
      [undefined, /got undefined/], [new Date(), /got a date/], [Buffer.from('{}'), /got binary data/], [new Map(), /got a map/], [C1, /0xC1/],
    ];
    for (const [raw, message] of cases) assert.match(invalid(raw, 'ERR_EVENT_NOT_OBJECT', null), message);
  });

  it('reports an UndecodableItem with its error at the index it is given', () => {
    const item = new UndecodableItem({ index: 0, code: 'ERR_EVENT_MALFORMED', field: null, message: 'line 3 is not valid JSON' });
    assert.equal(invalid(item, 'ERR_EVENT_MALFORMED', null, buildContext(), 2), 'line 3 is not valid JSON');
  });

  it('refuses an unknown top-level field, naming it', () => {
    assert.match(invalid(buildEvent({ userId: 'u1' }), 'ERR_EVENT_FIELD_UNKNOWN', 'userId'), /unknown field "userId"/);
    invalid(buildEvent({ extra: null }), 'ERR_EVENT_FIELD_UNKNOWN', 'extra');
    invalid(JSON.parse('{"event_type":"a","timestamp":0,"__proto__":{}}'), 'ERR_EVENT_FIELD_UNKNOWN', '__proto__');
    const longName = 'x'.repeat(500);
    const message = invalid(buildEvent({ [longName]: 1 }), 'ERR_EVENT_FIELD_UNKNOWN', `${'x'.repeat(64)}…`);
    assert.ok(message.length < 400, 'a long key is cut in the message');
  });

  it('refuses an event whose text and attributes exceed eventBytesMax, naming the limit', () => {
    const limits = { ...testLimits, eventBytesMax: 1000, attributesBytesMax: 1000 };
    const attributes = { note: 'n'.repeat(900) };
    const message = invalid(buildEvent({ attributes, event_type: 't'.repeat(100) }), 'ERR_EVENT_TOO_LARGE', null, buildContext({ limits }));
    assert.match(message, /eventBytesMax = 1000 bytes/);
    valid(buildEvent({ attributes: { note: 'n'.repeat(800) }, event_type: 't' }), buildContext({ limits }));
  });

  it('counts UTF-8 bytes, not characters, for eventBytesMax', () => {
    const limits = { ...testLimits, eventBytesMax: 700, attributesBytesMax: 700 };
    // 150 emoji are 600 UTF-8 bytes: the event is over 700 bytes with its other fields.
    invalid(buildEvent({ attributes: { e: emoji.repeat(150) }, event_type: 't'.repeat(100) }), 'ERR_EVENT_TOO_LARGE', null, buildContext({ limits }));
  });
});

describe('validateEvent, event_id', () => {
  it('accepts 1 to 128 characters, counting code points', () => {
    valid(buildEvent({ event_id: 'a' }));
    valid(buildEvent({ event_id: 'a'.repeat(128) }));
    valid(buildEvent({ event_id: emoji.repeat(128) }));
    assert.match(invalid(buildEvent({ event_id: 'a'.repeat(129) }), 'ERR_EVENT_FIELD_LENGTH', 'event_id'), /129 characters; the limit is 128/);
    assert.match(invalid(buildEvent({ event_id: emoji.repeat(129) }), 'ERR_EVENT_FIELD_LENGTH', 'event_id'), /129 characters/);
    assert.match(invalid(buildEvent({ event_id: '' }), 'ERR_EVENT_FIELD_LENGTH', 'event_id'), /must not be empty/);
  });

  it('refuses non-strings, NUL and lone surrogates', () => {
    assert.match(invalid(buildEvent({ event_id: 12345 }), 'ERR_EVENT_FIELD_TYPE', 'event_id'), /must be a string; got a number/);
    invalid(buildEvent({ event_id: ['a'] }), 'ERR_EVENT_FIELD_TYPE', 'event_id');
    assert.match(invalid(buildEvent({ event_id: 'a\u0000b' }), 'ERR_EVENT_FIELD_NUL', 'event_id'), /NUL/);
    assert.match(invalid(buildEvent({ event_id: 'a\ud800b' }), 'ERR_EVENT_FIELD_TYPE', 'event_id'), /lone UTF-16 surrogate/);
    invalid(buildEvent({ event_id: '\udc00' }), 'ERR_EVENT_FIELD_TYPE', 'event_id');
  });

  it('derives the id from the idempotency key and index when one is given', () => {
    const context = buildContext({ idempotencyKey: 'retry-me' });
    const first = valid(buildEvent({ event_id: undefined }), context, 7);
    const again = valid(buildEvent({ event_id: undefined, event_type: 'other' }), context, 7);
    const next = valid(buildEvent({ event_id: undefined }), context, 8);
    assert.equal(first.event.eventId, deriveEventId('retry-me', 7));
    assert.equal(again.event.eventId, first.event.eventId);
    assert.notEqual(next.event.eventId, first.event.eventId);
    assert.equal(first.idGenerated, false);
  });

  it('generates a time-ordered id and says so when there is no key', () => {
    const first = valid(buildEvent({ event_id: undefined }));
    const second = valid(buildEvent({ event_id: undefined }));
    assert.equal(first.idGenerated, true);
    assert.match(first.event.eventId, /^g_/);
    assert.ok(second.event.eventId > first.event.eventId);
  });

  it('keeps a given id even when a key is given', () => {
    const result = valid(buildEvent({ event_id: 'mine' }), buildContext({ idempotencyKey: 'k' }));
    assert.equal(result.event.eventId, 'mine');
    assert.equal(result.idGenerated, false);
  });
});

describe('validateEvent, event_type and source', () => {
  it('requires event_type', () => {
    assert.equal(invalid(buildEvent({ event_type: undefined }), 'ERR_EVENT_FIELD_MISSING', 'event_type'), 'event_type is required');
    invalid(buildEvent({ event_type: null }), 'ERR_EVENT_FIELD_MISSING', 'event_type');
  });

  it('bounds event_type to 1–128 characters of text without NUL', () => {
    valid(buildEvent({ event_type: 't'.repeat(128) }));
    invalid(buildEvent({ event_type: 't'.repeat(129) }), 'ERR_EVENT_FIELD_LENGTH', 'event_type');
    invalid(buildEvent({ event_type: '' }), 'ERR_EVENT_FIELD_LENGTH', 'event_type');
    invalid(buildEvent({ event_type: true }), 'ERR_EVENT_FIELD_TYPE', 'event_type');
    invalid(buildEvent({ event_type: { name: 'x' } }), 'ERR_EVENT_FIELD_TYPE', 'event_type');
    invalid(buildEvent({ event_type: 'page\u0000view' }), 'ERR_EVENT_FIELD_NUL', 'event_type');
  });

  it('bounds source to 1–64 characters', () => {
    assert.equal(valid(buildEvent({ source: 's'.repeat(64) })).event.source, 's'.repeat(64));
    assert.match(invalid(buildEvent({ source: 's'.repeat(65) }), 'ERR_EVENT_FIELD_LENGTH', 'source'), /the limit is 64/);
    invalid(buildEvent({ source: '' }), 'ERR_EVENT_FIELD_LENGTH', 'source');
    invalid(buildEvent({ source: 7 }), 'ERR_EVENT_FIELD_TYPE', 'source');
    invalid(buildEvent({ source: '\u0000' }), 'ERR_EVENT_FIELD_NUL', 'source');
  });
});

describe('validateEvent, actor_id and user_id', () => {
  it('accepts user_id as an alias of actor_id', () => {
    assert.equal(valid(buildEvent({ actor_id: undefined, user_id: 'u-9' })).event.actorId, 'u-9');
  });

  it('refuses both, unless one of them is null', () => {
    assert.match(invalid(buildEvent({ user_id: 'u-9' }), 'ERR_EVENT_FIELD_CONFLICT', 'user_id'), /"actor_id" and "user_id"/);
    assert.equal(valid(buildEvent({ user_id: null })).event.actorId, 'user_4821');
    assert.equal(valid(buildEvent({ actor_id: null, user_id: 'u-9' })).event.actorId, 'u-9');
  });

  it('accepts up to 256 characters, the empty string included', () => {
    valid(buildEvent({ actor_id: 'a'.repeat(256) }));
    assert.equal(valid(buildEvent({ actor_id: '' })).event.actorId, '');
    invalid(buildEvent({ actor_id: 'a'.repeat(257) }), 'ERR_EVENT_FIELD_LENGTH', 'actor_id');
    invalid(buildEvent({ actor_id: undefined, user_id: 'a'.repeat(257) }), 'ERR_EVENT_FIELD_LENGTH', 'user_id');
    invalid(buildEvent({ actor_id: 42 }), 'ERR_EVENT_FIELD_TYPE', 'actor_id');
    invalid(buildEvent({ actor_id: 'a\u0000' }), 'ERR_EVENT_FIELD_NUL', 'actor_id');
  });
});

describe('validateEvent, timestamp', () => {
  const pastMs = testLimits.timestampPastMs;
  const futureMs = testLimits.timestampFutureMs;

  it('requires a timestamp', () => {
    invalid(buildEvent({ timestamp: undefined }), 'ERR_EVENT_FIELD_MISSING', 'timestamp');
    invalid(buildEvent({ timestamp: null }), 'ERR_EVENT_FIELD_MISSING', 'timestamp');
  });

  it('accepts epoch milliseconds', () => {
    assert.equal(valid(buildEvent({ timestamp: receivedAtMs - 1000 })).event.occurredAtUs, (receivedAtMs - 1000) * 1000);
  });

  it('refuses unparsable timestamps, quoting what was sent', () => {
    assert.match(invalid(buildEvent({ timestamp: '2026-11-20T09:00:00' }), 'ERR_EVENT_TIMESTAMP_FORMAT', 'timestamp'), /got "2026-11-20T09:00:00"/);
    assert.match(invalid(buildEvent({ timestamp: String(receivedAtMs) }), 'ERR_EVENT_TIMESTAMP_FORMAT', 'timestamp'), /ISO-8601 with an offset/);
    assert.match(invalid(buildEvent({ timestamp: -5 }), 'ERR_EVENT_TIMESTAMP_FORMAT', 'timestamp'), /got -5/);
    assert.match(invalid(buildEvent({ timestamp: { at: 1 } }), 'ERR_EVENT_TIMESTAMP_FORMAT', 'timestamp'), /got an object/);
    invalid(buildEvent({ timestamp: true }), 'ERR_EVENT_TIMESTAMP_FORMAT', 'timestamp');
    // Found by test/fuzz: this was reported as "timestamp Infinity ms is outside the accepted window".
    assert.match(invalid(buildEvent({ timestamp: 1e308 }), 'ERR_EVENT_TIMESTAMP_FORMAT', 'timestamp'), /got 1e\+308$/);
  });

  it('accepts the window bounds themselves and refuses one microsecond beyond', () => {
    valid(buildEvent({ timestamp: receivedAtMs - pastMs }));
    valid(buildEvent({ timestamp: receivedAtMs + futureMs }));
    invalid(buildEvent({ timestamp: receivedAtMs - pastMs - 0.001 }), 'ERR_EVENT_TIMESTAMP_RANGE', 'timestamp');
    invalid(buildEvent({ timestamp: receivedAtMs + futureMs + 0.001 }), 'ERR_EVENT_TIMESTAMP_RANGE', 'timestamp');
  });

  it('names the window and its settings when refusing', () => {
    const message = invalid(buildEvent({ timestamp: '2020-01-01T00:00:00Z' }), 'ERR_EVENT_TIMESTAMP_RANGE', 'timestamp');
    assert.match(message, /2020-01-01T00:00:00\.000Z is outside the accepted window 2026-10-21T10:00:00\.000Z to 2026-11-20T11:00:00\.000Z/);
    assert.match(message, /timestampPastMs = 2592000000 ms/);
    assert.match(message, /timestampFutureMs = 3600000 ms/);
    invalid(buildEvent({ timestamp: '9999-12-31T23:59:59Z' }), 'ERR_EVENT_TIMESTAMP_RANGE', 'timestamp');
    invalid(buildEvent({ timestamp: 0 }), 'ERR_EVENT_TIMESTAMP_RANGE', 'timestamp');
  });
});

describe('validateEvent, attributes', () => {
  it('accepts metadata and properties as aliases', () => {
    assert.equal(valid(buildEvent({ attributes: undefined, metadata: { a: 1 } })).event.attributesJson, '{"a":1}');
    assert.equal(valid(buildEvent({ attributes: undefined, properties: { b: [1, 'x', null, false] } })).event.attributesJson, '{"b":[1,"x",null,false]}');
  });

  it('refuses more than one of attributes, metadata and properties, unless the others are null', () => {
    assert.match(invalid(buildEvent({ metadata: { a: 1 } }), 'ERR_EVENT_FIELD_CONFLICT', 'metadata'), /"attributes" and "metadata"/);
    invalid(buildEvent({ attributes: undefined, metadata: {}, properties: {} }), 'ERR_EVENT_FIELD_CONFLICT', 'properties');
    assert.equal(attributesText(valid(buildEvent({ metadata: null, properties: null })).event).startsWith('{"path"'), true);
  });

  it('refuses attributes that are not an object, naming the key used', () => {
    assert.match(invalid(buildEvent({ attributes: [1, 2] }), 'ERR_EVENT_FIELD_TYPE', 'attributes'), /must be an object; got an array/);
    invalid(buildEvent({ attributes: 'a=1' }), 'ERR_EVENT_FIELD_TYPE', 'attributes');
    invalid(buildEvent({ attributes: undefined, metadata: 3 }), 'ERR_EVENT_FIELD_TYPE', 'metadata');
    invalid(buildEvent({ attributes: new Date() }), 'ERR_EVENT_FIELD_TYPE', 'attributes');
  });

  it('accepts nesting up to attributesDepthMax and refuses one level more, naming the path', () => {
    const limits = { ...testLimits, attributesDepthMax: 3 };
    valid(buildEvent({ attributes: { a: { b: { c: 1 } } } }), buildContext({ limits }));
    valid(buildEvent({ attributes: { a: [[1]] } }), buildContext({ limits }));
    const message = invalid(buildEvent({ attributes: { a: { b: { c: {} } } } }), 'ERR_EVENT_ATTRIBUTES_TOO_DEEP', 'attributes.a.b.c', buildContext({ limits }));
    assert.match(message, /attributesDepthMax = 3 levels/);
    invalid(buildEvent({ attributes: { a: [[[]]] } }), 'ERR_EVENT_ATTRIBUTES_TOO_DEEP', 'attributes.a[0][0]', buildContext({ limits }));
  });

  it('refuses a nesting bomb quickly, without exhausting the stack', () => {
    const depth = 200_000;
    const attributes: unknown = JSON.parse('{"a":'.repeat(depth) + '1' + '}'.repeat(depth));
    const startedAt = performance.now();
    const result = validateEvent(buildEvent({ attributes }), 0, buildContext());
    assert.ok(!result.ok);
    assert.equal(result.error.code, 'ERR_EVENT_ATTRIBUTES_TOO_DEEP');
    assert.ok(result.error.field !== null && result.error.field.length < 300, 'the path in the error is shortened');
    assert.ok(performance.now() - startedAt < 50);
  });

  it('accepts attributes of exactly attributesBytesMax UTF-8 bytes and refuses one more', () => {
    const limits = { ...testLimits, attributesBytesMax: 100 };
    // {"e":"…"} is 8 bytes of JSON around the value.
    valid(buildEvent({ attributes: { e: 'x'.repeat(92) } }), buildContext({ limits }));
    valid(buildEvent({ attributes: { e: emoji.repeat(23) } }), buildContext({ limits }));
    const message = invalid(buildEvent({ attributes: { e: 'x'.repeat(93) } }), 'ERR_EVENT_ATTRIBUTES_TOO_LARGE', 'attributes', buildContext({ limits }));
    assert.match(message, /more than 100 bytes of JSON; the limit is attributesBytesMax = 100 bytes/);
    invalid(buildEvent({ attributes: { e: `${emoji.repeat(23)}x` } }), 'ERR_EVENT_ATTRIBUTES_TOO_LARGE', 'attributes', buildContext({ limits }));
    // 47 × 2 bytes: short in characters (passes the cheap lower bound), too long in bytes.
    const exact = invalid(buildEvent({ attributes: { e: 'é'.repeat(47) } }), 'ERR_EVENT_ATTRIBUTES_TOO_LARGE', 'attributes', buildContext({ limits }));
    assert.match(exact, /encode to 102 bytes of JSON/);
  });

  it('refuses a huge attributes object before encoding it', () => {
    const attributes = { big: 'x'.repeat(10 * 1024 * 1024) };
    const message = invalid(buildEvent({ attributes }), 'ERR_EVENT_ATTRIBUTES_TOO_LARGE', 'attributes');
    assert.match(message, /more than 32768 bytes/);
  });

  it('refuses a __proto__ key at any depth (JSON.parse keeps it as an own key)', () => {
    const top = JSON.parse('{"__proto__":{"admin":true}}') as unknown;
    assert.match(invalid(buildEvent({ attributes: top }), 'ERR_EVENT_ATTRIBUTES_INVALID', 'attributes.__proto__'), /"__proto__" key/);
    const nested = JSON.parse('{"a":[{"b":{"__proto__":1}}]}') as unknown;
    invalid(buildEvent({ attributes: nested }), 'ERR_EVENT_ATTRIBUTES_INVALID', 'attributes.a[0].b.__proto__');
    valid(buildEvent({ attributes: { proto: 1, __proto_x: 2, constructor: 3 } }));
  });

  it('refuses \\u0000 and lone surrogates in values and keys, which jsonb cannot store', () => {
    assert.match(invalid(buildEvent({ attributes: { a: 'x\u0000' } }), 'ERR_EVENT_ATTRIBUTES_INVALID', 'attributes.a'), /\\u0000/);
    invalid(buildEvent({ attributes: { 'k\u0000': 1 } }), 'ERR_EVENT_ATTRIBUTES_INVALID', 'attributes["k\\u0000"]');
    assert.match(invalid(buildEvent({ attributes: { list: ['ok', '\ud800'] } }), 'ERR_EVENT_ATTRIBUTES_INVALID', 'attributes.list[1]'), /surrogate/);
    invalid(buildEvent({ attributes: { '\udc00': 1 } }), 'ERR_EVENT_ATTRIBUTES_INVALID', 'attributes["\\udc00"]');
    valid(buildEvent({ attributes: { ok: `${emoji} \ufffd \\u0000 as text` } }));
  });

  it('refuses values JSON cannot represent (possible from msgpack)', () => {
    const cases: Array<[unknown, RegExp]> = [
      [Number.NaN, /is NaN/], [Number.POSITIVE_INFINITY, /is Infinity/], [Number.NEGATIVE_INFINITY, /is -Infinity/], [10n, /a bigint/],
      [new Date(0), /a date/], [Buffer.from('ab'), /binary data/], [new Uint8Array(2), /binary data/], [new Map([['a', 1]]), /a map/],
      [new Set([1]), /a set/], [undefined, /undefined/], [C1, /0xC1/], [() => 1, /a function/], [Symbol('s'), /a symbol/], [/x/, /special kind/],
    ];
    for (const [value, message] of cases) {
      assert.match(invalid(buildEvent({ attributes: { deep: [{ v: value }] } }), 'ERR_EVENT_ATTRIBUTES_INVALID', 'attributes.deep[0].v'), message);
    }
  });

  it('quotes keys that are not identifiers in the path', () => {
    invalid(buildEvent({ attributes: { 'a b': { 'c.d': Number.NaN } } }), 'ERR_EVENT_ATTRIBUTES_INVALID', 'attributes["a b"]["c.d"]');
    invalid(buildEvent({ attributes: undefined, metadata: { x: Number.NaN } }), 'ERR_EVENT_ATTRIBUTES_INVALID', 'metadata.x');
  });

  it('encodes negative zero, large numbers and unicode as JSON does', () => {
    const result = valid(buildEvent({ attributes: { z: -0, big: 1e300, text: `é${emoji}` } }));
    assert.equal(result.event.attributesJson, JSON.stringify({ z: 0, big: 1e300, text: `é${emoji}` }));
  });
});
