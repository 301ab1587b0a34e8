/**
 * The `floodgate` command as an operator runs it: a child process, real signals.
 * Covers help, configuration errors, `migrate`, SIGTERM drain under load, and the
 * fresh-machine default (embedded PostgreSQL whose data survives a restart).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import pg from 'pg';
import { createTestDatabase } from '../support/database';
import { post } from '../support/engine';
import { cliPath as cli, engineEnv, spawnEngine as serve } from '../support/engine-process';
import { wireEvents } from '../support/wire-events';
import { freePort } from '../support/free-port';

const json = { 'content-type': 'application/json' };
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test('help lists commands and every setting; a bad setting exits 2 naming it', () => {
  const help = spawnSync(process.execPath, [cli, 'help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /migrate/);
  assert.match(help.stdout, /FLOODGATE_BATCH_ROWS_MAX/);
  const bad = spawnSync(process.execPath, [cli, 'serve'], { encoding: 'utf8', env: engineEnv({ FLOODGATE_BATCH_WAIT_MS: 'soon' }) });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /FLOODGATE_BATCH_WAIT_MS/);
  const unknown = spawnSync(process.execPath, [cli, 'launch'], { encoding: 'utf8' });
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command "launch"/);
});

test('migrate creates the schema and is idempotent', async () => {
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  for (let run = 0; run < 2; run++) {
    const result = spawnSync(process.execPath, [cli, 'migrate'], { encoding: 'utf8', env: engineEnv({ DATABASE_URL: database.url }) });
    assert.equal(result.status, 0, result.stderr + result.stdout);
  }
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  const tables = await client.query("SELECT relname FROM pg_class WHERE relname IN ('events', 'dead_letters') ORDER BY 1");
  await client.end();
  assert.deepEqual(tables.rows.map((row) => row.relname), ['dead_letters', 'events']);
});

test('SIGTERM under load: every acknowledged event is stored, exit code 0', async () => {
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  const engine = await serve(engineEnv({ DATABASE_URL: database.url, PORT: '0', FLOODGATE_HOST: '127.0.0.1' }));
  const url = `http://127.0.0.1:${engine.port}/v1/events/bulk`;
  let acknowledged = 0;
  let refused = 0;
  const clients = Array.from({ length: 8 }, async (_, client) => {
    for (let request = 0; request < 200; request++) {
      try {
        const answer = await post(url, JSON.stringify({ events: wireEvents(50, `term-${client}-${request}`) }), json);
        if (answer.status === 200) acknowledged += answer.json.accepted;
        else {
          assert.equal(answer.status, 503, answer.text);
          refused++;
          return;
        }
      } catch {
        return; // Connection refused once the engine stopped listening.
      }
    }
  });
  setTimeout(() => engine.child.kill('SIGTERM'), 700);
  await Promise.all(clients);
  assert.equal(await engine.exited, 0, engine.output());
  assert.match(engine.output(), /"msg":"draining"/);
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  const stored = Number((await client.query('SELECT count(*) AS n FROM events')).rows[0].n);
  await client.end();
  assert.ok(acknowledged > 0, 'some requests were acknowledged before the signal');
  // Durable mode: each acknowledged event is stored; events of unanswered requests may be too.
  assert.ok(stored >= acknowledged, `stored ${stored} < acknowledged ${acknowledged}`);
  assert.equal(stored % 50, 0, 'requests are written whole');
  void refused;
});

/** Niceness of every thread of a process: on Linux getpriority takes a thread id too. */
function threadNices(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((task) => os.getPriority(Number(task)));
}

test('async mode lowers the actor threads\' priority; durable mode keeps it', { skip: process.platform !== 'linux' && 'Linux only' }, async () => {
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  const base = os.getPriority(process.pid);
  const wanted = Math.min(19, base + 6);
  const env = { DATABASE_URL: database.url, PORT: '0', FLOODGATE_HOST: '127.0.0.1', FLOODGATE_ACTORS: '2', FLOODGATE_ACTOR_NICE: String(wanted) };
  for (const ackMode of ['async', 'durable']) {
    const engine = await serve(engineEnv({ ...env, FLOODGATE_ACK: ackMode }));
    const nices = threadNices(engine.child.pid as number);
    engine.child.kill('SIGTERM');
    assert.equal(await engine.exited, 0, engine.output());
    const lowered = nices.filter((nice) => nice === wanted).length;
    if (ackMode === 'async') assert.equal(lowered, 2, `one lowered thread per actor, got ${JSON.stringify(nices)}\n${engine.output()}`);
    else assert.deepEqual(nices.filter((nice) => nice !== base), [], 'durable mode changes no thread');
  }
});

test('without DATABASE_URL: embedded PostgreSQL, data survives a restart', async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'floodgate-embedded-'));
  // As root, PostgreSQL runs as the postgres user, which must be able to enter the directory.
  chmodSync(dataDir, 0o755);
  cleanups.push(async () => rmSync(dataDir, { recursive: true, force: true }));
  const env = engineEnv({ FLOODGATE_DATA_DIR: dataDir, FLOODGATE_EMBEDDED_PG_PORT: String(await freePort()), PORT: '0', FLOODGATE_HOST: '127.0.0.1' }, ['DATABASE_URL']);
  const body = JSON.stringify({ events: wireEvents(20, 'embedded') });
  const first = await serve(env);
  const stored = await post(`http://127.0.0.1:${first.port}/v1/events/bulk`, body, json);
  assert.equal(stored.status, 200, stored.text);
  assert.equal(stored.json.accepted, 20);
  first.child.kill('SIGTERM');
  assert.equal(await first.exited, 0, first.output());

  const second = await serve(env);
  const resent = await post(`http://127.0.0.1:${second.port}/v1/events/bulk`, body, json);
  assert.deepEqual([resent.json.accepted, resent.json.duplicates], [0, 20]);
  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0, second.output());
});
