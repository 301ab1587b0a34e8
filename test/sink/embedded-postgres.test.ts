/**
 * The embedded PostgreSQL, each test on its own data directory (under a temp directory)
 * and its own free port, so it never touches the server the rest of the suite uses.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readlink, realpath, rename, rm, symlink } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import pg from 'pg';
import { resolveDatabase } from '../../src/sink/database';
import { startEmbeddedPostgres } from '../../src/sink/embedded-postgres';
import { relocatedClusterDir } from '../../src/sink/embedded-postgres-placement';
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

/** A mode-0700 directory under the temp root: the postgres user cannot enter it. */
async function lockedDir(name: string): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { mode: 0o700 });
  await chmod(dir, 0o700);
  return dir;
}

/** The derived place of a data directory, removed after the tests (it is outside `root`). */
const relocatedClusters = new Set<string>();
after(async () => {
  for (const dir of relocatedClusters) await rm(dir, { recursive: true, force: true });
});
async function derivedFor(dataDir: string): Promise<string> {
  const clusterDir = relocatedClusterDir(await realpath(dataDir));
  relocatedClusters.add(path.dirname(clusterDir));
  return clusterDir;
}

const relocatedMessage = 'embedded PostgreSQL cluster relocated: as root it runs as the postgres user, which cannot reach the data directory';
const skipUnlessRoot = (t: TestContext): boolean => {
  if (!runAsRoot) t.skip('only meaningful as root: PostgreSQL then runs as the postgres user (this run is not root)');
  return !runAsRoot;
};

test('as root, an unreachable data dir keeps its cluster in /var/lib/floodgate, across restarts', async (t) => {
  if (skipUnlessRoot(t)) return;
  const locked = await lockedDir('locked');
  assert.equal(statSync(locked).mode & 0o777, 0o700);
  const dataDir = path.join(locked, 'data');
  const port = await freePort();
  const firstLogger = recordingLogger();
  const first = await startEmbeddedPostgres({ dataDir, port, logger: firstLogger });
  const clusterDir = await derivedFor(dataDir);
  await query(first.connectionString, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('relocated')");
  await first.stop();

  const relocated = firstLogger.entries.find((entry) => entry.msg === relocatedMessage);
  assert.equal(relocated?.level, 'info');
  assert.deepEqual(relocated?.obj, { dataDir, clusterDir, linkPath: path.join(dataDir, 'postgres') });
  assert.match(clusterDir, /^\/var\/lib\/floodgate\/[0-9a-f]{16}\/postgres$/);
  assert.ok(existsSync(path.join(clusterDir, 'PG_VERSION')));
  assert.equal(await readlink(path.join(dataDir, 'postgres')), clusterDir);
  const parent = statSync(path.dirname(clusterDir));
  assert.equal(parent.mode & 0o777, 0o750, 'only root and postgres enter');
  assert.equal(parent.gid, Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })));
  assert.equal(readFileSync(path.join(path.dirname(clusterDir), 'data-dir'), 'utf8'), `${dataDir}\n`);

  const secondLogger = recordingLogger();
  const second = await startEmbeddedPostgres({ dataDir, port, logger: secondLogger });
  try {
    assert.ok(!secondLogger.entries.some((entry) => entry.msg === 'initialising the embedded PostgreSQL cluster'));
    assert.ok(secondLogger.entries.some((entry) => entry.msg === relocatedMessage), 'said again on every start');
    assert.deepEqual(await query(second.connectionString, 'SELECT v FROM kept'), [{ v: 'relocated' }]);
  } finally {
    await second.stop();
  }
});

test('as root, a relocated cluster left running by a SIGKILLed owner is reused, and stop() stops it', async (t) => {
  if (skipUnlessRoot(t)) return;
  const dataDir = path.join(await lockedDir('locked-orphan'), 'data');
  const port = await freePort();
  await startAndKillOwner(dataDir, port);
  const clusterDir = await derivedFor(dataDir);
  const orphanPid = postmasterPid(dataDir);
  assert.equal(orphanPid, Number(readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]));
  assert.ok(isAlive(orphanPid), 'the server outlived its owner');

  const logger = recordingLogger();
  const server = await startEmbeddedPostgres({ dataDir, port, logger });
  assert.ok(logger.entries.some((entry) => entry.msg === 'reusing the embedded PostgreSQL left running by a previous run'));
  await server.stop();
  assert.ok(!isAlive(orphanPid));
});

test('as root, a moved data dir takes its relocated cluster along; a copy gets its own', async (t) => {
  if (skipUnlessRoot(t)) return;
  const original = path.join(await lockedDir('locked-before-move'), 'data');
  const port = await freePort();
  const first = await startEmbeddedPostgres({ dataDir: original, port, logger: recordingLogger() });
  const originalCluster = await derivedFor(original);
  await query(first.connectionString, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('moved along')");
  await first.stop();

  await rename(path.dirname(original), path.join(root, 'locked-after-move'));
  const moved = path.join(root, 'locked-after-move', 'data');
  const movedLogger = recordingLogger();
  const second = await startEmbeddedPostgres({ dataDir: moved, port, logger: movedLogger });
  const movedCluster = await derivedFor(moved);
  try {
    assert.ok(movedLogger.entries.some((entry) => entry.msg === 'the embedded PostgreSQL cluster follows its moved data directory'));
    assert.deepEqual(await query(second.connectionString, 'SELECT v FROM kept'), [{ v: 'moved along' }]);
  } finally {
    await second.stop();
  }
  assert.ok(!existsSync(originalCluster));
  assert.equal(await readlink(path.join(moved, 'postgres')), movedCluster);

  const copy = path.join(await lockedDir('locked-copy'), 'data');
  await mkdir(copy);
  await symlink(movedCluster, path.join(copy, 'postgres'));
  const copyLogger = recordingLogger();
  const third = await startEmbeddedPostgres({ dataDir: copy, port, logger: copyLogger });
  const copyCluster = await derivedFor(copy);
  try {
    assert.ok(copyLogger.entries.some((entry) => entry.level === 'warn' && /does not own/.test(entry.msg ?? '')));
    assert.deepEqual(await query(third.connectionString, "SELECT to_regclass('kept') IS NULL AS fresh"), [{ fresh: true }]);
  } finally {
    await third.stop();
  }
  assert.equal(await readlink(path.join(copy, 'postgres')), copyCluster);
  assert.equal(await readlink(path.join(moved, 'postgres')), movedCluster, 'the original keeps its cluster');
  assert.ok(existsSync(path.join(movedCluster, 'PG_VERSION')));
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
