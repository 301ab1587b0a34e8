/**
 * What one sink batch costs PostgreSQL and the client, apart from its rows: the engine's
 * binary COPY (CopyEncoder, one buffer per batch) into the `events` table over one
 * connection, at several batch sizes, three ways: through pg-copy-streams wrapped in
 * BEGIN … COMMIT (`transaction`), through pg-copy-streams alone (`autocommit`: a lone COPY
 * is its own transaction, committed before ReadyForQuery), and as the sink sends it now,
 * statement, data and CopyDone in one write without waiting for CopyInResponse
 * (`pipelined`, src/sink/copy-in.ts).
 *
 * The backend's CPU comes from /proc/<pid>/stat (pg_backend_pid()), the client's from
 * process.cpuUsage(); the variants alternate in rounds so that drift on a shared machine
 * falls on all of them, and each cell reports the median round. Under load the batch
 * size is not chosen: it is whatever queued while the previous COPY was in flight (150–
 * 1,000 rows at 32 × 100 events in flight), so the per-batch cost is paid per row.
 */
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { ValidEvent } from '../../src/event';
import { CopyEncoder, copyIntoEventsSql } from '../../src/sink/copy-encoder';
import { copyIn } from '../../src/sink/copy-in';
import { median, round2 } from '../common/median';
import { clockTicks, processTicks } from '../common/proc-stats';
import { createScratchDatabase, prepareSchema } from '../common/scratch-database';
import { benchValidEvent } from './copy-ceiling';

export type BatchMode = 'transaction' | 'autocommit' | 'pipelined';

export interface CopyBatchRun {
  readonly mode: BatchMode;
  readonly batchRows: number;
  readonly rows: number;
  readonly rowsPerS: number;
  /** Medians over the rounds. */
  readonly postgresUsPerRow: number;
  readonly clientUsPerRow: number;
  readonly wallUsPerBatch: number;
}

export const batchSizes = [100, 300, 1_000, 5_000] as const;
const modes: readonly BatchMode[] = ['transaction', 'autocommit', 'pipelined'];

/*
 * Ids rise across the whole run, so every cell appends at the right edge of the primary
 * key like the engine's load does; ids that sorted by cell would make later cells insert
 * into the middle of the index and cost more for that reason alone.
 */
let nextId = 0;

function eventAt(index: number, nowMs: number): ValidEvent {
  return benchValidEvent(`cb-${String(nextId++).padStart(10, '0')}`, index, nowMs, nowMs * 1000 - index);
}

/** One binary COPY of `buffer` through pg-copy-streams; resolves once the server has answered it. */
async function copyOnce(client: pg.Client, buffer: Buffer): Promise<void> {
  const stream = client.query(copyFrom(copyIntoEventsSql));
  await new Promise<void>((resolve, reject) => {
    stream.once('finish', resolve);
    stream.on('error', reject);
    stream.end(buffer);
  });
}

interface Sample {
  postgresUsPerRow: number;
  clientUsPerRow: number;
  wallUsPerBatch: number;
  rowsPerS: number;
}

async function measureOnce(client: pg.Client, backendPid: number, mode: BatchMode, batchRows: number, rows: number): Promise<Sample> {
  const nowMs = Date.now();
  const encoder = new CopyEncoder();
  // Encode every batch first: the client CPU measured below is the driver's, not encoding.
  const buffers: Buffer[] = [];
  for (let start = 0; start < rows; start += batchRows) {
    encoder.reset();
    for (let index = start; index < Math.min(rows, start + batchRows); index++) encoder.addRow(eventAt(index, nowMs), nowMs * 1000);
    buffers.push(Buffer.from(encoder.finish()));
  }
  const ticksBefore = processTicks(backendPid) ?? 0;
  const clientBefore = process.cpuUsage();
  const startedMs = performance.now();
  for (const buffer of buffers) {
    if (mode === 'pipelined') {
      await copyIn(client, copyIntoEventsSql, buffer);
      continue;
    }
    if (mode === 'transaction') await client.query('BEGIN');
    await copyOnce(client, buffer);
    if (mode === 'transaction') await client.query('COMMIT');
  }
  const wallMs = performance.now() - startedMs;
  const client_ = process.cpuUsage(clientBefore);
  const postgresUs = (((processTicks(backendPid) ?? 0) - ticksBefore) / clockTicks()) * 1e6;
  return {
    postgresUsPerRow: postgresUs / rows,
    clientUsPerRow: (client_.user + client_.system) / rows,
    wallUsPerBatch: (wallMs * 1000) / buffers.length,
    rowsPerS: rows / (wallMs / 1000),
  };
}


export async function runCopyBatches(serverUrl: string, rowsPerCell: number, rounds: number, log: (line: string) => void): Promise<CopyBatchRun[]> {
  const scratch = await createScratchDatabase(serverUrl, `batches${Date.now().toString(36)}`);
  const client = new pg.Client({ connectionString: scratch.url });
  try {
    await prepareSchema(scratch.url);
    await client.connect();
    const backendPid = Number((await client.query('SELECT pg_backend_pid() AS pid')).rows[0]?.pid);
    const samples = new Map<string, Sample[]>();
    for (let round = 0; round < rounds; round++) {
      await client.query('TRUNCATE events');
      for (const batchRows of batchSizes) {
        // Which mode goes first rotates by round (the table grows within a round).
        for (const mode of [...modes.slice(round % modes.length), ...modes.slice(0, round % modes.length)]) {
          const sample = await measureOnce(client, backendPid, mode, batchRows, rowsPerCell);
          const key = `${mode}:${batchRows}`;
          samples.set(key, [...(samples.get(key) ?? []), sample]);
        }
      }
      log(`  round ${round + 1}/${rounds} done`);
    }
    const expected = rowsPerCell * batchSizes.length * modes.length;
    const stored = Number((await client.query('SELECT count(*)::bigint AS n FROM events')).rows[0]?.n);
    if (stored !== expected) throw new Error(`COPY batches: expected ${expected} rows in the last round, found ${stored}`);
    const runs: CopyBatchRun[] = [];
    for (const batchRows of batchSizes) {
      for (const mode of modes) {
        const cell = samples.get(`${mode}:${batchRows}`) ?? [];
        const run: CopyBatchRun = {
          mode,
          batchRows,
          rows: rowsPerCell,
          rowsPerS: Math.round(median(cell.map((s) => s.rowsPerS))),
          postgresUsPerRow: round2(median(cell.map((s) => s.postgresUsPerRow))),
          clientUsPerRow: round2(median(cell.map((s) => s.clientUsPerRow))),
          wallUsPerBatch: Math.round(median(cell.map((s) => s.wallUsPerBatch))),
        };
        log(`  ${String(batchRows).padStart(5)} rows/batch, ${mode.padEnd(11)}: ${run.rowsPerS.toLocaleString('en-US')} rows/s, PostgreSQL ${run.postgresUsPerRow} µs/row, client ${run.clientUsPerRow} µs/row, ${run.wallUsPerBatch} µs/batch`);
        runs.push(run);
      }
    }
    return runs;
  } finally {
    await client.end().catch(() => undefined);
    await scratch.drop();
  }
}
