import { randomBytes } from 'node:crypto';

/**
 * The first dedupe layer: the last `entriesMax` event ids an actor has seen committed.
 *
 * Only committed ids enter the window (an id remembered before its write succeeded would
 * turn the client's retry into a silent loss). Eviction is first-in first-out: the ids
 * live in a ring in insertion order, and the slot the next id takes holds the oldest.
 *
 *   #ids     ring of entriesMax ids (the FIFO order), #hashes beside it
 *   #table   open addressing with linear probing: per bucket the ring slot + 1 (0 = empty)
 *            and the id's hash; buckets are a power of two ≥ 2 × entriesMax (at most half full)
 *
 * A lookup hashes the id, probes from its home bucket and compares the 32-bit hash before
 * the string, so the answer is exact: two ids that share a hash are both kept. Deleting the
 * evicted id shifts later entries of its cluster back (no tombstones), so the table never
 * degrades and never needs rebuilding.
 *
 * Why not a Set: at steady state every insert also deletes, and V8's ordered hash tables
 * fill with deleted entries and are rebuilt again and again — each rebuild allocates a new
 * multi-megabyte table. bench/micro/dedupe-window.ts (250,000 ids, check + remember a fresh
 * id, 2-core Xeon, Node 20.20): this table ~NNN ns per id vs ~NNN ns for Set + FIFO ring;
 * under load the Set's has/remember were ~20% of an actor's CPU in a --cpu-prof profile.
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
  readonly #ids: Array<string | undefined>;
  readonly #hashes: Int32Array;
  /** Pairs per bucket: [ring slot + 1 (0 = empty), the id's hash], so probing stays in one cache line. */
  readonly #table: Int32Array;
  readonly #mask: number;
  readonly #entriesMax: number;
  readonly #seed: number;
  #next = 0;
  #size = 0;

  constructor(entriesMax: number, seed: number = randomBytes(4).readInt32LE(0)) {
    this.#entriesMax = entriesMax;
    this.#ids = new Array<string | undefined>(entriesMax).fill(undefined);
    this.#hashes = new Int32Array(entriesMax);
    let buckets = 8;
    while (buckets < entriesMax * 2) buckets *= 2;
    this.#table = new Int32Array(buckets * 2);
    this.#mask = buckets - 1;
    this.#seed = seed;
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
    if (this.#entriesMax === 0) return;
    if (this.#bucketOf(eventId, hash) !== -1) return;
    const slot = this.#next;
    if (this.#ids[slot] !== undefined) this.#evict(slot);
    this.#next = slot + 1 === this.#entriesMax ? 0 : slot + 1;
    const table = this.#table;
    const mask = this.#mask;
    for (let distance = 0, bucket = hash & mask; distance <= displacementMax; distance++, bucket = (bucket + 1) & mask) {
      if (table[bucket * 2] !== 0) continue;
      table[bucket * 2] = slot + 1;
      table[bucket * 2 + 1] = hash;
      this.#ids[slot] = eventId;
      this.#hashes[slot] = hash;
      this.#size += 1;
      return;
    }
    // A cluster this long only forms from colliding ids: leave this one to PostgreSQL.
  }

  get size(): number {
    return this.#size;
  }

  /** The bucket holding `eventId`, or -1. The string is compared only when the hash matches. */
  #bucketOf(eventId: string, hash: number): number {
    const table = this.#table;
    const mask = this.#mask;
    for (let distance = 0, bucket = hash & mask; distance <= displacementMax; distance++, bucket = (bucket + 1) & mask) {
      const entry = table[bucket * 2] as number;
      if (entry === 0) return -1;
      if (table[bucket * 2 + 1] === hash && this.#ids[entry - 1] === eventId) return bucket;
    }
    return -1;
  }

  /** Removes the id in ring `slot`, found by slot number so the old string is never touched. */
  #evict(slot: number): void {
    const table = this.#table;
    const mask = this.#mask;
    for (let distance = 0, bucket = (this.#hashes[slot] as number) & mask; distance <= displacementMax; distance++, bucket = (bucket + 1) & mask) {
      if (table[bucket * 2] !== slot + 1) continue;
      this.#unlink(bucket);
      break;
    }
    this.#ids[slot] = undefined;
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
