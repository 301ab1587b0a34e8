/**
 * `npm run bench:micro -- [suite…] [--time ms]`: runs the micro-benchmarks with tinybench
 * and writes bench/results/micro-<date>.json and .md. Each task's result is reported per
 * unit it processes (event, row, record, id, value), so variants that take different
 * batch sizes compare directly.
 *
 *   suite      a suite name (decode-validate, envelope, ring, dedupe-window, copy-encoder,
 *              hdr-recording); all when none is given
 *   --time     measuring time per task in ms (default 1000); warm-up is a quarter of it
 */
import type { Bench } from 'tinybench' with { 'resolution-mode': 'import' };
import { parseToolArgs, positiveNumber } from '../common/cli-args';
import { fileStamp, formatCount, machineInfo, markdownTable, round, writeResultFiles, type MachineInfo } from '../common/results';
import { suite as authCheck } from './auth-check';
import { suite as clientSdk } from './client-sdk';
import { suite as copyEncoder } from './copy-encoder';
import { suite as decodeValidate } from './decode-validate';
import { suite as dedupeWindow } from './dedupe-window';
import { suite as envelope } from './envelope';
import { suite as hdrRecording } from './hdr-recording';
import type { MicroSuite } from './micro-suite';
import { suite as ring } from './ring';
import { suite as rollupCounts } from './rollup-counts';

export const suites: readonly MicroSuite[] = [decodeValidate, envelope, ring, dedupeWindow, copyEncoder, hdrRecording, authCheck, rollupCounts, clientSdk];

export interface MicroRow {
  readonly suite: string;
  readonly task: string;
  readonly unit: string;
  /** Mean time per unit, ns. */
  readonly nsPerUnit: number;
  readonly unitsPerS: number;
  /** tinybench's relative margin of error of the mean per call, %. */
  readonly rmePercent: number;
  readonly samples: number;
}

export interface MicroResult {
  readonly date: string;
  readonly machine: MachineInfo;
  readonly timeMsPerTask: number;
  readonly suites: readonly { name: string; description: string }[];
  readonly rows: readonly MicroRow[];
}

export async function runMicro(options: { names?: readonly string[]; timeMs?: number; log?: (line: string) => void } = {}): Promise<MicroResult> {
  const timeMs = options.timeMs ?? 1000;
  const log = options.log ?? (() => undefined);
  const chosen = options.names === undefined || options.names.length === 0 ? suites : suites.filter((suite) => options.names?.includes(suite.name));
  const unknown = (options.names ?? []).filter((name) => !suites.some((suite) => suite.name === name));
  if (unknown.length > 0) throw new Error(`unknown micro suite(s): ${unknown.join(', ')} (known: ${suites.map((suite) => suite.name).join(', ')})`);
  const machine = machineInfo();
  const { Bench: BenchClass } = await import('tinybench');
  const rows: MicroRow[] = [];
  for (const suite of chosen) {
    await suite.prepare?.();
    const tasks = suite.tasks();
    const bench: Bench = new BenchClass({ name: suite.name, time: timeMs, warmupTime: Math.max(10, timeMs / 4) });
    for (const task of tasks) bench.add(task.name, task.fn);
    log(`${suite.name}: ${suite.description}`);
    await bench.run();
    bench.tasks.forEach((benchTask, index) => {
      const task = tasks[index];
      const result = benchTask.result;
      if (task === undefined) return;
      if (result.state !== 'completed') throw new Error(`${suite.name} / ${task.name}: ${result.state}${'error' in result ? `: ${String(result.error)}` : ''}`);
      const nsPerUnit = (result.latency.mean * 1e6) / task.unitsPerCall;
      const row: MicroRow = {
        suite: suite.name,
        task: task.name,
        unit: task.unit,
        nsPerUnit: round(nsPerUnit, 1),
        unitsPerS: Math.round(1e9 / nsPerUnit),
        rmePercent: round(result.latency.rme, 2),
        samples: result.latency.samplesCount,
      };
      rows.push(row);
      log(`  ${row.task.padEnd(58)} ${String(row.nsPerUnit).padStart(10)} ns/${row.unit}  ±${row.rmePercent}%`);
    });
  }
  return { date: new Date().toISOString(), machine, timeMsPerTask: timeMs, suites: chosen.map((suite) => ({ name: suite.name, description: suite.description })), rows };
}

export function renderMicroMarkdown(result: MicroResult): string {
  const lines = [
    `# Micro-benchmarks, ${result.date}`,
    '',
    `tinybench, ${result.timeMsPerTask} ms per task; ${result.machine.cpuModel} × ${result.machine.cores}, Node ${result.machine.node}; load average at start ${result.machine.loadAverageAtStart.join(' / ')}; commit ${result.machine.gitCommit ?? '?'}${result.machine.gitDirty ? ' (work tree modified)' : ''}.`,
    '',
  ];
  for (const suite of result.suites) {
    lines.push(`## ${suite.name}`, '', suite.description, '');
    const rows = result.rows.filter((row) => row.suite === suite.name);
    lines.push(markdownTable(['variant', 'ns per unit', 'units/s', '± %'], rows.map((row) => [row.task, `${row.nsPerUnit} ns/${row.unit}`, formatCount(row.unitsPerS), String(row.rmePercent)])), '');
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const usage = 'usage: npm run bench:micro -- [suite…] [--time ms]';
  const { values, positionals: names } = parseToolArgs({ args: process.argv.slice(2), allowPositionals: true, options: { time: { type: 'string' } } }, usage);
  const timeMs = positiveNumber(values.time, '--time', usage) ?? 1000;
  const result = await runMicro({ names, timeMs, log: (line) => process.stderr.write(`${line}\n`) });
  const files = writeResultFiles(`micro-${fileStamp(new Date(result.date))}`, { json: JSON.stringify(result, null, 2), md: renderMicroMarkdown(result) });
  process.stdout.write(`written:\n  ${files.join('\n  ')}\n`);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
