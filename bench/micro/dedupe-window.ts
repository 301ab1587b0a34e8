/**
 * The actor's in-memory dedupe window (src/actors/dedupe-window.ts) at steady state: the
 * window is full (250,000 ids, the default FLOODGATE_DEDUPE_WINDOW_ENTRIES_MAX), so every
 * remembered id evicts the oldest. Each call checks and remembers 1,000 fresh ids, made
 * the way decoding makes them (new strings whose hash V8 has not cached yet); "id
 * creation only" is that cost alone, to subtract.
 *
 * DedupeWindow is an open-addressing table over a FIFO ring of ids. The alternatives: its
 * second version, a Set plus the same FIFO ring (V8 rebuilds the Set's table again and
 * again under constant delete + add); the first version's eviction through
 * `set.values().next()` (V8 walks past every deleted entry at the front of the Set's
 * table, so it grows with the window); a Map evicting the same way; and a Set of 53-bit
 * hashes. The last is lossy (two ids may share a hash, and the newer event would be
 * dropped as a duplicate), so it is a reference for what exactness costs, not a candidate.
 */
import { DedupeWindow } from '../../src/actors/dedupe-window';
import { consume, type MicroSuite, type MicroTask } from './micro-suite';

const windowEntries = 250_000;
const idsPerCall = 1000;

interface Window {
  has(id: string): boolean;
  remember(id: string): void;
}

/** The window's second version: a Set for lookups, a FIFO ring of ids for eviction. */
class SetRingWindow implements Window {
  readonly #ids = new Set<string>();
  readonly #order: Array<string | undefined>;
  readonly #entriesMax: number;
  #next = 0;
  constructor(entriesMax: number) {
    this.#entriesMax = entriesMax;
    this.#order = new Array<string | undefined>(entriesMax).fill(undefined);
  }
  has(id: string): boolean {
    return this.#ids.has(id);
  }
  remember(id: string): void {
    if (this.#ids.has(id)) return;
    const oldest = this.#order[this.#next];
    if (oldest !== undefined) this.#ids.delete(oldest);
    this.#order[this.#next] = id;
    this.#next = this.#next + 1 === this.#entriesMax ? 0 : this.#next + 1;
    this.#ids.add(id);
  }
}

/** The window's first version: a Set alone, the oldest id found with values().next(). */
class ValuesNextWindow implements Window {
  readonly #ids = new Set<string>();
  readonly #entriesMax: number;
  constructor(entriesMax: number) {
    this.#entriesMax = entriesMax;
  }
  has(id: string): boolean {
    return this.#ids.has(id);
  }
  remember(id: string): void {
    if (this.#ids.has(id)) return;
    if (this.#ids.size >= this.#entriesMax) this.#ids.delete(this.#ids.values().next().value as string);
    this.#ids.add(id);
  }
}

class MapWindow implements Window {
  readonly #ids = new Map<string, true>();
  readonly #entriesMax: number;
  constructor(entriesMax: number) {
    this.#entriesMax = entriesMax;
  }
  has(id: string): boolean {
    return this.#ids.has(id);
  }
  remember(id: string): void {
    if (this.#ids.has(id)) return;
    if (this.#ids.size >= this.#entriesMax) this.#ids.delete(this.#ids.keys().next().value as string);
    this.#ids.set(id, true);
  }
}

/** Two FNV-1a passes with different seeds, folded into 53 bits (a safe integer). */
function hash53(id: string): number {
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (let i = 0; i < id.length; i++) {
    const code = id.charCodeAt(i);
    a = Math.imul(a ^ code, 0x01000193);
    b = Math.imul(b ^ code, 0x5bd1e995);
  }
  return (a >>> 0) * 0x200000 + ((b >>> 0) & 0x1fffff);
}

class HashedWindow implements Window {
  readonly #hashes = new Set<number>();
  readonly #order: Float64Array;
  #next = 0;
  #filled = 0;
  constructor(entriesMax: number) {
    this.#order = new Float64Array(entriesMax);
  }
  has(id: string): boolean {
    return this.#hashes.has(hash53(id));
  }
  remember(id: string): void {
    const hash = hash53(id);
    if (this.#hashes.has(hash)) return;
    if (this.#filled === this.#order.length) this.#hashes.delete(this.#order[this.#next] as number);
    else this.#filled++;
    this.#order[this.#next] = hash;
    this.#next = (this.#next + 1) % this.#order.length;
    this.#hashes.add(hash);
  }
}

function steadyStateTask(name: string, window: Window): MicroTask {
  let counter = 0;
  const stem = 'lbm3x9k2ab-c01-';
  for (; counter < windowEntries; counter++) window.remember(`${stem}${counter}`);
  return {
    name,
    unitsPerCall: idsPerCall,
    unit: 'id',
    fn: () => {
      let duplicates = 0;
      for (let i = 0; i < idsPerCall; i++) {
        const id = `${stem}${counter++}`;
        if (window.has(id)) duplicates++;
        else window.remember(id);
      }
      return duplicates;
    },
  };
}

export const suite: MicroSuite = {
  name: 'dedupe-window',
  description: `dedupe window at steady state (${windowEntries.toLocaleString('en-US')} ids, each new id evicts one): check + remember`,
  tasks(): MicroTask[] {
    let counter = 0;
    return [
      { name: 'id creation only (to subtract)', unitsPerCall: idsPerCall, unit: 'id', fn: () => {
        let length = 0;
        for (let i = 0; i < idsPerCall; i++) length += `lbm3x9k2ab-c01-${counter++}`.length;
        return consume(length);
      } },
      steadyStateTask('DedupeWindow (open addressing over a FIFO ring of ids)', new DedupeWindow(windowEntries)),
      steadyStateTask('Set + FIFO ring of ids (second version)', new SetRingWindow(windowEntries)),
      steadyStateTask('Set alone, evict via values().next() (first version)', new ValuesNextWindow(windowEntries)),
      steadyStateTask('Map, evict via keys().next()', new MapWindow(windowEntries)),
      steadyStateTask('Set of 53-bit hashes + Float64Array FIFO (lossy)', new HashedWindow(windowEntries)),
    ];
  },
};
