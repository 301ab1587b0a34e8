/**
 * An actor: the single owner of the event ids that hash to it (src/ring/shard.ts).
 *
 *   ring ──read──▶ dedupe ──▶ accumulating batch ──(batchRowsMax rows or batchWaitMs)──▶ flush
 *                    │                                                         │
 *                    └─ already committed: ack "duplicate" at once             ▼
 *                                                 BatchWriter: COPY, one transaction
 *                                                              │
 *                             acks to main thread ◀── outcomes ┘ ── window remembers ids
 *
 * At most one batch is being written while the next accumulates: while a COPY runs, the
 * events that arrive form the next group commit, so batches grow with load by themselves.
 * Memory is bounded by two batches (each ≤ batchRowsMax + one envelope) plus the dedupe
 * window; everything else waits in the ring, whose fullness is the ingress's 503 signal.
 *
 * An id is "in flight" from the moment it joins a batch until its outcome is known. A
 * second copy that arrives meanwhile (a client retry) waits as a follower: if the first
 * copy commits the follower is a duplicate; if the first copy fails the follower is
 * written in its place. So one id is never written twice concurrently, and never counted
 * as a duplicate of a write that did not happen.
 */
import { EventOutcome } from '../event';
import type { Config } from '../config/config';
import type { Logger } from '../log';
import type { RingConsumer } from '../ring/ring-consumer';
import { readEnvelope, type RingEvent } from '../ring/envelope-reader';
import type { BatchRow, WriteReport } from '../sink/batch-writer';
import { backoffMs, classifyDatabaseError } from '../sink/retry-policy';
import type { AckBuffer } from './ack-buffer';
import { DedupeWindow } from './dedupe-window';

export interface RowWriter {
  write(rows: readonly BatchRow[], outcomes: Uint8Array): Promise<WriteReport>;
}

/** A dedupe layer shared by several nodes (src/actors/redis-dedupe.ts). */
export interface SharedDedupeLayer {
  seen(eventIds: readonly string[]): Promise<boolean[] | null>;
  remember(eventIds: readonly string[]): void;
}

export interface ActorFault {
  readonly code: string;
  readonly message: string;
  readonly rows: number;
  readonly attempt: number;
  readonly transient: boolean;
}

/** Telemetry hook, called once per envelope read from the ring (src/metrics/actor-stats.ts). */
export interface ActorObserver {
  envelopeRead(receivedAtUs: number, events: number): void;
}

interface QueuedRow extends BatchRow {
  readonly event: RingEvent;
  readonly ticket: number;
  /** The id's dedupe-window hash, computed once on admission. */
  readonly hash: number;
}

type ActorSettings = Pick<Config, 'ackMode' | 'batchRowsMax' | 'batchWaitMs' | 'dedupeWindowEntriesMax' | 'retryAttemptsMax'>;

/** How long an idle actor sleeps before re-checking its ring (a publish wakes it sooner). */
const idleWaitMs = 1000;
/** How often an actor reads its ring while a write is in flight (see #waitForWork). */
const drainWhileWritingMs = 1;

export class Actor {
  readonly #consumer: RingConsumer;
  readonly #writer: RowWriter;
  readonly #acks: AckBuffer;
  readonly #settings: ActorSettings;
  readonly #log: Logger;
  readonly #onFault: (fault: ActorFault) => void;
  readonly #observer: ActorObserver | null;
  readonly #window: DedupeWindow;
  readonly #sharedLayer: SharedDedupeLayer | null;
  /** Ids in the accumulating or the flushing batch → copies waiting for their outcome. */
  readonly #inFlight = new Map<string, QueuedRow[] | null>();
  #batch: QueuedRow[] = [];
  #batchStartedAtMs = 0;
  /** The write in flight: settles when the database has answered for the batch. */
  #flushing: Promise<void> | null = null;
  /** The last written batch's acknowledgements, until they are posted (see #flush). */
  #settling: Promise<void> | null = null;

  constructor(options: {
    consumer: RingConsumer;
    writer: RowWriter;
    acks: AckBuffer;
    settings: ActorSettings;
    log: Logger;
    onFault: (fault: ActorFault) => void;
    sharedLayer?: SharedDedupeLayer | null;
    observer?: ActorObserver;
  }) {
    this.#sharedLayer = options.sharedLayer ?? null;
    this.#consumer = options.consumer;
    this.#writer = options.writer;
    this.#acks = options.acks;
    this.#settings = options.settings;
    this.#log = options.log;
    this.#onFault = options.onFault;
    this.#observer = options.observer ?? null;
    this.#window = new DedupeWindow(options.settings.dedupeWindowEntriesMax);
  }

  /** Runs until a stop is requested and everything in the ring has been written. */
  async run(): Promise<void> {
    // A pending Atomics.waitAsync does not keep a worker thread alive (nodejs/node#44729);
    // without a ref'd handle the thread could exit while waiting for data.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    try {
      await this.#loop();
    } finally {
      clearInterval(keepAlive);
    }
  }

  async #loop(): Promise<void> {
    for (;;) {
      this.#drainRing();
      this.#acks.post();
      const stopping = this.#consumer.isStopRequested();
      const batchRows = this.#batch.length;
      const ageMs = batchRows === 0 ? 0 : performance.now() - this.#batchStartedAtMs;
      const full = batchRows >= this.#settings.batchRowsMax;
      if (full || (batchRows > 0 && (ageMs >= this.#settings.batchWaitMs || stopping))) {
        if (this.#flushing === null) {
          this.#startFlush();
          continue;
        }
        // A full batch can take nothing more from the ring: wait for the write in flight.
        if (full) {
          await this.#flushing;
          continue;
        }
      }
      if (stopping && batchRows === 0 && this.#consumer.usedBytes() === 0) {
        if (this.#flushing !== null) await this.#flushing;
        if (this.#settling !== null) await this.#settling;
        // A failed flush may have handed followers back to the batch: write them too.
        if (this.#batch.length === 0) return;
        continue;
      }
      await this.#waitForWork(batchRows, ageMs);
    }
  }

  /**
   * Waiting is where the main thread's cost hides: every publish into the ring of a
   * sleeping actor pays an Atomics.notify, a measurable share of the main thread's time
   * under load (docs/decisions/0004-copy-pipelining.md). So only an idle actor —
   * nothing batched, nothing being written — sleeps on the ring. With rows batched the
   * next step is batchWaitMs away: a plain timer while the ring fills quietly.
   *
   * With a write in flight the actor looks at its ring every drainWhileWritingMs (a timer,
   * not a wake-up from the main thread) and reads what arrived into the next batch, so that
   * batch is read, deduplicated and ready the moment the write ends, and the database
   * connection waits only for its encoding.
   */
  async #waitForWork(batchRows: number, ageMs: number): Promise<void> {
    if (this.#flushing !== null) {
      await Promise.race([this.#flushing, sleep(drainWhileWritingMs)]);
      return;
    }
    if (batchRows > 0) {
      await sleep(Math.max(1, Math.ceil(this.#settings.batchWaitMs - ageMs)));
      return;
    }
    await this.#consumer.waitForData(idleWaitMs);
  }

  /** Moves records from the ring into the batch until the batch is full or the ring empty. */
  #drainRing(): void {
    while (this.#batch.length < this.#settings.batchRowsMax) {
      if (this.#consumer.read(this.#visitRecord, 1) === 0) return;
    }
  }

  readonly #visitRecord = (payload: Uint8Array): void => {
    const { ticket, receivedAtUs, events } = readEnvelope(payload);
    this.#observer?.envelopeRead(receivedAtUs, events.length);
    for (let i = 0; i < events.length; i++) {
      const event = events[i] as RingEvent;
      this.#admit({ ticket, receivedAtUs, event, hash: this.#window.hashOf(event.eventId) });
    }
  };

  #admit(row: QueuedRow): void {
    const id = row.event.eventId;
    if (this.#window.has(id, row.hash)) {
      this.#acks.add(row.ticket, row.event.index, EventOutcome.duplicate);
      return;
    }
    if (this.#inFlight.has(id)) {
      const followers = this.#inFlight.get(id);
      if (followers) followers.push(row);
      else this.#inFlight.set(id, [row]);
      return;
    }
    this.#inFlight.set(id, null);
    if (this.#batch.length === 0) this.#batchStartedAtMs = performance.now();
    this.#batch.push(row);
  }

  #startFlush(): void {
    const rows = this.#batch;
    this.#batch = [];
    this.#flushing = this.#flush(rows).finally(() => {
      this.#flushing = null;
    });
  }

  /**
   * Writes a batch; its outcomes are applied on the next turn of the event loop (#settle),
   * after the actor loop has had the chance to send the next batch: acknowledging a batch
   * costs about a microsecond per row, which the database would otherwise spend idle.
   * Together with the ring read while writing (#waitForWork) this raised one actor's
   * sustained throughput by about a tenth (docs/decisions/0004-copy-pipelining.md).
   */
  async #flush(batch: QueuedRow[]): Promise<void> {
    const rows = this.#sharedLayer === null ? batch : await this.#dropSeenByOtherNodes(batch);
    const outcomes = new Uint8Array(rows.length);
    if (rows.length > 0) await this.#writeWithRetries(rows, outcomes);
    // Settling runs in write order: each is scheduled only after the write before it ended.
    const settling: Promise<void> = new Promise<void>((resolve) => {
      setImmediate(() => {
        this.#settle(rows, outcomes);
        if (this.#settling === settling) this.#settling = null;
        resolve();
      });
    });
    this.#settling = settling;
  }

  #settle(rows: QueuedRow[], outcomes: Uint8Array): void {
    const storedIds: string[] = [];
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as QueuedRow;
      const outcome = outcomes[i] as number;
      this.#acks.add(row.ticket, row.event.index, outcome);
      const stored = outcome === EventOutcome.committed || outcome === EventOutcome.duplicate;
      if (stored) {
        this.#window.remember(row.event.eventId, row.hash);
        storedIds.push(row.event.eventId);
      }
      this.#settleFollowers(row.event.eventId, stored);
    }
    this.#sharedLayer?.remember(storedIds);
    this.#acks.post();
  }

  /**
   * Asks the cross-node layer which ids another node (or this one, before a restart)
   * committed recently; those are duplicates without a database trip. If the layer fails
   * it answers null and every row is written: PostgreSQL still judges identical retries.
   */
  async #dropSeenByOtherNodes(rows: QueuedRow[]): Promise<QueuedRow[]> {
    const seen = await (this.#sharedLayer as SharedDedupeLayer).seen(rows.map((row) => row.event.eventId));
    if (seen === null || !seen.includes(true)) return rows;
    const fresh: QueuedRow[] = [];
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as QueuedRow;
      if (!seen[i]) {
        fresh.push(row);
        continue;
      }
      this.#acks.add(row.ticket, row.event.index, EventOutcome.duplicate);
      this.#window.remember(row.event.eventId, row.hash);
      this.#settleFollowers(row.event.eventId, true);
    }
    return fresh;
  }

  /**
   * Transient database errors (by SQLSTATE class, decided in src/sink/retry-policy.ts) are
   * retried with bounded backoff. In durable mode, past retryAttemptsMax the rows fail and
   * their clients get a 503 to retry: nothing is acknowledged that is not stored. In async
   * mode the clients already have their 202, so transient failures are retried until the
   * database returns (or the drain times out): giving up would lose acknowledged events.
   * A stale subscription snapshot the writer could not catch up with (it reloads and redoes
   * the rows itself a few times first) is retried the same way, but it is not a database
   * fault, so it is not reported as transient to the ingest breaker.
   * Any other error fails the rows at once (a bug; retrying would not help).
   */
  async #writeWithRetries(rows: QueuedRow[], outcomes: Uint8Array): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#writer.write(rows, outcomes);
        return;
      } catch (error) {
        const kind = classifyDatabaseError(error);
        const code = String((error as { code?: unknown }).code ?? kind);
        const message = error instanceof Error ? error.message : String(error);
        const transient = kind === 'transient';
        this.#onFault({ code, message, rows: rows.length, attempt, transient });
        const retriesExhausted = this.#settings.ackMode === 'durable' && attempt > this.#settings.retryAttemptsMax;
        if (!(transient || kind === 'stale-subscriptions') || retriesExhausted) {
          this.#log.error({ code, rows: rows.length, attempt, kind }, `batch failed: ${message}`);
          for (let i = 0; i < outcomes.length; i++) {
            if (outcomes[i] === 0) outcomes[i] = EventOutcome.failed;
          }
          return;
        }
        await sleep(backoffMs(attempt));
      }
    }
  }

  #settleFollowers(eventId: string, stored: boolean): void {
    const followers = this.#inFlight.get(eventId);
    this.#inFlight.delete(eventId);
    if (!followers) return;
    if (stored) {
      for (const follower of followers) this.#acks.add(follower.ticket, follower.event.index, EventOutcome.duplicate);
      return;
    }
    // The first copy was not stored: the next copy takes its place, the rest follow it.
    const [next, ...rest] = followers as [QueuedRow, ...QueuedRow[]];
    this.#inFlight.set(eventId, rest.length > 0 ? rest : null);
    if (this.#batch.length === 0) this.#batchStartedAtMs = performance.now();
    this.#batch.push(next);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
