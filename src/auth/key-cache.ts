/**
 * The active keys, in memory on the main thread, so that checking a key costs a SHA-256
 * and a map lookup, never a database round trip (docs/decisions/0019-api-keys-hashed-and-cached.md).
 *
 *   every refreshIntervalMs:  UPDATE last_used_at for keys used since the last refresh
 *                             SELECT active keys (+ whether any key ever existed)
 *                             swap the map
 *
 * A key revoked on any node is therefore refused everywhere within one refresh interval
 * plus one query (the issue asks for 5 s; the interval is 1 s). When a refresh fails (the
 * database is down) the last snapshot stays in force, logged once per outage: refusing
 * every key during an outage would stop ingest that needs no database to be accepted.
 */
import { keySubjectOf } from '../limits/limit-subject';
import type { LimitSubject } from '../limits/rate-limiter';
import type { Logger } from '../log';
import { keyHashText, type Scope } from './key-format';
import type { ActiveKeyRow, KeySnapshot, KeyStore } from './key-store';

export const refreshIntervalMs = 1000;

export interface ActiveKey {
  readonly id: string;
  readonly name: string;
  readonly scopes: ReadonlySet<Scope>;
  /** Built once per refresh, so that a request's limit costs nothing to find; null: unlimited. */
  readonly rateLimit: LimitSubject | null;
}

export class KeyCache {
  readonly #store: KeyStore;
  readonly #log: Logger;
  #byHash: ReadonlyMap<string, ActiveKey> = new Map();
  #keysEver = 0;
  /** Ids of keys presented since the last refresh; written to last_used_at in one statement. */
  #used = new Set<string>();
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #failing = false;
  /** Refreshes run one after another, never overlapping. */
  #chain: Promise<void> = Promise.resolve();

  constructor(store: KeyStore, log: Logger) {
    this.#store = store;
    this.#log = log;
  }

  /** Loads the keys once (start-up waits for it), then refreshes in the background. */
  async start(): Promise<void> {
    // Not through #refreshOnce, which keeps going on failure: without a first snapshot,
    // auto posture would believe no key exists and open every door.
    this.#apply(await this.#store.snapshot());
    this.#schedule();
  }

  /** Whether any key was ever created: the end of `auto` posture's open doors. */
  get keysExist(): boolean {
    return this.#keysEver > 0;
  }

  /** The active key with this text, or undefined (unknown or revoked). */
  lookup(key: string): ActiveKey | undefined {
    const found = this.#byHash.get(keyHashText(key));
    if (found !== undefined) this.#used.add(found.id);
    return found;
  }

  /** Runs a refresh after any one in flight; admin calls use it to apply their change at once. */
  refresh(): Promise<void> {
    this.#chain = this.#chain.then(() => this.#refreshOnce());
    return this.#chain;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    await this.#chain;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.refresh().finally(() => this.#schedule());
    }, refreshIntervalMs);
    this.#timer.unref();
  }

  #apply(snapshot: KeySnapshot): void {
    this.#byHash = mapOf(snapshot.active);
    this.#keysEver = snapshot.keysEver;
  }

  async #refreshOnce(): Promise<void> {
    const used = [...this.#used];
    this.#used = new Set();
    try {
      await this.#store.touch(used);
      const snapshot = await this.#store.snapshot();
      this.#apply(snapshot);
      if (this.#failing) this.#log.info({ activeKeys: snapshot.active.length }, 'API keys refreshed again');
      this.#failing = false;
    } catch (error) {
      for (const id of used) this.#used.add(id);
      if (!this.#failing) this.#log.warn({ err: error }, 'API keys could not be refreshed; the last known keys stay in force');
      this.#failing = true;
    }
  }
}

function mapOf(rows: readonly ActiveKeyRow[]): Map<string, ActiveKey> {
  return new Map(rows.map((row) => [row.keyHash.toString('base64'), {
    id: row.id,
    name: row.name,
    scopes: new Set(row.scopes),
    rateLimit: keySubjectOf(row.keyHash, row.eventsPerS, row.burstEvents),
  }]));
}
