/**
 * `npm run bench:profile -- <scenario> [--duration-scale X] [--interval-us N] [--rate R]`:
 * runs one load scenario against an engine started under `node --cpu-prof` (its worker
 * threads inherit the option, so every thread writes a profile when the engine exits after
 * its drain), then writes
 *
 *   bench/results/profile-<scenario>-<date>.json / .md    busy cores, CPU per event, areas, hot functions per thread
 *   bench/results/profile-<scenario>-<date>-<thread>.svg  one flame graph per thread
 *
 * The raw .cpuprofile files stay in a temporary directory whose path is printed (they are
 * tens of MB; open them in Chrome DevTools or speedscope). The run's own database check
 * still applies: the exit code is 1 when it failed.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exitWithUsage, parseToolArgs, positiveNumber } from '../common/cli-args';
import { fileStamp, machineInfo, repoRoot, writeResultFiles } from '../common/results';
import { runScenario } from '../load/load-run';
import { adjustScenario, loadScenario } from '../load/scenario';
import { busyCores } from './cpu-profile';
import { renderFlameSvg } from './flame-svg';
import { profileRecord, readProfiles, renderProfileMarkdown } from './profile-report';

interface Options {
  readonly name: string;
  readonly durationScale?: number;
  readonly ratePerS?: number;
  readonly intervalUs: number;
}

const defaultIntervalUs = 500;

const usage = 'usage: npm run bench:profile -- <scenario> [--duration-scale X] [--rate R] [--interval-us N]';

function parseCli(argv: readonly string[]): Options {
  const { values, positionals } = parseToolArgs({
    args: [...argv],
    allowPositionals: true,
    options: { 'duration-scale': { type: 'string' }, rate: { type: 'string' }, 'interval-us': { type: 'string' } },
  }, usage);
  const [name, ...others] = positionals;
  if (name === undefined) return exitWithUsage('a scenario is needed', usage);
  if (others.length > 0) exitWithUsage('one scenario per profile run', usage);
  return {
    name,
    durationScale: positiveNumber(values['duration-scale'], '--duration-scale', usage),
    ratePerS: positiveNumber(values.rate, '--rate', usage),
    intervalUs: Math.round(positiveNumber(values['interval-us'], '--interval-us', usage) ?? defaultIntervalUs),
  };
}

export async function profileScenario(options: Options, progress: (line: string) => void): Promise<{ files: string[]; ok: boolean; profileDir: string }> {
  const loaded = loadScenario(options.name);
  if (loaded.target !== 'floodgate') throw new Error(`${loaded.name} targets ${loaded.target}: only the engine is profiled`);
  const scenario = adjustScenario(loaded, { target: 'floodgate', durationScale: options.durationScale, ratePerS: options.ratePerS });
  const profileDir = mkdtempSync(path.join(os.tmpdir(), 'floodgate-cpu-prof-'));
  const result = await runScenario(scenario, {
    progress,
    engineNodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-interval=${options.intervalUs}`],
  });
  const threads = readProfiles(profileDir, repoRoot);
  if (threads.length === 0) throw new Error(`the engine wrote no CPU profile into ${profileDir}`);
  const stem = `profile-${scenario.name}-${fileStamp(new Date(result.run.startedAt))}`;
  const machine = machineInfo();
  const written: string[] = [];
  const svgNames = new Map<string, string>();
  for (const entry of threads) {
    const svgName = `${stem}-${entry.thread}.svg`;
    svgNames.set(entry.thread, svgName);
    written.push(...writeResultFiles(`${stem}-${entry.thread}`, { svg: renderFlameSvg(entry.profile, `${scenario.name}: ${entry.thread} thread, ${busyCores(entry.profile).toFixed(2)} cores busy`, `${result.totals.eventsPerS.toLocaleString('en-US')} events/s · ${result.run.startedAt} · commit ${machine.gitCommit ?? '?'} · width = busy time (idle left out)`) }));
  }
  const summary = {
    scenario: scenario.name,
    eventsAcknowledged: result.totals.eventsAcknowledged,
    eventsPerS: result.totals.eventsPerS,
    startedAt: result.run.startedAt,
    commit: machine.gitCommit,
    machine: `${machine.cpuModel} × ${machine.cores}, Node ${machine.node}, PostgreSQL ${result.run.postgres}`,
    intervalUs: options.intervalUs,
  };
  written.push(...writeResultFiles(stem, { json: JSON.stringify(profileRecord(summary, threads), null, 2), md: renderProfileMarkdown(summary, threads, svgNames) }));
  return { files: written, ok: result.verification.ok, profileDir };
}

async function main(): Promise<void> {
  const options = parseCli(process.argv.slice(2));
  const { files, ok, profileDir } = await profileScenario(options, (line) => process.stderr.write(`${line}\n`));
  for (const file of files) process.stdout.write(`  ${file}\n`);
  process.stdout.write(`raw profiles: ${profileDir}\n`);
  if (!ok) {
    process.stderr.write('the run\'s database check FAILED\n');
    process.exitCode = 1;
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
