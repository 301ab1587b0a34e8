/**
 * The one shape every stage after validation works with. Ingress produces it, the ring
 * carries it (msgpack-encoded, see src/ring/envelope.ts), actors batch it and the sink
 * writes it with binary COPY.
 *
 * Times are integer microseconds since the Unix epoch (UTC) because PostgreSQL's
 * timestamptz has microsecond precision: keeping µs end to end means a retried event
 * whose ISO timestamp carries microseconds maps to exactly the same primary key.
 */
export interface ValidEvent {
  /** 1–128 characters; given by the client, derived from an idempotency key, or generated. */
  readonly eventId: string;
  /** 1–128 characters. */
  readonly eventType: string;
  /** 1–64 characters; `default` when the client sent none. */
  readonly source: string;
  /** ≤ 256 characters, or null when absent. */
  readonly actorId: string | null;
  /** When the event happened, µs since the Unix epoch. */
  readonly occurredAtUs: number;
  /**
   * The attributes object as JSON, written into the jsonb column as is: text, or the UTF-8
   * bytes of that text. `{}` when the event had none. Already checked for size, depth and
   * `\u0000` at validation. Bytes are what crosses the ring (actors always see bytes), and
   * on the ingress side they are the very bytes a JSON bulk body held, when the scanner
   * could vouch for them (src/decode/event-count-scanner.ts, AttributeSpans).
   */
  readonly attributesJson: string | Uint8Array;
}

/** The attributes JSON as text, for the rare paths that need a string (dead letters). */
export function attributesText(event: Pick<ValidEvent, 'attributesJson'>): string {
  const json = event.attributesJson;
  return typeof json === 'string' ? json : Buffer.from(json.buffer, json.byteOffset, json.byteLength).toString('utf8');
}

/** Outcome of one event after the actor has dealt with it; crosses threads as a number. */
export const EventOutcome = {
  /** Its row committed in this request's transaction. */
  committed: 1,
  /** An event with the same id was already committed earlier (or earlier in this batch). */
  duplicate: 2,
  /** PostgreSQL refused the row itself; it went to dead_letters. */
  deadLettered: 3,
  /** The write could not be done (database unavailable past retries, engine draining). */
  failed: 4,
} as const;
export type EventOutcome = (typeof EventOutcome)[keyof typeof EventOutcome];
