import { randomBytes } from 'node:crypto';

/**
 * The first dedupe layer: the last event ids an actor has seen committed, up to
 * `entriesMax` of them (fewer when ids average more than arenaUnitsPerEntry characters).
 *
 * Only committed ids enter the window (an id remembered before its write succeeded would
 * turn the client's retry into a silent loss). Eviction is first-in first-out.
 *
 *   slots    a ring of entriesMax entries in insertion order: hash, length, and where the
 *            id's UTF-16 code units start in the arena
 *   arena    a circular Uint16Array holding the ids' text in the same order, so evicting
 *            the oldest entry frees the oldest text; an id never straddles the arena's end
 *   table    open addressing with linear probing: per bucket the slot + 1 (0 = empty) and
 *            the hash; buckets are a power of two ≥ 2 × entriesMax (at most half full)
 *
 * A lookup hashes the id, probes from its home bucket and compares the 32-bit hash, then
 * the text, so the answer is exact: two ids that share a hash are both kept. Deleting the
 * evicted id shifts later entries of its cluster back (no tombstones), so the table never
 * degrades and never needs rebuilding.
 *
 * Why typed arrays and not a Set of strings: the window holds hundreds of thousands of ids
 * for minutes, so as strings they were most of an actor's old generation and every major
 * GC marked them again, pausing the actor straight into durable commit latency. Typed
 * arrays are one object each to the GC. And at steady state every insert also deletes,
 * which makes V8 rebuild a Set's table again and again. bench/micro/dedupe-window.ts has
 * the variants (docs/decisions/0016-dedupe-window-off-heap.md).
 *
 * Hostile ids: the hash is seeded per process, and an id is never stored further than
 * displacementMax buckets from its home bucket (it is then simply not remembered, which is
 * safe: PostgreSQL's primary key still judges it). Lookups stop at the same distance, so a
 * flood of colliding ids costs at most displacementMax probes per id.
 *
 * The window is an optimisation: PostgreSQL's primary key stays the judge for anything
 * older or from before a restart.
 */
export class DedupeWindow {
  readonly #entriesMax: number;
  readonly #seed: number;
  readonly #hashes: Int32Array;
  readonly #lengths: Uint16Array;
  /** Where each slot's text starts, as an ever-growing position (arena index = position % arena length). */
  readonly #starts: Float64Array;
  readonly #arena: Uint16Array;
  /** Pairs per bucket: [slot + 1 (0 = empty), the id's hash], so probing stays in one cache line. */
  readonly #table: Int32Array;
  readonly #mask: number;
  #oldest = 0;
  #size = 0;
  /** Position where the next id's text goes. */
  #head = 0;

  constructor(entriesMax: number, seed: number = randomBytes(4).readInt32LE(0)) {
    this.#entriesMax = entriesMax;
    this.#seed = seed;
    this.#hashes = new Int32Array(entriesMax);
    this.#lengths = new Uint16Array(entriesMax);
    this.#starts = new Float64Array(entriesMax);
    this.#arena = new Uint16Array(entriesMax * arenaUnitsPerEntry);
    let buckets = 8;
    while (buckets < entriesMax * 2) buckets *= 2;
    this.#table = new Int32Array(buckets * 2);
    this.#mask = buckets - 1;
  }

  /**
   * The id's hash for has() and remember(). Hashing a fresh 36-character id costs about as
   * much as a lookup (~100 ns here), so the actor hashes once and keeps it with the row.
   */
  hashOf(eventId: string): number {
    return windowHash(eventId, this.#seed);
  }

  has(eventId: string, hash: number = this.hashOf(eventId)): boolean {
    return this.#bucketOf(eventId, hash) !== -1;
  }

  remember(eventId: string, hash: number = this.hashOf(eventId)): void {
    const length = eventId.length;
    const arenaLength = this.#arena.length;
    if (this.#entriesMax === 0 || length > arenaLength || this.#bucketOf(eventId, hash) !== -1) return;
    const table = this.#table;
    const mask = this.#mask;
    let bucket = hash & mask;
    for (let distance = 0; table[bucket * 2] !== 0; distance++, bucket = (bucket + 1) & mask) {
      // A cluster this long only forms from colliding ids: leave this one to PostgreSQL.
      if (distance === displacementMax) return;
    }
    // The text goes at the head, or at the arena's start when it would straddle the end.
    let start = this.#head;
    const offset = start % arenaLength;
    if (offset + length > arenaLength) start += arenaLength - offset;
    while (this.#size > 0 && (this.#size === this.#entriesMax || start + length - (this.#starts[this.#oldest] as number) > arenaLength)) {
      this.#evictOldest();
    }
    // Eviction may have emptied buckets on the probe path: take the first empty one.
    bucket = hash & mask;
    while (table[bucket * 2] !== 0) bucket = (bucket + 1) & mask;
    const slot = (this.#oldest + this.#size) % this.#entriesMax;
    const arenaStart = start % arenaLength;
    for (let i = 0; i < length; i++) this.#arena[arenaStart + i] = eventId.charCodeAt(i);
    this.#starts[slot] = start;
    this.#lengths[slot] = length;
    this.#hashes[slot] = hash;
    table[bucket * 2] = slot + 1;
    table[bucket * 2 + 1] = hash;
    this.#head = start + length;
    this.#size += 1;
  }

  get size(): number {
    return this.#size;
  }

  /** The bucket holding `eventId`, or -1. The text is compared only when the hash matches. */
  #bucketOf(eventId: string, hash: number): number {
    const table = this.#table;
    const mask = this.#mask;
    for (let distance = 0, bucket = hash & mask; distance <= displacementMax; distance++, bucket = (bucket + 1) & mask) {
      const entry = table[bucket * 2] as number;
      if (entry === 0) return -1;
      if (table[bucket * 2 + 1] === hash && this.#textEquals(entry - 1, eventId)) return bucket;
    }
    return -1;
  }

  #textEquals(slot: number, eventId: string): boolean {
    const length = eventId.length;
    if (this.#lengths[slot] !== length) return false;
    const arena = this.#arena;
    const start = (this.#starts[slot] as number) % arena.length;
    for (let i = 0; i < length; i++) if (arena[start + i] !== eventId.charCodeAt(i)) return false;
    return true;
  }

  /** Removes the oldest entry, found in the table by slot number (its text is never read). */
  #evictOldest(): void {
    const slot = this.#oldest;
    const table = this.#table;
    const mask = this.#mask;
    for (let distance = 0, bucket = (this.#hashes[slot] as number) & mask; distance <= displacementMax; distance++, bucket = (bucket + 1) & mask) {
      if (table[bucket * 2] !== slot + 1) continue;
      this.#unlink(bucket);
      break;
    }
    this.#oldest = slot + 1 === this.#entriesMax ? 0 : slot + 1;
    this.#size -= 1;
  }

  /**
   * Empties `bucket` and moves later members of its cluster back into the hole when their
   * home bucket allows it (backward-shift deletion), so every entry stays reachable from
   * its home without tombstones and no entry ever moves further from home.
   */
  #unlink(bucket: number): void {
    const table = this.#table;
    const mask = this.#mask;
    let hole = bucket;
    table[hole * 2] = 0;
    for (let probe = (hole + 1) & mask; table[probe * 2] !== 0; probe = (probe + 1) & mask) {
      const home = (table[probe * 2 + 1] as number) & mask;
      // The entry may move into the hole unless its home lies in the (hole, probe] arc.
      const homeInArc = hole <= probe ? home > hole && home <= probe : home > hole || home <= probe;
      if (homeInArc) continue;
      table[hole * 2] = table[probe * 2] as number;
      table[hole * 2 + 1] = table[probe * 2 + 1] as number;
      table[probe * 2] = 0;
      hole = probe;
    }
  }
}

/**
 * Arena space per entry, in UTF-16 code units: a UUID takes 36. Longer ids still fit (up to
 * the whole arena); the window then holds fewer than entriesMax of them.
 */
export const arenaUnitsPerEntry = 48;

/**
 * FNV-1a from a seed over pairs of UTF-16 code units (half the multiplications of one unit
 * per step), then murmur3's finaliser to spread the low bits.
 */
export function windowHash(eventId: string, seed: number): number {
  let hash = seed ^ 0x811c9dc5;
  const pairsEnd = eventId.length & ~1;
  for (let i = 0; i < pairsEnd; i += 2) {
    hash = Math.imul(hash ^ (eventId.charCodeAt(i) | (eventId.charCodeAt(i + 1) << 16)), 0x01000193);
  }
  if (pairsEnd !== eventId.length) hash = Math.imul(hash ^ eventId.charCodeAt(pairsEnd), 0x01000193);
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  return hash ^ (hash >>> 16);
}

/** How far from its home bucket an id may be stored (see "Hostile ids" above). */
export const displacementMax = 64;
