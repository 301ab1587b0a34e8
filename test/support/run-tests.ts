/**
 * The test runner behind `npm test`: provides a PostgreSQL and a Redis when the
 * environment has none, runs `node --test` over every compiled test file, stops what it
 * started and exits with the test run's code.
 *
 *   npm test                          all of dist/test/**\/*.test.js, sorted
 *   npm test -- dist/test/ring        only files under that path (test/ring works too)
 *   npm test -- --test-concurrency=4  flags starting with "-" go to node --test as is
 *   npm run test:unit [-- filters]    --unit: only the files test/support/test-tiers.ts lists,
 *                                     with no PostgreSQL or Redis at all (see there)
 *
 * Environment:
 *   DATABASE_URL   use this server; otherwise an embedded PostgreSQL is started with its
 *                  data in .floodgate/test-postgres (kept between runs: initdb once).
 *   REDIS_URL      use this Redis; otherwise redis-server from PATH on a free port,
 *                  without persistence. When none can be had, Redis tests are skipped and
 *                  FLOODGATE_TEST_REDIS_UNAVAILABLE tells them why…
 *   FLOODGATE_TEST_REQUIRE_REDIS=1  …unless this is set (CI): then the run fails at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startEmbeddedPostgres } from '../../src/sink/embedded-postgres';
import type { SinkLogger } from '../../src/sink/sink-logger';
import { freePort } from './free-port';
import { testTierVariable, unitTestPaths } from './test-tiers';

const repoRoot = path.resolve(__dirname, '..', '..', '..');
const compiledTestRoot = path.join(repoRoot, 'dist', 'test');
const testPostgresDir = path.join(repoRoot, '.floodgate', 'test-postgres');

/** One test (not one file) failing after this long beats a CI job hanging for hours. */
const perTestTimeoutMs = 120_000;
/** The whole run is killed past this, whatever hangs (a file that never exits, a child). */
const runTimeoutMs = 30 * 60_000;
/** The unit tier's slowest test takes about 4 s; one taking this long belongs in the whole suite. */
const unitPerTestTimeoutMs = 30_000;
/** redis-server must answer PING within this after spawning. */
const redisReadyTimeoutMs = 5_000;

type Cleanup = () => Promise<void>;

/**
 * The server's own lines are dropped: tests terminate sessions and provoke errors on
 * purpose, and a failed start carries the last lines in its error anyway.
 */
const serverLogMessage = 'embedded PostgreSQL';
const stderrLogger: SinkLogger = {
  info: () => undefined,
  debug: () => undefined,
  warn: (obj, msg) => {
    if (msg !== serverLogMessage) process.stderr.write(`[run-tests] ${msg ?? ''} ${JSON.stringify(obj)}\n`);
  },
  error: (obj, msg) => process.stderr.write(`[run-tests] ${msg ?? ''} ${JSON.stringify(obj)}\n`),
};

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const unitTier = args.includes('--unit');
  const nodeFlags = args.filter((arg) => arg.startsWith('-') && arg !== '--unit');
  let files = selectTestFiles(args.filter((arg) => !arg.startsWith('-')));
  if (unitTier) {
    const unitFiles = selectUnitTestFiles();
    if (typeof unitFiles === 'string') {
      process.stderr.write(`[run-tests] ${unitFiles}\n`);
      return 1;
    }
    files = files.filter((file) => unitFiles.has(file));
  }
  if (files.length === 0) {
    process.stderr.write(`[run-tests] no *.test.js files${unitTier ? ' of the unit tier' : ''} matched under ${compiledTestRoot}\n`);
    return 1;
  }
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (unitTier) {
    withoutServices(env);
    return await runNodeTest([`--test-timeout=${unitPerTestTimeoutMs}`, ...nodeFlags, ...files], env);
  }
  const cleanups: Cleanup[] = [];
  try {
    const redisFailure = await provideRedis(env, cleanups);
    if (redisFailure !== null) {
      if (env.FLOODGATE_TEST_REQUIRE_REDIS === '1') {
        process.stderr.write(`[run-tests] FLOODGATE_TEST_REQUIRE_REDIS=1 but Redis is unavailable: ${redisFailure}\n`);
        return 1;
      }
      process.stdout.write(`[run-tests] Redis tests will be skipped: ${redisFailure}\n`);
      env.FLOODGATE_TEST_REDIS_UNAVAILABLE = redisFailure;
    }
    await providePostgres(env, cleanups);
    // No --test-force-exit: with it, a test file's process can exit before the pipe to the
    // parent is drained, and the verdicts of its last tests vanish from the report with
    // exit code 0 (nodejs/node#64833; seen here: load-config's last one or two suites,
    // 550 or 558 of 562 tests reported). Every file ends on its own without it.
    const flags = [`--test-timeout=${perTestTimeoutMs}`, ...nodeFlags];
    return await runNodeTest([...flags, ...files], env);
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => process.stderr.write(`[run-tests] clean-up failed: ${String(error)}\n`));
    }
  }
}

function listTestFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...listTestFiles(full));
    else if (entry.isFile() && entry.name.endsWith('.test.js')) found.push(full);
  }
  return found;
}

/** Filters are paths (files or folders) under dist/test, or their test/… source twins. */
function selectTestFiles(filters: readonly string[]): string[] {
  const files = listTestFiles(compiledTestRoot).sort();
  if (filters.length === 0) return files;
  return files.filter((file) => filters.some((filter) => isUnder(file, compiledPathOf(path.resolve(filter)))));
}

/** The compiled files of the unit tier, or why the list is wrong (a path that matches nothing). */
function selectUnitTestFiles(): Set<string> | string {
  const files = listTestFiles(compiledTestRoot);
  const selected = new Set<string>();
  for (const unitPath of unitTestPaths) {
    const compiled = compiledPathOf(path.join(repoRoot, unitPath));
    const matched = files.filter((file) => isUnder(file, compiled));
    if (matched.length === 0) return `${unitPath} (unit tier, test/support/test-tiers.ts) matches no compiled test file`;
    for (const file of matched) selected.add(file);
  }
  return selected;
}

/**
 * The unit tier reaches no service: a test that tries fails at once (test/support/database.ts
 * and redis.ts say why) instead of finding the developer's own PostgreSQL or Redis and
 * passing by luck. PGHOST is not just cleared but pointed at a socket directory that cannot
 * exist, because pg's default without it is the local server on port 5432.
 */
function withoutServices(env: NodeJS.ProcessEnv): void {
  for (const name of Object.keys(env)) {
    if (name === 'DATABASE_URL' || name === 'REDIS_URL' || name.startsWith('PG')) delete env[name];
  }
  env.PGHOST = '/nonexistent/floodgate-unit-tier-has-no-postgresql';
  env[testTierVariable] = 'unit';
}

function compiledPathOf(absolute: string): string {
  let resolved = absolute;
  const relative = path.relative(repoRoot, resolved);
  if (relative === 'test' || relative.startsWith(`test${path.sep}`)) {
    resolved = path.join(repoRoot, 'dist', relative.replace(/\.ts$/, '.js'));
  }
  return resolved;
}

function isUnder(file: string, prefix: string): boolean {
  return file === prefix || file.startsWith(prefix.endsWith(path.sep) ? prefix : prefix + path.sep);
}

async function providePostgres(env: NodeJS.ProcessEnv, cleanups: Cleanup[]): Promise<void> {
  if (env.DATABASE_URL !== undefined && env.DATABASE_URL !== '') return;
  const port = previousEmbeddedPort() ?? (await freePort());
  const server = await startEmbeddedPostgres({ dataDir: testPostgresDir, port, logger: stderrLogger });
  cleanups.push(() => server.stop());
  // Test files create their own databases, so they get the maintenance database.
  const url = new URL(server.connectionString);
  url.pathname = '/postgres';
  env.DATABASE_URL = url.toString();
  process.stdout.write(`[run-tests] embedded PostgreSQL on port ${port} (data in ${testPostgresDir})\n`);
}

/**
 * The port in a postmaster.pid whose process still runs: a run killed with SIGKILL left
 * its server up, and startEmbeddedPostgres can reuse it only on that same port.
 */
function previousEmbeddedPort(): number | null {
  let lines: string[];
  try {
    lines = readFileSync(path.join(testPostgresDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return null;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || !Number.isInteger(port) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
    return port;
  } catch (error) {
    // EPERM: alive but owned by another user (the postgres user when we run as root).
    return (error as { code?: unknown }).code === 'EPERM' ? port : null;
  }
}

/** Returns null when Redis is available (REDIS_URL set in env), else the reason it is not. */
async function provideRedis(env: NodeJS.ProcessEnv, cleanups: Cleanup[]): Promise<string | null> {
  if (env.REDIS_URL !== undefined && env.REDIS_URL !== '') return null;
  const binary = findOnPath('redis-server');
  if (binary === null) return 'REDIS_URL is not set and no redis-server binary is on PATH';
  const port = await freePort();
  const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-2_000)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-2_000)));
  const stop = (): Promise<void> => stopChild(child);
  if (!(await redisAnswers(port, child))) {
    await stop();
    return `redis-server (${binary}) did not answer on port ${port}: ${output.trim().split('\n').slice(-3).join(' | ')}`;
  }
  cleanups.push(stop);
  env.REDIS_URL = `redis://127.0.0.1:${port}`;
  process.stdout.write(`[run-tests] redis-server on port ${port}\n`);
  return null;
}

function findOnPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory.
    }
  }
  return null;
}

async function redisAnswers(port: number, child: ChildProcess): Promise<boolean> {
  const deadlineMs = Date.now() + redisReadyTimeoutMs;
  while (Date.now() < deadlineMs && child.exitCode === null) {
    if (await pingRedis(port)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

function pingRedis(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let reply = '';
    socket.setTimeout(1_000, () => socket.destroy());
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(reply.startsWith('+PONG')));
  });
}


function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

function runNodeTest(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', ...args], { stdio: 'inherit', env });
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const watchdog = setTimeout(() => {
      process.stderr.write(`[run-tests] the run exceeded ${runTimeoutMs} ms; killing it\n`);
      child.kill('SIGKILL');
    }, runTimeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal !== null ? 1 : 0));
    });
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`[run-tests] ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
