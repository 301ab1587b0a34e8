/**
 * The embedded PostgreSQL, each test on its own data directory (under a temp directory)
 * and its own free port, so it never touches the server the rest of the suite uses.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { resolveDatabase } from '../../src/sink/database';
import { startEmbeddedPostgres } from '../../src/sink/embedded-postgres';
import { recordingLogger, sleep } from './fixtures';
import { freePort } from '../support/free-port';

const compiledModule = path.join(__dirname, '..', '..', 'src', 'sink', 'embedded-postgres.js');
const runAsRoot = userInfo().uid === 0;
let root: string;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'floodgate-embedded-'));
  // mkdtemp makes a 0700 directory; the postgres user must be able to cross it.
  await chmod(root, 0o755);
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});


async function query<Row extends pg.QueryResultRow>(url: string, sql: string): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Row>(sql)).rows;
  } finally {
    await client.end();
  }
}

function postmasterPid(dataDir: string): number {
  return Number(readFileSync(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code === 'EPERM';
  }
}

async function waitUntil(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadlineMs) throw new Error('condition not met in time');
    await sleep(25);
  }
}

/** Starts the server in a child Node process that then dies by SIGKILL, leaving it running. */
async function startAndKillOwner(dataDir: string, port: number): Promise<void> {
  const script = `
    const { startEmbeddedPostgres } = require(${JSON.stringify(compiledModule)});
    const logger = { info() {}, warn() {}, error() {} };
    startEmbeddedPostgres({ dataDir: ${JSON.stringify(dataDir)}, port: ${port}, logger })
      .then(() => process.kill(process.pid, 'SIGKILL'), (error) => { console.error(error); process.exit(3); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'inherit'] });
  const signal = await new Promise((resolve) => child.once('exit', (_code, exitSignal) => resolve(exitSignal)));
  assert.equal(signal, 'SIGKILL', 'the owner died by SIGKILL after the server was ready');
}

test('first start initialises; data survives a stop and a restart; logs go to the logger', async () => {
  const dataDir = path.join(root, 'persist', 'nested');
  const port = await freePort();
  const firstLogger = recordingLogger();
  const first = await resolveDatabase({ databaseUrl: null, dataDir, embeddedPgPort: port }, firstLogger);
  assert.equal(first.embedded, true);
  assert.equal(first.connectionString, `postgres://postgres:floodgate-local@127.0.0.1:${port}/floodgate`);
  await query(first.connectionString, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')");
  const settings = await query<{ name: string; setting: string }>(
    first.connectionString,
    "SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses', 'synchronous_commit', 'max_wal_size', 'shared_buffers') ORDER BY name",
  );
  assert.deepEqual(settings, [
    { name: 'listen_addresses', setting: '127.0.0.1' },
    { name: 'max_wal_size', setting: '2048' },
    { name: 'shared_buffers', setting: '32768' },
    { name: 'synchronous_commit', setting: 'on' },
  ]);
  await first.stop();
  assert.ok(existsSync(path.join(dataDir, 'postgres', 'PG_VERSION')));
  assert.ok(!existsSync(path.join(dataDir, 'postgres', 'postmaster.pid')), 'a clean stop removes the pid file');
  assert.ok(firstLogger.entries.some((entry) => entry.msg === 'initialising the embedded PostgreSQL cluster'));
  assert.ok(firstLogger.entries.some((entry) => entry.level === 'debug' && entry.msg === 'embedded PostgreSQL'));
  if (runAsRoot) {
    assert.ok(existsSync(path.join(root, 'persist')));
    assert.equal(statSync(path.join(root, 'persist')).mode & 0o777, 0o755);
  }

  const secondLogger = recordingLogger();
  const second = await startEmbeddedPostgres({ dataDir, port, logger: secondLogger });
  try {
    assert.ok(!secondLogger.entries.some((entry) => entry.msg === 'initialising the embedded PostgreSQL cluster'));
    assert.deepEqual(await query(second.connectionString, 'SELECT v FROM kept'), [{ v: 'still here' }]);
  } finally {
    await second.stop();
  }
});

test('a server left running by a SIGKILLed owner is reused, and stop() stops it', async () => {
  const dataDir = path.join(root, 'orphan');
  const port = await freePort();
  await startAndKillOwner(dataDir, port);
  const orphanPid = postmasterPid(dataDir);
  assert.ok(isAlive(orphanPid), 'the server outlived its owner');

  const logger = recordingLogger();
  const server = await startEmbeddedPostgres({ dataDir, port, logger });
  assert.ok(logger.entries.some((entry) => entry.msg === 'reusing the embedded PostgreSQL left running by a previous run'));
  assert.deepEqual(await query(server.connectionString, 'SELECT 1 AS one'), [{ one: 1 }]);
  await server.stop();
  assert.ok(!isAlive(orphanPid));
});

test('a stale postmaster.pid of a dead server is removed and the server starts', async () => {
  const dataDir = path.join(root, 'stale');
  const port = await freePort();
  await startAndKillOwner(dataDir, port);
  const deadPid = postmasterPid(dataDir);
  process.kill(deadPid, 'SIGKILL');
  await waitUntil(() => !isAlive(deadPid));
  // The postmaster's helpers notice its death and exit on their own; give them a moment
  // so the new server does not find their shared memory still attached.
  await sleep(500);
  assert.ok(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid')), 'the pid file is left behind');

  const logger = recordingLogger();
  const server = await startEmbeddedPostgres({ dataDir, port, logger });
  try {
    assert.ok(logger.entries.some((entry) => entry.level === 'warn' && entry.msg === 'removed a stale postmaster.pid left by a previous run'));
    assert.deepEqual(await query(server.connectionString, 'SELECT current_database() AS name'), [{ name: 'floodgate' }]);
    assert.notEqual(postmasterPid(dataDir), deadPid);
  } finally {
    await server.stop();
  }
});

test('a live server on the same data directory but another port is reported, not clobbered', async () => {
  const dataDir = path.join(root, 'busy');
  const port = await freePort();
  const running = await startEmbeddedPostgres({ dataDir, port, logger: recordingLogger() });
  try {
    const otherPort = await freePort();
    await assert.rejects(
      startEmbeddedPostgres({ dataDir, port: otherPort, logger: recordingLogger() }),
      new RegExp(`already runs on .*busy.* does not answer on port ${otherPort}`),
    );
    assert.deepEqual(await query(running.connectionString, 'SELECT 1 AS one'), [{ one: 1 }]);
  } finally {
    await running.stop();
  }
});

test('a port already taken fails the start with the server reason instead of hanging', async () => {
  const blocker = net.createServer();
  const port = await new Promise<number>((resolve) => {
    blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as net.AddressInfo).port));
  });
  try {
    const logger = recordingLogger();
    await assert.rejects(
      startEmbeddedPostgres({ dataDir: path.join(root, 'taken'), port, logger }),
      (error: unknown) => {
        assert.match(String((error as Error).message), new RegExp(`failed to start on port ${port}`));
        assert.match(String((error as Error).message), /could not (bind|create)/);
        return true;
      },
    );
    assert.ok(logger.entries.some((entry) => entry.level === 'warn'), 'the FATAL line went to warn');
  } finally {
    blocker.close();
  }
});

test('as root, a parent directory the postgres user cannot enter is refused with a clear message', async (t) => {
  if (!runAsRoot) {
    t.skip('only meaningful as root: PostgreSQL then runs as the postgres user');
    return;
  }
  const locked = path.join(root, 'locked');
  await mkdir(locked, { mode: 0o700 });
  await chmod(locked, 0o700);
  await assert.rejects(
    startEmbeddedPostgres({ dataDir: path.join(locked, 'data'), port: await freePort(), logger: recordingLogger() }),
    /postgres user, which cannot enter .*locked \(mode 700\)/,
  );
});

test('stop() returns even when the server already died under us', async () => {
  const dataDir = path.join(root, 'died');
  const server = await startEmbeddedPostgres({ dataDir, port: await freePort(), logger: recordingLogger() });
  const pid = postmasterPid(dataDir);
  process.kill(pid, 'SIGKILL');
  await waitUntil(() => !isAlive(pid));
  const startedMs = Date.now();
  await server.stop();
  assert.ok(Date.now() - startedMs < 5_000);
});
