/**
 * Ingress per event: body decode (src/decode/decode-body.ts) plus validation
 * (src/validate/validate-event.ts) of a 100-event bulk body in each format, and a single
 * event. JSON.parse alone is the floor any JSON path pays; "pre-counted" skips the event
 * pre-count that the streaming reader already did for uncompressed bodies (and uses that
 * scan's attribute spans, as the server does); "re-serialised attributes" validates the
 * same body without the spans, i.e. with JSON.stringify of every event's attributes.
 * "attributes objects emptied" parses the body with every attributes object replaced by
 * `{}`: the share of JSON.parse that the attributes take.
 */
import { pack } from 'msgpackr';
import { defaultConfig } from '../../src/config/load-config';
import { decodeBulkBody, decodeSingleBody } from '../../src/decode/decode-body';
import type { BodyFormat } from '../../src/decode/body-format';
import type { BodyScan } from '../../src/decode/body-scan';
import { EventCountScanner, scanBody } from '../../src/decode/event-count-scanner';
import { validateEvent } from '../../src/validate/validate-event';
import { consume, validationContext, wireEvents, type MicroSuite, type MicroTask } from './micro-suite';

const eventsPerBody = 100;

export const suite: MicroSuite = {
  name: 'decode-validate',
  description: 'body decode + per-event validation, 100-event bulk bodies (~250-byte events) and one single event',
  tasks(): MicroTask[] {
    const config = defaultConfig();
    const context = validationContext();
    const events = wireEvents(eventsPerBody);
    const bodies: Record<BodyFormat, Buffer> = {
      json: Buffer.from(JSON.stringify({ events })),
      msgpack: pack({ events }),
      ndjson: Buffer.from(`${events.map((event) => JSON.stringify(event)).join('\n')}\n`),
    };
    const single = Buffer.from(JSON.stringify(events[0]));
    // The scan the server runs while the body streams in, done once here (not timed).
    const streamedScan = (format: BodyFormat): BodyScan => {
      const scanner = new EventCountScanner(format);
      scanner.feed(bodies[format]);
      return scanner.summary();
    };
    const scans = { json: streamedScan('json'), msgpack: streamedScan('msgpack'), ndjson: streamedScan('ndjson') };
    // Not counted while streaming: scanned whole as the server does a gunzipped body (timed).
    const scanOf = (format: BodyFormat, counted: boolean): BodyScan => (counted ? scans[format] : scanBody(format, bodies[format]));
    const decodeAndValidate = (format: BodyFormat, counted: boolean, useSpans = true) => (): unknown => {
      const decoded = decodeBulkBody(format, bodies[format], config, scanOf(format, counted));
      if (!decoded.ok) throw new Error(decoded.error.message);
      const withRaw = { ...context, rawAttributes: useSpans ? decoded.rawAttributes : null };
      let valid = 0;
      for (let index = 0; index < decoded.items.length; index++) if (validateEvent(decoded.items[index], index, withRaw).ok) valid++;
      if (valid !== eventsPerBody) throw new Error(`only ${valid} valid events`);
      return valid;
    };
    const decodeOnly = (format: BodyFormat, counted: boolean) => (): unknown => consume(decodeBulkBody(format, bodies[format], config, scanOf(format, counted)));
    const skeleton = JSON.stringify({ events: events.map((event) => ({ ...event, properties: {} })) });
    const task = (name: string, fn: () => unknown, unitsPerCall = eventsPerBody): MicroTask => ({ name, unitsPerCall, unit: 'event', fn });
    return [
      task('json: JSON.parse only (floor)', () => consume(JSON.parse(bodies.json.toString('utf8')))),
      // How much of that floor the attributes are: the same body with every attributes
      // object emptied (what parsing would cost if attributes were checked on their bytes).
      task('json: JSON.parse only, attributes objects emptied (what they cost)', () => consume(JSON.parse(skeleton))),
      task('json: decode (with pre-count)', decodeOnly('json', false)),
      task('json: decode (pre-counted while streaming)', decodeOnly('json', true)),
      task('json: decode + validate (pre-counted)', decodeAndValidate('json', true)),
      task('json: decode + validate (pre-counted, re-serialised attributes)', decodeAndValidate('json', true, false)),
      task('msgpack: decode', decodeOnly('msgpack', true)),
      task('msgpack: decode + validate', decodeAndValidate('msgpack', true)),
      task('ndjson: decode', decodeOnly('ndjson', true)),
      task('ndjson: decode + validate', decodeAndValidate('ndjson', true)),
      task('single json event: decode + validate', () => {
        const decoded = decodeSingleBody('json', single, config);
        if (!decoded.ok) throw new Error(decoded.error.message);
        return consume(validateEvent(decoded.item, 0, context));
      }, 1),
    ];
  },
};
