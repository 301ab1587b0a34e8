/**
 * The actor's per-row rollup work (src/sink/rollup-counts.ts): one 1,300-row batch (the
 * median batch of a sustained-bulk run) of the load generator's events, three event types
 * in turn, added and turned into the upsert text. Compared with the first version, which
 * keyed nested maps by the type and source read out as latin1 strings: with types that
 * change from row to row it made two strings per row. "read envelope only" is the cost of
 * getting the rows, to subtract.
 */
import type { ValidEvent } from '../../src/event';
import { EnvelopeEncoder } from '../../src/ring/envelope';
import { readEnvelope, RingEvent } from '../../src/ring/envelope-reader';
import { RollupCounts } from '../../src/sink/rollup-counts';
import { consume, validEvents, type MicroSuite, type MicroTask } from './micro-suite';

const rowsPerBatch = 1300;

/** The first version's grouping, kept here as the reference: minute → type → source → count. */
class LatinKeyCounts {
  readonly #minutes = new Map<number, Map<string, Map<string, number>>>();
  #previous: RingEvent | null = null;
  #type = '';
  #source = '';

  reset(): void {
    this.#minutes.clear();
    this.#previous = null;
  }

  add(event: RingEvent): void {
    const previous = this.#previous;
    this.#previous = event;
    const same =
      previous !== null &&
      event.bytes.compare(previous.bytes, previous.typeStart, previous.typeEnd, event.typeStart, event.typeEnd) === 0 &&
      event.bytes.compare(previous.bytes, previous.sourceStart, previous.sourceEnd, event.sourceStart, event.sourceEnd) === 0;
    if (!same) {
      this.#type = event.bytes.toString('latin1', event.typeStart, event.typeEnd);
      this.#source = event.bytes.toString('latin1', event.sourceStart, event.sourceEnd);
    }
    const minute = Math.floor(event.occurredAtUs / 60_000_000);
    let types = this.#minutes.get(minute);
    if (types === undefined) this.#minutes.set(minute, (types = new Map()));
    let sources = types.get(this.#type);
    if (sources === undefined) types.set(this.#type, (sources = new Map()));
    sources.set(this.#source, (sources.get(this.#source) ?? 0) + 1);
  }
}

export const suite: MicroSuite = {
  name: 'rollup-counts',
  description: `Per row on the actor thread: the rollup grouping of one ${rowsPerBatch}-row batch (three event types in turn), by a hash of the bytes in place against the first version's latin1 string keys.`,
  tasks(): MicroTask[] {
    const events = validEvents(rowsPerBatch);
    const encoder = new EnvelopeEncoder();
    encoder.begin(0, 1_700_000_000_000_000);
    events.forEach((event: ValidEvent, index) => encoder.add(index, event));
    const envelope = encoder.finish().slice();
    const rows = readEnvelope(envelope).events as RingEvent[];
    const counts = new RollupCounts(0);
    const reference = new LatinKeyCounts();
    const task = (name: string, fn: () => unknown): MicroTask => ({ name, unitsPerCall: rowsPerBatch, unit: 'row', fn });
    return [
      task('read envelope only', () => consume(readEnvelope(envelope).events.length)),
      task('hash keys in place: add every row + upsert text', () => {
        counts.reset();
        for (const row of readEnvelope(envelope).events) counts.add(row);
        return consume(counts.upsertSql());
      }),
      task('hash keys in place: add every row', () => {
        counts.reset();
        for (const row of rows) counts.add(row);
        return consume(counts.rowCount);
      }),
      task('first version, latin1 string keys: add every row', () => {
        reference.reset();
        for (const row of rows) reference.add(row);
        return consume(reference);
      }),
    ];
  },
};
