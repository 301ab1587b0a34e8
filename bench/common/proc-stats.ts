/**
 * CPU and memory attribution from /proc (Linux only), sampled about once a second while
 * a benchmark runs. On a 2-core machine the load generator, the engine and PostgreSQL
 * compete for the same cores, so every run reports who used them:
 *
 *   engine         the engine process, split into its main thread and the rest (actors,
 *                  libuv pool, V8 helpers), by thread name
 *   postgres run   PostgreSQL backends serving this run's scratch database (found by
 *                  the database name in the backend's process title)
 *   postgres other every other postgres process: WAL writer, checkpointer, background
 *                  writer (partly this run's work) and other databases (not ours)
 *   clients        the load generator's processes (wrk, psql…)
 *   runner         the process doing the sampling
 *   kernel         kernel threads (writeback, softirq, workqueues): partly this run's I/O
 *   other          every other process: other people's builds and tests on the machine
 *   unattributed   busy time no live process accounts for: interrupts, processes that
 *                  started and ended between two samples
 *   steal          time the hypervisor gave this VM's cores to someone else (/proc/stat's
 *                  steal column): the machine was slower than its core count says
 *
 * "cores" below means CPU-seconds per second: 1.0 is one core fully busy.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

let clockTicksPerSecond = 0;
const coreCount = os.cpus().length;

/** USER_HZ from getconf, read once (it is 100 on every Linux seen so far). */
export function clockTicks(): number {
  if (clockTicksPerSecond === 0) {
    try {
      clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicksPerSecond = 100;
    }
  }
  return clockTicksPerSecond;
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'latin1');
  } catch {
    return null;
  }
}

export interface StatLine {
  readonly name: string;
  readonly ppid: number;
  /** User + system CPU ticks. */
  readonly ticks: number;
  /** When the process started (ticks since boot): with the pid, it names one process even if pids are reused. */
  readonly startTicks: number;
}

/** Fields of a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat line. */
export function parseStat(text: string): StatLine | null {
  // The name is in parentheses and may itself contain spaces or parentheses.
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const fields = text.slice(close + 2).split(' ');
  // After the name: state is field 3, utime field 14 and stime field 15 (1-based).
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return null;
  return { name: text.slice(open + 1, close), ppid: Number(fields[1]), ticks: utime + stime, startTicks: Number(fields[19]) };
}

export function processTicks(pid: number): number | null {
  const text = readText(`/proc/${pid}/stat`);
  return text === null ? null : (parseStat(text)?.ticks ?? null);
}

/** Resident set size in bytes (VmRSS), or null when the process is gone. */
export function residentBytes(pid: number): number | null {
  const text = readText(`/proc/${pid}/status`);
  const match = text === null ? null : /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return match === null ? null : Number(match[1]) * 1024;
}

/** Busy, stolen and total ticks over all cores, from the first line of /proc/stat. */
export function systemTicks(): { busy: number; steal: number; total: number } {
  const line = (readText('/proc/stat') ?? '').split('\n', 1)[0] ?? '';
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  // Fields: user nice system idle iowait irq softirq steal guest guest_nice; guest time is
  // already counted in user, so only the first eight make up the total.
  const total = values.slice(0, 8).reduce((sum, value) => sum + (Number.isFinite(value) ? value : 0), 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  const steal = values[7] ?? 0;
  return { busy: total - idle - steal, steal, total };
}

export interface CpuSample {
  readonly elapsedS: number;
  /** All cores together; at most the core count. */
  readonly systemBusyCores: number;
  readonly engineCores: number;
  readonly engineMainThreadCores: number;
  /** Engine threads other than the main one, summed by thread name. */
  readonly engineThreadCores: Readonly<Record<string, number>>;
  readonly postgresRunCores: number;
  readonly postgresOtherCores: number;
  readonly clientCores: number;
  readonly runnerCores: number;
  readonly kernelCores: number;
  /** Processes that are not part of the run (other people's work on a shared machine). */
  readonly otherCores: number;
  /** systemBusy minus everything attributed above (never below 0). */
  readonly unattributedCores: number;
  /** Time the hypervisor ran something else on this VM's cores. */
  readonly stealCores: number;
  readonly engineRssBytes: number | null;
}

export interface ProcSamplerOptions {
  enginePid: number | null;
  clientPids: () => readonly number[];
  /** Backends whose process title names this database count as the run's PostgreSQL. */
  databaseName: string | null;
}

/**
 * Keeps the previous tick counts and turns each sample() into per-second shares. Ticks of
 * a process that exited between two samples are lost, which is why load clients also
 * report their own CPU time at the end.
 */
export class ProcSampler {
  readonly #options: ProcSamplerOptions;
  readonly #previous = new Map<string, number>();
  #previousAtMs = performance.now();
  #previousSystem = systemTicks();

  constructor(options: ProcSamplerOptions) {
    this.#options = options;
    this.sample();
  }

  sample(): CpuSample {
    const nowMs = performance.now();
    const elapsedS = Math.max((nowMs - this.#previousAtMs) / 1000, 1e-3);
    this.#previousAtMs = nowMs;
    const toCores = (ticks: number): number => ticks / clockTicks() / elapsedS;
    const system = systemTicks();
    const systemTotal = system.total - this.#previousSystem.total;
    const busyShare = systemTotal > 0 ? (system.busy - this.#previousSystem.busy) / systemTotal : 0;
    const stealShare = systemTotal > 0 ? (system.steal - this.#previousSystem.steal) / systemTotal : 0;
    this.#previousSystem = system;
    const systemBusyCores = busyShare * coreCount;

    const pids = this.#scanProcesses();
    const engine = this.#engineThreadTicks();
    const engineThreadCores: Record<string, number> = {};
    for (const [name, ticks] of Object.entries(engine.threads)) engineThreadCores[name] = toCores(ticks);
    const attributed = toCores(pids.engine + pids.postgresRun + pids.postgresOther + pids.clients + pids.runner + pids.kernel + pids.other);
    return {
      elapsedS,
      systemBusyCores,
      engineCores: toCores(pids.engine),
      engineMainThreadCores: toCores(engine.main),
      engineThreadCores,
      postgresRunCores: toCores(pids.postgresRun),
      postgresOtherCores: toCores(pids.postgresOther),
      clientCores: toCores(pids.clients),
      runnerCores: toCores(pids.runner),
      kernelCores: toCores(pids.kernel),
      otherCores: toCores(pids.other),
      unattributedCores: Math.max(0, systemBusyCores - attributed),
      stealCores: stealShare * coreCount,
      engineRssBytes: this.#options.enginePid === null ? null : residentBytes(this.#options.enginePid),
    };
  }

  /** One pass over /proc: every process's ticks since the previous sample, by role. */
  #scanProcesses(): Record<'engine' | 'postgresRun' | 'postgresOther' | 'clients' | 'runner' | 'kernel' | 'other', number> {
    const totals = { engine: 0, postgresRun: 0, postgresOther: 0, clients: 0, runner: 0, kernel: 0, other: 0 };
    const clientPids = new Set(this.#options.clientPids());
    const databaseName = this.#options.databaseName;
    const seen = new Set<string>();
    for (const entry of readdirSafe('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = parseStatFile(`/proc/${entry}/stat`);
      if (stat === null) continue;
      const pid = Number(entry);
      const key = `p:${pid}:${stat.startTicks}`;
      seen.add(key);
      const ticks = this.#delta(key, stat.ticks);
      if (pid === this.#options.enginePid) totals.engine += ticks;
      else if (clientPids.has(pid)) totals.clients += ticks;
      else if (pid === process.pid) totals.runner += ticks;
      else if (stat.name === 'postgres') {
        // Read every time: a pid may be reused by a backend of another database.
        const title = (readText(`/proc/${pid}/cmdline`) ?? '').replace(/\0/g, ' ');
        if (databaseName !== null && title.includes(` ${databaseName} `)) totals.postgresRun += ticks;
        else totals.postgresOther += ticks;
      } else if (pid === 2 || stat.ppid === 2) totals.kernel += ticks;
      else totals.other += ticks;
    }
    // Forget processes that are gone, so the map does not grow over a long run.
    for (const key of this.#previous.keys()) if (key.startsWith('p:') && !seen.has(key)) this.#previous.delete(key);
    return totals;
  }

  /** Ticks since the previous sample; the first sight of a key counts as zero. */
  #delta(key: string, ticks: number | null): number {
    if (ticks === null) return 0;
    const before = this.#previous.get(key);
    this.#previous.set(key, ticks);
    return before === undefined ? 0 : Math.max(0, ticks - before);
  }

  /** The engine's main thread and its other threads by name (threads that exited are not listed). */
  #engineThreadTicks(): { main: number; threads: Record<string, number> } {
    const pid = this.#options.enginePid;
    const threads: Record<string, number> = {};
    if (pid === null) return { main: 0, threads };
    let main = 0;
    for (const tid of readdirSafe(`/proc/${pid}/task`)) {
      const stat = parseStatFile(`/proc/${pid}/task/${tid}/stat`);
      if (stat === null) continue;
      const ticks = this.#delta(`t:${tid}:${stat.startTicks}`, stat.ticks);
      if (tid === String(pid)) main += ticks;
      else threads[stat.name] = (threads[stat.name] ?? 0) + ticks;
    }
    return { main, threads };
  }
}

function parseStatFile(file: string): StatLine | null {
  const text = readText(file);
  return text === null ? null : parseStat(text);
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Averages of a list of samples, weighted by their elapsed time. */
export function averageCpu(samples: readonly CpuSample[]): Omit<CpuSample, 'elapsedS' | 'engineRssBytes'> & { seconds: number } {
  const seconds = samples.reduce((sum, sample) => sum + sample.elapsedS, 0) || 1;
  const mean = (pick: (sample: CpuSample) => number): number =>
    samples.reduce((sum, sample) => sum + pick(sample) * sample.elapsedS, 0) / seconds;
  const threadNames = new Set(samples.flatMap((sample) => Object.keys(sample.engineThreadCores)));
  const engineThreadCores: Record<string, number> = {};
  for (const name of threadNames) engineThreadCores[name] = mean((sample) => sample.engineThreadCores[name] ?? 0);
  return {
    seconds,
    systemBusyCores: mean((sample) => sample.systemBusyCores),
    engineCores: mean((sample) => sample.engineCores),
    engineMainThreadCores: mean((sample) => sample.engineMainThreadCores),
    engineThreadCores,
    postgresRunCores: mean((sample) => sample.postgresRunCores),
    postgresOtherCores: mean((sample) => sample.postgresOtherCores),
    clientCores: mean((sample) => sample.clientCores),
    runnerCores: mean((sample) => sample.runnerCores),
    kernelCores: mean((sample) => sample.kernelCores),
    otherCores: mean((sample) => sample.otherCores),
    unattributedCores: mean((sample) => sample.unattributedCores),
    stealCores: mean((sample) => sample.stealCores),
  };
}
