/**
 * The HTTP front end's ceiling: wrk (C, one thread, 50 connections) driving the bare
 * uWebSockets.js server of uws-ceiling-server.ts with unique bulk and single-event bodies
 * (native-bench/wrk-bulk.lua). wrk because a Node load tool saturates first: autocannon
 * stopped near 35k req/s on a 2-core machine where uWebSockets.js answered ~91k. The server's and wrk's CPU are sampled
 * from /proc while it runs: on two cores they compete, so both are reported.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { averageCpu, ProcSampler, type CpuSample } from '../common/proc-stats';
import { repoRoot } from '../common/results';
import { freePort } from '../../test/support/free-port';

export interface HttpRun {
  readonly name: string;
  readonly route: string;
  readonly eventsPerRequest: number;
  readonly connections: number;
  readonly seconds: number;
  readonly requestsPerS: number;
  readonly eventsPerS: number;
  readonly bodyBytes: number;
  readonly latencyMs: { readonly p50: number; readonly p90: number; readonly p99: number };
  readonly non2xx: number;
  readonly serverCores: number;
  readonly serverUsPerRequest: number;
  readonly wrkCores: number;
  readonly kernelCores: number;
  readonly otherCores: number;
}

const luaScript = path.join(repoRoot, 'native-bench', 'wrk-bulk.lua');

/** wrk comes from Debian's package; install it when missing and allowed (root). */
export function ensureWrk(log: (line: string) => void): void {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return;
  } catch (error) {
    // wrk --version exits 1 after printing its version; only a missing binary is ENOENT.
    if ((error as { code?: unknown }).code !== 'ENOENT') return;
  }
  if (process.getuid?.() !== 0) throw new Error('wrk is not installed: run `apt-get install -y wrk` (Debian package)');
  log('installing wrk (apt-get install -y wrk)…');
  execFileSync('apt-get', ['install', '-y', '-q', 'wrk'], { stdio: 'inherit' });
}

/** Milliseconds from wrk's "1.23ms" / "640.00us" / "1.02s". */
export function wrkDurationMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (match === null) return Number.NaN;
  const value = Number(match[1]);
  const ms = match[2] === 'us' ? value / 1000 : match[2] === 'ms' ? value : match[2] === 's' ? value * 1000 : value * 60_000;
  // wrk prints two decimals; rounding to µs drops the binary floating-point residue.
  return Math.round(ms * 1000) / 1000;
}

export function parseWrkOutput(output: string): { requestsPerS: number; p50: number; p90: number; p99: number; non2xx: number } {
  const percentile = (label: string): number => {
    const match = new RegExp(`^\\s+${label}%\\s+(\\S+)`, 'm').exec(output);
    return match === null ? Number.NaN : wrkDurationMs(match[1] as string);
  };
  const rate = /^Requests\/sec:\s+([\d.]+)/m.exec(output);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(output);
  return { requestsPerS: rate === null ? Number.NaN : Number(rate[1]), p50: percentile('50'), p90: percentile('90'), p99: percentile('99'), non2xx: non2xx === null ? 0 : Number(non2xx[1]) };
}

function startServer(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(__dirname, 'uws-ceiling-server.js'), String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout?.once('data', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`uWS ceiling server exited with ${code}`)));
  });
}

function runWrk(url: string, eventsPerRequest: number, durationS: number, connections: number, pids: number[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', ['-t1', `-c${connections}`, `-d${durationS}s`, '--latency', '-s', luaScript, url, '--', String(eventsPerRequest)], { stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid !== undefined) pids.push(child.pid);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`wrk exited with ${code}: ${output}`))));
  });
}

export async function runHttpCeiling(durationS: number, log: (line: string) => void): Promise<HttpRun[]> {
  ensureWrk(log);
  const variants = [
    { name: 'bulk, 100 events/request', route: '/v1/events/bulk', eventsPerRequest: 100 },
    { name: 'single event/request', route: '/webhook/events', eventsPerRequest: 1 },
  ];
  const connections = 50;
  const runs: HttpRun[] = [];
  for (const variant of variants) {
    // A fresh server per variant, so its byte counters describe this variant only.
    const port = await freePort();
    const server = await startServer(port);
    const wrkPids: number[] = [];
    const sampler = new ProcSampler({ enginePid: server.pid ?? null, clientPids: () => wrkPids, databaseName: null });
    const samples: CpuSample[] = [];
    const timer = setInterval(() => samples.push(sampler.sample()), 250);
    const output = await runWrk(`http://127.0.0.1:${port}${variant.route}`, variant.eventsPerRequest, durationS, connections, wrkPids).finally(() => clearInterval(timer));
    const totals = await stopServer(server);
    const parsed = parseWrkOutput(output);
    const cpu = averageCpu(samples);
    const run: HttpRun = {
      ...variant,
      connections,
      seconds: durationS,
      requestsPerS: Math.round(parsed.requestsPerS),
      eventsPerS: Math.round(parsed.requestsPerS * variant.eventsPerRequest),
      bodyBytes: totals.requests === 0 ? 0 : Math.round(totals.bodyBytes / totals.requests),
      latencyMs: { p50: parsed.p50, p90: parsed.p90, p99: parsed.p99 },
      non2xx: parsed.non2xx,
      serverCores: Math.round(cpu.engineCores * 100) / 100,
      serverUsPerRequest: Math.round((cpu.engineCores / parsed.requestsPerS) * 1e6 * 100) / 100,
      wrkCores: Math.round(cpu.clientCores * 100) / 100,
      kernelCores: Math.round(cpu.kernelCores * 100) / 100,
      otherCores: Math.round((cpu.otherCores + cpu.postgresRunCores + cpu.postgresOtherCores) * 100) / 100,
    };
    log(`  ${run.name}: ${run.requestsPerS.toLocaleString('en-US')} req/s (${run.eventsPerS.toLocaleString('en-US')} events/s, ${run.bodyBytes} B bodies), p50 ${run.latencyMs.p50} ms p99 ${run.latencyMs.p99} ms; server ${run.serverCores} cores (${run.serverUsPerRequest} µs/request), wrk ${run.wrkCores}, kernel ${run.kernelCores}, other processes ${run.otherCores}`);
    runs.push(run);
  }
  return runs;
}

async function stopServer(server: ChildProcess): Promise<{ requests: number; bodyBytes: number }> {
  let output = '';
  server.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGTERM');
  await exited;
  const line = output.trim().split('\n').pop() ?? '{}';
  try {
    const totals = JSON.parse(line) as { requests?: number; bodyBytes?: number };
    return { requests: totals.requests ?? 0, bodyBytes: totals.bodyBytes ?? 0 };
  } catch {
    return { requests: 0, bodyBytes: 0 };
  }
}
