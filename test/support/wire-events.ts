/**
 * Events as a client puts them on the wire (snake_case, ISO timestamps), for tests that
 * go through HTTP. Deterministic per id so a resent request is byte-identical.
 */
export interface WireEvent {
  event_id: string;
  event_type: string;
  source?: string;
  user_id?: string;
  timestamp: string | number;
  properties?: Record<string, unknown>;
}

/** A fixed recent instant, so every copy of an event carries the same timestamp. */
const baseMs = Date.now() - 60_000;

export function wireEvent(eventId: string, position = 0): WireEvent {
  return {
    event_id: eventId,
    event_type: position % 3 === 0 ? 'page_view' : position % 3 === 1 ? 'click' : 'purchase',
    source: 'web',
    user_id: `user-${position % 97}`,
    timestamp: new Date(baseMs + position).toISOString(),
    properties: { path: `/p/${position}`, amount: position * 1.5, tags: ['a', 'b'] },
  };
}

export function wireEvents(count: number, prefix: string): WireEvent[] {
  return Array.from({ length: count }, (_, i) => wireEvent(`${prefix}-${i}`, i));
}
