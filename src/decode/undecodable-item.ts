import type { EventError } from '../errors';

/**
 * Stands in `items` for an item the decoder could not decode (an NDJSON line that is not
 * JSON, a msgpack map with a `__proto__` key…), so that one bad item never sinks the
 * others; validateEvent (src/validate/validate-event.ts) reports its error at the index
 * it is given. It is decode's output, defined here so validation reads it without the
 * decoder ever importing validation.
 */
export class UndecodableItem {
  readonly error: EventError;
  constructor(error: EventError) {
    this.error = error;
  }
}
