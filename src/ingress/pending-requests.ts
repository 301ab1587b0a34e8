/**
 * Requests waiting for their events' outcomes (durable mode), keyed by a ticket number
 * that travels with each event through the ring and comes back in the actor's ack.
 *
 * Tickets increase monotonically (wrapping at 2^32). A request that timed out is removed;
 * acks arriving for it later find no entry and are ignored, which is safe because the
 * client was told 503 and will retry, and dedupe makes the retry harmless.
 */
import { EventOutcome } from '../event';
import type { AckMessage } from '../actors/messages';

export interface EventFailure {
  readonly index: number;
  readonly outcome: EventOutcome;
}

export class PendingRequest {
  readonly ticket: number;
  readonly expected: number;
  committed = 0;
  duplicates = 0;
  readonly failures: EventFailure[] = [];
  readonly #onSettled: (request: PendingRequest) => void;

  constructor(ticket: number, expected: number, onSettled: (request: PendingRequest) => void) {
    this.ticket = ticket;
    this.expected = expected;
    this.#onSettled = onSettled;
  }

  get settledCount(): number {
    return this.committed + this.duplicates + this.failures.length;
  }

  /** Returns true once every expected event has an outcome. */
  record(index: number, outcome: EventOutcome): boolean {
    if (outcome === EventOutcome.committed) this.committed++;
    else if (outcome === EventOutcome.duplicate) this.duplicates++;
    else this.failures.push({ index, outcome });
    return this.settledCount === this.expected;
  }

  settle(): void {
    this.#onSettled(this);
  }
}

export class PendingRequests {
  readonly #byTicket = new Map<number, PendingRequest>();
  #nextTicket = 1;
  /** Events handed to the rings and not yet acknowledged by an actor (both ack modes). */
  #eventsOutstanding = 0;

  /** A ticket for a request whose answer does not wait (async mode). */
  issueTicket(): number {
    const ticket = this.#nextTicket;
    this.#nextTicket = (this.#nextTicket + 1) >>> 0 || 1;
    return ticket;
  }

  register(expected: number, onSettled: (request: PendingRequest) => void): PendingRequest {
    const request = new PendingRequest(this.issueTicket(), expected, onSettled);
    this.#byTicket.set(request.ticket, request);
    return request;
  }

  /** Called once the request's events are in the rings. */
  countEnqueued(events: number): void {
    this.#eventsOutstanding += events;
  }

  forget(ticket: number): void {
    this.#byTicket.delete(ticket);
  }

  get size(): number {
    return this.#byTicket.size;
  }

  get eventsOutstanding(): number {
    return this.#eventsOutstanding;
  }

  applyAcks(message: AckMessage): void {
    this.#eventsOutstanding -= message.count;
    for (let i = 0; i < message.count; i++) {
      const ticket = message.tickets[i] as number;
      const request = this.#byTicket.get(ticket);
      if (request === undefined) continue;
      if (request.record(message.indexes[i] as number, message.outcomes[i] as EventOutcome)) {
        this.#byTicket.delete(ticket);
        request.settle();
      }
    }
  }
}
