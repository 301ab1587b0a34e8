import type pg from 'pg';
import { attributesText, type ValidEvent } from '../event';

/**
 * Storing an event PostgreSQL refused. The payload is the event as UTF-8 JSON in a bytea
 * column, in this shape:
 *
 *   {"event_id", "event_type", "source", "actor_id", "occurred_at_us", "received_at_us",
 *    "attributes": <the attributes JSON as the client sent it>}
 *
 * Times stay in µs so a replay recreates exactly the same primary key. When the attributes
 * text is not even valid JSON it is kept as a string under "attributes_text" instead, so
 * nothing is lost. JSON.stringify escapes NUL and lone surrogates, so the payload itself is
 * always valid UTF-8 whatever the event held.
 */
export function deadLetterPayload(event: ValidEvent, receivedAtUs: number): Buffer {
  const head = JSON.stringify({
    event_id: event.eventId,
    event_type: event.eventType,
    source: event.source,
    actor_id: event.actorId,
    occurred_at_us: event.occurredAtUs,
    received_at_us: receivedAtUs,
  });
  const text = attributesText(event);
  const attributes = isJsonText(text) ? `"attributes":${text}` : `"attributes_text":${JSON.stringify(text)}`;
  return Buffer.from(`${head.slice(0, -1)},${attributes}}`, 'utf8');
}

function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

export interface DeadLetterReason {
  /** SQLSTATE of the refusal, e.g. 22P02. */
  readonly code: string;
  /** PostgreSQL's message, with its detail when it gave one. */
  readonly message: string;
}

/** The reason to store for a database error; never throws, whatever `error` is. */
export function deadLetterReasonOf(error: unknown): DeadLetterReason {
  const fields = (typeof error === 'object' && error !== null ? error : {}) as {
    code?: unknown;
    message?: unknown;
    detail?: unknown;
  };
  const code = typeof fields.code === 'string' ? fields.code : 'XX000';
  const message = typeof fields.message === 'string' ? fields.message : String(error);
  const detail = typeof fields.detail === 'string' && fields.detail !== '' ? ` (${fields.detail})` : '';
  return { code, message: `${message}${detail}` };
}

/**
 * Inserts one dead letter as its own statement (its own transaction). The event_id column
 * gets NULL when the id itself holds a NUL, the one character text cannot store; the exact
 * id is still in the payload.
 */
export async function insertDeadLetter(
  client: pg.ClientBase,
  event: ValidEvent,
  receivedAtUs: number,
  reason: DeadLetterReason,
): Promise<void> {
  const eventId = event.eventId.includes('\u0000') ? null : event.eventId;
  await client.query(
    'INSERT INTO dead_letters (reason_code, reason, event_id, payload) VALUES ($1, $2, $3, $4)',
    [reason.code, reason.message.replaceAll('\u0000', '\uFFFD'), eventId, deadLetterPayload(event, receivedAtUs)],
  );
}
