/**
 * Collects event outcomes inside an actor and ships them to the main thread as one
 * AckMessage (three transferred typed arrays) per flush, never one message per event.
 */
import type { MessagePort } from 'node:worker_threads';
import type { AckMessage } from './messages';

export class AckBuffer {
  readonly #port: MessagePort;
  readonly #actorIndex: number;
  #tickets: Uint32Array;
  #indexes: Uint32Array;
  #outcomes: Uint8Array;
  #count = 0;

  constructor(port: MessagePort, actorIndex: number, initialCapacity: number) {
    this.#port = port;
    this.#actorIndex = actorIndex;
    this.#tickets = new Uint32Array(initialCapacity);
    this.#indexes = new Uint32Array(initialCapacity);
    this.#outcomes = new Uint8Array(initialCapacity);
  }

  add(ticket: number, index: number, outcome: number): void {
    if (this.#count === this.#tickets.length) this.#grow();
    this.#tickets[this.#count] = ticket;
    this.#indexes[this.#count] = index;
    this.#outcomes[this.#count] = outcome;
    this.#count++;
  }

  get count(): number {
    return this.#count;
  }

  /** Sends what was collected; the copies are transferred, the buffers stay for reuse. */
  post(): void {
    if (this.#count === 0) return;
    const message: AckMessage = {
      type: 'ack',
      actorIndex: this.#actorIndex,
      count: this.#count,
      tickets: this.#tickets.slice(0, this.#count),
      indexes: this.#indexes.slice(0, this.#count),
      outcomes: this.#outcomes.slice(0, this.#count),
    };
    this.#port.postMessage(message, [message.tickets.buffer as ArrayBuffer, message.indexes.buffer as ArrayBuffer, message.outcomes.buffer as ArrayBuffer]);
    this.#count = 0;
  }

  #grow(): void {
    const capacity = this.#tickets.length * 2;
    const tickets = new Uint32Array(capacity);
    const indexes = new Uint32Array(capacity);
    const outcomes = new Uint8Array(capacity);
    tickets.set(this.#tickets);
    indexes.set(this.#indexes);
    outcomes.set(this.#outcomes);
    this.#tickets = tickets;
    this.#indexes = indexes;
    this.#outcomes = outcomes;
  }
}
