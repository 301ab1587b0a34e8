/**
 * Hostile bodies, part two: attacks on the byte level — msgpack headers that declare more
 * than the body holds, gzip bombs, encodings Floodgate does not undo, bodies past the byte
 * limit (with and without Content-Length), and random byte flips of valid bodies.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import { pack, Packr } from 'msgpackr';
import {
  encode, formatFor, isBulk, post, routes, routeValue, validEvent, validEvents,
  type CaseGenerator, type FuzzLimits, type HostileCase, type Route,
} from './fuzz-cases';
import type { Prng } from '../support/prng';

/** msgpack headers with a length field: name, marker, width of the length in bytes, extension. */
const lengthHeaders: ReadonlyArray<readonly [string, number, number, boolean]> = [
  ['str8', 0xd9, 1, false], ['str16', 0xda, 2, false], ['str32', 0xdb, 4, false],
  ['bin8', 0xc4, 1, false], ['bin16', 0xc5, 2, false], ['bin32', 0xc6, 4, false],
  ['array16', 0xdc, 2, false], ['array32', 0xdd, 4, false], ['map16', 0xde, 2, false], ['map32', 0xdf, 4, false],
  ['ext8', 0xc7, 1, true], ['ext16', 0xc8, 2, true], ['ext32', 0xc9, 4, true],
];

/**
 * A msgpack header declaring more bytes or elements than follow (often 0xFFFFFFFF), as the
 * whole body, as an event in a bulk array, or as an event's attributes.
 */
export const msgpackLengthBomb: CaseGenerator = (rng, tag) => {
  const [kind, marker, width, extension] = rng.pick(lengthHeaders);
  const trailing = rng.bytes(rng.int(0, 64));
  const widthMax = 2 ** (8 * width) - 1;
  const declared = rng.chance(0.5) ? widthMax : rng.int(trailing.length + 1, widthMax);
  const length = Buffer.alloc(width);
  length.writeUIntBE(declared, 0, width);
  const bomb = Buffer.concat([Buffer.from([marker]), length, extension ? Buffer.from([rng.pick([0x01, 0xff, 0x69])]) : Buffer.alloc(0), trailing]);
  const route = rng.pick(routes);
  const where = rng.pick(['body', 'event', 'attributes']);
  let body: Buffer;
  if (where === 'body') body = bomb;
  else {
    const event = where === 'event' ? bomb : attributesBomb(tag, bomb);
    body = isBulk(route) ? Buffer.concat([Buffer.from([0x91]), event]) : event;
  }
  return { category: 'msgpack-length-bomb', name: `${kind} declaring ${declared} with ${trailing.length} bytes after it, as the ${where}, to ${route}`, request: post(route, 'msgpack', body), expect: 'refused' };
};

function attributesBomb(tag: string, bomb: Buffer): Buffer {
  const { properties: _replaced, ...event } = validEvent(tag, 0);
  const fields = pack(event);
  fields[0] = (fields[0] as number) + 1;
  return Buffer.concat([fields, pack('attributes'), bomb]);
}

/** Bombs are costly to compress, so each is made once per process and reused. */
const bombCache = new Map<string, Buffer>();
const bombFactors = [2, 16, 64] as const;

/**
 * Compresses every bomb now, so that the tens of MiB of plain text behind them are
 * allocated and freed before the suite takes its first memory reading.
 */
export function prepareGzipBombs(limits: FuzzLimits): void {
  for (const factor of bombFactors) zerosBomb(limits, factor);
  elementsBomb(limits);
  nestedBomb(limits);
  blankLinesBomb(limits);
}

/** Newlines filling bodyDecodedBytesMax: one native search per blank line made 32 MiB cost 0.7 s. */
function blankLinesBomb(limits: FuzzLimits): Buffer {
  return cachedBomb('blank-lines', () => gzipSync(Buffer.alloc(limits.bodyDecodedBytesMax, '\n'), { level: 9 }));
}

/** `[[[…]]]` filling bodyDecodedBytesMax: before bodyDepthMax, 32 KB of gzip cost 7.1 s and 928 MB at 32 MiB. */
function nestedBomb(limits: FuzzLimits): Buffer {
  const levels = Math.floor(limits.bodyDecodedBytesMax / 2) - 1;
  return cachedBomb('nested', () => gzipSync(Buffer.concat([Buffer.alloc(levels, '['), Buffer.alloc(levels, ']')]), { level: 9 }));
}

function zerosBomb(limits: FuzzLimits, factor: number): Buffer {
  return cachedBomb(`zeros-${factor}`, () => gzipSync(Buffer.alloc(limits.bodyDecodedBytesMax * factor, 0x20), { level: 9 }));
}

function elementsBomb(limits: FuzzLimits): Buffer {
  return cachedBomb('elements', () => gzipSync(`[${'{},'.repeat(Math.ceil(limits.bodyDecodedBytesMax / 3))}{}]`, { level: 9 }));
}

function cachedBomb(key: string, make: () => Buffer): Buffer {
  let bomb = bombCache.get(key);
  if (bomb === undefined) {
    bomb = make();
    bombCache.set(key, bomb);
  }
  return bomb;
}

/**
 * Small gzip bodies that inflate past bodyDecodedBytesMax (spaces, `{},` elements, many
 * members), to more events than allowed, to nesting bombs or to nothing but newlines
 * within the limit, and broken gzip (cut short, bad checksum, trailing garbage).
 */
export const gzipBomb: CaseGenerator = (rng, tag, limits) => {
  const route = rng.pick(routes);
  const kind = rng.int(0, 8);
  const decodedMax = limits.bodyDecodedBytesMax;
  let body: Buffer;
  let name: string;
  let contentType = 'application/json';
  if (kind === 0) {
    const factor = rng.pick(bombFactors);
    body = zerosBomb(limits, factor);
    name = `${decodedMax * factor} spaces`;
  } else if (kind === 1) {
    body = elementsBomb(limits);
    name = `${Math.ceil(decodedMax / 3)} empty objects`;
  } else if (kind === 2) {
    const count = limits.eventsPerRequestMax * 20;
    contentType = isBulk(route) ? rng.pick(['application/json', 'application/x-ndjson']) : 'application/json';
    const text = contentType === 'application/json' ? `[${'{},'.repeat(count)}{}]` : '{}\n'.repeat(count);
    body = cachedBomb(`events-${contentType}`, () => gzipSync(text, { level: 9 }));
    name = `${count} events within bodyDecodedBytesMax`;
  } else if (kind === 3) {
    const member = cachedBomb('member', () => gzipSync(Buffer.alloc(1024 * 1024), { level: 9 }));
    const members = Math.ceil(decodedMax / (1024 * 1024)) + rng.int(1, 4);
    body = Buffer.concat(Array.from({ length: members }, () => member));
    name = `${members} concatenated members of 1 MiB`;
  } else if (kind === 7) {
    body = nestedBomb(limits);
    name = `${Math.floor(decodedMax / 2) - 1} nested arrays`;
  } else if (kind === 8) {
    body = blankLinesBomb(limits);
    contentType = isBulk(route) ? 'application/x-ndjson' : 'application/json';
    name = `${decodedMax} newlines`;
  } else {
    const whole = gzipSync(encode('json', routeValue(rng, route, validEvents(tag, rng.int(1, 5)))));
    if (kind === 4) body = whole.subarray(0, rng.int(0, whole.length - 1));
    else if (kind === 5) body = Buffer.concat([whole, Buffer.from(`garbage ${rng.text(rng.int(1, 40))}`, 'latin1')]);
    else body = corruptDeflate(rng, whole);
    name = ['cut short', 'with trailing garbage', 'with a corrupted deflate stream or checksum'][kind - 4] ?? '';
  }
  const request = post(route, 'json', body, { contentType, headers: [['Content-Encoding', rng.pick(['gzip', 'x-gzip', 'GZIP'])]] });
  return { category: 'gzip-bomb', name: `gzip of ${name} (${body.length} bytes) to ${route}`, request, expect: 'refused' };
};

/**
 * One bit flipped in the deflate stream, re-drawn until the body no longer decodes: a flip
 * in the padding bits after the final block changes nothing, and that gzip is valid
 * (seed 982438656, case 569, was one).
 */
function corruptDeflate(rng: Prng, whole: Buffer): Buffer {
  for (;;) {
    const body = flipOneBit(rng, whole, 10, whole.length - 8);
    try {
      gunzipSync(body);
    } catch {
      return body;
    }
  }
}

function flipOneBit(rng: Prng, bytes: Buffer, from: number, to: number): Buffer {
  const copy = Buffer.from(bytes);
  const at = rng.int(from, Math.max(from, to - 1));
  copy[at] = (copy[at] as number) ^ (1 << rng.int(0, 7));
  return copy;
}

const unknownEncodings: readonly string[] = [
  'br', 'deflate', 'compress', 'zstd', 'x-compress', 'gzip, gzip', 'gzip,gzip', 'identity, gzip', 'gzip, identity', 'gzip;q=1',
  'gzip2', '*', 'chunked', 'base64', 'GZIP, BR', 'deflate, gzip', ' , ',
];

/** Content-Encoding Floodgate does not undo, stacked codings included (with a doubly gzipped body). */
export const unknownEncoding: CaseGenerator = (rng, tag) => {
  const route = rng.pick(routes);
  const coding = rng.chance(0.3) ? rng.text(rng.int(1, 30)).replace(/[\s,]/g, 'q') : rng.pick(unknownEncodings);
  const plain = encode('json', routeValue(rng, route, validEvents(tag, rng.int(1, 5))));
  const body = coding.toLowerCase().includes('gzip') ? gzipSync(gzipSync(plain)) : plain;
  return { category: 'unknown-encoding', name: `Content-Encoding ${JSON.stringify(coding)} to ${route}`, request: post(route, 'json', body, { headers: [['Content-Encoding', coding]] }), expect: 'refused' };
};

/**
 * Bodies past bodyBytesMax: with a true Content-Length, chunked without one (refused
 * mid-stream), a declared length far past the limit with a small body, and gzip bodies
 * whose compressed size alone is past it.
 */
export const overLimit: CaseGenerator = (rng, tag, limits) => {
  const route = rng.pick(routes);
  const kind = rng.int(0, 3);
  const size = limits.bodyBytesMax + rng.pick([1, rng.int(2, 4096), rng.int(4096, 256 * 1024)]);
  const padded = (bytes: number): Buffer => {
    const text = JSON.stringify(routeValue(rng, route, validEvents(tag, 1)));
    return Buffer.from(text + ' '.repeat(Math.max(0, bytes - text.length)), 'utf8');
  };
  let request;
  let name: string;
  if (kind === 0) {
    request = post(route, 'json', padded(size));
    name = `${size} bytes with Content-Length`;
  } else if (kind === 1) {
    const chunkBytes = rng.pick([1024, rng.int(1, 64 * 1024), 256 * 1024]);
    request = post(route, 'json', padded(size), { framing: 'chunked', chunkBytes });
    name = `${size} bytes chunked by ${chunkBytes}`;
  } else if (kind === 2) {
    // uWS itself drops the connection, unanswered, on a Content-Length of ten digits or
    // more; hostile-headers.test.ts covers those. Up to nine digits the engine answers.
    const declared = String(rng.pick([limits.bodyBytesMax + 1, 10 ** rng.int(7, 8), 999_999_999]));
    request = post(route, 'json', padded(100), { headers: [['Content-Length', declared]] });
    name = `Content-Length ${declared} with a 100-byte body`;
  } else {
    request = post(route, 'json', rng.bytes(size), { headers: [['Content-Encoding', 'gzip']] });
    name = `${size} random bytes as gzip`;
  }
  return { category: 'over-limit', name: `${name} to ${route}`, request, expect: 'refused' };
};

/**
 * A valid JSON, NDJSON or msgpack body (sometimes gzipped) with 1-8 random edits: a byte
 * replaced, a bit flipped, a byte inserted or deleted, two bytes swapped. The result may
 * still be valid, so a 2xx is acceptable here; the suite checks what got stored.
 */
export const byteFlip: CaseGenerator = (rng, tag) => {
  const route: Route = rng.pick(routes);
  const format = formatFor(rng, route);
  const plain = encode(format, format === 'ndjson' ? validEvents(tag, rng.int(1, 20)) : routeValue(rng, route, validEvents(tag, rng.int(1, 20))));
  const gzip = rng.chance(0.1);
  const edits = rng.int(1, 8);
  let body = gzip ? gzipSync(plain) : plain;
  for (let i = 0; i < edits; i++) body = edit(rng, body);
  const headers: Array<readonly [string, string]> = gzip ? [['Content-Encoding', 'gzip']] : [];
  const request = post(route, format, body, { headers });
  return { category: 'byte-flip', name: `${edits} edits of a ${gzip ? 'gzipped ' : ''}${format} body to ${route}`, request, expect: 'refusedOrStored' } satisfies HostileCase;
};

function edit(rng: Prng, bytes: Buffer): Buffer {
  if (bytes.length === 0) return Buffer.from([rng.int(0, 255)]);
  const at = rng.int(0, bytes.length - 1);
  switch (rng.int(0, 4)) {
    case 0: return Buffer.concat([bytes.subarray(0, at), Buffer.from([rng.int(0, 255)]), bytes.subarray(at + 1)]);
    case 1: return flipOneBit(rng, bytes, at, at + 1);
    case 2: return Buffer.concat([bytes.subarray(0, at), Buffer.from([rng.int(0, 255)]), bytes.subarray(at)]);
    case 3: return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
    default: {
      const copy = Buffer.from(bytes);
      const other = rng.int(0, bytes.length - 1);
      copy[at] = bytes[other] as number;
      copy[other] = bytes[at] as number;
      return copy;
    }
  }
}

/** The id every structured-clone reference below points at. */
const cloneId = [0x00, 0x00, 0x00, 0x01];
/** fixext4, type 0x69: "the next value has this id"; type 0x70: "the value with this id". */
const cloneTarget = Buffer.from([0xd6, 0x69, ...cloneId]);
const clonePointer = Buffer.from([0xd6, 0x70, ...cloneId]);
const protoKey = Buffer.from([0xa9, ...Buffer.from('__proto__', 'latin1')]);

/**
 * msgpackr's own extensions, which it decodes by default though no other msgpack library
 * writes them: structured-clone references making cyclic values (next to a 0xC1 byte or a
 * `__proto__` key, which made the decoder walk the value), records, bundled strings, and
 * values such as Set, Error, RegExp and typed arrays.
 */
export const msgpackExtension: CaseGenerator = (rng, tag) => {
  const route = rng.pick(routes);
  const events = validEvents(tag, rng.int(1, 3));
  const kind = rng.int(0, 5);
  let value: Buffer;
  let name: string;
  if (kind === 0) {
    // [a, 193] where a = [a]: the uint8 193 is encoded CC C1.
    value = Buffer.concat([Buffer.from([0x92]), cloneTarget, Buffer.from([0x91]), clonePointer, Buffer.from([0xcc, 0xc1])]);
    name = 'a cyclic array beside a 0xC1 byte';
  } else if (kind === 1) {
    // o = {"__proto__": o}
    value = Buffer.concat([cloneTarget, Buffer.from([0x81]), protoKey, clonePointer]);
    name = 'an object whose "__proto__" key refers to itself';
  } else if (kind === 2) {
    value = new Packr({ useRecords: true }).pack(routeValue(rng, route, events));
    name = 'records (msgpackr\'s default Packr)';
  } else if (kind === 3) {
    value = new Packr({ useRecords: false, bundleStrings: true }).pack(routeValue(rng, route, events.map((event) => ({ ...event, event_type: `${String(event.event_type)}-${'long'.repeat(8)}` }))));
    name = 'bundled strings';
  } else if (kind === 4) {
    const shared = { path: '/shared' };
    value = new Packr({ useRecords: false, structuredClone: true }).pack(routeValue(rng, route, events.map((event) => ({ ...event, properties: { a: shared, b: shared } }))));
    name = 'structured clone with a shared object';
  } else {
    const special = rng.pick<[string, unknown]>([['a Set', new Set([1, 2])], ['an Error', new Error('boom')], ['a RegExp', /(a+)+$/], ['a Float64Array', new Float64Array(4)]]);
    value = new Packr({ useRecords: false, moreTypes: true }).pack(routeValue(rng, route, events.map((event) => ({ ...event, properties: { special: special[1] } }))));
    name = `${special[0]} in attributes`;
  }
  const body = isBulk(route) && kind < 2 ? Buffer.concat([Buffer.from([0x91]), value]) : value;
  return { category: 'msgpack-extension', name: `${name} to ${route}`, request: post(route, 'msgpack', body), expect: 'refused' };
};
