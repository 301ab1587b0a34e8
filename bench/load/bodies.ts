/**
 * Request bodies for the load generator, built once per client as a template and then
 * stamped per request, so that building bodies never becomes the bottleneck of a client
 * that shares two cores with the engine and PostgreSQL.
 *
 * Every event id is `<stem><sequence>-<index>`: the stem names the run and the client,
 * the sequence (8 base-36 digits) the request, the index (4 decimal digits) the event in
 * it. Because the sequence has a fixed width, the body's bytes (JSON, NDJSON or msgpack)
 * have the same layout for every request: the template is encoded once with sequence
 * 00000000, the offsets of every sequence are found, and a request is one copy of the
 * template plus 8 bytes written per event. Each id is unique within a run, so the run's
 * rows can be counted exactly afterwards.
 */
import { pack } from 'msgpackr';
import { segmentBatchRoute, streamRoute, type Format, type Route } from './scenario';

export const sequenceDigits = 8;
const sequenceBase = 36;
const sequenceMax = sequenceBase ** sequenceDigits - 1;
const indexDigits = 4;

export interface BodyTemplate {
  readonly contentType: string;
  readonly bytes: Buffer;
  /** Byte offset of each event's 8-digit sequence inside `bytes`. */
  readonly sequenceOffsets: readonly number[];
  /** Byte offset of each event's 24-character ISO timestamp inside `bytes`. */
  readonly timestampOffsets: readonly number[];
  readonly eventCount: number;
}

const contentTypes: Record<Format, string> = {
  json: 'application/json',
  ndjson: 'application/x-ndjson',
  msgpack: 'application/msgpack',
};

/**
 * One event as a client would send it: about 250 bytes of JSON, like the events the
 * design brief sizes the engine for. The load client restamps the timestamp with the send
 * time (stampBody), as real clients send events that just happened: a timestamp fixed for
 * the whole run put every row of it on a hundred instants, a pattern no real stream has
 * and one that made every index on occurred_at dearer than it is (docs/decisions/0023-read-indexes.md).
 */
export function benchEvent(eventId: string, index: number, timestampMs: number): Record<string, unknown> {
  return {
    event_id: eventId,
    event_type: index % 3 === 0 ? 'page_view' : index % 3 === 1 ? 'click' : 'purchase',
    source: 'bench',
    user_id: `user-${index % 997}`,
    timestamp: new Date(timestampMs - index).toISOString(),
    properties: { path: `/products/${index % 50}`, referrer: 'https://www.example.com/landing', plan: 'team', amount: (index % 100) * 1.25, session: `s-${index % 31}` },
  };
}

export function eventIdOf(stem: string, sequence: number, index: number): string {
  return `${stem}${sequenceText(sequence)}-${String(index).padStart(indexDigits, '0')}`;
}

function sequenceText(sequence: number): string {
  if (!Number.isInteger(sequence) || sequence < 0 || sequence > sequenceMax) throw new RangeError(`request sequence ${sequence} out of range`);
  return sequence.toString(sequenceBase).padStart(sequenceDigits, '0');
}

/**
 * The same event as a Segment-spec SDK's track call sends it (the shape
 * @segment/analytics-node builds: messageId first, the call's fields, a library context),
 * the id ahead of the timestamp as stamping needs.
 */
function segmentMessageOf(event: Record<string, unknown>): Record<string, unknown> {
  return {
    messageId: event.event_id, type: 'track', event: event.event_type, userId: event.user_id, timestamp: event.timestamp,
    properties: event.properties, context: { library: { name: '@segment/analytics-node', version: '2.1.0' } }, integrations: {}, _metadata: { jsRuntime: 'node' },
  };
}

/** A stream batch's name: it carries the request's sequence, so stamping renames it too. */
export function streamBatchIdOf(stem: string, sequence: number): string {
  return `${stem}${sequenceText(sequence)}-b`;
}

function encodeBody(route: Route, format: Format, events: Record<string, unknown>[], stem: string): Buffer {
  if (route === streamRoute) {
    // batch_id first, so its sequence is the body's first (see buildBodyTemplate).
    const batch_id = streamBatchIdOf(stem, 0);
    if (format === 'ndjson') return Buffer.from(`${JSON.stringify({ batch_id })}\n${events.map((event) => JSON.stringify(event)).join('\n')}\n`);
    return format === 'msgpack' ? pack({ batch_id, events }) : Buffer.from(JSON.stringify({ batch_id, events }));
  }
  if (route === segmentBatchRoute) return Buffer.from(JSON.stringify({ batch: events.map(segmentMessageOf), sentAt: events[0]?.timestamp }));
  const single = route === '/v1/events' || route === '/webhook/events';
  if (single) return format === 'msgpack' ? pack(events[0]) : Buffer.from(JSON.stringify(events[0]));
  if (format === 'ndjson') return Buffer.from(`${events.map((event) => JSON.stringify(event)).join('\n')}\n`);
  return format === 'msgpack' ? pack({ events }) : Buffer.from(JSON.stringify({ events }));
}

/** `stem` must be [a-z0-9-] only, so its bytes are the same in every encoding. */
export function buildBodyTemplate(route: Route, format: Format, eventCount: number, stem: string, timestampMs = Date.now()): BodyTemplate {
  if (!/^[a-z0-9-]+$/.test(stem)) throw new Error(`id stem "${stem}" must be [a-z0-9-]`);
  if (eventCount > 10 ** indexDigits - 1) throw new RangeError(`at most ${10 ** indexDigits - 1} events per request`);
  const events = Array.from({ length: eventCount }, (_, index) => benchEvent(eventIdOf(stem, 0, index), index, timestampMs));
  const bytes = encodeBody(route, format, events, stem);
  const marker = Buffer.from(`${stem}${sequenceText(0)}-`);
  const sequenceOffsets: number[] = [];
  for (let at = bytes.indexOf(marker); at !== -1; at = bytes.indexOf(marker, at + marker.length)) {
    sequenceOffsets.push(at + stem.length);
  }
  // A stream batch's own id holds the sequence too, ahead of its events'.
  const named = route === streamRoute ? 1 : 0;
  if (sequenceOffsets.length !== eventCount + named) {
    throw new Error(`body template: found ${sequenceOffsets.length} ids, expected ${eventCount + named}`);
  }
  // Each event's timestamp follows its id (field order above), the same text in every encoding.
  const timestampOffsets = sequenceOffsets.slice(named).map((offset, index) => bytes.indexOf(String(events[index]?.timestamp), offset));
  if (timestampOffsets.some((offset) => offset === -1)) throw new Error('body template: an event timestamp was not found after its id');
  return { contentType: contentTypes[format], bytes, sequenceOffsets, timestampOffsets, eventCount };
}

/**
 * A fresh body for request `sequence`: the template with that sequence in every id and,
 * when `sentAtMs` is given, that instant as every event's timestamp (one ISO text per
 * request: the events of one request happened together).
 */
export function stampBody(template: BodyTemplate, sequence: number, sentAtMs: number | null = null): Buffer {
  const body = Buffer.allocUnsafe(template.bytes.length);
  template.bytes.copy(body);
  const digits = sequenceText(sequence);
  for (const offset of template.sequenceOffsets) body.write(digits, offset, 'latin1');
  if (sentAtMs !== null) {
    const stamp = new Date(sentAtMs).toISOString();
    for (const offset of template.timestampOffsets) body.write(stamp, offset, 'latin1');
  }
  return body;
}
