/**
 * Builders for ingress fixtures: a typical valid event, the validation context around it,
 * and bodies in each format. Tests state only what differs from the typical case.
 */
import { pack } from 'msgpackr';
import type { ValidationContext } from '../../src/validate/validate-event';

/** A fixed "now" for validation: 2026-11-20T10:00:00.000Z. */
export const receivedAtMs = Date.UTC(2026, 10, 20, 10, 0, 0);

/** Limits close to the defaults in src/config/load-config.ts, written out so tests read alone. */
export const testLimits: ValidationContext['limits'] = {
  eventBytesMax: 64 * 1024,
  attributesBytesMax: 32 * 1024,
  attributesDepthMax: 32,
  timestampPastMs: 30 * 24 * 3600 * 1000,
  timestampFutureMs: 3600 * 1000,
};

export function buildContext(overrides: Partial<ValidationContext> = {}): ValidationContext {
  return { receivedAtMs, idempotencyKey: null, limits: testLimits, ...overrides };
}

/**
 * A valid event of about 250 bytes as JSON. Each override replaces that field; an
 * override whose value is `undefined` removes the field, so `{ event_id: undefined }`
 * builds an event without an id.
 */
export function buildEvent(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const event: Record<string, unknown> = {
    event_id: 'evt_01HZX3K9Q2W8',
    event_type: 'page_view',
    source: 'web',
    actor_id: 'user_4821',
    timestamp: '2026-11-20T09:59:58.123456Z',
    attributes: { path: '/pricing', referrer: 'https://www.google.com/', plan: 'team', seats: 12, trial: true, utm: { campaign: 'autumn' } },
  };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete event[key];
    else event[key] = value;
  }
  return event;
}

/** `count` distinct valid events (ids `evt-0`, `evt-1`…). */
export function buildEvents(count: number, overrides: Record<string, unknown> = {}): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, index) => buildEvent({ event_id: `evt-${index}`, ...overrides }));
}

export function jsonBody(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

export function ndjsonBody(lines: readonly unknown[], newline = '\n'): Buffer {
  return Buffer.from(lines.map((line) => (typeof line === 'string' ? line : JSON.stringify(line))).join(newline), 'utf8');
}

/** Standard msgpack (maps, no records extension), as any client library writes it. */
export function msgpackBody(value: unknown): Buffer {
  return pack(value);
}

/** Splits bytes into chunks of `size` (the last may be shorter), as a socket delivers them. */
export function chunksOf(bytes: Uint8Array, size: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let start = 0; start < bytes.length; start += size) chunks.push(bytes.subarray(start, start + size));
  return chunks;
}
