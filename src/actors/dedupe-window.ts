/**
 * The first dedupe layer: the last `entriesMax` event ids an actor has seen committed.
 *
 * Only committed ids enter the window (an id remembered before its write succeeded would
 * turn the client's retry into a silent loss). Eviction is first-in first-out through a
 * ring of the ids in insertion order, allocated once: the slot the next id takes holds the
 * oldest id, which is deleted from the Set by key.
 *
 * Measured (bench/micro, and the ad-hoc run that found it): evicting with
 * `set.values().next()` instead cost ~98 µs per insert once the window was full, because
 * V8 walks past every deleted entry at the front of the Set's table; the ring costs
 * ~1 µs. That one line had cut sustained throughput from ~70k to ~40k events/s.
 *
 * Memory is bounded by entriesMax × (id length + ~60 bytes of Set and ring overhead).
 * The window is an optimisation: PostgreSQL's primary key stays the judge for anything
 * older or from before a restart.
 */
export class DedupeWindow {
  readonly #ids = new Set<string>();
  readonly #order: Array<string | undefined>;
  readonly #entriesMax: number;
  #next = 0;

  constructor(entriesMax: number) {
    this.#entriesMax = entriesMax;
    this.#order = new Array<string | undefined>(entriesMax).fill(undefined);
  }

  has(eventId: string): boolean {
    return this.#ids.has(eventId);
  }

  remember(eventId: string): void {
    if (this.#entriesMax === 0 || this.#ids.has(eventId)) return;
    const oldest = this.#order[this.#next];
    if (oldest !== undefined) this.#ids.delete(oldest);
    this.#order[this.#next] = eventId;
    this.#next = this.#next + 1 === this.#entriesMax ? 0 : this.#next + 1;
    this.#ids.add(eventId);
  }

  get size(): number {
    return this.#ids.size;
  }
}
