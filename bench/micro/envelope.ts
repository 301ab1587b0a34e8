/**
 * Ring envelopes (src/ring/envelope.ts): encoding 50 validated events into one envelope
 * on the ingress thread and reading it in the actor, against the obvious alternatives
 * (JSON text; msgpack of whole objects, with and without msgpackr's records extension;
 * the encoder's previous form, msgpackr packing one tuple array per event; the reader's
 * previous form, msgpackr decoding every tuple into an event object). The "actor:" tasks
 * are the actor's whole per-event byte work: read the envelope, then encode the COPY rows.
 */
import { Packr, RESET_BUFFER_MODE, REUSE_BUFFER_MODE, Unpackr } from 'msgpackr';
import type { ValidEvent } from '../../src/event';
import { CopyEncoder } from '../../src/sink/copy-encoder';
import { EnvelopeEncoder } from '../../src/ring/envelope';
import { decodeEnvelope, readEnvelope, type RingEvent } from '../../src/ring/envelope-reader';
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
    // The previous encoder: msgpackr packs each tuple into its own reused buffer, then copy.
    const tuplePackr = new Packr({ useRecords: false });
    const tuple: unknown[] = new Array<unknown>(7).fill(null);
    const tupleOut = new Uint8Array(envelope.byteLength * 2);
    const encodeWithPackr = (): number => {
      let offset = 16;
      for (let index = 0; index < events.length; index++) {
        const event = events[index] as ValidEvent;
        tuple[0] = index;
        tuple[1] = event.eventId;
        tuple[2] = event.eventType;
        tuple[3] = event.source;
        tuple[4] = event.actorId;
        tuple[5] = event.occurredAtUs;
        tuple[6] = event.attributesJson;
        const packed = tuplePackr.pack(tuple, REUSE_BUFFER_MODE | RESET_BUFFER_MODE) as Buffer & { start: number; end: number };
        tupleOut.set(packed.subarray(packed.start, packed.end), offset);
        offset += packed.end - packed.start;
      }
      return offset;
    };
    const json = Buffer.from(JSON.stringify(events));
    const plain = new Packr({ useRecords: false });
    const records = new Packr({ useRecords: true });
    const plainBytes = plain.pack(events);
    const recordBytes = records.pack(events);
    const plainReader = new Unpackr({ useRecords: false });
    // The previous reader: a private copy, then msgpackr builds every tuple and an event object.
    const tupleReader = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number', copyBuffers: false });
    const decodeWithUnpackr = (payload: Uint8Array): ValidEvent[] => {
      const scratch = payload.slice();
      const decoded: ValidEvent[] = [];
      tupleReader.unpackMultiple(scratch.subarray(16), (value: unknown) => {
        const fields = value as [number, string, string, string, string | null, number, Uint8Array];
        decoded.push({ eventId: fields[1], eventType: fields[2], source: fields[3], actorId: fields[4], occurredAtUs: fields[5], attributesJson: fields[6] });
      });
      return decoded;
    };
    const copyEncoder = new CopyEncoder();
    const actorOld = (): number => {
      copyEncoder.reset();
      for (const event of decodeWithUnpackr(envelope)) copyEncoder.addRow(event, 1_700_000_000_000_000);
      return copyEncoder.finish().byteLength;
    };
    const actorNew = (): number => {
      copyEncoder.reset();
      for (const event of readEnvelope(envelope).events) copyEncoder.addRingEvent(event as RingEvent, 1_700_000_000_000_000);
      return copyEncoder.finish().byteLength;
    };
    const task = (name: string, fn: () => unknown): MicroTask => ({ name, unitsPerCall: eventsPerEnvelope, unit: 'event', fn });
    return [
      task(`encode: EnvelopeEncoder (${envelope.byteLength} B)`, () => consume(encode())),
      task('encode: msgpackr pack() per tuple + copy (the previous encoder)', () => consume(encodeWithPackr())),
      task(`encode: JSON.stringify + Buffer.from (${json.byteLength} B)`, () => consume(Buffer.from(JSON.stringify(events)))),
      task(`encode: msgpackr objects, no records (${plainBytes.byteLength} B)`, () => consume(plain.pack(events))),
      task(`encode: msgpackr objects, records (${recordBytes.byteLength} B)`, () => consume(records.pack(events))),
      task('read: readEnvelope (id, index, time and spans; the actor\'s reader)', () => consume(readEnvelope(envelope))),
      task('decode: decodeEnvelope (readEnvelope + whole events)', () => consume(decodeEnvelope(envelope))),
      task('decode: msgpackr tuples into events (the previous reader)', () => consume(decodeWithUnpackr(envelope))),
      task('actor: readEnvelope + CopyEncoder.addRingEvent (bytes copied)', () => consume(actorNew())),
      task('actor: msgpackr tuples + CopyEncoder.addRow (the previous path)', () => consume(actorOld())),
      task('decode: JSON.parse', () => consume(JSON.parse(json.toString('utf8')))),
      task('decode: msgpackr objects, no records', () => consume(plainReader.unpack(plainBytes))),
      task('decode: msgpackr objects, records', () => consume(records.unpack(recordBytes))),
    ];
  },
};
