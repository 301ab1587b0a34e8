/**
 * A small seeded pseudo-random generator (mulberry32) for the tests that generate their
 * cases: everything is a function of the seed, so a failing case replays exactly. The fuzz
 * suite prints its seed and takes FLOODGATE_FUZZ_SEED=<seed> to replay.
 */
import { randomInt } from 'node:crypto';

export class Prng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(0, items.length - 1)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  bytes(count: number): Buffer {
    const bytes = Buffer.allocUnsafe(count);
    for (let i = 0; i < count; i++) bytes[i] = this.int(0, 255);
    return bytes;
  }

  /** Printable ASCII text (0x20-0x7e). */
  text(count: number): string {
    let text = '';
    for (let i = 0; i < count; i++) text += String.fromCharCode(this.int(0x20, 0x7e));
    return text;
  }
}

/** FLOODGATE_FUZZ_SEED when set (to replay a failure), else a fresh random seed. */
export function fuzzSeed(): number {
  const given = process.env.FLOODGATE_FUZZ_SEED;
  if (given !== undefined && given !== '') {
    const seed = Number(given);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`FLOODGATE_FUZZ_SEED must be an integer 0..4294967295; got ${given}`);
    return seed;
  }
  return randomInt(0, 2 ** 31);
}
