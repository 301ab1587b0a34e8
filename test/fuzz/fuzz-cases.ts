/**
 * What every hostile-body generator shares: the case shape, the engine limits the
 * generators aim at, valid events and bodies to start from, and request builders.
 */
import { pack } from 'msgpackr';
import { wireEvent } from '../support/wire-events';
import type { Prng } from '../support/prng';
import type { Framing, RawRequest } from './raw-http';
import type { Config } from '../../src/config/config';

export interface HostileCase {
  readonly category: string;
  /** What was done, in words, for failure messages. */
  readonly name: string;
  readonly request: RawRequest;
  /**
   * `refused`: the answer must be a 4xx. `refusedOrStored`: a 2xx is acceptable too (a
   * byte flip that left a valid body, an attribute named "constructor"); the suite then
   * checks the database holds exactly what the answers accepted.
   */
  readonly expect: 'refused' | 'refusedOrStored';
}

/** The limits the fuzz engine runs with; generators aim just past them. */
export type FuzzLimits = Pick<Config, 'bodyBytesMax' | 'bodyDecodedBytesMax' | 'eventsPerRequestMax' | 'eventBytesMax' | 'attributesBytesMax' | 'attributesDepthMax'>;

/** Builds one case from the generator's PRNG and a tag unique to the case (used in event ids). */
export type CaseGenerator = (rng: Prng, tag: string, limits: FuzzLimits) => HostileCase;

export type Format = 'json' | 'msgpack' | 'ndjson';
export type Route = '/v1/events' | '/v1/events/bulk' | '/webhook/events' | '/webhook/batch';

export const routes: readonly Route[] = ['/v1/events', '/v1/events/bulk', '/webhook/events', '/webhook/batch'];
export const bulkRoutes: readonly Route[] = ['/v1/events/bulk', '/webhook/batch'];

export function isBulk(route: Route): boolean {
  return route === '/v1/events/bulk' || route === '/webhook/batch';
}

export const mediaTypes: Record<Format, string> = {
  json: 'application/json',
  msgpack: 'application/msgpack',
  ndjson: 'application/x-ndjson',
};

/** A valid event as a client sends it, id `${tag}-${index}`. */
export function validEvent(tag: string, index: number): Record<string, unknown> {
  return { ...wireEvent(`${tag}-${index}`, index) };
}

export function validEvents(tag: string, count: number): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, index) => validEvent(tag, index));
}

/**
 * The value a route takes: one event for the single routes; for the bulk routes
 * `{"events": [...]}` or a bare array, picked at random.
 */
export function routeValue(rng: Prng, route: Route, events: readonly Record<string, unknown>[]): unknown {
  if (!isBulk(route)) return events[0];
  return rng.chance(0.5) ? { events } : events;
}

/** Encodes a route value; NDJSON writes one line per event (a lone event is one line). */
export function encode(format: Format, value: unknown): Buffer {
  if (format === 'msgpack') return pack(value);
  if (format === 'json') return Buffer.from(JSON.stringify(value), 'utf8');
  const events = Array.isArray(value) ? value : isEventsWrapper(value) ? value.events : [value];
  return Buffer.from(events.map((event) => JSON.stringify(event)).join('\n') + '\n', 'utf8');
}

function isEventsWrapper(value: unknown): value is { events: unknown[] } {
  return typeof value === 'object' && value !== null && Array.isArray((value as { events?: unknown }).events);
}

/** A format the route takes: NDJSON only on the bulk routes. */
export function formatFor(rng: Prng, route: Route, formats: readonly Format[] = ['json', 'msgpack', 'ndjson']): Format {
  const allowed = isBulk(route) ? formats : formats.filter((format) => format !== 'ndjson');
  return rng.pick(allowed.length > 0 ? allowed : ['json']);
}

export interface PostOptions {
  readonly contentType?: string | null;
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  readonly framing?: Framing;
  readonly chunkBytes?: number;
}

/** A POST with the format's media type (or the one given; null sends none). */
export function post(route: Route, format: Format, body: Uint8Array, options: PostOptions = {}): RawRequest {
  const contentType = options.contentType === undefined ? mediaTypes[format] : options.contentType;
  const headers: Array<readonly [string, string]> = contentType === null ? [] : [['Content-Type', contentType]];
  headers.push(...(options.headers ?? []));
  return { path: route, headers, body, framing: options.framing ?? 'length', ...(options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes }) };
}

/** Nested objects `{"k":{"k":…}}` (or arrays) `depth` levels deep around `leaf`, as JSON text. */
export function nestedJson(depth: number, arrays: boolean, leaf = '1'): string {
  return arrays ? '['.repeat(depth) + leaf + ']'.repeat(depth) : '{"k":'.repeat(depth) + leaf + '}'.repeat(depth);
}

/** The JSON text of a valid event whose attributes are `attributesJson`, verbatim. */
export function eventJsonWithAttributes(tag: string, index: number, attributesJson: string): string {
  const { properties: _replaced, ...event } = validEvent(tag, index);
  const fields = JSON.stringify(event);
  return `${fields.slice(0, -1)},"attributes":${attributesJson}}`;
}

/** Wraps event JSON texts for a route: one event, or a bulk body of them. */
export function jsonForRoute(rng: Prng, route: Route, eventTexts: readonly string[]): string {
  if (!isBulk(route)) return eventTexts[0] ?? '{}';
  const list = `[${eventTexts.join(',')}]`;
  return rng.chance(0.5) ? `{"events":${list}}` : list;
}
