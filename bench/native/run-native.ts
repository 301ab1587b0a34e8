/**
 * `npm run bench:native -- [copy] [http] [ring] [--rows N] [--duration S]`: the ceilings of
 * the machine Floodgate runs on, measured with native tools beside the engine's own
 * parts, written to bench/results/native-<date>.json and .md.
 *
 *   copy   psql \copy into the engine's events table, binary and CSV, 1 and 2 streams
 *          (--rows per stream, default 1,000,000), on DATABASE_URL's server (default the
 *          local PostgreSQL), in a scratch database dropped afterwards
 *   http   wrk against a bare uWebSockets.js server (--duration seconds per variant, default 10)
 *   ring   the SharedArrayBuffer ring across two threads vs a C11 SPSC ring
 *   copy-batches  the sink's binary COPY over one connection at 100–5,000 rows per batch,
 *          in BEGIN … COMMIT and alone (--batch-rows rows per cell, default 100,000;
 *          --rounds, default 5): what a batch costs PostgreSQL apart from its rows
 *   key-collation  the sink's COPY into events with event_id in the database's collation,
 *          "C" and ICU en-US (--collation-rows per round, default 90,000; --rounds):
 *          what the primary key's comparisons cost per row
 * All five when none is named.
 */
import { exitWithUsage, parseToolArgs, positiveNumber } from '../common/cli-args';
import { fileStamp, formatCount, machineInfo, markdownTable, writeResultFiles, type MachineInfo } from '../common/results';
import { serverUrlFromEnv, serverVersion } from '../common/scratch-database';
import { runCopyBatches, type CopyBatchRun } from './copy-batches';
import { runCopyCeiling, type CopyRun } from './copy-ceiling';
import { runHttpCeiling, type HttpRun } from './http-ceiling';
import { runKeyCollation, type CollationRun } from './key-collation';
import { runRingComparison, type RingComparison } from './ring-comparison';

interface NativeResult {
  readonly date: string;
  readonly machine: MachineInfo;
  readonly postgres: string | null;
  readonly copy: readonly CopyRun[] | null;
  readonly copyBatches: readonly CopyBatchRun[] | null;
  readonly keyCollation: readonly CollationRun[] | null;
  readonly http: readonly HttpRun[] | null;
  readonly ring: readonly RingComparison[] | null;
}

const usage = 'usage: npm run bench:native -- [copy] [http] [ring] [copy-batches] [key-collation] [--rows N] [--duration S] [--batch-rows N] [--rounds N] [--collation-rows N]';

type NumericOption = 'rows' | 'duration' | 'batch-rows' | 'rounds' | 'collation-rows';

/** The parts named on the command line (all when none is), and the numeric options. */
function parseCli(argv: readonly string[]): { named: string[]; option: (name: NumericOption, fallback: number) => number } {
  const { values, positionals } = parseToolArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      rows: { type: 'string' },
      duration: { type: 'string' },
      'batch-rows': { type: 'string' },
      rounds: { type: 'string' },
      'collation-rows': { type: 'string' },
    },
  }, usage);
  return { named: positionals, option: (name, fallback) => positiveNumber(values[name], `--${name}`, usage) ?? fallback };
}

function renderMarkdown(result: NativeResult): string {
  const m = result.machine;
  const lines = [`# Native ceilings, ${result.date}`, '', `${m.cpuModel} × ${m.cores}, ${m.memoryGiB} GiB, Node ${m.node}, PostgreSQL ${result.postgres ?? '-'}; load average at start ${m.loadAverageAtStart.join(' / ')}.`, ''];
  if (result.copy !== null) {
    lines.push('## PostgreSQL: psql \\copy into events', '', markdownTable(['format', 'streams', 'rows', 'rows/s', 'PostgreSQL cores', 'PostgreSQL µs/row', 'psql cores', 'kernel cores', 'other processes cores'], result.copy.map((run) => [
      run.format, String(run.streams), formatCount(run.rows), formatCount(run.rowsPerS), String(run.postgresCores), String(run.postgresUsPerRow), String(run.psqlCores), String(run.kernelCores), String(run.otherCores),
    ])), '');
  }
  if (result.copyBatches !== null) {
    lines.push('## PostgreSQL: the sink\'s COPY per batch size, one connection (medians of the rounds)', '', markdownTable(['rows/batch', 'mode', 'rows/s', 'PostgreSQL µs/row', 'client µs/row', 'wall µs/batch'], result.copyBatches.map((run) => [
      formatCount(run.batchRows), run.mode, formatCount(run.rowsPerS), String(run.postgresUsPerRow), String(run.clientUsPerRow), formatCount(run.wallUsPerBatch),
    ])), '');
  }
  if (result.keyCollation !== null) {
    lines.push('## PostgreSQL: collation of event_id (the sink\'s COPY, 300-row batches; median round)', '', markdownTable(['collation', 'rows/round', 'PostgreSQL µs/row', 'rounds'], result.keyCollation.map((run) => [
      run.collation, formatCount(run.rowsPerRound), String(run.postgresUsPerRow), run.postgresUsPerRowRounds.join(' / '),
    ])), '');
  }
  if (result.http !== null) {
    lines.push('## HTTP: wrk → bare uWebSockets.js (read body, answer 202)', '', markdownTable(['variant', 'body bytes', 'req/s', 'events/s', 'p50 / p99 ms', 'server cores', 'server µs/req', 'wrk cores', 'kernel cores', 'other processes cores'], result.http.map((run) => [
      run.name, String(run.bodyBytes), formatCount(run.requestsPerS), formatCount(run.eventsPerS), `${run.latencyMs.p50} / ${run.latencyMs.p99}`, String(run.serverCores), String(run.serverUsPerRequest), String(run.wrkCores), String(run.kernelCores), String(run.otherCores),
    ])), '');
  }
  if (result.ring !== null) {
    lines.push('## SPSC ring over two threads: SharedArrayBuffer (engine) vs C11', '', markdownTable(['record', 'publish every', 'JS records/s', 'JS MB/s', 'C records/s', 'C MB/s'], result.ring.map((row) => [
      `${row.js.payloadBytes} B (${row.envelopeEvents}-event envelope)`, String(row.js.publishEvery), formatCount(row.js.recordsPerS), String(row.js.megabytesPerS), formatCount(row.c.recordsPerS), String(row.c.megabytesPerS),
    ])), '');
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { named, option } = parseCli(process.argv.slice(2));
  const wanted = (part: string): boolean => named.length === 0 || named.includes(part);
  const parts = ['copy', 'http', 'ring', 'copy-batches', 'key-collation'];
  const unknown = named.filter((part) => !parts.includes(part));
  if (unknown.length > 0) exitWithUsage(`unknown part(s): ${unknown.join(', ')} (${parts.join(', ')})`, usage);
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const machine = machineInfo();
  const serverUrl = serverUrlFromEnv();
  log('ring: SharedArrayBuffer vs C11');
  const ring = wanted('ring') ? await runRingComparison(log) : null;
  log('http: wrk → bare uWebSockets.js');
  const http = wanted('http') ? await runHttpCeiling(option('duration', 10), log) : null;
  log('copy: psql \\copy into events');
  const copy = wanted('copy') ? await runCopyCeiling(serverUrl, option('rows', 1_000_000), log) : null;
  log('copy-batches: the sink\'s COPY per batch size');
  const copyBatches = wanted('copy-batches') ? await runCopyBatches(serverUrl, option('batch-rows', 100_000), option('rounds', 5), log) : null;
  log('key-collation: event_id collation under the sink\'s COPY');
  const keyCollation = wanted('key-collation') ? await runKeyCollation(serverUrl, option('collation-rows', 90_000), option('rounds', 5), log) : null;
  const usesPostgres = copy !== null || copyBatches !== null || keyCollation !== null;
  const result: NativeResult = { date: new Date().toISOString(), machine, postgres: usesPostgres ? await serverVersion(serverUrl) : null, copy, copyBatches, keyCollation, http, ring };
  const files = writeResultFiles(`native-${fileStamp(new Date(result.date))}`, { json: JSON.stringify(result, null, 2), md: renderMarkdown(result) });
  process.stdout.write(`written:\n  ${files.join('\n  ')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
