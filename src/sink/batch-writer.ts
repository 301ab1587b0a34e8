import assert from 'node:assert/strict';
import pg from 'pg';
import { copyIn } from './copy-in';
import { EventOutcome } from '../event';
import { RingEvent } from '../ring/envelope-reader';
import { insertedIndices, reportOf, settledKey, validEventOf, type BatchRow, type CallState, type WriteReport } from './batch-rows';
import { copyColumns, CopyEncoder, copyIntoEventsSql } from './copy-encoder';
import { deadLetterReasonOf, insertDeadLetter } from './dead-letters';
import { FanOut } from './fan-out';
import { dayOfUs, isPartitionableDay, PartitionCache } from './partitions';
import { RollupCounts } from './rollup-counts';
import { classifyDatabaseError, errorCodeOf } from './retry-policy';
import { errorFields, type SinkLogger } from './sink-logger';
import { connectWriterSession, defaultWriterSession, type WriterSessionOptions } from './writer-session';

export type { BatchRow, RowEvent, WriteReport } from './batch-rows';

/**
 * Writes batches of events into `events`, one actor's connection at a time.
 *
 *   write(rows)
 *     │ ensure day partitions (PartitionCache: one Set lookup per distinct day)
 *     ▼
 *   fast path: COPY events FROM STDIN (binary, one buffer, its own transaction) ──▶ all committed
 *     │ 23505 unique_violation                      │ row-data error (classes 22, 23, 54)
 *     ▼                                             │
 *   duplicate path: BEGIN; COPY temp staging;       │
 *     INSERT … ON CONFLICT DO NOTHING RETURNING;    │
 *     COMMIT ──▶ returned = committed, rest = dup   │
 *     │ row-data error                              │
 *     ▼                                             ▼
 *   bisect: each half through the duplicate path in its own transaction, recursively;
 *     a row failing alone goes to dead_letters with its SQLSTATE and message.
 *
 * Rollups: when the writer has a rollup shard, every transaction that inserts rows also adds
 * the counts of exactly the rows it inserted to event_counts_minute, event_counts_hourly and
 * event_counts_daily (src/sink/rollup-counts.ts): on the fast path the upserts ride in the
 * COPY's own Query message (one implicit transaction; copyIn resolves with the COPY's row
 * count, whatever follows it), on the staging path they follow the INSERT's RETURNING
 * before COMMIT. Dead-lettered and duplicate rows are never counted, and a
 * rolled-back attempt takes its counts with it.
 *
 * Fan-out rides the same way, after the rollups: every transaction that may store rows ends
 * with the fan-out check and, for the stored rows that subscriptions cover, their delivery
 * records (src/sink/fan-out.ts). The subscription snapshot is loaded by the first write and
 * again only when the check fails with FG001 (subscriptions changed since): that attempt
 * rolled back whole, so the writer reloads and redoes the same rows at once, at most
 * fanoutReloadsMax times per transaction, then throws the FG001 error (the retry policy's
 * 'stale-subscriptions' class: never bisected, never counted as a database fault).
 *
 * Transient and fatal errors (src/sink/retry-policy.ts decides) are thrown as they came,
 * with their `.code`; the caller retries with backoff. The writer reconnects on the next
 * write when its connection broke.
 *
 * Outcomes across a failed attempt: bisecting commits halves in separate transactions, so
 * a transient error in the middle leaves some rows committed (or dead-lettered) while the
 * call throws. The writer remembers those rows; when the caller retries the batch, they are
 * settled from memory and not written again, so a row this writer committed is reported
 * `committed` (not `duplicate`) and a poison row is not dead-lettered twice. The memory is
 * cleared by the next successful write and bounded by settledRowsMax.
 *
 * What stays uncertain: a connection lost during COMMIT leaves the outcome unknown; on
 * retry those rows come back as `duplicate`. Both mean "stored exactly once".
 */

const stagingTable = 'floodgate_staging';
/*
 * A per-session temp table: no lock shared with other actors (TRUNCATE of a shared staging
 * table would take an exclusive lock), emptied by every COMMIT. LIKE a partitioned table
 * gives a plain table with the same columns and NOT NULL constraints.
 */
const createStagingSql = `CREATE TEMP TABLE IF NOT EXISTS ${stagingTable} (LIKE events) ON COMMIT DELETE ROWS`;
const copyIntoStagingSql = `COPY ${stagingTable} (${copyColumns}) FROM STDIN (FORMAT binary)`;
/*
 * RETURNING event_id alone identifies rows because the caller guarantees ids are unique
 * within a call; returning occurred_at would round-trip through a millisecond JS Date.
 */
const insertFromStagingSql =
  `INSERT INTO events (${copyColumns}) SELECT ${copyColumns} FROM ${stagingTable} ` +
  'ON CONFLICT DO NOTHING RETURNING event_id';

/** A connection attempt longer than this counts as a transient failure (ETIMEDOUT). */
export const connectTimeoutMs = 10_000;
/** Rows remembered from failed attempts; past this the memory is dropped (see above). */
export const settledRowsMax = 100_000;
/**
 * Snapshot reloads one transaction may need. Each reload follows a committed subscription
 * change, so needing more than a few means changes are arriving faster than one batch.
 */
export const fanoutReloadsMax = 5;


export class BatchWriter {
  readonly #connectionString: string;
  readonly #session: WriterSessionOptions;
  readonly #logger: SinkLogger;
  readonly #partitions = new PartitionCache();
  readonly #encoder = new CopyEncoder();
  readonly #settled = new Map<string, EventOutcome>();
  /** Null when rollups are off (FLOODGATE_ROLLUPS=off, a benchmark switch). */
  readonly #rollups: RollupCounts | null;
  readonly #fanOut = new FanOut();
  #client: pg.Client | null = null;
  #broken = false;
  #stagingReady = false;
  #busy = false;
  #closed = false;
  #identity = new Uint32Array(0);

  private constructor(connectionString: string, session: WriterSessionOptions, logger: SinkLogger, rollupShard: number | null) {
    this.#rollups = rollupShard === null ? null : new RollupCounts(rollupShard);
    this.#connectionString = connectionString;
    this.#session = session;
    this.#logger = logger;
  }

  /** `rollupShard`: the actor index under which this writer counts its rows; null writes no rollups. */
  static async open(
    connectionString: string,
    logger: SinkLogger,
    session: WriterSessionOptions = defaultWriterSession,
    rollupShard: number | null = null,
  ): Promise<BatchWriter> {
    const writer = new BatchWriter(connectionString, session, logger, rollupShard);
    await writer.#connection();
    return writer;
  }

  /**
   * Writes `rows` and sets outcomes[i] for rows[i] (committed, duplicate or deadLettered).
   * Throws on transient or fatal errors; retrying with the same rows is safe.
   */
  async write(rows: readonly BatchRow[], outcomes: Uint8Array): Promise<WriteReport> {
    assert.ok(!this.#closed, 'BatchWriter: write after close');
    assert.ok(!this.#busy, 'BatchWriter: concurrent write calls on one connection');
    assert.ok(outcomes.length >= rows.length, 'BatchWriter: outcomes shorter than rows');
    this.#busy = true;
    const state: CallState = { path: 'copy', transactions: 0 };
    try {
      const pending = this.#pendingIndices(rows, outcomes);
      if (pending.length > 0) await this.#writePending(rows, pending, outcomes, state);
      this.#settled.clear();
      return reportOf(outcomes, rows.length, state);
    } catch (error) {
      this.#rememberSettled(rows, outcomes);
      throw this.#reported(error);
    } finally {
      this.#busy = false;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = null;
    if (client !== null) await client.end().catch(() => undefined);
  }

  /** Clears outcomes, fills in rows settled by a failed earlier attempt, returns the rest. */
  #pendingIndices(rows: readonly BatchRow[], outcomes: Uint8Array): Uint32Array {
    outcomes.fill(0, 0, rows.length);
    if (this.#identity.length < rows.length) {
      this.#identity = Uint32Array.from({ length: Math.max(rows.length, this.#identity.length * 2) }, (_, i) => i);
    }
    if (this.#settled.size === 0) return this.#identity.subarray(0, rows.length);
    const pending: number[] = [];
    rows.forEach((row, index) => {
      const outcome = this.#settled.get(settledKey(row.event));
      if (outcome === undefined) pending.push(index);
      else outcomes[index] = outcome;
    });
    return Uint32Array.from(pending);
  }

  #rememberSettled(rows: readonly BatchRow[], outcomes: Uint8Array): void {
    if (this.#settled.size + rows.length > settledRowsMax) this.#settled.clear();
    rows.forEach((row, index) => {
      const outcome = outcomes[index];
      if (outcome === EventOutcome.committed || outcome === EventOutcome.deadLettered) {
        this.#settled.set(settledKey(row.event), outcome);
      }
    });
  }

  async #writePending(
    rows: readonly BatchRow[],
    indices: Uint32Array,
    outcomes: Uint8Array,
    state: CallState,
  ): Promise<void> {
    const client = await this.#connection();
    if (this.#fanOut.epoch === null) await this.#fanOut.load(client);
    await this.#ensurePartitions(client, rows, indices);
    try {
      // A lone COPY is its own transaction: the server commits it before ReadyForQuery,
      // which 'finish' waits for, and rolls it back on error. BEGIN and COMMIT around it
      // were two more round trips per batch, about 40% of the driver's CPU per row at
      // 100-row batches (docs/decisions/0004-copy-pipelining.md).
      await this.#withCurrentSubscriptions(client, () => {
        state.transactions += 1;
        return this.#copy(client, copyIntoEventsSql, rows, indices, this.#trailingSqlOf(rows, indices));
      });
      for (const index of indices) outcomes[index] = EventOutcome.committed;
      return;
    } catch (error) {
      const errorClass = await this.#afterRowError(client, rows, indices, error);
      if (errorClass !== 'duplicate') {
        return this.#bisect(client, rows, indices, outcomes, state, error);
      }
    }
    state.path = 'staging';
    try {
      await this.#withCurrentSubscriptions(client, () => this.#viaStaging(client, rows, indices, outcomes, state));
    } catch (error) {
      await this.#afterRowError(client, rows, indices, error);
      await this.#bisect(client, rows, indices, outcomes, state, error);
    }
  }

  /**
   * Decides what a failed attempt means: rethrows transient, fatal and (reloads spent)
   * stale-subscriptions errors, returns 'duplicate' or 'row-data'. A missing partition (23514 "no partition of relation") can
   * mean our cache is stale (a partition was dropped by retention), so the cache is
   * reloaded and partitions ensured again before bisecting; rows still without a partition
   * after that (a day that cannot have one) fail alone and are dead-lettered.
   */
  async #afterRowError(
    client: pg.Client,
    rows: readonly BatchRow[],
    indices: Uint32Array,
    error: unknown,
  ): Promise<'duplicate' | 'row-data'> {
    const errorClass = classifyDatabaseError(error);
    if (errorClass !== 'duplicate' && errorClass !== 'row-data') throw error;
    if (isMissingPartition(error)) {
      this.#partitions.invalidate();
      await this.#ensurePartitions(client, rows, indices);
    }
    return errorClass;
  }

  async #viaStaging(
    client: pg.Client,
    rows: readonly BatchRow[],
    indices: Uint32Array,
    outcomes: Uint8Array,
    state: CallState,
  ): Promise<void> {
    if (!this.#stagingReady) {
      await client.query(createStagingSql);
      this.#stagingReady = true;
    }
    state.transactions += 1;
    const stored = await this.#inTransaction(client, async () => {
      await this.#copy(client, copyIntoStagingSql, rows, indices);
      const result = await client.query<{ event_id: string }>(insertFromStagingSql);
      const storedIndices = insertedIndices(rows, indices, result.rows);
      await client.query(this.#trailingSqlOf(rows, storedIndices));
      return storedIndices;
    });
    for (const index of indices) outcomes[index] = EventOutcome.duplicate;
    for (const index of stored) outcomes[index] = EventOutcome.committed;
  }

  /**
   * Runs one attempt at a transaction that carries the fan-out check; when the check finds
   * the snapshot stale (the attempt rolled back whole), reloads it and runs the attempt
   * again with the same rows, up to fanoutReloadsMax times.
   */
  async #withCurrentSubscriptions<T>(client: pg.Client, attempt: () => Promise<T>): Promise<T> {
    for (let reloads = 0; ; reloads++) {
      try {
        return await attempt();
      } catch (error) {
        if (classifyDatabaseError(error) !== 'stale-subscriptions' || reloads >= fanoutReloadsMax) throw error;
        const staleEpoch = this.#fanOut.epoch;
        await this.#fanOut.load(client);
        this.#logger.debug?.({ staleEpoch, epoch: this.#fanOut.epoch }, 'subscriptions changed: snapshot reloaded');
      }
    }
  }

  /** What follows the rows of a transaction that stores rows[indices]: rollups, then fan-out. */
  #trailingSqlOf(rows: readonly BatchRow[], indices: Uint32Array): string {
    const rollupSql = this.#rollupSqlOf(rows, indices);
    const fanOutSql = this.#fanOut.sqlFor(rows, indices);
    return rollupSql === '' ? fanOutSql : `${rollupSql};${fanOutSql}`;
  }

  /** The rollup upserts counting rows[indices], or '' when rollups are off. */
  #rollupSqlOf(rows: readonly BatchRow[], indices: Uint32Array): string {
    const rollups = this.#rollups;
    if (rollups === null) return '';
    rollups.reset();
    for (const index of indices) rollups.add((rows[index] as BatchRow).event);
    return rollups.upsertSql();
  }

  /**
   * `indices` as a whole failed with a row-data error. Each half is tried alone through
   * the staging path; a half that fails again is split further, and a single row that
   * fails is dead-lettered with the error it caused on its own.
   */
  async #bisect(
    client: pg.Client,
    rows: readonly BatchRow[],
    indices: Uint32Array,
    outcomes: Uint8Array,
    state: CallState,
    failure: unknown,
  ): Promise<void> {
    state.path = 'bisect';
    if (indices.length === 1) {
      const index = indices[0] as number;
      const row = rows[index] as BatchRow;
      const reason = deadLetterReasonOf(failure);
      state.transactions += 1;
      await insertDeadLetter(client, validEventOf(row.event), row.receivedAtUs, reason);
      outcomes[index] = EventOutcome.deadLettered;
      this.#logger.warn({ eventId: row.event.eventId, reasonCode: reason.code, reason: reason.message }, 'event dead-lettered');
      return;
    }
    const middle = Math.ceil(indices.length / 2);
    for (const half of [indices.subarray(0, middle), indices.subarray(middle)]) {
      try {
        await this.#withCurrentSubscriptions(client, () => this.#viaStaging(client, rows, half, outcomes, state));
      } catch (error) {
        await this.#afterRowError(client, rows, half, error);
        await this.#bisect(client, rows, half, outcomes, state, error);
      }
    }
  }

  async #copy(
    client: pg.Client,
    sql: string,
    rows: readonly BatchRow[],
    indices: Uint32Array,
    trailingSql = '',
  ): Promise<void> {
    const encoder = this.#encoder;
    encoder.reset();
    for (const index of indices) {
      const row = rows[index] as BatchRow;
      const event = row.event;
      if (event instanceof RingEvent) encoder.addRingEvent(event, row.receivedAtUs);
      else encoder.addRow(event, row.receivedAtUs);
    }
    // copyIn settles only once the socket has let go of the encoder's buffer, so the next
    // batch may overwrite it whatever the outcome of this one.
    await copyIn(client, sql, encoder.finish(), trailingSql);
  }

  async #inTransaction<T>(client: pg.Client, work: () => Promise<T>): Promise<T> {
    await client.query('BEGIN');
    let result: T;
    try {
      result = await work();
    } catch (error) {
      // A failed ROLLBACK means the session is gone; the next write reconnects.
      await client.query('ROLLBACK').catch(() => {
        this.#broken = true;
      });
      throw error;
    }
    await client.query('COMMIT');
    return result;
  }

  async #ensurePartitions(client: pg.Client, rows: readonly BatchRow[], indices: Uint32Array): Promise<void> {
    let missing: number[] | null = null;
    let previousDay = Number.NaN;
    for (const index of indices) {
      const day = dayOfUs((rows[index] as BatchRow).event.occurredAtUs);
      if (day === previousDay) continue;
      previousDay = day;
      if (isPartitionableDay(day) && !this.#partitions.has(day)) (missing ??= []).push(day);
    }
    if (missing === null) return;
    const createdCount = await this.#partitions.ensure(client, missing);
    if (createdCount > 0) this.#logger.info({ createdCount }, 'event partitions created on demand');
  }

  /** The live connection, reconnecting (with a fresh staging table) when the last one broke. */
  async #connection(): Promise<pg.Client> {
    if (this.#client !== null && !this.#broken) return this.#client;
    const previous = this.#client;
    this.#client = null;
    if (previous !== null) previous.end().catch(() => undefined);
    const client = new pg.Client({
      connectionString: this.#connectionString,
      keepAlive: true,
      connectionTimeoutMillis: connectTimeoutMs,
      application_name: 'floodgate-writer',
    });
    // Without these listeners an idle connection killed by the server would crash the
    // process; with them the write that next uses it reconnects instead.
    client.on('error', (error) => {
      if (this.#client !== client) return;
      this.#broken = true;
      this.#logger.warn(errorFields(error), 'batch writer connection lost');
    });
    client.on('end', () => {
      if (this.#client === client) this.#broken = true;
    });
    await connectWriterSession(client, this.#session, this.#logger);
    this.#client = client;
    this.#broken = false;
    this.#stagingReady = false;
    return client;
  }

  /**
   * pg reports a socket that closed under a query as a plain Error without a code. Give it
   * 08006 (connection_failure) so the retry policy sees it as transient, and make sure the
   * next write reconnects after any transient error.
   */
  #reported(error: unknown): unknown {
    let code = errorCodeOf(error);
    if (code === null && error instanceof Error && (this.#broken || connectionLostPattern.test(error.message))) {
      code = '08006';
      error = Object.assign(new Error(error.message, { cause: error }), { code });
    }
    // Reconnecting is cheap next to a transient failure, and a fresh session is the one
    // sure way to shed whatever state the failure left behind.
    if (classifyDatabaseError(error) === 'transient') this.#broken = true;
    return error;
  }
}

const connectionLostPattern = /Connection terminated|not queryable|Client was closed/;

function isMissingPartition(error: unknown): boolean {
  return errorCodeOf(error) === '23514' && error instanceof Error && error.message.startsWith('no partition of relation');
}
