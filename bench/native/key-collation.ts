/**
 * What the collation of `events.event_id` costs PostgreSQL per row: the sink's binary COPY
 * (src/sink/copy-in.ts, 300-row batches, one connection per variant) into scratch databases that differ only in
 * the column's collation. Every row inserts into the primary key (event_id, occurred_at),
 * and every comparison on the way down the B-tree goes through the column's collation:
 * "C" compares bytes (memcmp); a libc locale, even C.UTF-8, copies both strings and calls
 * strcoll; an ICU locale builds sort keys. Equality, and so the dedupe the key enforces,
 * is the same in all of them (deterministic collations compare equal only byte-equal
 * text); only the order of the index differs.
 *
 * Ids come from 64 interleaved rising streams, like the load generator's clients, so
 * inserts land across the index rather than only at its right edge. The variants alternate
 * in rounds (the tables grow together) and each reports the median round; backend CPU
 * comes from /proc/<pid>/stat.
 */
import pg from 'pg';
import { CopyEncoder, copyIntoEventsSql } from '../../src/sink/copy-encoder';
import { copyIn } from '../../src/sink/copy-in';
import { median, round2 } from '../common/median';
import { clockTicks, processTicks } from '../common/proc-stats';
import { withClient } from '../../test/support/database';
import { createScratchDatabase, prepareSchema, type ScratchDatabase } from '../common/scratch-database';
import { benchValidEvent } from './copy-ceiling';

export interface CollationRun {
  /** As written after COLLATE; "default" is the database's own (its LC_COLLATE). */
  readonly collation: string;
  readonly rowsPerRound: number;
  readonly postgresUsPerRow: number;
  readonly postgresUsPerRowRounds: readonly number[];
}

const batchRows = 300;
const streams = 64;
/** Checked against pg_collation; variants the server lacks are skipped. */
const candidates = ['default', 'C', 'en-US-x-icu'] as const;

interface Variant {
  readonly collation: string;
  readonly scratch: ScratchDatabase;
  readonly client: pg.Client;
  readonly backendPid: number;
  readonly nextSequence: number[];
  readonly samples: number[];
}

async function openVariant(serverUrl: string, collation: string, tag: string): Promise<Variant> {
  const scratch = await createScratchDatabase(serverUrl, `collation_${tag}_${Date.now().toString(36)}`);
  const client = new pg.Client({ connectionString: scratch.url });
  try {
    await prepareSchema(scratch.url);
    await client.connect();
    await client.query(`ALTER TABLE events ALTER COLUMN event_id TYPE text COLLATE "${collation}"`);
    const backendPid = Number((await client.query('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
    return { collation, scratch, client, backendPid, nextSequence: new Array<number>(streams).fill(0), samples: [] };
  } catch (error) {
    await client.end().catch(() => undefined);
    await scratch.drop();
    throw error;
  }
}

/** One round: `batches` COPYs of 300 rows; returns backend µs per row. */
async function measureRound(variant: Variant, batches: number): Promise<number> {
  const nowMs = Date.now();
  const encoder = new CopyEncoder();
  const buffers: Buffer[] = [];
  for (let batch = 0; batch < batches; batch++) {
    encoder.reset();
    for (let index = 0; index < batchRows; index++) {
      const stream = (batch * batchRows + index) % streams;
      const sequence = variant.nextSequence[stream] ?? 0;
      variant.nextSequence[stream] = sequence + 1;
      const eventId = `kc-c${String(stream).padStart(3, '0')}-${sequence.toString(36).padStart(6, '0')}`;
      encoder.addRow(benchValidEvent(eventId, index, nowMs, nowMs * 1000 - index), nowMs * 1000);
    }
    buffers.push(Buffer.from(encoder.finish()));
  }
  const ticksBefore = processTicks(variant.backendPid) ?? 0;
  for (const buffer of buffers) await copyIn(variant.client, copyIntoEventsSql, buffer);
  const ticks = (processTicks(variant.backendPid) ?? 0) - ticksBefore;
  return ((ticks / clockTicks()) * 1e6) / (batches * batchRows);
}

export async function runKeyCollation(serverUrl: string, rowsPerRound: number, rounds: number, log: (line: string) => void): Promise<CollationRun[]> {
  const batches = Math.max(1, Math.round(rowsPerRound / batchRows));
  const names = await withClient(serverUrl, async (client) => (await client.query<{ collname: string }>('SELECT collname FROM pg_collation')).rows.map((row) => row.collname));
  const available = candidates.filter((name) => names.includes(name));
  const variants: Variant[] = [];
  try {
    for (const [index, collation] of available.entries()) variants.push(await openVariant(serverUrl, collation, String(index)));
    for (let round = 0; round < rounds; round++) {
      for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) variant.samples.push(await measureRound(variant, batches));
      log(`  round ${round + 1}/${rounds}: ${variants.map((v) => `${v.collation} ${(v.samples.at(-1) ?? 0).toFixed(2)}`).join(', ')} µs/row`);
    }
    for (const variant of variants) {
      const stored = Number((await variant.client.query('SELECT count(*)::bigint AS n FROM events')).rows[0]?.n);
      if (stored !== batches * batchRows * rounds) throw new Error(`key collation ${variant.collation}: expected ${batches * batchRows * rounds} rows, found ${stored}`);
    }
    return variants.map((variant) => ({
      collation: variant.collation,
      rowsPerRound: batches * batchRows,
      postgresUsPerRow: round2(median(variant.samples)),
      postgresUsPerRowRounds: variant.samples.map(round2),
    }));
  } finally {
    for (const variant of variants) {
      await variant.client.end().catch(() => undefined);
      await variant.scratch.drop();
    }
  }
}
