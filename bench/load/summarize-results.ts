/**
 * One Markdown table from many load results, for docs/benchmarks.md and for comparing runs:
 *
 *   node dist/bench/load/summarize-results.js bench/results/*.json
 *
 * Files that are not load results (micro, native, copy-paths…) are skipped. Each row
 * carries the machine load of its run ("other processes" cores: CPU used by work that was
 * not part of the run), because on a shared 2-core machine that decides the numbers.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseToolArgs } from '../common/cli-args';
import { markdownTable, formatCount } from '../common/results';
import type { LoadResult } from './load-run';

function isLoadResult(value: unknown): value is LoadResult {
  const candidate = value as Partial<LoadResult> | null;
  return typeof candidate === 'object' && candidate !== null && candidate.verification !== undefined && candidate.scenario !== undefined && Array.isArray(candidate.timeline);
}

export function summaryRow(result: LoadResult): string[] {
  const cpu = result.cpuCores;
  const cores = (value: number | undefined): string => (value === undefined ? '-' : value.toFixed(2));
  // CPU time per acknowledged event: cores × 1e6 µs/s ÷ events/s.
  const perEvent = (value: number | undefined): string => (value === undefined || result.totals.eventsPerS === 0 ? '-' : ((value * 1e6) / result.totals.eventsPerS).toFixed(1));
  return [
    result.scenario.name,
    result.run.target,
    result.run.startedAt.replace(/\.\d+Z$/, 'Z'),
    formatCount(result.totals.eventsPerS),
    `${result.latencyMs.p50} / ${result.latencyMs.p99}`,
    result.verification.ok ? 'ok' : 'FAILED',
    cpu === null ? '-' : `${cores(cpu.engineCores)} (${cores(cpu.engineMainThreadCores)})`,
    cores(cpu?.postgresRunCores),
    `${perEvent(cpu?.engineCores)} / ${perEvent(cpu?.postgresRunCores)}`,
    cores(cpu?.clientCores),
    cores(cpu?.otherCores),
    String(result.machine.loadAverageAtStart[0] ?? '-'),
  ];
}

export const summaryHeader = [
  'scenario', 'target', 'started (UTC)', 'events/s', 'p50 / p99 ms', 'check',
  'server cores (main thread)', 'PostgreSQL cores', 'server / PostgreSQL CPU µs per event', 'client cores', 'other processes cores', 'load avg 1 min',
];

export function summarize(files: readonly string[]): string {
  const results: LoadResult[] = [];
  for (const file of files) {
    try {
      const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (isLoadResult(parsed)) results.push(parsed);
    } catch {
      // Not JSON, or not ours: skipped.
    }
  }
  results.sort((a, b) => a.scenario.name.localeCompare(b.scenario.name) || a.run.startedAt.localeCompare(b.run.startedAt));
  return markdownTable(summaryHeader, results.map(summaryRow));
}

if (require.main === module) {
  const usage = 'usage: node dist/bench/load/summarize-results.js bench/results/*.json';
  // No options: parseArgs refuses a stray --flag instead of it being skipped as a file that is not JSON.
  const files = parseToolArgs({ args: process.argv.slice(2), allowPositionals: true, options: {} }, usage).positionals.map((file) => path.resolve(file));
  if (files.length === 0) {
    process.stderr.write(`${usage}\n`);
    process.exit(2);
  }
  process.stdout.write(`${summarize(files)}\n`);
}
