import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Packr, Unpackr } from 'msgpackr';
import { attributesText, type ValidEvent } from '../../src/event';
import { EnvelopeEncoder, envelopeHeaderBytes } from '../../src/ring/envelope';
import { decodeEnvelope, readEnvelope } from '../../src/ring/envelope-reader';

/** A valid event with overridable fields. */
function eventOf(overrides: Partial<ValidEvent> = {}): ValidEvent {
  return {
    eventId: 'evt_01HZX3K9',
    eventType: 'page.viewed',
    source: 'web',
    actorId: 'user-42',
    occurredAtUs: 1_763_000_000_123_456,
    attributesJson: '{"path":"/pricing","ms":87}',
    ...overrides,
  };
}

function encode(ticket: number, receivedAtUs: number, events: readonly ValidEvent[], firstIndex = 0): Uint8Array {
  const encoder = new EnvelopeEncoder();
  encoder.begin(ticket, receivedAtUs);
  events.forEach((event, i) => encoder.add(firstIndex + i, event));
  return encoder.finish().slice();
}

/** Hand-built payloads for the malformed cases: header fields, then raw body bytes. */
function payloadOf(eventCount: number, body: Uint8Array, ticket = 1): Uint8Array {
  const payload = new Uint8Array(envelopeHeaderBytes + body.byteLength);
  const view = new DataView(payload.buffer);
  view.setUint32(0, ticket, true);
  view.setUint32(4, eventCount, true);
  view.setFloat64(8, 1_763_000_000_000_000, true);
  payload.set(body, envelopeHeaderBytes);
  return payload;
}

const plain = new Packr({ useRecords: false });

/** The tuple as a generic msgpack reader sees it: attributes are bin, i.e. bytes. */
function tupleOf(event: ValidEvent, index = 0): unknown[] {
  return [index, event.eventId, event.eventType, event.source, event.actorId, event.occurredAtUs, new Uint8Array(Buffer.from(attributesText(event)))];
}

/** Decoded events with their attributes bytes read back as text, to compare with what was encoded. */
function textual(events: readonly ValidEvent[]): ValidEvent[] {
  return events.map((event) => {
    assert.ok(event.attributesJson instanceof Uint8Array, 'actors get attributes as bytes');
    return { ...event, attributesJson: attributesText(event) };
  });
}

describe('envelope round trip', () => {
  it('carries the header fields', () => {
    for (const [ticket, receivedAtUs] of [
      [0, 0],
      [1, 1_763_000_000_000_001],
      [0xffff_ffff, Number.MAX_SAFE_INTEGER],
      [12_345, 1_763_000_000_000_000.5],
      [7, -1_000_000],
    ] as const) {
      const envelope = decodeEnvelope(encode(ticket, receivedAtUs, [eventOf()]));
      assert.equal(envelope.ticket, ticket);
      assert.equal(envelope.receivedAtUs, receivedAtUs);
    }
  });

  it('carries varied events and their request indexes', () => {
    const events = [
      eventOf(),
      eventOf({ eventId: 'ü-ñ-日本語-🚀', eventType: 'ordre.créé', source: 'ios', actorId: 'ユーザー😀' }),
      eventOf({ actorId: null }),
      eventOf({ actorId: 'a'.repeat(256), eventId: 'x'.repeat(128), eventType: 't'.repeat(128), source: 's'.repeat(64) }),
      eventOf({ attributesJson: '{}' }),
      eventOf({ attributesJson: JSON.stringify({ text: 'é'.repeat(20_000), nested: { list: [1, 2.5, null, true] } }) }),
      eventOf({ occurredAtUs: 2 ** 32 + 1 }),
      eventOf({ occurredAtUs: 2 ** 32 - 1 }),
      eventOf({ occurredAtUs: Number.MAX_SAFE_INTEGER }),
      eventOf({ occurredAtUs: -2_208_988_800_000_000 }),
      eventOf({ occurredAtUs: 0 }),
      eventOf({ eventId: 'surrogates \ud83d\ude00 and combining e\u0301' }),
    ];
    const encoder = new EnvelopeEncoder(64);
    encoder.begin(99, 1_763_000_000_999_999);
    const indexes = events.map((_, i) => (i * 7919) % 5_000);
    indexes[0] = 0xffff_ffff;
    events.forEach((event, i) => encoder.add(indexes[i] as number, event));
    assert.equal(encoder.eventCount, events.length);
    const bytes = encoder.finish();
    assert.equal(bytes.byteLength, encoder.byteLength);
    const envelope = decodeEnvelope(bytes);
    assert.deepEqual(textual(envelope.events), events);
    assert.deepEqual(envelope.indexes, indexes);
  });

  it('tracks byteLength as events are added and grows past its first buffer', () => {
    const encoder = new EnvelopeEncoder(32);
    encoder.begin(1, 2);
    assert.equal(encoder.byteLength, envelopeHeaderBytes);
    assert.equal(encoder.eventCount, 0);
    const big = eventOf({ attributesJson: JSON.stringify({ blob: 'z'.repeat(100_000) }) });
    encoder.add(0, eventOf());
    const afterOne = encoder.byteLength;
    assert.ok(afterOne > envelopeHeaderBytes);
    encoder.add(1, big);
    assert.ok(encoder.byteLength > afterOne + 100_000);
    const bytes = encoder.finish();
    assert.equal(bytes.byteLength, encoder.byteLength);
    assert.deepEqual(textual(decodeEnvelope(bytes).events), [eventOf(), big]);
  });

  it('returns a plain Uint8Array whose slice() is a real copy', () => {
    // Buffer#slice() would alias the encoder's buffer; a regression test for that trap.
    const encoder = new EnvelopeEncoder();
    encoder.begin(1, 1);
    encoder.add(0, eventOf({ eventId: 'kept' }));
    const bytes = encoder.finish();
    assert.ok(!Buffer.isBuffer(bytes));
    const copy = bytes.slice();
    encoder.begin(2, 2);
    encoder.add(0, eventOf({ eventId: 'overwrites' }));
    encoder.finish();
    assert.deepEqual(decodeEnvelope(copy).events.map((event) => event.eventId), ['kept']);
  });

  it('starts clean after begin, reusing its buffer', () => {
    const encoder = new EnvelopeEncoder();
    encoder.begin(1, 10);
    encoder.add(0, eventOf({ eventId: 'first' }));
    encoder.add(1, eventOf({ eventId: 'second' }));
    const first = encoder.finish().slice();
    encoder.begin(2, 20);
    encoder.add(5, eventOf({ eventId: 'third', actorId: null }));
    const second = encoder.finish();
    assert.deepEqual(decodeEnvelope(first).events.map((event) => event.eventId), ['first', 'second']);
    const decoded = decodeEnvelope(second);
    assert.equal(decoded.ticket, 2);
    assert.equal(decoded.receivedAtUs, 20);
    assert.deepEqual(decoded.indexes, [5]);
    assert.deepEqual(textual(decoded.events), [eventOf({ eventId: 'third', actorId: null })]);
  });

  it('decodes from shared memory into copies that survive the memory being overwritten', () => {
    const events = [eventOf({ eventId: 'k'.repeat(100), attributesJson: JSON.stringify({ long: 'ä'.repeat(500) }) }), eventOf({ eventId: 'short' })];
    const bytes = encode(3, 4, events);
    const shared = new Uint8Array(new SharedArrayBuffer(bytes.byteLength + 16), 8, bytes.byteLength);
    shared.set(bytes);
    const envelope = decodeEnvelope(shared);
    shared.fill(0x41);
    assert.deepEqual(textual(envelope.events), events);
    assert.equal(envelope.ticket, 3);
  });

  it('round-trips strings at every header boundary, ASCII or not, and indexes at every width', () => {
    const lengths = [0, 1, 31, 32, 33, 63, 64, 65, 85, 86, 255, 256, 21_845, 21_846, 70_000];
    const texts = lengths.flatMap((length) => [
      'a'.repeat(length),
      length === 0 ? '' : `é${'a'.repeat(length - 1)}`,
      length === 0 ? '' : `${'a'.repeat(length - 1)}漢`,
    ]);
    const events = texts.map((text, i) => eventOf({ eventId: `id-${i}${text.slice(0, 100)}`, eventType: text.slice(0, 128) || 't', source: text.slice(0, 64) || 's', actorId: text.slice(0, 256), attributesJson: JSON.stringify({ text }) }));
    const indexes = events.map((_, i) => [0, 127, 128, 255, 256, 65_535, 65_536, 0xffff_ffff][i % 8] as number);
    const encoder = new EnvelopeEncoder(64);
    encoder.begin(5, 6);
    events.forEach((event, i) => encoder.add(indexes[i] as number, event));
    const bytes = encoder.finish();
    const envelope = decodeEnvelope(bytes);
    assert.deepEqual(textual(envelope.events), events);
    assert.deepEqual(envelope.indexes, indexes);
    const reader = new Unpackr({ useRecords: false, int64AsType: 'number' });
    assert.deepEqual(reader.unpackMultiple(bytes.subarray(envelopeHeaderBytes)), events.map((event, i) => tupleOf(event, indexes[i] as number)));
  });

  it('carries attributes given as bytes exactly, next to attributes given as text, at every bin header width', () => {
    const texts = [' { "a" : 1.50 } ', '{"n":12345678901234567890}', `{"s":"${'é'.repeat(200)}"}`, `{"big":"${'x'.repeat(70_000)}"}`];
    const events = texts.flatMap((text, i) => [
      eventOf({ eventId: `bytes-${i}`, attributesJson: new Uint8Array(Buffer.from(text)) }),
      eventOf({ eventId: `text-${i}`, attributesJson: text }),
    ]);
    const decoded = decodeEnvelope(encode(1, 2, events));
    assert.deepEqual(decoded.events.map((event) => attributesText(event)), texts.flatMap((text) => [text, text]));
  });

  it('gives each envelope its own memory: attributes decoded earlier survive later decodes', () => {
    const first = decodeEnvelope(encode(1, 1, [eventOf({ attributesJson: '{"first":1}' })]));
    const second = decodeEnvelope(encode(2, 2, [eventOf({ attributesJson: '{"other":22}' })]));
    assert.equal(attributesText(first.events[0] as ValidEvent), '{"first":1}');
    assert.equal(attributesText(second.events[0] as ValidEvent), '{"other":22}');
  });

  it('writes a plain msgpack body that any msgpack reader understands', () => {
    const events = [eventOf(), eventOf({ actorId: null })];
    const bytes = encode(1, 2, events, 10);
    const reader = new Unpackr({ useRecords: false, int64AsType: 'number' });
    const tuples = reader.unpackMultiple(bytes.subarray(envelopeHeaderBytes));
    assert.deepEqual(tuples, [tupleOf(events[0] as ValidEvent, 10), tupleOf(events[1] as ValidEvent, 11)]);
    const header = new DataView(bytes.buffer, bytes.byteOffset, envelopeHeaderBytes);
    assert.equal(header.getUint32(0, true), 1);
    assert.equal(header.getUint32(4, true), 2);
    assert.equal(header.getFloat64(8, true), 2);
  });
});

describe('readEnvelope (the actor\'s reader)', () => {
  it('reads id, index and time, and points every other field at its bytes in one private copy', () => {
    const events = [eventOf(), eventOf({ eventId: 'ü-🚀', actorId: null, attributesJson: new Uint8Array(Buffer.from(' {"a": 1.50} ')) })];
    const payload = encode(8, 9, events, 300);
    const shared = new Uint8Array(new SharedArrayBuffer(payload.byteLength));
    shared.set(payload);
    const envelope = readEnvelope(shared);
    shared.fill(0);
    assert.deepEqual([envelope.ticket, envelope.receivedAtUs], [8, 9]);
    const [first, second] = envelope.events;
    assert.ok(first !== undefined && second !== undefined);
    assert.equal(first.bytes, second.bytes, 'one copy per envelope');
    assert.notEqual(first.bytes.buffer, shared.buffer);
    assert.deepEqual([first.index, first.eventId, first.occurredAtUs], [300, 'evt_01HZX3K9', 1_763_000_000_123_456]);
    assert.deepEqual([second.index, second.eventId, second.actorStart], [301, 'ü-🚀', -1]);
    const span = (start: number, end: number): string => first.bytes.toString('utf8', start, end);
    assert.deepEqual(
      [span(first.idStart, first.idEnd), span(first.typeStart, first.typeEnd), span(first.sourceStart, first.sourceEnd), span(first.actorStart, first.actorEnd), span(first.attributesStart, first.attributesEnd)],
      ['evt_01HZX3K9', 'page.viewed', 'web', 'user-42', '{"path":"/pricing","ms":87}'],
    );
    assert.equal(second.bytes.toString('utf8', second.attributesStart, second.attributesEnd), ' {"a": 1.50} ');
    assert.deepEqual(textual(envelope.events.map((event) => event.toValidEvent())), events.map((event) => ({ ...event, attributesJson: attributesText(event) })));
  });
});

describe('envelope encoder misuse', () => {
  it('rejects tickets that are not uint32 and receive times that are not finite', () => {
    const encoder = new EnvelopeEncoder();
    for (const ticket of [-1, 2 ** 32, 1.5, Number.NaN]) {
      assert.throws(() => encoder.begin(ticket, 0), /ticket must be a uint32/, `ticket ${ticket}`);
    }
    for (const receivedAtUs of [Number.NaN, Infinity, -Infinity]) {
      assert.throws(() => encoder.begin(1, receivedAtUs), /receivedAtUs must be finite/);
    }
  });

  it('rejects add and finish outside begin…finish, and an empty envelope', () => {
    const encoder = new EnvelopeEncoder();
    assert.throws(() => encoder.add(0, eventOf()), /before begin/);
    assert.throws(() => encoder.finish(), /before begin/);
    encoder.begin(1, 1);
    assert.throws(() => encoder.finish(), /no events/);
    encoder.add(0, eventOf());
    encoder.finish();
    assert.throws(() => encoder.add(1, eventOf()), /before begin/);
  });

  it('rejects indexes that are not uint32 and times that are not integers', () => {
    const encoder = new EnvelopeEncoder();
    encoder.begin(1, 1);
    for (const index of [-1, 2 ** 32, 0.5, Number.NaN]) {
      assert.throws(() => encoder.add(index, eventOf()), /index must be a uint32/, `index ${index}`);
    }
    for (const occurredAtUs of [1.5, Number.NaN, Infinity, 2 ** 53]) {
      assert.throws(() => encoder.add(0, eventOf({ occurredAtUs })), /occurredAtUs must be an integer/);
    }
    assert.equal(encoder.eventCount, 0);
    assert.equal(encoder.byteLength, envelopeHeaderBytes);
  });
});

describe('envelope decoder on malformed payloads', () => {
  const good = plain.pack(tupleOf(eventOf()));

  it('rejects payloads without a body', () => {
    assert.throws(() => decodeEnvelope(new Uint8Array(0)), /has no events/);
    assert.throws(() => decodeEnvelope(payloadOf(0, new Uint8Array(0))), /has no events/);
  });

  it('rejects a count that disagrees with the body', () => {
    assert.throws(() => decodeEnvelope(payloadOf(2, good)), /says 2 events, body holds 1/);
    assert.throws(() => decodeEnvelope(payloadOf(0, good)), /says 0 events, body holds 1/);
    const two = new Uint8Array([...good, ...good]);
    assert.deepEqual(decodeEnvelope(payloadOf(2, two)).indexes, [0, 0]);
  });

  it('rejects a truncated body and trailing bytes', () => {
    assert.throws(() => decodeEnvelope(payloadOf(1, good.subarray(0, good.byteLength - 3))), /not a msgpack tuple sequence/);
    assert.throws(() => decodeEnvelope(payloadOf(1, new Uint8Array([...good, 0x01]))), /body holds 2|wrong field types|7-element/);
    assert.throws(() => decodeEnvelope(payloadOf(1, new Uint8Array([...good, 0xc1]))), assert.AssertionError);
  });

  it('rejects entries that are not 7-element tuples', () => {
    for (const value of [{ index: 0 }, 'text', 12, null, tupleOf(eventOf()).slice(0, 6), [...tupleOf(eventOf()), 'extra']]) {
      assert.throws(() => decodeEnvelope(payloadOf(1, plain.pack(value))), /7-element tuple/, JSON.stringify(value));
    }
    assert.throws(() => decodeEnvelope(payloadOf(1, new Uint8Array([0xc1]))), /7-element tuple/);
  });

  it('rejects tuples whose fields have the wrong types', () => {
    const base = tupleOf(eventOf());
    const wrongs: Array<[number, unknown]> = [
      [0, -1], [0, 1.5], [0, '0'], [0, 2 ** 32], [0, null],
      [1, 5], [1, null], [2, 5], [2, null], [3, true], [3, null],
      [4, 7], [4, undefined],
      [5, 1.5], [5, '1763000000000000'], [5, null], [5, 2 ** 60],
      [6, { path: '/' }], [6, null],
    ];
    for (const [field, value] of wrongs) {
      const tuple = [...base];
      tuple[field] = value;
      assert.throws(() => decodeEnvelope(payloadOf(1, plain.pack(tuple))), /wrong field types/, `field ${field} = ${String(value)}`);
    }
  });
});
