/**
 * Binary COPY row encoding (src/sink/copy-encoder.ts) for a 5,000-row batch (the default
 * FLOODGATE_BATCH_ROWS_MAX), against COPY's text format built the straightforward way
 * (escaped strings joined into one string, then one Buffer), and against binary rows
 * whose attributes are re-serialised with JSON.stringify (what keeping the client's JSON
 * text saves).
 */
import { attributesText, type ValidEvent } from '../../src/event';
import { CopyEncoder } from '../../src/sink/copy-encoder';
import { consume, fixtureNowMs, validEvents, type MicroSuite, type MicroTask } from './micro-suite';

const batchRows = 5000;

/** COPY text format escaping: backslash, tab, newline and carriage return. */
function escapeText(value: string): string {
  return /[\\\t\n\r]/.test(value) ? value.replace(/[\\\t\n\r]/g, (char) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[char] as string) : value;
}

function textBatch(events: readonly ValidEvent[], receivedAt: string): Buffer {
  const lines: string[] = [];
  for (const event of events) {
    lines.push([
      escapeText(event.eventId),
      escapeText(event.eventType),
      escapeText(event.source),
      event.actorId === null ? '\\N' : escapeText(event.actorId),
      new Date(event.occurredAtUs / 1000).toISOString(),
      receivedAt,
      escapeText(attributesText(event)),
    ].join('\t'));
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

export const suite: MicroSuite = {
  name: 'copy-encoder',
  description: `COPY row encoding for a ${batchRows.toLocaleString('en-US')}-row batch: binary (the sink's) vs text format`,
  tasks(): MicroTask[] {
    const events = validEvents(batchRows);
    const reparsed = events.map((event) => ({ ...event, attributes: JSON.parse(attributesText(event)) as unknown }));
    // What actors hold: attributes as bytes, views into the envelope they came in.
    const asBytes = events.map((event) => ({ ...event, attributesJson: new Uint8Array(Buffer.from(attributesText(event))) }));
    const encoder = new CopyEncoder();
    const receivedAtUs = fixtureNowMs * 1000;
    const receivedAtText = new Date(fixtureNowMs).toISOString();
    return [
      { name: 'binary: CopyEncoder.addRow + finish (attributes as text)', unitsPerCall: batchRows, unit: 'row', fn: () => {
        encoder.reset();
        for (const event of events) encoder.addRow(event, receivedAtUs);
        return consume(encoder.finish());
      } },
      { name: 'binary, attributes as bytes (as actors get them from the ring)', unitsPerCall: batchRows, unit: 'row', fn: () => {
        encoder.reset();
        for (const event of asBytes) encoder.addRow(event, receivedAtUs);
        return consume(encoder.finish());
      } },
      { name: 'binary, attributes re-serialised with JSON.stringify', unitsPerCall: batchRows, unit: 'row', fn: () => {
        encoder.reset();
        for (const event of reparsed) encoder.addRow({ ...event, attributesJson: JSON.stringify(event.attributes) }, receivedAtUs);
        return consume(encoder.finish());
      } },
      { name: 'text format: escaped strings joined, one Buffer', unitsPerCall: batchRows, unit: 'row', fn: () => consume(textBatch(events, receivedAtText)) },
    ];
  },
};
