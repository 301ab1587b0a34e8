/**
 * Hostile bodies, part one: what a broken or malicious client writes inside an otherwise
 * ordinary request — cut-off bodies, text that is not JSON, wrong labels, nesting bombs,
 * oversized strings, invalid UTF-8 and prototype-pollution keys.
 */
import { pack } from 'msgpackr';
import {
  bulkRoutes, encode, eventJsonWithAttributes, formatFor, isBulk, jsonForRoute, nestedJson, post, routes, routeValue, validEvent, validEvents,
  type CaseGenerator, type Format, type Route,
} from './fuzz-cases';

/** A valid body cut short anywhere (including to nothing). */
export const truncated: CaseGenerator = (rng, tag) => {
  const route = rng.pick(routes);
  const format = rng.pick<Format>(['json', 'msgpack']);
  const whole = encode(format, routeValue(rng, route, validEvents(tag, rng.int(1, 10))));
  const cut = rng.int(0, whole.length - 1);
  return { category: 'truncated', name: `${format} ${route} cut to ${cut} of ${whole.length} bytes`, request: post(route, format, whole.subarray(0, cut)), expect: 'refused' };
};

const notJsonTexts: readonly string[] = [
  'null', 'true', '42', '-1e999', '"just a string"', '<event><type>x</type></event>', 'event_type=click&timestamp=1',
  '{"events": "all of them"}', '{}', '[]', '{"a":1}{"b":2}', '{"event_type": "x", // comment\n}', "{'event_type': 'x'}",
  '{"event_type":"x",}', '\ufeff\ufeff{}', 'NaN', '\u0000', '{"events":[', ']]]]', ' ', '\t\r\n', '[{"event_type":"x"}',
  '{"events":[1,2,3]}', '[[],[],{}]', '{"events":null}', '{"request_id":{"a":1},"events":[]}',
];

/** Text that is not an event: random printable text or bytes, and a list of near misses. */
export const notJson: CaseGenerator = (rng) => {
  const route = rng.pick(routes);
  const roll = rng.int(0, 3);
  const body = roll === 0 ? Buffer.from(rng.text(rng.int(1, 2000)), 'latin1') : roll === 1 ? rng.bytes(rng.int(1, 2000)) : Buffer.from(rng.pick(notJsonTexts), 'utf8');
  const contentType = rng.pick(isBulk(route) ? [null, 'application/json', 'application/x-ndjson', 'text/plain', 'application/msgpack'] : [null, 'application/json', 'text/plain', 'application/msgpack']);
  const name = `${body.length} bytes (${roll === 0 ? 'text' : roll === 1 ? 'random bytes' : JSON.stringify(body.toString('utf8').slice(0, 40))}) as ${contentType ?? 'no content type'} to ${route}`;
  return { category: 'not-json', name, request: post(route, 'json', body, { contentType }), expect: 'refused' };
};

/** A valid body under the wrong Content-Type (NDJSON always with two or more lines). */
export const mislabelled: CaseGenerator = (rng, tag) => {
  const route = rng.pick(routes);
  const format = formatFor(rng, route);
  const events = validEvents(tag, rng.int(2, 6));
  const body = encode(format, format === 'ndjson' ? events : routeValue(rng, route, events));
  const others = (['json', 'msgpack', 'ndjson'] as const).filter((other) => other !== format && (other !== 'ndjson' || isBulk(route)));
  const label = rng.pick(others);
  return { category: 'mislabelled', name: `${format} body labelled ${label} to ${route}`, request: post(route, label, body), expect: 'refused' };
};

/**
 * Attributes nested past attributesDepthMax: a little past it, a lot past it, and 100,000
 * levels and more (JSON objects and arrays, msgpack maps and arrays). Every event of the
 * body is a bomb, so the answer must be a 4xx.
 */
export const nestingBomb: CaseGenerator = (rng, tag, limits) => {
  const extreme = rng.chance(0.3);
  const depth = extreme ? rng.int(100_000, 150_000) : rng.pick([limits.attributesDepthMax + 1, rng.int(limits.attributesDepthMax + 2, 600), rng.int(600, 20_000)]);
  const route = extreme ? rng.pick(bulkRoutes) : rng.pick(routes);
  const arrays = rng.chance(0.5);
  const format = rng.pick<Format>(['json', 'msgpack', 'ndjson']);
  const name = `${depth} levels of ${arrays ? 'arrays' : 'objects'} in attributes, ${format}, to ${route}`;
  if (format === 'msgpack') return { category: 'nesting', name, request: post(route, 'msgpack', msgpackNested(rng, tag, route, depth, arrays)), expect: 'refused' };
  const attributes = `{"deep":${nestedJson(depth, arrays)}}`;
  const count = extreme ? 1 : rng.int(1, 3);
  const texts = Array.from({ length: count }, (_, index) => eventJsonWithAttributes(tag, index, attributes));
  if (format === 'ndjson' && isBulk(route)) return { category: 'nesting', name, request: post(route, 'ndjson', Buffer.from(texts.join('\n'))), expect: 'refused' };
  return { category: 'nesting', name, request: post(route, 'json', Buffer.from(jsonForRoute(rng, route, texts))), expect: 'refused' };
};

/** A msgpack event whose attributes nest `depth` levels: header bytes repeated, then a leaf. */
function msgpackNested(rng: { chance(p: number): boolean }, tag: string, route: Route, depth: number, arrays: boolean): Buffer {
  const { properties: _replaced, ...event } = validEvent(tag, 0);
  const fields = pack(event);
  // The event map gains one key: bump its fixmap count, then append "attributes": <bomb>.
  fields[0] = (fields[0] as number) + 1;
  const level = arrays ? Buffer.from([0x91]) : Buffer.from([0x81, 0xa1, 0x6b]);
  const bomb = Buffer.concat([fields, pack('attributes'), Buffer.alloc(level.length * depth).fill(level), Buffer.from([0x01])]);
  if (!isBulk(route)) return bomb;
  return rng.chance(0.5) ? Buffer.concat([Buffer.from([0x91]), bomb]) : Buffer.concat([Buffer.from([0x81]), pack('events'), Buffer.from([0x91]), bomb]);
}

const textLimits: ReadonlyArray<readonly [string, number]> = [['event_id', 128], ['event_type', 128], ['source', 64], ['actor_id', 256], ['user_id', 256]];

/**
 * One string near or past a limit: a text field past its length (ASCII, accents or emoji,
 * counted in code points), attributes past attributesBytesMax, one key of 40 KB, a body
 * just under or just over bodyBytesMax.
 */
export const hugeString: CaseGenerator = (rng, tag, limits) => {
  const route = rng.pick(routes);
  const format = formatFor(rng, route, ['json', 'msgpack']);
  const event = validEvent(tag, 0);
  const kind = rng.int(0, 3);
  let name: string;
  if (kind === 0) {
    const [field, max] = rng.pick(textLimits);
    const length = max + rng.pick([1, rng.int(2, 1000), rng.int(1000, 60_000)]);
    const unit = rng.pick(['x', 'é', '😀']);
    if (field === 'actor_id') delete event.user_id;
    event[field] = unit.repeat(length);
    name = `${field} of ${length} × ${JSON.stringify(unit)}`;
  } else if (kind === 1) {
    const length = limits.attributesBytesMax + rng.int(1, 2000);
    event.properties = { blob: 'a'.repeat(length) };
    name = `attributes string of ${length} characters`;
  } else if (kind === 2) {
    event.properties = { ['k'.repeat(40_000)]: 1 };
    name = 'attributes key of 40,000 characters';
  } else {
    const target = limits.bodyBytesMax + rng.int(-200, 5000);
    const padding = Math.max(0, target - encode(format, routeValue(rng, route, [event])).length - 16);
    event.properties = { blob: 'p'.repeat(padding) };
    name = `attributes string filling the body to about ${target} bytes`;
  }
  return { category: 'huge-string', name: `${name}, ${format}, to ${route}`, request: post(route, format, encode(format, routeValue(rng, route, [event]))), expect: 'refused' };
};

/** Byte sequences that are not UTF-8: stray continuation bytes, overlong forms, surrogates, past U+10FFFF, cut short. */
const notUtf8: ReadonlyArray<readonly number[]> = [
  [0x80], [0xbf], [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80],
  [0xf5, 0x80, 0x80, 0x80], [0xff], [0xfe, 0xff], [0xc3], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xf8, 0x88, 0x80, 0x80, 0x80],
];
const holeText = 'UTF8HOLE';

/** Invalid UTF-8 inside a string (a value or a key) of a JSON, NDJSON (every line) or msgpack body. */
export const invalidUtf8: CaseGenerator = (rng, tag) => {
  const route = rng.pick(routes);
  const format = formatFor(rng, route);
  const sequence = rng.pick(notUtf8);
  const place = rng.int(0, 3);
  const events = validEvents(tag, format === 'ndjson' ? rng.int(1, 4) : 1).map((event) => {
    if (place === 0) event.event_type = holeText;
    else if (place === 1) event.properties = { text: `a${holeText}b` };
    else if (place === 2) event.properties = { [holeText]: 1 };
    else event.event_id = `${String(event.event_id)}${holeText}`;
    return event;
  });
  const body = encode(format, format === 'ndjson' ? events : routeValue(rng, route, events));
  // msgpack strings keep their declared length: the hole is padded to its own size.
  const replacement = Buffer.from(format === 'msgpack' ? [...sequence, ...Buffer.from('a'.repeat(holeText.length - sequence.length))] : sequence);
  const name = `${Buffer.from(sequence).toString('hex')} in ${['event_type', 'an attribute value', 'an attribute key', 'event_id'][place]}, ${format}, to ${route}`;
  return { category: 'invalid-utf8', name, request: post(route, format, replaceAll(body, Buffer.from(holeText), replacement)), expect: 'refused' };
};

function replaceAll(bytes: Buffer, hole: Buffer, replacement: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  for (let at = bytes.indexOf(hole); at !== -1; at = bytes.indexOf(hole, start)) {
    parts.push(bytes.subarray(start, at), replacement);
    start = at + hole.length;
  }
  parts.push(bytes.subarray(start));
  return Buffer.concat(parts);
}

/** Marks a prototype-pollution payload leaves on Object.prototype if it ever lands there. */
export const pollutionMarkers = ['fuzzPolluted', 'isAdmin'] as const;
const pollution = '{"fuzzPolluted":"yes","isAdmin":true,"toString":1}';

/**
 * `__proto__`, `constructor` and `prototype` keys: at the top of an event (unknown field),
 * in the bulk wrapper (bad shape), nested in attributes (`__proto__` is refused; a
 * `constructor.prototype` path is ordinary data and may be stored), in every format.
 */
export const prototypeKeys: CaseGenerator = (rng, tag) => {
  const route = rng.pick(routes);
  const format = formatFor(rng, route);
  const key = rng.pick(['__proto__', 'constructor', 'prototype']);
  const where = rng.pick(isBulk(route) && format !== 'ndjson' ? ['event', 'attributes', 'wrapper'] : ['event', 'attributes']);
  const depth = rng.int(1, 4);
  const payload = key === '__proto__' ? pollution : key === 'constructor' ? `{"prototype":${pollution}}` : pollution;
  const eventText = where === 'event'
    ? `{"${key}":${payload},${JSON.stringify(validEvent(tag, 0)).slice(1)}`
    : eventJsonWithAttributes(tag, 0, `{"path":"/x",${'"n":{'.repeat(depth - 1)}"${key}":${payload}${'}'.repeat(depth - 1)}}`);
  const text = where === 'wrapper' ? `{"events":[${eventText}],"${key}":${payload}}` : format === 'ndjson' ? eventText : jsonForRoute(rng, route, [eventText]);
  // JSON.parse keeps "__proto__" as an own key, so packing the parsed value writes it to msgpack too.
  const body = format === 'msgpack' ? pack(JSON.parse(text)) : Buffer.from(text, 'utf8');
  const storable = where === 'attributes' && key !== '__proto__';
  return { category: 'prototype-keys', name: `"${key}" in the ${where} (depth ${depth}), ${format}, to ${route}`, request: post(route, format, body), expect: storable ? 'refusedOrStored' : 'refused' };
};
