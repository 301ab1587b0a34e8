/**
 * The first dedupe layer: the last `entriesMax` event ids an actor has seen committed.
 *
 * Only committed ids enter the window (an id remembered before its write succeeded would
 * turn the client's retry into a silent loss). Eviction is first-in first-out: a JS Set
 * keeps insertion order, so the oldest id is `values().next()`. Memory is bounded by
 * entriesMax × (id length + ~50 bytes of Set overhead). The window is an optimisation:
 * PostgreSQL's primary key stays the judge for anything older or from before a restart.
 */
export class DedupeWindow {
  readonly #ids = new Set<string>();
  readonly #entriesMax: number;

  constructor(entriesMax: number) {
    this.#entriesMax = entriesMax;
  }

  has(eventId: string): boolean {
    return this.#ids.has(eventId);
  }

  remember(eventId: string): void {
    if (this.#entriesMax === 0 || this.#ids.has(eventId)) return;
    if (this.#ids.size >= this.#entriesMax) {
      const oldest = this.#ids.values().next().value as string;
      this.#ids.delete(oldest);
    }
    this.#ids.add(eventId);
  }

  get size(): number {
    return this.#ids.size;
  }
}
