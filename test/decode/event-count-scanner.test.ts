import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pack } from 'msgpackr';
import { bodyDepthMax, jsonNestsDeeperThan } from '../../src/decode/body-depth';
import { EventCountScanner, scanBody } from '../../src/decode/event-count-scanner';
import { buildEvent, buildEvents, chunksOf, jsonBody, ndjsonBody } from '../support/builders';
import { Prng } from '../support/prng';

function scan(format: 'json' | 'ndjson' | 'msgpack', chunks: readonly Uint8Array[]): number {
  const scanner = new EventCountScanner(format);
  for (const chunk of chunks) scanner.feed(chunk);
  return scanner.count;
}

/** Seeded (test/support/prng.ts), so a failing case can be replayed. */
function randomSource(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.next();
}

const trickyPieces = ['{', '}', '[', ']', '"', '\\', '\\"', ',', ':', 'é', '😀', '\n', '\u0001', 'events', ' '];

function randomString(random: () => number): string {
  let text = '';
  const length = Math.floor(random() * 8);
  for (let i = 0; i < length; i++) text += trickyPieces[Math.floor(random() * trickyPieces.length)];
  return text;
}

function randomValue(random: () => number, depth: number): unknown {
  const kind = Math.floor(random() * (depth > 3 ? 4 : 6));
  if (kind === 0) return randomString(random);
  if (kind === 1) return Math.floor(random() * 1e6) / 100;
  if (kind === 2) return random() < 0.5;
  if (kind === 3) return null;
  if (kind === 4) return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1));
  const object: Record<string, unknown> = {};
  for (let i = Math.floor(random() * 4); i > 0; i--) object[randomString(random)] = randomValue(random, depth + 1);
  return object;
}

/** Splits bytes at random points, including single bytes, to hit every boundary. */
function randomChunks(bytes: Uint8Array, random: () => number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let start = 0;
  while (start < bytes.length) {
    const size = 1 + Math.floor(random() * (random() < 0.3 ? 3 : 40));
    chunks.push(bytes.subarray(start, start + size));
    start += size;
  }
  return chunks;
}

describe('EventCountScanner, JSON', () => {
  it('counts the events of {"events": [...]} and of a top-level array, in one chunk or byte by byte', () => {
    const events = buildEvents(7);
    for (const body of [jsonBody({ events }), jsonBody({ request_id: 'r-1', events }), jsonBody({ events, request_id: 'r-1' }), jsonBody(events)]) {
      assert.equal(scan('json', [body]), 7);
      assert.equal(scan('json', chunksOf(body, 1)), 7);
      assert.equal(scan('json', chunksOf(body, 5)), 7);
    }
  });

  it('counts every element, not only objects, because each is an item the decoder returns', () => {
    assert.equal(scan('json', [Buffer.from('[1, "x", null, [], {}, true]')]), 6);
    assert.equal(scan('json', [Buffer.from('{"events": [ [1,2], [3] ,{"a":[{}]} ]}')]), 3);
    assert.equal(scan('json', [Buffer.from('[]')]), 0);
    assert.equal(scan('json', [Buffer.from('{"events": [ ]}')]), 0);
    assert.equal(scan('json', [Buffer.from(' \n[\n{}\n,\n{}\n]\n')]), 2);
  });

  it('ignores brackets, quotes and commas inside strings, including escaped quotes split across chunks', () => {
    const events = [buildEvent({ attributes: { note: 'a "quoted" {x} [y], \\ and \\" end' } }), buildEvent({ event_type: '\\' }), buildEvent({ event_type: '"{[' })];
    const body = jsonBody({ events });
    for (let size = 1; size <= 9; size++) assert.equal(scan('json', chunksOf(body, size)), 3, `chunks of ${size}`);
  });

  it('counts exactly the decoded number of events for random valid bodies split at random points', () => {
    const random = randomSource(20261120);
    for (let round = 0; round < 300; round++) {
      const items = Array.from({ length: Math.floor(random() * 12) }, () => randomValue(random, 0));
      const wrapped = random() < 0.5;
      const body = jsonBody(wrapped ? { events: items } : items);
      assert.equal(scan('json', randomChunks(body, random)), items.length, `round ${round}: ${body.toString()}`);
    }
  });

  it('does not count objects nested inside events or under other keys of the root object', () => {
    assert.equal(scan('json', [Buffer.from('{"events":[{"attributes":{"a":{"b":{}}},"x":[{},{}]}]}')]), 1);
    assert.equal(scan('json', [Buffer.from('{"request_id":"r","meta":{"events":[{},{}]}}')]), 0);
    assert.equal(scan('json', [Buffer.from('{"a":1}')]), 0);
    assert.equal(scan('json', [Buffer.from('"[{},{}]"')]), 0);
    assert.equal(scan('json', [Buffer.from('42')]), 0);
  });

  it('passes eventsPerRequestMax long before the end of an oversized body', () => {
    const scanner = new EventCountScanner('json');
    const first = Buffer.from('[' + '{},'.repeat(6000));
    scanner.feed(first);
    assert.ok(scanner.count > 5000);
  });

  it('never throws and stays a finite count, whatever the bytes', () => {
    const random = randomSource(7);
    for (let round = 0; round < 200; round++) {
      const bytes = Buffer.alloc(1 + Math.floor(random() * 300));
      for (let i = 0; i < bytes.length; i++) bytes[i] = random() < 0.5 ? '{}[],"\\ 1a'.charCodeAt(Math.floor(random() * 11)) : Math.floor(random() * 256);
      const count = scan('json', randomChunks(bytes, random));
      assert.ok(Number.isInteger(count) && count >= 0);
    }
    assert.equal(scan('json', [Buffer.from(']]]}}}{"a"')]), 0, 'closing brackets past the root do not go negative');
    assert.equal(scan('json', []), 0);
    assert.equal(scan('json', [new Uint8Array(0)]), 0);
  });
});

describe('EventCountScanner, JSON nesting (regression: deep bodies reached JSON.parse)', () => {
  const nested = (levels: number): Buffer => Buffer.from(`{"events":[{"attributes":${'['.repeat(levels - 3)}${']'.repeat(levels - 3)}}]}`);

  it('flags a body deeper than bodyDepthMax, and only then, however it is chunked', () => {
    assert.equal(bodyDepthMax, 512);
    for (const chunkBytes of [1, 7, 100, 1_000_000]) {
      const flagged = (levels: number): boolean => {
        const scanner = new EventCountScanner('json');
        for (const chunk of chunksOf(nested(levels), chunkBytes)) scanner.feed(chunk);
        return scanner.nestsTooDeep;
      };
      assert.equal(flagged(512), false, `512 levels in chunks of ${chunkBytes}`);
      assert.equal(flagged(513), true, `513 levels in chunks of ${chunkBytes}`);
    }
  });

  it('does not count brackets inside strings as nesting', () => {
    const scanner = new EventCountScanner('json');
    scanner.feed(jsonBody({ events: [buildEvent({ attributes: { text: '['.repeat(5000) + '\\"{' } })] }));
    assert.equal(scanner.nestsTooDeep, false);
    assert.equal(scanner.count, 1);
  });

  it('jsonNestsDeeperThan agrees, and skips text too short to nest that deep', () => {
    assert.equal(jsonNestsDeeperThan(nested(512), bodyDepthMax), false);
    assert.equal(jsonNestsDeeperThan(nested(513), bodyDepthMax), true);
    assert.equal(jsonNestsDeeperThan(Buffer.from('{"a":"' + '['.repeat(2000) + '"}'), bodyDepthMax), false);
    assert.equal(jsonNestsDeeperThan(Buffer.from('['.repeat(512)), bodyDepthMax), false);
    assert.equal(jsonNestsDeeperThan(Buffer.from('['.repeat(513)), bodyDepthMax), true);
  });
});

describe('EventCountScanner, NDJSON', () => {
  it('counts lines with content, with or without a final newline', () => {
    assert.equal(scan('ndjson', [ndjsonBody(buildEvents(3))]), 3);
    assert.equal(scan('ndjson', [Buffer.from('{}\n{}\n{}\n')]), 3);
    assert.equal(scan('ndjson', [Buffer.from('{}')]), 1);
  });

  it('skips blank lines, whitespace-only lines and CRLF endings', () => {
    assert.equal(scan('ndjson', [Buffer.from('\n\n{}\r\n  \t \r\n\r\n{"a":1}\r\n   \n')]), 2);
    assert.equal(scan('ndjson', [Buffer.from('')]), 0);
    assert.equal(scan('ndjson', [Buffer.from(' \n\t\n\r\n')]), 0);
  });

  it('counts lines that are not JSON too: they are per-event errors, still events', () => {
    assert.equal(scan('ndjson', [Buffer.from('not json\n{"a":\n')]), 2);
  });

  it('gives the same count for every chunking', () => {
    const body = Buffer.from('{"a":1}\r\n\n  x\n\t\n{"b":"\\n"}\n  ');
    for (let size = 1; size <= body.length; size++) assert.equal(scan('ndjson', chunksOf(body, size)), 3, `chunks of ${size}`);
  });
});

describe('EventCountScanner, msgpack', () => {
  const events = (count: number): unknown[] => Array.from({ length: count }, (_, i) => ({ i }));

  it('reads the declared count of fixarray, array16 and array32 bodies', () => {
    for (const count of [1, 15, 16, 65535, 65536]) {
      const body = pack(events(count));
      assert.equal(scan('msgpack', [body]), count, `array of ${count}`);
    }
  });

  it('reads the events array of a map whose first key is "events", for fixmap, map16 and map32', () => {
    assert.equal(scan('msgpack', [pack({ events: events(3), request_id: 'r' })]), 3);
    assert.equal(scan('msgpack', [pack({ events: events(70000) })]), 70000);
    // map16 and map32 headers with the same content (encoders may pick a wider header).
    const inner = pack(events(20)).subarray(0);
    const key = Buffer.from([0xa6, ...Buffer.from('events')]);
    assert.equal(scan('msgpack', [Buffer.concat([Buffer.from([0xde, 0, 1]), key, inner])]), 20);
    assert.equal(scan('msgpack', [Buffer.concat([Buffer.from([0xdf, 0, 0, 0, 1]), key, inner])]), 20);
    const str8Key = Buffer.from([0xd9, 6, ...Buffer.from('events')]);
    assert.equal(scan('msgpack', [Buffer.concat([Buffer.from([0x81]), str8Key, Buffer.from([0xdd, 0, 1, 0, 0])])]), 65536);
  });

  it('reads a header split across chunks, down to one byte per chunk', () => {
    const body = pack({ events: events(300), request_id: 'r' });
    assert.equal(scan('msgpack', chunksOf(body, 1)), 300);
    assert.equal(scan('msgpack', chunksOf(body, 4)), 300);
  });

  it('stays at 0 for shapes whose count is not in the header', () => {
    const cases: Array<[string, Uint8Array]> = [
      ['events not the first key', pack({ request_id: 'r', events: events(3) })],
      ['events not an array', pack({ events: { a: 1 } })],
      ['other key', pack({ eventz: events(3) })],
      ['empty map', pack({})],
      ['map16 with no entries', Buffer.from([0xde, 0, 0])],
      ['a string', pack('events')],
      ['a number', pack(5)],
      ['nil', Buffer.from([0xc0])],
      ['reserved byte', Buffer.from([0xc1])],
      ['empty body', new Uint8Array(0)],
      ['truncated array16 header', Buffer.from([0xdc, 0x01])],
      ['truncated key', Buffer.from([0x81, 0xa6, 0x65, 0x76])],
      ['key of another length', Buffer.from([0x81, 0xd9, 0x07, ...Buffer.from('eventss')])],
    ];
    for (const [name, body] of cases) {
      assert.equal(scan('msgpack', [body]), 0, name);
      assert.equal(scan('msgpack', chunksOf(body, 1)), 0, `${name}, byte by byte`);
    }
  });

  it('scanBody reads the same header from a whole body (gzip bodies, after gunzip)', () => {
    assert.equal(scanBody('msgpack', pack(events(40))).count, 40);
    assert.equal(scanBody('msgpack', pack({ events: events(2) })).count, 2);
    assert.equal(scanBody('msgpack', pack({ a: 1 })).count, 0);
    assert.equal(scanBody('msgpack', Buffer.from([0xdd, 0xff])).count, 0);
    assert.equal(scanBody('msgpack', new Uint8Array(0)).count, 0);
  });

  it('never throws on random bytes', () => {
    const random = randomSource(99);
    for (let round = 0; round < 500; round++) {
      const bytes = Buffer.alloc(Math.floor(random() * 24));
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
      const count = scan('msgpack', randomChunks(bytes, random));
      assert.ok(Number.isInteger(count) && count >= 0 && count <= 0xffffffff);
    }
  });
});

describe('EventCountScanner.summary and scanBody: what the decoder is handed', () => {
  it('gives a body scanned whole (after gunzip) the summary it gets streamed in one chunk', () => {
    const body = jsonBody({ events: buildEvents(7) });
    const streamed = new EventCountScanner('json');
    streamed.feed(body);
    const whole = scanBody('json', body);
    assert.equal(whole.count, 7);
    assert.equal(whole.nestsTooDeep, false);
    assert.notEqual(whole.attributeSpans, null);
    assert.deepEqual(streamed.summary(), whole);
  });

  it('leaves NDJSON unscanned after gunzip: its decoder counts lines itself', () => {
    assert.deepEqual(scanBody('ndjson', ndjsonBody(buildEvents(3))), { format: 'ndjson', count: 0, nestsTooDeep: false, attributeSpans: null });
  });

  it('reports a body deeper than bodyDepthMax and no spans for it', () => {
    const deep = scanBody('json', Buffer.from('['.repeat(bodyDepthMax + 1)));
    assert.equal(deep.nestsTooDeep, true);
    assert.equal(deep.attributeSpans, null);
  });
});
