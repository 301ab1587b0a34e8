/**
 * Hands a request's valid events to the actors' rings: shard by event id, encode one
 * envelope per actor (split when it would exceed the ring's record limit), and enqueue
 * all of them or none.
 *
 * All-or-nothing matters for the answer: the ingress is the rings' only producer, so if
 * every target ring reports room (`fits`) before anything is written, nothing can take
 * that room away before the writes; a request is never half-enqueued, and a full ring
 * turns into a clean 503 for the whole request.
 */
import type { ValidEvent } from '../event';
import { EnvelopeEncoder } from '../ring/envelope';
import type { RingProducer } from '../ring/ring-producer';
import { shardOf } from '../ring/shard';

export class RingRouter {
  readonly #producers: readonly RingProducer[];
  readonly #recordBytesMax: number;
  readonly #encoder = new EnvelopeEncoder();
  /** Per actor: finished envelope payloads of the request being routed (reused). */
  readonly #payloads: Uint8Array[][];
  readonly #sizes: number[][];
  readonly #shardIndexes: number[][];

  constructor(producers: readonly RingProducer[], recordBytesMax: number) {
    this.#producers = producers;
    this.#recordBytesMax = recordBytesMax;
    this.#payloads = producers.map(() => []);
    this.#sizes = producers.map(() => []);
    this.#shardIndexes = producers.map(() => []);
  }

  get actorCount(): number {
    return this.#producers.length;
  }

  /**
   * Enqueues `events` (with their positions in the request) under `ticket`.
   * Returns false, having written nothing, when some target ring lacks room.
   */
  tryEnqueue(ticket: number, receivedAtUs: number, indexes: readonly number[], events: readonly ValidEvent[]): boolean {
    const actorCount = this.#producers.length;
    for (let actor = 0; actor < actorCount; actor++) {
      (this.#shardIndexes[actor] as number[]).length = 0;
      (this.#payloads[actor] as Uint8Array[]).length = 0;
      (this.#sizes[actor] as number[]).length = 0;
    }
    for (let i = 0; i < events.length; i++) {
      (this.#shardIndexes[shardOf((events[i] as ValidEvent).eventId, actorCount)] as number[]).push(i);
    }
    for (let actor = 0; actor < actorCount; actor++) {
      this.#encodeFor(actor, ticket, receivedAtUs, indexes, events);
    }
    for (let actor = 0; actor < actorCount; actor++) {
      const sizes = this.#sizes[actor] as number[];
      if (sizes.length > 0 && !(this.#producers[actor] as RingProducer).fits(sizes)) return false;
    }
    for (let actor = 0; actor < actorCount; actor++) {
      const payloads = this.#payloads[actor] as Uint8Array[];
      if (payloads.length === 0) continue;
      const producer = this.#producers[actor] as RingProducer;
      for (const payload of payloads) producer.write(payload);
      producer.publish();
    }
    return true;
  }

  #encodeFor(actor: number, ticket: number, receivedAtUs: number, indexes: readonly number[], events: readonly ValidEvent[]): void {
    const mine = this.#shardIndexes[actor] as number[];
    if (mine.length === 0) return;
    const encoder = this.#encoder;
    encoder.begin(ticket, receivedAtUs);
    for (const position of mine) {
      const event = events[position] as ValidEvent;
      if (encoder.eventCount > 0 && encoder.byteLength + encodedBytesBound(event) > this.#recordBytesMax) {
        this.#finishEnvelope(actor, ticket, receivedAtUs);
      }
      encoder.add(indexes[position] as number, event);
    }
    if (encoder.eventCount > 0) this.#finishEnvelope(actor, ticket, receivedAtUs);
  }

  /** Envelope bytes are copied out (slice) because the encoder reuses its buffer. */
  #finishEnvelope(actor: number, ticket: number, receivedAtUs: number): void {
    const payload = this.#encoder.finish().slice();
    (this.#payloads[actor] as Uint8Array[]).push(payload);
    (this.#sizes[actor] as number[]).push(payload.byteLength);
    this.#encoder.begin(ticket, receivedAtUs);
  }
}

/** An upper bound of an event's msgpack size: UTF-8 needs at most 3 bytes per UTF-16 unit. */
function encodedBytesBound(event: ValidEvent): number {
  const chars = event.eventId.length + event.eventType.length + event.source.length + (event.actorId?.length ?? 0) + event.attributesJson.length;
  return chars * 3 + 64;
}
