/**
 * What `@floodgate/client` costs its caller per event, without a network: 100 events
 * tracked, their batch sealed (id drawn, body built) and acked by a transport that answers
 * at once with the body the HTTP transport would send. Beside it, the least a hand-written
 * client must do for the same request: serialise the 100 events into one body under a
 * fresh idempotency key. The difference is what the SDK adds (issue 25: at most 1 µs per
 * event); awaiting every event's receipt is measured apart, since a caller may skip it.
 */
import { randomUUID } from 'node:crypto';
import { FloodgateClient, type BatchAck, type OutgoingBatch } from '../../client/src/index';
import { consume, wireEvents, type MicroSuite } from './micro-suite';

const eventsPerBatch = 100;

/** Answers every batch at once, after building the body the HTTP transport sends. */
async function answerAtOnce(batch: OutgoingBatch): Promise<BatchAck> {
  consume(`{"events":${batch.eventsJson}}`);
  return { accepted: batch.eventCount, duplicates: 0, errors: [] };
}

function sdkClient(): FloodgateClient {
  return new FloodgateClient({ url: 'http://127.0.0.1:9', transport: answerAtOnce, batchEvents: eventsPerBatch, queueEventsMax: 10 * eventsPerBatch });
}

export const suite: MicroSuite = {
  name: 'client-sdk',
  description: 'Per event, in batches of 100 answered at once without a network: a hand-written client (one JSON.stringify of the batch, a UUID per request) against @floodgate/client track() + flush(), and the SDK with every receipt awaited.',
  tasks() {
    const events = wireEvents(eventsPerBatch, 'sdk');
    const plain = sdkClient();
    const awaited = sdkClient();
    return [
      {
        name: 'hand-written: stringify the batch, UUID key',
        unitsPerCall: eventsPerBatch,
        unit: 'event',
        fn: async () => {
          const body = JSON.stringify({ events });
          consume(await answerAtOnce({ batchId: randomUUID(), eventCount: events.length, eventsJson: body, attempt: 0 }));
        },
      },
      {
        name: 'SDK: track() each event, flush()',
        unitsPerCall: eventsPerBatch,
        unit: 'event',
        fn: async () => {
          for (const event of events) plain.track(event as never);
          await plain.flush();
        },
      },
      {
        name: 'SDK: track() each event, await every receipt',
        unitsPerCall: eventsPerBatch,
        unit: 'event',
        fn: async () => {
          const receipts = events.map((event) => awaited.track(event as never));
          consume(await Promise.all(receipts));
        },
      },
    ];
  },
};
