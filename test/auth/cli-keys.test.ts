/**
 * `floodgate keys` as an operator runs it, and revocation across two engines sharing a
 * database: revoked with the CLI, refused by the other engine within 5 s.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, test } from 'node:test';
import { createTestDatabase } from '../support/database';
import { engineEnv } from '../support/engine-process';
import { cliPath } from '../support/engine-process';
import { startTestEngine, testConfig } from '../support/engine';
import { startEngine } from '../../src/engine';
import { createLogger } from '../../src/log';
import { migrateDatabase } from '../../src/sink/migrations';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

function keys(databaseUrl: string, ...args: string[]) {
  return spawnSync(process.execPath, [cliPath, 'keys', ...args], { encoding: 'utf8', env: engineEnv({ DATABASE_URL: databaseUrl, FLOODGATE_LOG_LEVEL: 'warn' }) });
}

test('create, list and revoke, with and without --json; bad flags are clear', async () => {
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  await migrateDatabase(database.url, createLogger('silent'));
  const created = keys(database.url, 'create', '--name', 'ci', '--scopes', 'ingest,read', '--json');
  assert.equal(created.status, 0, created.stderr);
  const item = JSON.parse(created.stdout);
  assert.match(item.key, /^fgk_[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(item.scopes, ['ingest', 'read']);
  assert.match(created.stderr, /"audit":true.*"action":"key.create"/);
  const plain = keys(database.url, 'create', '--name', 'ops', '--scopes', 'admin');
  assert.equal(plain.status, 0, plain.stderr);
  assert.match(plain.stdout, /fgk_[A-Za-z0-9_-]{43}/);
  const listed = keys(database.url, 'list', '--json');
  assert.equal(listed.status, 0, listed.stderr);
  const rows = listed.stdout.trim().split('\n').map((line) => JSON.parse(line));
  assert.deepEqual(rows.map((row) => row.name), ['ci', 'ops']);
  assert.ok(!listed.stdout.includes(item.key) && !listed.stdout.includes('hash'));
  const table = keys(database.url, 'list');
  assert.match(table.stdout, /^id\s+name\s+scopes/);
  assert.ok(!table.stdout.includes('fgk_'));
  assert.equal(keys(database.url, 'revoke', item.id).status, 0);
  assert.notEqual(JSON.parse(keys(database.url, 'list', '--json').stdout.split('\n')[0] as string).revoked_at, null);
  const missing = keys(database.url, 'revoke', '999999');
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /no API key has id 999999/);
  for (const [args, message] of [
    [['create', '--scopes', 'ingest'], /--name is required/],
    [['create', '--name', 'x'], /--scopes is required/],
    [['create', '--name', 'x', '--scopes', 'write'], /unknown scope "write"/],
    [['create', '--name', '--scopes', 'ingest'], /--name needs a value/],
    [['revoke'], /needs the key id/],
    [['revoke', 'abc'], /not a key id/],
    [['rotate'], /unknown keys action "rotate"/],
  ] as const) {
    const result = keys(database.url, ...args);
    assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
});

test('keys create --events-per-s [--burst-events]: stored, listed, validated', async () => {
  const database = await createTestDatabase();
  cleanups.push(() => database.drop());
  await migrateDatabase(database.url, createLogger('silent'));
  const limited = keys(database.url, 'create', '--name', 'partner', '--scopes', 'ingest', '--events-per-s', '2000', '--burst-events', '4000', '--json');
  assert.equal(limited.status, 0, limited.stderr);
  assert.deepEqual([JSON.parse(limited.stdout).events_per_s, JSON.parse(limited.stdout).burst_events], [2000, 4000]);
  assert.equal(keys(database.url, 'create', '--name', 'small', '--scopes', 'ingest', '--events-per-s', '50').status, 0);
  assert.equal(keys(database.url, 'create', '--name', 'free', '--scopes', 'ingest').status, 0);
  const rows = keys(database.url, 'list', '--json').stdout.trim().split('\n').map((line) => JSON.parse(line));
  assert.deepEqual(rows.map((row) => [row.name, row.events_per_s, row.burst_events]), [['partner', 2000, 4000], ['small', 50, 50], ['free', null, null]]);
  const table = keys(database.url, 'list').stdout;
  assert.match(table, /^id\s+name\s+scopes\s+events_per_s\s+burst_events/);
  assert.match(table, /small\s+ingest\s+50\s+50/);
  for (const [args, message] of [
    [['--events-per-s', '0'], /--events-per-s must be a whole number of events from 1/],
    [['--events-per-s', '1.5'], /--events-per-s must be a whole number/],
    [['--events-per-s', '10', '--burst-events', '-1'], /--burst-events/],
    [['--burst-events', '10'], /--burst-events needs --events-per-s/],
    [['--events-per-s', '2147483648'], /--events-per-s must be a whole number/],
  ] as const) {
    const result = keys(database.url, 'create', '--name', 'bad', '--scopes', 'ingest', ...args);
    assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
});

test('a key revoked with the CLI is refused by another engine on the same database within 5 s', async () => {
  const first = await startTestEngine({ authMode: 'required' });
  cleanups.push(() => first.close());
  const second = await startEngine(testConfig(first.databaseUrl, { authMode: 'required' }), createLogger('silent'));
  cleanups.push(() => second.stop());
  const created = JSON.parse(keys(first.databaseUrl, 'create', '--name', 'reader', '--scopes', 'read', '--json').stdout);
  const secondBase = `http://127.0.0.1:${second.port}`;
  const status = async () => (await fetch(`${secondBase}/v1/stats`, { headers: { authorization: `Bearer ${created.key}` } })).status;
  const seenAt = Date.now();
  while ((await status()) !== 200) {
    assert.ok(Date.now() - seenAt < 5000, 'the new key was not accepted within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(keys(first.databaseUrl, 'revoke', created.id).status, 0);
  const revokedAt = Date.now();
  while ((await status()) !== 401) {
    assert.ok(Date.now() - revokedAt < 5000, 'the revoked key still worked after 5 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});
