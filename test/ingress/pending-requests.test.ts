import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AckMessage } from '../../src/actors/messages';
import { EventOutcome } from '../../src/event';
import { PendingRequests, type PendingRequest } from '../../src/ingress/pending-requests';

function ack(entries: Array<[ticket: number, index: number, outcome: number]>): AckMessage {
  return {
    type: 'ack',
    actorIndex: 0,
    count: entries.length,
    tickets: Uint32Array.from(entries.map((entry) => entry[0])),
    indexes: Uint32Array.from(entries.map((entry) => entry[1])),
    outcomes: Uint8Array.from(entries.map((entry) => entry[2])),
  };
}

test('a request settles once every event has an outcome, acks may come from several actors', () => {
  const pending = new PendingRequests();
  const settled: PendingRequest[] = [];
  const request = pending.register(3, (done) => settled.push(done));
  pending.countEnqueued(3);
  pending.applyAcks(ack([[request.ticket, 0, EventOutcome.committed]]));
  assert.equal(settled.length, 0);
  pending.applyAcks(ack([[request.ticket, 2, EventOutcome.duplicate], [request.ticket, 1, EventOutcome.deadLettered]]));
  assert.equal(settled.length, 1);
  assert.deepEqual([request.committed, request.duplicates], [1, 1]);
  assert.deepEqual(request.failures, [{ index: 1, outcome: EventOutcome.deadLettered }]);
  assert.equal(pending.size, 0);
  assert.equal(pending.eventsOutstanding, 0);
});

test('acks for a forgotten (timed-out) request are ignored but still counted as drained', () => {
  const pending = new PendingRequests();
  let settled = 0;
  const request = pending.register(1, () => settled++);
  pending.countEnqueued(1);
  pending.forget(request.ticket);
  pending.applyAcks(ack([[request.ticket, 0, EventOutcome.committed]]));
  assert.equal(settled, 0);
  assert.equal(pending.eventsOutstanding, 0);
});

test('tickets are unique and never 0', () => {
  const pending = new PendingRequests();
  const seen = new Set<number>();
  for (let i = 0; i < 10_000; i++) seen.add(pending.issueTicket());
  assert.equal(seen.size, 10_000);
  assert.equal(seen.has(0), false);
});
