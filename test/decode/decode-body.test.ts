import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Packr } from 'msgpackr';
import type { ErrorCode, EventError } from '../../src/errors';
import type { BodyFormat } from '../../src/decode/body-format';
import type { BodyScan } from '../../src/decode/body-scan';
import { decodeBulkBody as decodeScanned, decodeSingleBody, jsonErrorOffset, msgpackProblem, type BulkLimits, type DecodedBody } from '../../src/decode/decode-body';
import { EventCountScanner, scanBody } from '../../src/decode/event-count-scanner';
import { UndecodableItem } from '../../src/decode/undecodable-item';
import { validateEvent } from '../../src/validate/validate-event';
import { Prng } from '../support/prng';
import { buildContext, buildEvent, buildEvents, jsonBody, msgpackBody, ndjsonBody } from '../support/builders';

const limits = { eventsPerRequestMax: 5, eventBytesMax: 1024 };

/** Decodes as the server does a gzip body: scanned whole (after gunzip), then decoded. */
function decodeBulkBody(format: BodyFormat, bytes: Buffer, bodyLimits: BulkLimits, scan: BodyScan = scanBody(format, bytes)): DecodedBody {
  return decodeScanned(format, bytes, bodyLimits, scan);
}

function decoded(result: DecodedBody): Extract<DecodedBody, { ok: true }> {
  assert.ok(result.ok, `expected a decoded body, got ${JSON.stringify(!result.ok && result.error)}`);
  return result;
}

function refused(result: { ok: boolean; error?: { code: ErrorCode; message: string } }, code: ErrorCode): string {
  assert.ok(!result.ok, `expected ${code}, got a decoded body`);
  assert.equal(result.error?.code, code, result.error?.message);
  return result.error?.message ?? '';
}

function undecodable(item: unknown): EventError {
  assert.ok(item instanceof UndecodableItem, `expected an UndecodableItem, got ${JSON.stringify(item)}`);
  return item.error;
}

describe('decodeBulkBody, JSON', () => {
  it('decodes {"events": [...]} with and without request_id, and a top-level array', () => {
    const events = buildEvents(3);
    const { rawAttributes, ...rest } = decoded(decodeBulkBody('json', jsonBody({ events }), limits));
    assert.deepEqual(rest, { ok: true, items: events, requestId: null, lineErrors: [] });
    assert.notEqual(rawAttributes, null, 'a JSON bulk body comes with its attributes spans');
    assert.equal(decoded(decodeBulkBody('json', jsonBody({ events, request_id: 'batch-7' }), limits)).requestId, 'batch-7');
    assert.equal(decoded(decodeBulkBody('json', jsonBody({ request_id: null, events }), limits)).requestId, null);
    assert.deepEqual(decoded(decodeBulkBody('json', jsonBody(events), limits)).items, events);
  });

  it('returns items that are not objects as they are, for the validator to refuse', () => {
    assert.deepEqual(decoded(decodeBulkBody('json', Buffer.from('[1, null, "x", []]'), limits)).items, [1, null, 'x', []]);
  });

  it('skips a UTF-8 byte-order mark and surrounding whitespace', () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('\n [ {"a": 1} ] \n')]);
    assert.deepEqual(decoded(decodeBulkBody('json', body, limits)).items, [{ a: 1 }]);
  });

  it('reports malformed JSON with the position of the error', () => {
    assert.equal(refused(decodeBulkBody('json', Buffer.from('{"events": [{"a":}]}'), limits), 'ERR_INGEST_MALFORMED_BODY'), 'body is not valid JSON: unexpected "}" at position 17 (line 1, column 18)');
    assert.match(refused(decodeBulkBody('json', Buffer.from('{"events": [\n  {"a": 1},\n]}'), limits), 'ERR_INGEST_MALFORMED_BODY'), /unexpected "]" at position 25 \(line 3, column 1\)/);
    assert.match(refused(decodeBulkBody('json', Buffer.from('[{"a": 1}'), limits), 'ERR_INGEST_MALFORMED_BODY'), /unexpected end of input at position 9/);
    assert.match(refused(decodeBulkBody('json', Buffer.from('[{}] x'), limits), 'ERR_INGEST_MALFORMED_BODY'), /unexpected "x" at position 5/);
    assert.match(refused(decodeBulkBody('json', Buffer.from("[{'a': 1}]"), limits), 'ERR_INGEST_MALFORMED_BODY'), /unexpected "'" at position 2/);
    assert.match(refused(decodeBulkBody('json', Buffer.from('   '), limits), 'ERR_INGEST_MALFORMED_BODY'), /end of input/);
  });

  it('refuses invalid UTF-8 instead of replacing it', () => {
    const bad = [
      [0xff], [0xc3], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82],
    ];
    for (const bytes of bad) {
      const body = Buffer.concat([Buffer.from('[{"a":"'), Buffer.from(bytes), Buffer.from('"}]')]);
      assert.equal(refused(decodeBulkBody('json', body, limits), 'ERR_INGEST_MALFORMED_BODY'), 'body is not valid UTF-8', bytes.join(','));
    }
  });

  it('refuses other shapes, saying what was found', () => {
    const cases: Array<[string, RegExp]> = [
      ['42', /or an array; got a number/], ['"events"', /got a string/], ['null', /got null/], ['true', /got a boolean/],
      ['{}', /has no "events" key/], ['{"request_id": "r"}', /has no "events" key/], ['{"events": {"a": 1}}', /"events" must be an array; got an object/],
      ['{"events": null}', /"events" must be an array; got null/], ['{"events": [{}], "extra": 1}', /unknown key "extra"/],
      ['{"events": [{}], "__proto__": {}}', /unknown key "__proto__"/], ['{"events": [{}], "request_id": 5}', /"request_id" must be 1-200 printable ASCII characters; got a number/],
      ['{"events": [{}], "request_id": ""}', /request_id/], ['{"events": [{}], "request_id": "a b"}', /request_id/], ['{"events": [{}], "request_id": "r\\r\\nX-Evil: 1"}', /request_id/],
      [`{"events": [{}], "request_id": "${'r'.repeat(201)}"}`, /request_id/], ['{"events": [{}], "request_id": "é"}', /request_id/],
    ];
    for (const [body, message] of cases) assert.match(refused(decodeBulkBody('json', Buffer.from(body), limits), 'ERR_INGEST_BAD_SHAPE'), message, body);
    decoded(decodeBulkBody('json', Buffer.from(`{"events": [{}], "request_id": "${'r'.repeat(200)}"}`), limits));
  });

  it('refuses an empty body and an empty events array', () => {
    assert.match(refused(decodeBulkBody('json', Buffer.alloc(0), limits), 'ERR_INGEST_EMPTY'), /empty/);
    refused(decodeBulkBody('json', Buffer.from('[]'), limits), 'ERR_INGEST_EMPTY');
    refused(decodeBulkBody('json', Buffer.from('{"events": []}'), limits), 'ERR_INGEST_EMPTY');
  });

  it('accepts eventsPerRequestMax events and refuses one more, naming the limit', () => {
    decoded(decodeBulkBody('json', jsonBody(buildEvents(5)), limits));
    assert.equal(refused(decodeBulkBody('json', jsonBody({ events: buildEvents(6) }), limits), 'ERR_INGEST_TOO_MANY_EVENTS'), 'request holds 6 events; the limit is eventsPerRequestMax = 5');
    refused(decodeBulkBody('json', jsonBody({ events: buildEvents(6) }), limits, new EventCountScanner('json').summary()), 'ERR_INGEST_TOO_MANY_EVENTS');
  });

  it('trusts the scan it is given and never scans itself (data flows one way)', () => {
    const notJson = Buffer.from('{"events": [');
    const scan: BodyScan = { format: 'json', count: 6, nestsTooDeep: false, attributeSpans: null };
    assert.equal(refused(decodeScanned('json', notJson, limits, scan), 'ERR_INGEST_TOO_MANY_EVENTS'), 'request holds 6 events; the limit is eventsPerRequestMax = 5');
    refused(decodeScanned('json', notJson, limits, { ...scan, count: 1, nestsTooDeep: true }), 'ERR_INGEST_MALFORMED_BODY');
    assert.equal(decoded(decodeScanned('json', jsonBody(buildEvents(2)), limits, { ...scan, count: 2 })).rawAttributes, null);
    assert.throws(() => decodeScanned('json', notJson, limits, { ...scan, format: 'msgpack' }), /msgpack scan was given for a json body/);
  });

  it('refuses a body of millions of tiny elements before parsing it', () => {
    const body = Buffer.from(`[${'{},'.repeat(4_000_000)}{}]`);
    const startedAt = performance.now();
    const message = refused(decodeBulkBody('json', body, { eventsPerRequestMax: 5000, eventBytesMax: 1024 }), 'ERR_INGEST_TOO_MANY_EVENTS');
    const elapsedMs = performance.now() - startedAt;
    assert.match(message, /4000001 events/);
    assert.ok(elapsedMs < 500, `took ${elapsedMs} ms; parsing would take seconds`);
  });
});

describe('decodeBulkBody, NDJSON', () => {
  it('decodes one event per non-blank line, tolerating CRLF, blank lines and a missing final newline', () => {
    const body = Buffer.from('{"a":1}\r\n\r\n   \n\t\n{"b":2}\n{"c":3}');
    assert.deepEqual(decoded(decodeBulkBody('ndjson', body, limits)), { ok: true, items: [{ a: 1 }, { b: 2 }, { c: 3 }], requestId: null, lineErrors: [], rawAttributes: null });
    assert.deepEqual(decoded(decodeBulkBody('ndjson', ndjsonBody(buildEvents(2), '\r\n'), limits)).items, buildEvents(2));
  });

  it('turns a line that is not JSON into a per-event error, keeping the others', () => {
    const body = Buffer.from('{"a":1}\n\n{"b":}\n[1]\nnot json\n{"c":3}\n');
    const result = decoded(decodeBulkBody('ndjson', body, limits));
    assert.equal(result.items.length, 5);
    assert.deepEqual(result.items[0], { a: 1 });
    assert.deepEqual(result.items[2], [1]);
    assert.deepEqual(result.items[4], { c: 3 });
    assert.deepEqual(undecodable(result.items[1]), { index: 1, code: 'ERR_EVENT_MALFORMED', field: null, message: 'line 3 is not valid JSON: unexpected "}" at column 6' });
    assert.deepEqual(undecodable(result.items[3]).message, 'line 5 is not valid JSON: unexpected "o" at column 2');
    assert.deepEqual(result.lineErrors.map((error) => error.index), [1, 3]);
  });

  it('turns a line longer than eventBytesMax into ERR_EVENT_TOO_LARGE without parsing it', () => {
    const long = JSON.stringify({ pad: 'x'.repeat(1100) });
    const result = decoded(decodeBulkBody('ndjson', Buffer.from(`{"a":1}\n${long}\n{"a":2}`), limits));
    const error = undecodable(result.items[1]);
    assert.equal(error.code, 'ERR_EVENT_TOO_LARGE');
    assert.equal(error.message, `line 2 is ${long.length} bytes; the limit is eventBytesMax = 1024 bytes`);
    assert.deepEqual(result.items[2], { a: 2 });
  });

  it('turns a line of invalid UTF-8 into a per-event error, keeping valid lines', () => {
    const body = Buffer.concat([Buffer.from('{"a":"é"}\n{"b":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n{"c":1}')]);
    const result = decoded(decodeBulkBody('ndjson', body, limits));
    assert.deepEqual(result.items[0], { a: 'é' });
    assert.deepEqual(undecodable(result.items[1]), { index: 1, code: 'ERR_EVENT_MALFORMED', field: null, message: 'line 2 is not valid UTF-8' });
    assert.deepEqual(result.items[2], { c: 1 });
  });

  it('decodes a body where every line is bad: the validator reports each', () => {
    const result = decoded(decodeBulkBody('ndjson', Buffer.from('x\ny\n'), limits));
    assert.equal(result.lineErrors.length, 2);
    const context = buildContext();
    assert.deepEqual(result.items.map((item, index) => {
      const validation = validateEvent(item, index, context);
      return validation.ok ? null : validation.error.code;
    }), ['ERR_EVENT_MALFORMED', 'ERR_EVENT_MALFORMED']);
  });

  it('refuses a body without a non-blank line, and more than eventsPerRequestMax lines', () => {
    refused(decodeBulkBody('ndjson', Buffer.from(''), limits), 'ERR_INGEST_EMPTY');
    refused(decodeBulkBody('ndjson', Buffer.from('\n \r\n\t\n'), limits), 'ERR_INGEST_EMPTY');
    decoded(decodeBulkBody('ndjson', Buffer.from('{}\n'.repeat(5)), limits));
    assert.match(refused(decodeBulkBody('ndjson', Buffer.from('{}\n'.repeat(6)), limits), 'ERR_INGEST_TOO_MANY_EVENTS'), /more than 5 events/);
  });

  it('skips a byte-order mark on the first line', () => {
    assert.deepEqual(decoded(decodeBulkBody('ndjson', Buffer.from('\ufeff{"a":1}\n'), limits)).items, [{ a: 1 }]);
  });

  it('searches once per line with content, not per blank line, keeping line numbers and columns (regression)', () => {
    // Found by test/fuzz: one native search per blank line made 32 MiB of newlines (a
    // 32 KB gzip body) cost 0.7 s of main thread. Counting searches keeps this test exact.
    const body = Buffer.from('\n\n  \r\n\t{"a":}\n\n\n{"b":1}\n' + '\n'.repeat(10_000));
    const indexOf = body.indexOf.bind(body);
    let searches = 0;
    body.indexOf = ((...args: Parameters<Buffer['indexOf']>) => {
      searches++;
      return indexOf(...args);
    }) as Buffer['indexOf'];
    const result = decoded(decodeBulkBody('ndjson', body, limits));
    assert.equal(undecodable(result.items[0]).message, 'line 4 is not valid JSON: unexpected "}" at column 7');
    assert.deepEqual(result.items[1], { b: 1 });
    assert.equal(searches, 2);
  });
});

describe('decodeBulkBody, msgpack', () => {
  it('decodes {"events": [...]} and a top-level array, with 64-bit integers as numbers', () => {
    const events = buildEvents(2);
    assert.deepEqual(decoded(decodeBulkBody('msgpack', msgpackBody({ events, request_id: 'r-1' }), limits)), { ok: true, items: events, requestId: 'r-1', lineErrors: [], rawAttributes: null });
    assert.deepEqual(decoded(decodeBulkBody('msgpack', msgpackBody(events), limits)).items, events);
    const uint64 = Buffer.from([0x91, 0x81, 0xa1, 0x6e, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0]);
    assert.deepEqual(decoded(decodeBulkBody('msgpack', uint64, limits)).items, [{ n: 4294967296 }]);
  });

  it('refuses from the header alone a body that declares too many events', () => {
    const declaresBillions = Buffer.from([0xdd, 0x40, 0, 0, 0, 0x80]);
    assert.match(refused(decodeBulkBody('msgpack', declaresBillions, limits), 'ERR_INGEST_TOO_MANY_EVENTS'), /1073741824 events/);
    refused(decodeBulkBody('msgpack', msgpackBody({ events: buildEvents(6) }), limits), 'ERR_INGEST_TOO_MANY_EVENTS');
    refused(decodeBulkBody('msgpack', msgpackBody({ request_id: 'r', events: buildEvents(6) }), limits), 'ERR_INGEST_TOO_MANY_EVENTS');
  });

  it('refuses truncated input, trailing bytes, unknown extensions and lengths beyond the body', () => {
    const whole = msgpackBody({ events: buildEvents(1) });
    const cases: Array<[string, Buffer]> = [
      ['truncated', whole.subarray(0, whole.length - 3)],
      ['trailing bytes', Buffer.concat([whole, Buffer.from([0x01])])],
      ['unknown extension', Buffer.from([0x91, 0xd4, 0x05, 0x00])],
      ['str32 declaring 4 GiB', Buffer.from([0x91, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x61])],
      ['map32 declaring 4 billion entries', Buffer.from([0x91, 0xdf, 0xff, 0xff, 0xff, 0xff])],
      ['bin32 declaring 4 GiB', Buffer.from([0x91, 0xc6, 0xff, 0xff, 0xff, 0xff])],
      ['a map key that is an array', Buffer.from([0x91, 0x81, 0x91, 0x01, 0x02])],
    ];
    for (const [name, body] of cases) assert.match(refused(decodeBulkBody('msgpack', body, limits), 'ERR_INGEST_MALFORMED_BODY'), /^body is not valid msgpack: /, name);
  });

  it('refuses absurd nesting without crashing', () => {
    const body = Buffer.concat([Buffer.from([0x91]), Buffer.alloc(500_000, 0x91), Buffer.from([0xc0])]);
    assert.match(refused(decodeBulkBody('msgpack', body, limits), 'ERR_INGEST_MALFORMED_BODY'), /nest too deeply/);
  });

  it('refuses the reserved byte 0xC1 wherever it is a value, but not inside strings', () => {
    assert.match(refused(decodeBulkBody('msgpack', Buffer.from([0x91, 0xc1]), limits), 'ERR_INGEST_MALFORMED_BODY'), /0xC1/);
    assert.match(refused(decodeBulkBody('msgpack', Buffer.from([0x91, 0x81, 0xa1, 0x61, 0x91, 0xc1]), limits), 'ERR_INGEST_MALFORMED_BODY'), /0xC1/);
    refused(decodeBulkBody('msgpack', Buffer.from([0xc1]), limits), 'ERR_INGEST_MALFORMED_BODY');
    // 193 is encoded CC C1, -1000000.5 as a float64 starting C1 2E, and binary may hold C1:
    // the byte occurs, so the walk runs, but no value is the reserved one.
    for (const value of [{ n: 193 }, { f: -1000000.5 }, { b: Buffer.from([0xc1]) }]) {
      const body = msgpackBody([value]);
      assert.notEqual(body.indexOf(0xc1), -1);
      decoded(decodeBulkBody('msgpack', body, limits));
    }
  });

  it('refuses the same wrong shapes as JSON', () => {
    assert.match(refused(decodeBulkBody('msgpack', msgpackBody(5), limits), 'ERR_INGEST_BAD_SHAPE'), /got a number/);
    assert.match(refused(decodeBulkBody('msgpack', msgpackBody({ events: 'x' }), limits), 'ERR_INGEST_BAD_SHAPE'), /"events" must be an array; got a string/);
    assert.match(refused(decodeBulkBody('msgpack', msgpackBody({ events: [{}], more: 1 }), limits), 'ERR_INGEST_BAD_SHAPE'), /unknown key "more"/);
    assert.match(refused(decodeBulkBody('msgpack', msgpackBody(Buffer.from('x')), limits), 'ERR_INGEST_BAD_SHAPE'), /binary data/);
    refused(decodeBulkBody('msgpack', msgpackBody({ events: [] }), limits), 'ERR_INGEST_EMPTY');
    refused(decodeBulkBody('msgpack', Buffer.alloc(0), limits), 'ERR_INGEST_EMPTY');
  });

  it('turns an event with a __proto__ map key (which msgpackr renames) into a per-event error', () => {
    const protoKey = Buffer.from([0xa9, ...Buffer.from('__proto__')]);
    const body = Buffer.concat([
      Buffer.from([0x92, 0x81, 0xaa, ...Buffer.from('attributes'), 0x81]), protoKey, Buffer.from([0x01]),
      Buffer.from([0x81, 0xa1, 0x61, 0x01]),
    ]);
    const result = decoded(decodeBulkBody('msgpack', body, limits));
    assert.equal(undecodable(result.items[0]).code, 'ERR_EVENT_ATTRIBUTES_INVALID');
    assert.deepEqual(result.items[1], { a: 1 });
    assert.deepEqual(result.lineErrors.map((error) => error.index), [0]);
  });

  it('keeps an event whose string value is "__proto__"', () => {
    const result = decoded(decodeBulkBody('msgpack', msgpackBody([{ attributes: { key: '__proto__' } }]), limits));
    assert.deepEqual(result.items, [{ attributes: { key: '__proto__' } }]);
  });

  it('hands msgpack-only values to the validator, which refuses them in attributes and accepts a Date timestamp', () => {
    const context = buildContext();
    const body = msgpackBody([
      buildEvent({ attributes: { n: Number.NaN } }),
      buildEvent({ attributes: { b: Buffer.from([1, 2]) } }),
      buildEvent({ timestamp: new Date(context.receivedAtMs - 5000) }),
    ]);
    const items = decoded(decodeBulkBody('msgpack', body, limits)).items;
    const codes = items.map((item, index) => {
      const result = validateEvent(item, index, context);
      return result.ok ? result.event.occurredAtUs : result.error.code;
    });
    assert.deepEqual(codes, ['ERR_EVENT_ATTRIBUTES_INVALID', 'ERR_EVENT_ATTRIBUTES_INVALID', (context.receivedAtMs - 5000) * 1000]);
  });
});

describe('JSON nested past bodyDepthMax (regression: 9.5 MiB of nested arrays took JSON.parse 2.4 s and 258 MB)', () => {
  const deepEvent = (levels: number): string => JSON.stringify(buildEvent({ attributes: { deep: 'HOLE' } })).replace('"HOLE"', '['.repeat(levels) + ']'.repeat(levels));

  it('refuses a bulk body before parsing it, but leaves moderately deep events to validation', () => {
    const tooDeep = Buffer.from(`{"events":[${deepEvent(1_000_000)}]}`);
    assert.match(refused(decodeBulkBody('json', tooDeep, limits), 'ERR_INGEST_MALFORMED_BODY'), /nests deeper than 512 levels/);
    const deepButDecodable = decoded(decodeBulkBody('json', Buffer.from(`[${deepEvent(500)}]`), limits));
    const result = validateEvent(deepButDecodable.items[0], 0, buildContext());
    assert.equal(result.ok ? null : result.error.code, 'ERR_EVENT_ATTRIBUTES_TOO_DEEP');
  });

  it('refuses a deep single event, and makes a deep NDJSON line a per-event error', () => {
    refused(decodeSingleBody('json', Buffer.from(deepEvent(600)), { eventBytesMax: 64 * 1024 }), 'ERR_INGEST_MALFORMED_BODY');
    const lines = Buffer.from(`${deepEvent(600)}\n${JSON.stringify(buildEvent())}\n`);
    const result = decoded(decodeBulkBody('ndjson', lines, { ...limits, eventBytesMax: 64 * 1024 }));
    assert.equal(undecodable(result.items[0]).code, 'ERR_EVENT_ATTRIBUTES_TOO_DEEP');
    assert.deepEqual(result.items[1], buildEvent());
  });
});

describe('decodeBulkBody, msgpack checked before decoding (regressions found by test/fuzz)', () => {
  const malformedMessage = (body: Buffer): string => refused(decodeBulkBody('msgpack', body, limits), 'ERR_INGEST_MALFORMED_BODY');
  const cloneTarget = [0xd6, 0x69, 0, 0, 0, 1];
  const clonePointer = [0xd6, 0x70, 0, 0, 0, 1];

  it('accepts whatever standard msgpack encodes: random values of every type and size, packed and walked', () => {
    const rng = new Prng(20261122);
    const texts = ['', 'a', 'héllo', '✓', '😀', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(300)];
    const numbers = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32, 2 ** 53 - 1, -1, -32, -33, -128, -129, -32_768, -(2 ** 31) - 1, 0.5, -1e300, 1.5e-300];
    const value = (depth: number): unknown => {
      const kind = rng.int(0, depth > 4 ? 4 : 6);
      // fixarray/fixmap end at 15 elements, array16/map16 start at 16; deep levels stay small.
      const size = (): number => rng.pick(depth < 2 ? [0, 1, 15, 16, 17] : [0, 1, 2]);
      if (kind === 0) return rng.pick(texts);
      if (kind === 1) return rng.pick(numbers);
      if (kind === 2) return rng.pick([true, false, null]);
      if (kind === 3) return rng.chance(0.5) ? rng.bytes(rng.pick([0, 3, 300])) : new Date(rng.int(0, 2 ** 40));
      if (kind === 4) return rng.pick(texts).slice(0, 5);
      if (kind === 5) return Array.from({ length: size() }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: size() }, (_, i) => [`k${i}${rng.pick(texts).slice(0, 3)}`, value(depth + 1)]));
    };
    // str32 and bin32 need more than 64 KiB: one value of each, then random ones.
    const cases = [['é'.repeat(40_000), Buffer.alloc(70_000, 1)], ...Array.from({ length: 200 }, () => [value(0), value(0)])];
    for (const [i, events] of cases.entries()) {
      const body = msgpackBody(events);
      assert.equal(msgpackProblem(body), null, `case ${i}`);
      assert.deepEqual(decoded(decodeBulkBody('msgpack', body, { ...limits, eventsPerRequestMax: 2 })).items, events, `case ${i}`);
    }
  });

  it('refuses structured-clone references, whose cyclic values made the 0xC1 and __proto__ walks endless', () => {
    // [a, 193] with a = [a]: msgpackr built the cycle and the 0xC1 walk never ended.
    const cycleBesideC1 = Buffer.from([0x92, ...cloneTarget, 0x91, ...clonePointer, 0xcc, 0xc1]);
    // [o] with o = {"__proto__": o}: the same for the walk looking for renamed __proto__ keys.
    const cycleThroughProto = Buffer.from([0x91, ...cloneTarget, 0x81, 0xa9, ...Buffer.from('__proto__'), ...clonePointer]);
    for (const body of [cycleBesideC1, cycleThroughProto]) assert.match(malformedMessage(body), /extension type 105 at byte \d+ is not supported/);
    assert.ok(!decodeSingleBody('msgpack', Buffer.from([...cloneTarget, 0x81, 0xa1, 0x61, ...clonePointer]), { eventBytesMax: 1024 }).ok);
  });

  it('refuses strings that are not UTF-8, as values and as keys, which msgpackr turned into U+FFFD or Latin-1', () => {
    const bad: ReadonlyArray<readonly number[]> = [[0xff], [0x80], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]];
    for (const sequence of bad) {
      const asValue = Buffer.from([0x91, 0x81, 0xa1, 0x61, 0xa0 + sequence.length, ...sequence]);
      const asKey = Buffer.from([0x91, 0x81, 0xa0 + sequence.length, ...sequence, 0x01]);
      const long = Buffer.concat([Buffer.from([0x91, 0x81, 0xa1, 0x61, 0xd9, 100]), Buffer.from('x'.repeat(100 - sequence.length)), Buffer.from(sequence)]);
      for (const body of [asValue, asKey, long]) assert.match(malformedMessage(body), /the string at byte \d+ is not valid UTF-8/, Buffer.from(sequence).toString('hex'));
    }
    const fine = decoded(decodeBulkBody('msgpack', msgpackBody([{ text: 'héllo ✓ 😀' }]), limits));
    assert.deepEqual(fine.items, [{ text: 'héllo ✓ 😀' }]);
  });

  it("refuses msgpackr's own extensions and accepts the timestamp and undefined", () => {
    const event = buildEvent();
    const bodies: Array<[string, Buffer]> = [
      ['records', new Packr({ useRecords: true }).pack([event])],
      ['bundled strings', new Packr({ useRecords: false, bundleStrings: true }).pack([{ ...event, event_type: 'x'.repeat(40) }])],
      ['a Set', new Packr({ useRecords: false, moreTypes: true }).pack([{ attributes: { s: new Set([1]) } }])],
      ['an Error', new Packr({ useRecords: false, moreTypes: true }).pack([{ attributes: { e: new Error('x') } }])],
      ['a RegExp', new Packr({ useRecords: false, moreTypes: true }).pack([{ attributes: { r: /x/ } }])],
      ['a typed array', new Packr({ useRecords: false, moreTypes: true }).pack([{ attributes: { f: new Float64Array(2) } }])],
    ];
    for (const [name, body] of bodies) assert.match(malformedMessage(body), /extension type -?\d+ at byte \d+ is not supported: send standard msgpack/, name);
    const timestamp = new Date(Date.UTC(2026, 10, 20, 10));
    const allowed = decoded(decodeBulkBody('msgpack', msgpackBody([{ timestamp, gone: undefined }]), limits));
    assert.deepEqual(allowed.items, [{ timestamp, gone: undefined }]);
  });

  it('accepts 512 levels of nesting and refuses 513 before msgpackr recurses', () => {
    const nested = (levels: number): Buffer => Buffer.concat([Buffer.alloc(levels, 0x91), Buffer.from([0xc0])]);
    decoded(decodeBulkBody('msgpack', nested(512), limits));
    assert.match(malformedMessage(nested(513)), /nest too deeply \(more than 512 levels\)/);
  });

  it('refuses declared element counts beyond the body before decoding, and bytes after the value', () => {
    assert.match(malformedMessage(Buffer.from([0x91, 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x01])), /declares more bytes or elements than the body holds/);
    assert.match(malformedMessage(Buffer.from([0x91, 0xde, 0x00, 0x02, 0xa1, 0x61, 0x01])), /declares more bytes or elements than the body holds/);
    assert.match(malformedMessage(Buffer.from([0x91, 0xd5, 0xff, 0x00])), /declares more bytes or elements/);
    assert.match(malformedMessage(Buffer.from([0x90, 0xc0, 0xc0])), /2 bytes follow the end of the value/);
  });
});

describe('decodeSingleBody', () => {
  const single = { eventBytesMax: 1024 };

  it('decodes one JSON or msgpack event', () => {
    assert.deepEqual(decodeSingleBody('json', jsonBody(buildEvent()), single), { ok: true, item: buildEvent() });
    assert.deepEqual(decodeSingleBody('msgpack', msgpackBody(buildEvent()), single), { ok: true, item: buildEvent() });
  });

  it('passes a scalar on for the validator to refuse, but refuses an array here', () => {
    assert.deepEqual(decodeSingleBody('json', Buffer.from('"x"'), single), { ok: true, item: 'x' });
    assert.match(refused(decodeSingleBody('json', jsonBody([buildEvent()]), single), 'ERR_INGEST_BAD_SHAPE'), /bulk route/);
    refused(decodeSingleBody('msgpack', msgpackBody([buildEvent()]), single), 'ERR_INGEST_BAD_SHAPE');
  });

  it('refuses empty, oversized, malformed and non-UTF-8 bodies', () => {
    refused(decodeSingleBody('json', Buffer.alloc(0), single), 'ERR_INGEST_EMPTY');
    assert.match(refused(decodeSingleBody('json', jsonBody({ pad: 'x'.repeat(1100) }), single), 'ERR_EVENT_TOO_LARGE'), /eventBytesMax = 1024 bytes/);
    assert.match(refused(decodeSingleBody('json', Buffer.from('{"event_type": "a",}'), single), 'ERR_INGEST_MALFORMED_BODY'), /unexpected "}" at position 19/);
    refused(decodeSingleBody('json', Buffer.from([0x7b, 0xff, 0x7d]), single), 'ERR_INGEST_MALFORMED_BODY');
    refused(decodeSingleBody('msgpack', Buffer.from([0x81, 0xa1]), single), 'ERR_INGEST_MALFORMED_BODY');
    refused(decodeSingleBody('msgpack', Buffer.from([0xc1]), single), 'ERR_INGEST_MALFORMED_BODY');
  });

  it('marks a msgpack event with a __proto__ key for the validator', () => {
    const body = Buffer.from([0x81, 0xa9, ...Buffer.from('__proto__'), 0x01]);
    const result = decodeSingleBody('msgpack', body, single);
    assert.ok(result.ok);
    assert.equal(undecodable(result.item).code, 'ERR_EVENT_ATTRIBUTES_INVALID');
  });
});

describe('jsonErrorOffset', () => {
  it('returns -1 exactly when JSON.parse accepts the text', () => {
    const texts = [
      '{}', '[]', '0', '-0.5e+10', '"a\\u00e9\\n"', 'true', ' null ', '{"a":[1,{"b":false}],"c":"d"}', '1.', '01', '-', '.5', '1e', '[1,]', '{"a":1,}',
      '{"a" 1}', '{a:1}', '"\\x"', '"\\u12G4"', '"\u0001"', 'tru', 'nul', '[1 2]', '{"a":1}}', '', '"abc', '[[[]]', '{"a":{}', '1 2', '\u00a0{}',
    ];
    for (const text of texts) {
      let parses = true;
      try {
        JSON.parse(text);
      } catch {
        parses = false;
      }
      const offset = jsonErrorOffset(text);
      assert.equal(offset === -1, parses, `${JSON.stringify(text)}: offset ${offset}`);
      assert.ok(offset <= text.length);
    }
  });

  it('points at the first offending character', () => {
    assert.equal(jsonErrorOffset('[1,]'), 3);
    assert.equal(jsonErrorOffset('{"a" 1}'), 5);
    assert.equal(jsonErrorOffset('"\\u12G4"'), 5);
    assert.equal(jsonErrorOffset('tru'), 3);
    assert.equal(jsonErrorOffset('01'), 1);
    assert.equal(jsonErrorOffset('"a\u0001"'), 2);
  });
});
