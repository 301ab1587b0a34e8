/**
 * What a batch is and what writing it reports: the rows an actor hands its writer, the
 * per-call state, and the helpers that turn the database's answers into per-row outcomes
 * (used by ./batch-writer.ts).
 */
import assert from 'node:assert/strict';
import { EventOutcome, type ValidEvent } from '../event';
import { RingEvent } from '../ring/envelope-reader';

export interface BatchRow {
  /** As the actor read it from its ring (copied into COPY as bytes), or as validation built it. */
  readonly event: RowEvent;
  readonly receivedAtUs: number;
}

export type RowEvent = RingEvent | ValidEvent;

export function validEventOf(event: RowEvent): ValidEvent {
  return event instanceof RingEvent ? event.toValidEvent() : event;
}

export interface WriteReport {
  /** Counts over the whole batch after this call, including rows settled by a failed earlier attempt. */
  readonly committed: number;
  readonly duplicates: number;
  readonly deadLettered: number;
  /** The slowest path this call needed. */
  readonly path: 'copy' | 'staging' | 'bisect';
  /** Transactions this call began (including failed ones and dead-letter inserts). */
  readonly transactions: number;
}

export type Path = WriteReport['path'];
export interface CallState {
  path: Path;
  transactions: number;
}

/** Which of rows[indices] the INSERT returned, i.e. inserted. */
export function insertedIndices(rows: readonly BatchRow[], indices: Uint32Array, returned: readonly { event_id: string }[]): Uint32Array {
  const inserted = new Set(returned.map((row) => row.event_id));
  const stored: number[] = [];
  for (const index of indices) {
    const eventId = (rows[index] as BatchRow).event.eventId;
    // An id holding a lone surrogate comes back from the server as U+FFFD.
    if (inserted.has(eventId) || inserted.has(Buffer.from(eventId, 'utf8').toString('utf8'))) stored.push(index);
  }
  return Uint32Array.from(stored);
}

export function settledKey(event: RowEvent): string {
  return `${event.occurredAtUs} ${event.eventId}`;
}

export function reportOf(outcomes: Uint8Array, rowCount: number, state: CallState): WriteReport {
  let committed = 0;
  let duplicates = 0;
  let deadLettered = 0;
  for (let index = 0; index < rowCount; index += 1) {
    const outcome = outcomes[index];
    if (outcome === EventOutcome.committed) committed += 1;
    else if (outcome === EventOutcome.duplicate) duplicates += 1;
    else if (outcome === EventOutcome.deadLettered) deadLettered += 1;
  }
  assert.equal(committed + duplicates + deadLettered, rowCount, 'BatchWriter: a row was left without an outcome');
  return { committed, duplicates, deadLettered, path: state.path, transactions: state.transactions };
}
