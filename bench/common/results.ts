/**
 * Where benchmark results go and what every result file says about the machine it was
 * measured on. Numbers from a shared 2-core machine mean little without the load that
 * was on it, so each result records the load average before the run and (for runs that
 * sample /proc) how much CPU went to processes that were not part of the run.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The repository root, from dist/bench/common/ (compiled) or bench/common/ (source). */
export const repoRoot = path.resolve(__dirname, __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../..' : '../..');
export const resultsDir = path.join(repoRoot, 'bench', 'results');

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
  /** 1, 5 and 15 minute load averages when the run started. */
  readonly loadAverageAtStart: readonly number[];
  readonly gitCommit: string | null;
  /** True when the work tree had uncommitted changes (other engineers edit it concurrently). */
  readonly gitDirty: boolean | null;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform}-${process.arch} ${os.release()}`,
    loadAverageAtStart: os.loadavg().map((value) => Math.round(value * 100) / 100),
    // A run from an exported snapshot (no .git) names its commit in the environment.
    gitCommit: process.env.FLOODGATE_BENCH_COMMIT ?? git(['rev-parse', '--short', 'HEAD']),
    gitDirty: process.env.FLOODGATE_BENCH_COMMIT !== undefined ? false : gitDirty(),
  };
}

function git(args: readonly string[]): string | null {
  try {
    return execFileSync('git', args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function gitDirty(): boolean | null {
  const status = git(['status', '--porcelain', '--untracked-files=no']);
  return status === null ? null : status.length > 0;
}

/** A file-name-safe UTC timestamp: 2026-11-22T02-00-50Z. */
export function fileStamp(date: Date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/:/g, '-');
}

/** Writes `<stem>.<ext>` for each given content into resultsDir (git ignores it) and returns the paths. */
export function writeResultFiles(stem: string, files: Readonly<Record<string, string>>): string[] {
  mkdirSync(resultsDir, { recursive: true });
  return Object.entries(files).map(([extension, content]) => {
    const file = path.join(resultsDir, `${stem}.${extension}`);
    writeFileSync(file, content.endsWith('\n') ? content : `${content}\n`);
    return path.relative(process.cwd(), file);
  });
}

/** A Markdown table from a header row and body rows (cells already formatted). */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** Rounds for display without pretending to more precision than a noisy machine gives. */
export function round(value: number, digits = 0): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** 12,345 style, for tables. */
export function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}
