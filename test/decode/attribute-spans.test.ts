/**
 * JSON bulk bodies keep each event's attributes as the bytes the client sent, found by the
 * event-count scanner while the body streams in (src/decode/event-count-scanner.ts,
 * AttributeSpans). These tests hold that path to one rule: whatever the body and however
 * it is split into chunks, validation with the spans gives the same verdict as without
 * them, and an accepted event's stored attributes are the same JSON value as
 * re-serialising the parsed object would store.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attributesText, type ValidEvent } from '../../src/event';
import { decodeBulkBody, type DecodedBody } from '../../src/decode/decode-body';
import { EventCountScanner } from '../../src/decode/event-count-scanner';
import { validateEvent, type ValidationResult } from '../../src/validate/validate-event';
import { buildContext, receivedAtMs, testLimits } from '../support/builders';
import { Prng } from '../support/prng';

const limits = { eventsPerRequestMax: 1000, eventBytesMax: 64 * 1024 };

interface Stored {
  readonly results: ValidationResult[];
  /** Per item: the attributes JSON as stored, or null for a refused item. */
  readonly texts: (string | null)[];
  /** Per item: whether the client's own bytes were kept. */
  readonly raw: boolean[];
}

function decodeInChunks(body: Buffer, chunkSizes: () => number): Extract<DecodedBody, { ok: true }> {
  const scanner = new EventCountScanner('json');
  for (let at = 0; at < body.length; ) {
    const size = chunkSizes();
    scanner.feed(body.subarray(at, at + size));
    at += size;
  }
  const decoded = decodeBulkBody('json', body, limits, scanner.summary());
  if (!decoded.ok) assert.fail(`body refused: ${decoded.error.message}\n${body.toString('utf8')}`);
  return decoded;
}

function store(body: string, chunkSizes: () => number = () => body.length + 1, useSpans = true): Stored {
  const decoded = decodeInChunks(Buffer.from(body, 'utf8'), chunkSizes);
  const context = buildContext({ rawAttributes: useSpans ? decoded.rawAttributes : null });
  const results = decoded.items.map((item, index) => validateEvent(item, index, context));
  const events = results.map((result) => (result.ok ? result.event : null));
  return {
    results,
    texts: events.map((event) => (event === null ? null : attributesText(event))),
    raw: events.map((event) => event !== null && event.attributesJson instanceof Uint8Array),
  };
}

const event = (attributesPart: string, id = 'e1'): string => `{"event_id":"${id}","event_type":"t","timestamp":${receivedAtMs},${attributesPart}}`;

describe('attributes kept as sent (JSON bulk bodies)', () => {
  it('stores the bytes of the attributes object exactly, whitespace and number spelling included', () => {
    const attributes = '{ "price" : 1.50, "big": 12345678901234567890, "s": "\\u00e9}{" }';
    for (const body of [`{"events":[${event(`"attributes": ${attributes}`)}]}`, `[${event(`"properties":${attributes}`)}]`]) {
      const stored = store(body);
      assert.deepEqual(stored.texts, [attributes]);
      assert.deepEqual(stored.raw, [true]);
    }
  });

  it('takes the last of duplicate attributes keys, as JSON.parse does', () => {
    const stored = store(`[${event('"metadata":{"a":1}, "metadata" : {"b":2}')}, ${event('"metadata":{"a":1},"metadata":null', 'e2')}]`);
    assert.deepEqual(stored.texts, ['{"b":2}', '{}']);
    assert.deepEqual(stored.raw, [true, false]);
  });

  it('re-serialises when a top-level key of the event is escaped, since its name is unknown to a byte scan', () => {
    const stored = store(`[${event('"attributes":{"a":1},"attr\\u0069butes":{"b":2}')}]`);
    assert.deepEqual(stored.texts, ['{"b":2}']);
    assert.deepEqual(stored.raw, [false]);
  });

  it('spans the outer object when attributes hold keys named like attributes', () => {
    const inner = '{"attributes":{"properties":{"x":[1,{"metadata":2}]}}}';
    assert.deepEqual(store(`[${event(`"properties":${inner}`)}]`).texts, [inner]);
  });

  it('re-serialises when a body holds two events arrays (JSON.parse keeps the last)', () => {
    const first = event('"attributes":{"from":"first"}');
    const second = event('"attributes":{"from":"second"}');
    const stored = store(`{"events":[${first}],"events":[${second}]}`);
    assert.deepEqual(stored.texts, ['{"from":"second"}']);
    assert.deepEqual(stored.raw, [false]);
  });

  it('keeps item indexes aligned when some elements are not objects', () => {
    const stored = store(`[1, "x", ${event('"attributes":{"n":3}', 'e3')}, [], ${event('"attributes":{"n":5}', 'e5')}]`);
    assert.deepEqual(stored.texts, [null, null, '{"n":3}', null, '{"n":5}']);
    assert.deepEqual(stored.raw, [false, false, true, false, true]);
  });

  it('re-serialises attributes whose bytes exceed attributesBytesMax although their compact form fits', () => {
    const padded = `{"a":${' '.repeat(testLimits.attributesBytesMax)}1}`;
    const stored = store(`[${event(`"attributes":${padded}`)}]`);
    assert.deepEqual(stored.texts, ['{"a":1}']);
    assert.deepEqual(stored.raw, [false]);
  });

  it('judges eventBytesMax on the compact form when the bytes as sent would exceed it', () => {
    const padded = `{"a":${' '.repeat(300)}1}`;
    const body = `[${event(`"attributes":${padded}`)}]`;
    const decoded = decodeInChunks(Buffer.from(body), () => body.length);
    const limits = { ...testLimits, eventBytesMax: 200 };
    const result = validateEvent(decoded.items[0], 0, buildContext({ limits, rawAttributes: decoded.rawAttributes }));
    assert.ok(result.ok, JSON.stringify(result));
    assert.equal(result.event.attributesJson, '{"a":1}');
  });

  it('stores the same attributes for every split of the body into two chunks and for one-byte chunks', () => {
    const body = `{"events":[${event('"attributes" :{"s":"a\\"}","n":[1,{}]}')}, ${event('"attr\\u0069butes":{"x":1}', 'e2')}, ${event('"properties":{"k":"\\\\"}', 'e3')}]}`;
    const whole = store(body);
    assert.deepEqual(whole.raw, [true, false, true]);
    // A top-level key cut by a chunk boundary cannot be vouched for: that event falls back
    // to re-serialising (same value), every other event keeps its bytes.
    let keptEverywhere = 0;
    const splits = Array.from({ length: body.length - 1 }, (_, i) => i + 1);
    for (const split of splits) {
      let first = true;
      const twoChunks = store(body, () => {
        const size = first ? split : body.length;
        first = false;
        return size;
      });
      assert.deepEqual(twoChunks.texts.map((text) => JSON.parse(text as string)), whole.texts.map((text) => JSON.parse(text as string)), `split at ${split}`);
      twoChunks.raw.forEach((raw, index) => assert.ok(!raw || whole.raw[index] === true, `split at ${split}, item ${index}`));
      if (twoChunks.raw.every((raw, index) => raw === whole.raw[index])) keptEverywhere++;
    }
    assert.ok(keptEverywhere > splits.length / 2, `bytes kept for every event in ${keptEverywhere} of ${splits.length} splits`);
    const oneByte = store(body, () => 1);
    assert.deepEqual(oneByte.texts.map((text) => JSON.parse(text as string)), whole.texts.map((text) => JSON.parse(text as string)));
  });
});

/** Random JSON text for the model test, with whitespace, escapes and number spellings that JSON.parse normalises. */
class BodyWriter {
  readonly #prng: Prng;

  constructor(prng: Prng) {
    this.#prng = prng;
  }

  space(): string {
    return this.#prng.chance(0.3) ? this.#prng.pick([' ', '\n', '\t', '  ', '\r\n ']) : '';
  }

  /** `text` as a JSON string, each letter escaped as \uXXXX with probability `escapes`. */
  string(text: string, escapes = 0.08): string {
    let out = '"';
    for (const char of text) {
      const code = char.codePointAt(0) ?? 0;
      if (/[a-z]/i.test(char) && this.#prng.chance(escapes)) out += `\\u${code.toString(16).padStart(4, '0')}`;
      else out += JSON.stringify(char).slice(1, -1);
    }
    return `${out}"`;
  }

  value(depth: number): string {
    const prng = this.#prng;
    const kind = prng.int(0, depth >= 3 ? 3 : 5);
    if (kind === 0) return prng.pick(['0', '-0', '1.50', '12345678901234567890', '1e3', '-2.5E-3', '7']);
    if (kind === 1) return this.string(prng.pick(['a', '}{', '"q"', '\\', 'é', 'x,y:z', '[]', 'attributes']));
    if (kind === 2) return prng.pick(['true', 'false', 'null']);
    if (kind === 3) return this.string(`s${prng.int(0, 99)}`);
    if (kind === 4) return `[${this.space()}${Array.from({ length: prng.int(0, 3) }, () => this.value(depth + 1)).join(`${this.space()},${this.space()}`)}${this.space()}]`;
    return this.object(depth + 1);
  }

  object(depth: number): string {
    const prng = this.#prng;
    const entries = Array.from({ length: prng.int(0, 4) }, () => [this.string(prng.pick(['a', 'b', 'attributes', 'properties', 'k"q', '}', 'metadata'])), this.value(depth)] as const);
    return this.entries(entries);
  }

  entries(entries: readonly (readonly [string, string])[]): string {
    const body = entries.map(([key, value]) => `${this.space()}${key}${this.space()}:${this.space()}${value}${this.space()}`).join(',');
    return `{${body}${this.space()}}`;
  }

  event(index: number): string {
    const prng = this.#prng;
    // Escaped top-level keys are rarer than escapes elsewhere: each one sends its event
    // down the fallback path, and the kept-bytes path needs exercising too.
    const key = (name: string): string => this.string(name, 0.01);
    const entries: (readonly [string, string])[] = [
      [key('event_type'), this.string('t')],
      [key('timestamp'), String(receivedAtMs - index)],
    ];
    if (prng.chance(0.5)) entries.push([key('event_id'), this.string(`id-${index}`)]);
    for (let n = prng.pick([0, 1, 1, 1, 2, 3]); n > 0; n--) {
      const value = prng.chance(0.75) ? this.object(1) : prng.pick(['null', '1', '"x"', '[1]']);
      entries.push([key(prng.pick(['attributes', 'metadata', 'properties'])), value]);
    }
    for (let i = entries.length - 1; i > 0; i--) {
      const j = prng.int(0, i);
      [entries[i], entries[j]] = [entries[j] as readonly [string, string], entries[i] as readonly [string, string]];
    }
    return this.entries(entries);
  }

  body(): string {
    const prng = this.#prng;
    const elements = Array.from({ length: prng.int(1, 8) }, (_, index) => (prng.chance(0.9) ? this.event(index) : this.value(2)));
    const array = `[${this.space()}${elements.join(`${this.space()},${this.space()}`)}${this.space()}]`;
    if (prng.chance(0.4)) return array;
    const parts = [`${this.string('events')}:${this.space()}${array}`];
    if (prng.chance(0.3)) parts.push(`"request_id":${this.space()}"r-1"`);
    if (prng.chance(0.05)) parts.push(`"events":[${this.event(99)}]`);
    if (prng.chance(0.5)) parts.reverse();
    return `{${this.space()}${parts.join(`${this.space()},${this.space()}`)}${this.space()}}`;
  }
}

describe('attributes kept as sent: model test against re-serialising', () => {
  it('agrees with JSON.stringify of the parsed value on 3,000 random bodies split into random chunks', () => {
    const prng = new Prng(20_261_122);
    const writer = new BodyWriter(prng);
    let accepted = 0;
    let keptRaw = 0;
    for (let round = 0; round < 3000; round++) {
      const body = writer.body();
      const maxChunk = prng.pick([1, 7, 64, 100_000]);
      const withSpans = store(body, () => prng.int(1, maxChunk));
      const reference = store(body, undefined, false);
      assert.deepEqual(
        withSpans.results.map((result) => (result.ok ? true : result.error)),
        reference.results.map((result) => (result.ok ? true : result.error)),
        body,
      );
      withSpans.texts.forEach((text, index) => {
        if (text === null) return;
        accepted++;
        if (withSpans.raw[index] === true) keptRaw++;
        // -0 survives in the bytes but JSON.stringify writes 0; jsonb's numeric stores both as 0.
        const parse = (json: string): unknown => JSON.parse(json, (_key, value: unknown) => (Object.is(value, -0) ? 0 : value));
        assert.deepEqual(parse(text), parse(reference.texts[index] as string), `item ${index} of ${body}`);
        const result = withSpans.results[index] as Extract<ValidationResult, { ok: true }>;
        const event: ValidEvent = result.event;
        if (!result.idGenerated) assert.equal(event.eventId, (reference.results[index] as Extract<ValidationResult, { ok: true }>).event.eventId);
      });
    }
    // The model must exercise the kept-bytes path, not only the fallback.
    assert.ok(accepted > 3000, `accepted ${accepted}`);
    assert.ok(keptRaw > accepted / 10, `kept raw bytes for ${keptRaw} of ${accepted}`);
  });
});
