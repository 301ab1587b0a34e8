/**
 * PostgreSQL's own ceiling for what the sink does: psql's \copy of pre-generated files
 * into the engine's `events` table (same schema, created by src/sink/migrations.ts in a
 * scratch database), in the binary format the sink sends and in CSV, with one stream and
 * with two concurrent streams. Rows are the load generator's events; the binary file is
 * written by the sink's own CopyEncoder.
 *
 * Every measurement starts from an empty table (TRUNCATE) and ends with a row count
 * check; PostgreSQL's and psql's CPU are sampled from /proc while it runs.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync, type WriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { attributesText, type ValidEvent } from '../../src/event';
import { copyColumns, CopyEncoder } from '../../src/sink/copy-encoder';
import { averageCpu, ProcSampler, type CpuSample } from '../common/proc-stats';
import { createScratchDatabase, prepareSchema } from '../common/scratch-database';
import { benchEvent } from '../load/bodies';

export type CopyFormat = 'binary' | 'csv';

export interface CopyRun {
  readonly format: CopyFormat;
  readonly streams: number;
  readonly rows: number;
  readonly fileBytesPerStream: number;
  readonly seconds: number;
  readonly rowsPerS: number;
  /** CPU of this database's backends and of psql, in cores. */
  readonly postgresCores: number;
  readonly psqlCores: number;
  /** Kernel threads: mostly writeback of what PostgreSQL wrote. */
  readonly kernelCores: number;
  /** Processes not part of the measurement (other work on the machine). */
  readonly otherCores: number;
  /** PostgreSQL backend CPU per row, µs. */
  readonly postgresUsPerRow: number;
}

const chunkRows = 10_000;
/** PGCOPY signature (11 bytes) + flags + header extension length. */
const binaryHeaderBytes = 19;
const binaryTrailer = Buffer.from([0xff, 0xff]);
const sampleEveryMs = 200;

/** The load generator's event `index` (bench/load/bodies.ts) as the sink receives it. */
export function benchValidEvent(eventId: string, index: number, nowMs: number, occurredAtUs: number): ValidEvent {
  const raw = benchEvent(eventId, index, nowMs);
  return {
    eventId: raw.event_id as string,
    eventType: raw.event_type as string,
    source: raw.source as string,
    actorId: raw.user_id as string,
    occurredAtUs,
    attributesJson: JSON.stringify(raw.properties),
  };
}

function eventAt(stream: number, index: number, nowMs: number): ValidEvent {
  return benchValidEvent(`nb${stream}-${String(index).padStart(8, '0')}`, index, nowMs, (nowMs - (index % 3_600_000)) * 1000);
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

async function write(stream: WriteStream, bytes: Buffer | string): Promise<void> {
  if (!stream.write(bytes)) await new Promise<void>((resolve) => stream.once('drain', () => resolve()));
}

/** Writes `rows` rows for `stream` in `format` to `file`; returns its size in bytes. */
export async function generateCopyFile(file: string, format: CopyFormat, stream: number, rows: number, nowMs: number): Promise<number> {
  const out = createWriteStream(file);
  const encoder = new CopyEncoder();
  const receivedAtUs = nowMs * 1000;
  const receivedAtText = new Date(nowMs).toISOString();
  for (let start = 0; start < rows; start += chunkRows) {
    const end = Math.min(rows, start + chunkRows);
    if (format === 'binary') {
      encoder.reset();
      for (let index = start; index < end; index++) encoder.addRow(eventAt(stream, index, nowMs), receivedAtUs);
      const encoded = encoder.finish();
      // One header for the file, one trailer at its end: chunks in between are rows only.
      await write(out, Buffer.from(encoded.subarray(start === 0 ? 0 : binaryHeaderBytes, encoded.length - binaryTrailer.length)));
    } else {
      const lines: string[] = [];
      for (let index = start; index < end; index++) {
        const event = eventAt(stream, index, nowMs);
        const occurredAt = new Date(event.occurredAtUs / 1000).toISOString();
        lines.push([event.eventId, event.eventType, event.source, event.actorId ?? '', occurredAt, receivedAtText, csvField(attributesText(event))].join(','));
      }
      await write(out, `${lines.join('\n')}\n`);
    }
  }
  if (format === 'binary') await write(out, binaryTrailer);
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return statSync(file).size;
}

function runPsql(databaseUrl: string, command: string, pids: number[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', databaseUrl, '-c', command], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (child.pid !== undefined) pids.push(child.pid);
    let errors = '';
    child.stderr?.on('data', (chunk: Buffer) => (errors += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`psql exited with ${code}: ${errors.trim()}`))));
  });
}

async function measure(client: pg.Client, databaseUrl: string, databaseName: string, files: readonly string[], format: CopyFormat, rowsPerStream: number, fileBytes: number): Promise<CopyRun> {
  await client.query('TRUNCATE events');
  const psqlPids: number[] = [];
  const sampler = new ProcSampler({ enginePid: null, clientPids: () => psqlPids, databaseName });
  const samples: CpuSample[] = [];
  const timer = setInterval(() => samples.push(sampler.sample()), sampleEveryMs);
  const option = format === 'binary' ? 'FORMAT binary' : 'FORMAT csv';
  const startedMs = performance.now();
  try {
    await Promise.all(files.map((file) => runPsql(databaseUrl, `\\copy events (${copyColumns}) FROM '${file}' WITH (${option})`, psqlPids)));
  } finally {
    clearInterval(timer);
  }
  const seconds = (performance.now() - startedMs) / 1000;
  samples.push(sampler.sample());
  const rows = rowsPerStream * files.length;
  const stored = Number((await client.query('SELECT count(*)::bigint AS n FROM events')).rows[0]?.n);
  if (stored !== rows) throw new Error(`COPY ${format} × ${files.length}: expected ${rows} rows, found ${stored}`);
  const cpu = averageCpu(samples);
  return {
    format,
    streams: files.length,
    rows,
    fileBytesPerStream: fileBytes,
    seconds: Math.round(seconds * 1000) / 1000,
    rowsPerS: Math.round(rows / seconds),
    postgresCores: Math.round(cpu.postgresRunCores * 100) / 100,
    psqlCores: Math.round(cpu.clientCores * 100) / 100,
    kernelCores: Math.round(cpu.kernelCores * 100) / 100,
    otherCores: Math.round((cpu.otherCores + cpu.postgresOtherCores) * 100) / 100,
    postgresUsPerRow: Math.round(((cpu.postgresRunCores * seconds) / rows) * 1e6 * 100) / 100,
  };
}

export async function runCopyCeiling(serverUrl: string, rowsPerStream: number, log: (line: string) => void): Promise<CopyRun[]> {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'floodgate-copy-'));
  const scratch = await createScratchDatabase(serverUrl, `copy${Date.now().toString(36)}`);
  const client = new pg.Client({ connectionString: scratch.url });
  try {
    await prepareSchema(scratch.url);
    await client.connect();
    const runs: CopyRun[] = [];
    const nowMs = Date.now();
    for (const format of ['binary', 'csv'] as const) {
      const files = [0, 1].map((stream) => path.join(directory, `stream-${stream}.${format === 'binary' ? 'pgcopy' : 'csv'}`));
      log(`generating 2 × ${rowsPerStream.toLocaleString('en-US')} rows as ${format}…`);
      const sizes = await Promise.all(files.map((file, stream) => generateCopyFile(file, format, stream, rowsPerStream, nowMs)));
      for (const streams of [1, 2]) {
        const run = await measure(client, scratch.url, scratch.name, files.slice(0, streams), format, rowsPerStream, sizes[0] ?? 0);
        log(`  \\copy ${format}, ${streams} stream(s): ${run.rowsPerS.toLocaleString('en-US')} rows/s (PostgreSQL ${run.postgresCores} cores, ${run.postgresUsPerRow} µs/row; psql ${run.psqlCores}; kernel ${run.kernelCores}; other processes ${run.otherCores})`);
        runs.push(run);
      }
      for (const file of files) rmSync(file, { force: true });
    }
    return runs;
  } finally {
    await client.end().catch(() => undefined);
    await scratch.drop();
    rmSync(directory, { recursive: true, force: true });
  }
}
