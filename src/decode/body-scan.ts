import type { BodyFormat } from './body-format';

/**
 * What the EventCountScanner (src/decode/event-count-scanner.ts) learnt about a bulk body
 * while it streamed in (or right after gunzip), handed to decodeBulkBody with the bytes.
 * It is the only thing that passes from scanning to decoding: the decoder never sees the
 * scanner, so the body's data flows one way (scan → decode → validate).
 *
 * - `count`: events seen (exact for a valid body, never more; see the scanner). msgpack
 *   counts come from the header alone; NDJSON bodies are counted by the decoder itself,
 *   line by line, and a body scanned after gunzip leaves them at 0.
 * - `nestsTooDeep`: a JSON body nested deeper than bodyDepthMax (src/decode/body-depth.ts).
 * - `attributeSpans`: where each event's attributes lie (JSON only), or null when the scan
 *   cannot vouch for them.
 */
export interface BodyScan {
  readonly format: BodyFormat;
  readonly count: number;
  readonly nestsTooDeep: boolean;
  readonly attributeSpans: AttributeSpans | null;
}

/** Which key of an event object held the attributes the scanner found (see AttributeSpans). */
export const attributesKeyIds: Readonly<Record<string, number>> = { attributes: 1, metadata: 2, properties: 3 };

/**
 * Where each event's attributes object lies in a JSON bulk body: for event i, the bytes
 * [starts[i], ends[i]) are the object (braces included) that the key keys[i] held, as the
 * client sent them. keys[i] is 0 when the scanner found none it can vouch for.
 *
 * What makes a span trustworthy: the body is valid JSON (JSON.parse succeeded on the same
 * bytes), exactly one array of events was counted (so event i is items[i]), the span is
 * the value of the LAST top-level attributes key of the event (JSON.parse keeps the last
 * of duplicate keys), and no top-level key of that event had an escape (`"propert\u0069es"`
 * is `properties` to JSON.parse but not to a byte comparison) or straddled two chunks.
 * Anything else leaves keys[i] at 0 and validation re-serialises the parsed object.
 * Offsets fit an Int32Array: a body is at most 1 GiB (bodyDecodedBytesMax's ceiling).
 */
export interface AttributeSpans {
  readonly starts: Int32Array;
  readonly ends: Int32Array;
  readonly keys: Uint8Array;
}
