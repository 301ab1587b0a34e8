/**
 * The server a scenario runs against: a Floodgate engine the runner starts itself
 * (`node dist/src/cli.js serve`, the same command operators run), the conventional
 * Fastify + pg baseline (bench/baseline), or an engine already running at a URL.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../../test/support/free-port';
import { repoRoot } from '../common/results';
import type { Target } from './scenario';

export interface RunningTarget {
  readonly kind: Target | 'external';
  readonly host: string;
  readonly port: number;
  /** The server's pid when this process started it (for /proc sampling), else null. */
  readonly pid: number | null;
  /** Stops a server this process started (SIGTERM: Floodgate drains first); no-op otherwise. */
  stop(): Promise<{ exitCode: number | null; stopMs: number }>;
  /** The last lines the server printed, for error reports. */
  logTail(): string;
}

const readyTimeoutMs = 60_000;
const stopTimeoutMs = 90_000;
const logLinesKept = 40;
export const baselineDir = path.join(repoRoot, 'bench', 'baseline');

/** The environment without FLOODGATE_* settings, so only the scenario's own apply. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('FLOODGATE_')) env[key] = value;
  return env;
}

export async function startFloodgate(databaseUrl: string, engineEnv: Readonly<Record<string, string>>, nodeArgs: readonly string[] = []): Promise<RunningTarget> {
  const cli = path.join(repoRoot, 'dist', 'src', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
  const port = await freePort();
  const env = { ...cleanEnv(), DATABASE_URL: databaseUrl, PORT: String(port), FLOODGATE_HOST: '127.0.0.1', FLOODGATE_LOG_LEVEL: 'warn', ...engineEnv };
  return startChild('floodgate', [...nodeArgs, cli, 'serve'], env, port, '/readyz');
}

/** Installs the baseline's own dependencies (bench/baseline/package-lock.json) on first use. */
export function ensureBaselineInstalled(): void {
  if (existsSync(path.join(baselineDir, 'node_modules', 'fastify', 'package.json'))) return;
  process.stderr.write('installing the baseline service (npm ci in bench/baseline)…\n');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: baselineDir, stdio: 'inherit' });
}

export async function startBaseline(databaseUrl: string, poolSize: number): Promise<RunningTarget> {
  ensureBaselineInstalled();
  const port = await freePort();
  const env = { ...cleanEnv(), DATABASE_URL: databaseUrl, PORT: String(port), HOST: '127.0.0.1', BASELINE_POOL_SIZE: String(poolSize) };
  return startChild('baseline', [path.join(baselineDir, 'server.js')], env, port, '/health');
}

export function externalTarget(url: string): RunningTarget {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:') throw new Error(`--url must be http://… (got ${url})`);
  return {
    kind: 'external',
    host: parsed.hostname,
    port: Number(parsed.port || 80),
    pid: null,
    stop: async () => ({ exitCode: null, stopMs: 0 }),
    logTail: () => '',
  };
}

/**
 * The server starts in a session of its own (`detached`), as a service does under systemd
 * or in a container, and not in the session of the runner and its load clients, which in
 * a deployment are other machines. It matters on Linux, whose scheduler shares the cores
 * between sessions (autogroups) before threads: in one session the engine and the clients
 * compete as one group against PostgreSQL, which raised the clients' sending lag and the
 * async tail (docs/decisions/0015-benchmark-servers-in-own-session.md).
 *
 * Its own session also means its own process group, which a Ctrl-C at the terminal does
 * not reach: the runner stops it when it exits, signals included (stopOnExit).
 */
async function startChild(kind: Target, args: string[], env: NodeJS.ProcessEnv, port: number, readyPath: string): Promise<RunningTarget> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  stopOnExit(child);
  const lines: string[] = [];
  const keep = (chunk: Buffer): void => {
    lines.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''));
    if (lines.length > logLinesKept) lines.splice(0, lines.length - logLinesKept);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const target: RunningTarget = {
    kind,
    host: '127.0.0.1',
    port,
    pid: child.pid ?? null,
    stop: () => stopChild(child, exited),
    logTail: () => lines.join('\n'),
  };
  try {
    await waitReady(child, `http://127.0.0.1:${port}${readyPath}`);
  } catch (error) {
    await target.stop();
    throw new Error(`${kind} did not become ready: ${(error as Error).message}\n${target.logTail()}`);
  }
  return target;
}

async function waitReady(child: ChildProcess, url: string): Promise<void> {
  const deadlineMs = Date.now() + readyTimeoutMs;
  while (Date.now() < deadlineMs) {
    if (child.exitCode !== null) throw new Error(`it exited with code ${child.exitCode}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not answer 200 within ${readyTimeoutMs} ms`);
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<{ exitCode: number | null; stopMs: number }> {
  const startedMs = performance.now();
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs);
    await exited;
    clearTimeout(timer);
  }
  return { exitCode: child.exitCode, stopMs: Math.round(performance.now() - startedMs) };
}

let exitSignalsHandled = false;

/** SIGTERM to the child when this process exits, and exit (running 'exit' handlers) on SIGINT/SIGTERM. */
function stopOnExit(child: ChildProcess): void {
  const stop = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  process.on('exit', stop);
  child.once('exit', () => process.off('exit', stop));
  if (exitSignalsHandled) return;
  exitSignalsHandled = true;
  process.once('SIGINT', () => process.exit(130));
  process.once('SIGTERM', () => process.exit(143));
}
