/**
 * Ring envelopes (src/ring/envelope.ts): encoding 50 validated events into one envelope
 * on the ingress thread and decoding it in the actor, against the obvious alternatives
 * (JSON text; msgpack of whole objects, with and without msgpackr's records extension).
 */
import { Packr, Unpackr } from 'msgpackr';
import type { ValidEvent } from '../../src/event';
import { decodeEnvelope, EnvelopeEncoder } from '../../src/ring/envelope';
import { consume, validEvents, type MicroSuite, type MicroTask } from './micro-suite';

const eventsPerEnvelope = 50;

export const suite: MicroSuite = {
  name: 'envelope',
  description: 'ring envelope encode (ingress) and decode (actor), 50 events per envelope, vs JSON and msgpack objects',
  tasks(): MicroTask[] {
    const events = validEvents(eventsPerEnvelope);
    const encoder = new EnvelopeEncoder();
    const encode = (): Uint8Array => {
      encoder.begin(7, 1_700_000_000_000_000);
      for (let index = 0; index < events.length; index++) encoder.add(index, events[index] as ValidEvent);
      return encoder.finish();
    };
    const envelope = encode().slice();
    const json = Buffer.from(JSON.stringify(events));
    const plain = new Packr({ useRecords: false });
    const records = new Packr({ useRecords: true });
    const plainBytes = plain.pack(events);
    const recordBytes = records.pack(events);
    const plainReader = new Unpackr({ useRecords: false });
    const task = (name: string, fn: () => unknown): MicroTask => ({ name, unitsPerCall: eventsPerEnvelope, unit: 'event', fn });
    return [
      task(`encode: EnvelopeEncoder (${envelope.byteLength} B)`, () => consume(encode())),
      task(`encode: JSON.stringify + Buffer.from (${json.byteLength} B)`, () => consume(Buffer.from(JSON.stringify(events)))),
      task(`encode: msgpackr objects, no records (${plainBytes.byteLength} B)`, () => consume(plain.pack(events))),
      task(`encode: msgpackr objects, records (${recordBytes.byteLength} B)`, () => consume(records.pack(events))),
      task('decode: decodeEnvelope', () => consume(decodeEnvelope(envelope))),
      task('decode: JSON.parse', () => consume(JSON.parse(json.toString('utf8')))),
      task('decode: msgpackr objects, no records', () => consume(plainReader.unpack(plainBytes))),
      task('decode: msgpackr objects, records', () => consume(records.unpack(recordBytes))),
    ];
  },
};
