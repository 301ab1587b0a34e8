/**
 * The dead-letter API and `floodgate dlq` against a real engine and PostgreSQL.
 *
 * Real poison: with the default schema no event that passes validation is refused by
 * PostgreSQL (NUL, lone surrogates, jsonb-hostile text and timestamps outside the window
 * are all caught first), so the end-to-end poison row comes from an operator's CHECK
 * constraint on `events` — PostgreSQL refuses the row, the sink bisects and dead-letters
 * it, and dropping the constraint is the "fix" that lets the replay commit. Other
 * fixtures are written with the sink's own insertDeadLetter.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import type { ValidEvent } from '../../src/event';
import { insertDeadLetter } from '../../src/sink/dead-letters';
import { post, startTestEngine, type TestEngine } from '../support/engine';
import { freePort } from '../support/free-port';
import { wireEvents } from '../support/wire-events';
import { engineEnv, spawnEngine } from '../support/engine-process';

const cli = path.join(__dirname, '..', '..', 'src', 'cli.js');
const json = { 'content-type': 'application/json' };
let engine: TestEngine;
let client: pg.Client;

before(async () => {
  engine = await startTestEngine();
  client = new pg.Client({ connectionString: engine.databaseUrl });
  await client.connect();
});
after(async () => {
  await client.end();
  await engine.close();
});

async function get(pathAndQuery: string): Promise<{ status: number; json: any }> {
  const response = await fetch(`${engine.baseUrl}${pathAndQuery}`);
  return { status: response.status, json: await response.json() };
}

async function replay(body: unknown): Promise<{ status: number; json: any; text: string }> {
  return post(`${engine.baseUrl}/v1/dead-letters/replay`, JSON.stringify(body), json);
}

async function deadLetterCount(): Promise<number> {
  return Number((await client.query('SELECT count(*)::int AS n FROM dead_letters')).rows[0].n);
}

async function rowOf(id: number): Promise<{ attempts: number; replayed_at: Date | null; reason_code: string }> {
  return (await client.query('SELECT attempts, replayed_at, reason_code FROM dead_letters WHERE id = $1', [id])).rows[0];
}

/** A dead letter written as the sink writes one; returns its id. */
async function insertFixture(event: ValidEvent, code = '22P05'): Promise<number> {
  await insertDeadLetter(client, event, Date.now() * 1000, { code, message: 'fixture' });
  return Number((await client.query('SELECT max(id)::int AS id FROM dead_letters')).rows[0].id);
}

function recentEvent(eventId: string, overrides: Partial<ValidEvent> = {}): ValidEvent {
  return {
    eventId,
    eventType: 'order.paid',
    source: 'billing',
    actorId: 'user-7',
    // µs on purpose: replay must recreate exactly this primary key.
    occurredAtUs: (Date.now() - 120_000) * 1000 + 123,
    attributesJson: '{"amount":12.5,"currency":"EUR"}',
    ...overrides,
  };
}

test('a row PostgreSQL refuses is dead-lettered, listed, fails again on replay without a second row, then commits once fixed', async () => {
  await client.query("ALTER TABLE events ADD CONSTRAINT floodgate_test_no_poison CHECK (event_type <> 'poison.check')");
  const events = wireEvents(20, 'dlq-real');
  for (const index of [3, 11]) (events[index] as { event_type: string }).event_type = 'poison.check';
  const sent = await post(`${engine.baseUrl}/v1/events/bulk`, JSON.stringify({ events }), json);
  assert.equal(sent.status, 200, sent.text);
  assert.equal(sent.json.accepted, 18);
  assert.deepEqual(sent.json.errors.map((error: { index: number; code: string }) => [error.index, error.code]), [[3, 'ERR_EVENT_DEAD_LETTERED'], [11, 'ERR_EVENT_DEAD_LETTERED']]);

  const listed = await get('/v1/dead-letters?reason_code=23514');
  assert.equal(listed.status, 200);
  assert.equal(listed.json.next_cursor, null);
  // The two events went to different actors, so either may have failed first.
  assert.deepEqual(listed.json.items.map((item: { event_id: string }) => item.event_id).sort(), ['dlq-real-11', 'dlq-real-3']);
  assert.ok(listed.json.items[0].id > listed.json.items[1].id, 'newest first');
  const item = listed.json.items.find((entry: { event_id: string }) => entry.event_id === 'dlq-real-3');
  assert.equal(item.attempts, 1);
  assert.equal(item.replayed_at, null);
  assert.match(item.reason, /floodgate_test_no_poison/);
  assert.ok(!Number.isNaN(Date.parse(item.failed_at)));
  assert.deepEqual([item.payload.event_type, item.payload.attributes], ['poison.check', events[3]?.properties]);
  const ids: number[] = listed.json.items.map((entry: { id: number }) => entry.id).reverse();

  const rowsBefore = await deadLetterCount();
  const again = await replay({ ids });
  assert.equal(again.status, 200, again.text);
  assert.deepEqual([again.json.replayed, again.json.dead_lettered, again.json.committed], [2, 2, 0]);
  assert.equal(again.json.results[0].error.code, 'ERR_EVENT_DEAD_LETTERED');
  assert.equal(await deadLetterCount(), rowsBefore, 'the new dead letter was folded into the old one');
  assert.deepEqual([(await rowOf(ids[0] as number)).attempts, (await rowOf(ids[0] as number)).replayed_at], [2, null]);

  await client.query('ALTER TABLE events DROP CONSTRAINT floodgate_test_no_poison');
  const fixed = await replay({ ids });
  assert.deepEqual([fixed.json.committed, fixed.json.duplicates, fixed.json.dead_lettered], [2, 0, 0], fixed.text);
  const stored = await client.query("SELECT count(*)::int AS n FROM events WHERE event_id IN ('dlq-real-3', 'dlq-real-11')");
  assert.equal(stored.rows[0].n, 2);
  const settled = await rowOf(ids[0] as number);
  assert.equal(settled.attempts, 3);
  assert.ok(settled.replayed_at instanceof Date);
});

test('list walks many rows newest first with an opaque cursor, and filters', async () => {
  await client.query('BEGIN');
  for (let index = 0; index < 1_150; index++) {
    await insertDeadLetter(client, recentEvent(`page-${index}`), 0, index % 5 === 0 ? { code: '22021', message: 'invalid byte sequence' } : { code: '22P05', message: 'unsupported Unicode escape sequence' });
  }
  await client.query('COMMIT');
  const expected = (await client.query('SELECT id::int FROM dead_letters ORDER BY id DESC')).rows.map((row) => row.id);
  const walk = async (query: string, limit: number): Promise<{ ids: number[]; pages: number }> => {
    const ids: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await get(`/v1/dead-letters?limit=${limit}${query}${cursor === null ? '' : `&after=${encodeURIComponent(cursor)}`}`);
      assert.equal(page.status, 200, JSON.stringify(page.json));
      assert.ok(page.json.items.length <= limit);
      ids.push(...page.json.items.map((entry: { id: number }) => entry.id));
      cursor = page.json.next_cursor;
      pages++;
    } while (cursor !== null);
    return { ids, pages };
  };
  const all = await walk('', 1000);
  assert.deepEqual(all.ids, expected);
  assert.equal(all.pages, Math.ceil(expected.length / 1000));
  const small = await walk('', 97);
  assert.deepEqual(small.ids, expected);
  const filtered = await walk('&reason_code=22021&replayed=false', 50);
  const expectedFiltered = (await client.query("SELECT id::int FROM dead_letters WHERE reason_code = '22021' AND replayed_at IS NULL ORDER BY id DESC")).rows.map((row) => row.id);
  assert.equal(expectedFiltered.length, 230);
  assert.deepEqual(filtered.ids, expectedFiltered);
  const defaultPage = await get('/v1/dead-letters');
  assert.equal(defaultPage.json.items.length, 100);
  assert.equal(defaultPage.json.order, 'newest_first');
  const replayed = await get('/v1/dead-letters?replayed=true');
  assert.ok(replayed.json.items.every((entry: { replayed_at: string | null }) => entry.replayed_at !== null));
});

test('replaying a valid payload commits it exactly once; replaying again adds nothing', async () => {
  const event = recentEvent('fixed-1');
  const id = await insertFixture(event);
  const first = await replay({ ids: [id] });
  assert.equal(first.status, 200, first.text);
  assert.deepEqual([first.json.replayed, first.json.committed], [1, 1]);
  assert.deepEqual(first.json.results, [{ id, outcome: 'committed', event_id: 'fixed-1' }]);
  const stored = await client.query("SELECT (extract(epoch FROM occurred_at) * 1000000)::bigint::text AS us, event_type, source, actor_id, attributes FROM events WHERE event_id = 'fixed-1'");
  assert.equal(stored.rows.length, 1);
  assert.deepEqual(stored.rows[0], { us: String(event.occurredAtUs), event_type: 'order.paid', source: 'billing', actor_id: 'user-7', attributes: { amount: 12.5, currency: 'EUR' } });
  const settled = await rowOf(id);
  assert.equal(settled.attempts, 2);
  assert.ok(settled.replayed_at instanceof Date);

  const rowsBefore = await deadLetterCount();
  const eventsBefore = await engine.countEvents();
  const twice = await replay({ ids: [String(id), id] });
  assert.deepEqual([twice.json.replayed, twice.json.already_replayed, twice.json.committed], [0, 1, 0], 'repeated ids count once');
  // The same event dead-lettered a second time: its replay finds the stored row.
  const copyId = await insertFixture(event);
  const copy = await replay({ ids: [copyId] });
  assert.deepEqual([copy.json.duplicates, copy.json.committed], [1, 0], copy.text);
  assert.ok((await rowOf(copyId)).replayed_at instanceof Date, 'a duplicate counts as replayed');
  assert.equal(await engine.countEvents(), eventsBefore);
  assert.equal(await deadLetterCount(), rowsBefore + 1, 'only the fixture was added');
});

test('still-invalid payloads are rejected by validation and stay; unknown ids are not_found', async () => {
  const nul = await insertFixture(recentEvent('still-bad-nul', { attributesJson: '{"note":"a\\u0000b"}' }));
  const old = await insertFixture(recentEvent('still-bad-old', { occurredAtUs: (Date.now() - 90 * 86_400_000) * 1000 }));
  const broken = await insertFixture(recentEvent('still-bad-json', { attributesJson: '{"open": [' }));
  const nulId = await insertFixture(recentEvent('id\u0000nul'));
  const eventsBefore = await engine.countEvents();
  const answer = await replay({ ids: [nul, old, broken, nulId, 99_999_999] });
  assert.equal(answer.status, 200, answer.text);
  assert.deepEqual([answer.json.replayed, answer.json.rejected, answer.json.not_found, answer.json.committed], [4, 4, 1, 0]);
  const codes = Object.fromEntries(answer.json.results.map((result: { id: number; outcome: string; error?: { code: string } }) => [result.id, `${result.outcome} ${result.error?.code ?? ''}`.trim()]));
  assert.deepEqual(codes, {
    [nul]: 'rejected ERR_EVENT_ATTRIBUTES_INVALID',
    [old]: 'rejected ERR_EVENT_TIMESTAMP_RANGE',
    [broken]: 'rejected ERR_EVENT_ATTRIBUTES_INVALID',
    [nulId]: 'rejected ERR_EVENT_FIELD_NUL',
    99999999: 'not_found',
  });
  assert.equal(await engine.countEvents(), eventsBefore);
  const row = await rowOf(nul);
  assert.deepEqual([row.attempts, row.replayed_at], [2, null]);
});

test('replay all goes page by page, oldest first, and reports what remains', async () => {
  const ids = [];
  for (let index = 0; index < 5; index++) ids.push(await insertFixture(recentEvent(`all-${index}`), '2200N'));
  const pages: any[] = [];
  let after: string | undefined;
  do {
    const page = await replay({ all: true, reason_code: '2200N', limit: 2, ...(after === undefined ? {} : { after }) });
    assert.equal(page.status, 200, page.text);
    pages.push(page.json);
    after = page.json.next_cursor ?? undefined;
  } while (after !== undefined);
  assert.deepEqual(pages.map((page) => [page.committed, page.more]), [[2, true], [2, true], [1, false]]);
  assert.deepEqual(pages.flatMap((page) => page.results.map((result: { id: number }) => result.id)), ids);
  const nothing = await replay({ all: true, reason_code: '2200N' });
  assert.deepEqual([nothing.json.replayed, nothing.json.more, nothing.json.next_cursor], [0, false, null]);
});

test('bad parameters and bodies are 400 (413, 415, 405) naming the culprit', async () => {
  const listCases: Array<[string, string, string]> = [
    ['limit=0', 'limit', 'ERR_DEAD_LETTER_BAD_PARAMETER'],
    ['limit=1001', 'limit', 'ERR_DEAD_LETTER_BAD_PARAMETER'],
    ['limit=ten', 'limit', 'ERR_DEAD_LETTER_BAD_PARAMETER'],
    ['after=bm9wZQ', 'after', 'ERR_DEAD_LETTER_BAD_CURSOR'],
    ['reason_code=22p05', 'reason_code', 'ERR_DEAD_LETTER_BAD_PARAMETER'],
    ['replayed=maybe', 'replayed', 'ERR_DEAD_LETTER_BAD_PARAMETER'],
    ['limit=5&limit=6', 'limit', 'ERR_DEAD_LETTER_BAD_PARAMETER'],
    ['order=asc', 'order', 'ERR_DEAD_LETTER_BAD_PARAMETER'],
  ];
  for (const [query, parameter, code] of listCases) {
    const answer = await get(`/v1/dead-letters?${query}`);
    assert.equal(answer.status, 400, query);
    assert.deepEqual([answer.json.error.code, answer.json.error.parameter], [code, parameter], query);
  }
  const replayCursor = (await replay({ all: true, reason_code: '2200N', limit: 1 })).json.next_cursor;
  assert.equal(replayCursor, null);
  const bodyCases: Array<[unknown, string | null, number]> = [
    [[1, 2], null, 400],
    [{}, 'ids', 400],
    [{ ids: [] }, 'ids', 400],
    [{ ids: [1, 0] }, 'ids[1]', 400],
    [{ ids: ['1e3'] }, 'ids[0]', 400],
    [{ ids: [1], all: true }, 'ids', 400],
    [{ ids: [1], reason_code: '22P05' }, 'reason_code', 400],
    [{ all: 'yes' }, 'all', 400],
    [{ all: true, limit: 5001 }, 'limit', 400],
    [{ all: true, after: 'bm9wZQ' }, 'after', 400],
    [{ all: true, reason_code: 7 }, 'reason_code', 400],
    [{ all: true, everything: true }, 'everything', 400],
    [{ ids: Array.from({ length: 5001 }, (_, i) => i + 1) }, 'ids', 413],
  ];
  for (const [body, parameter, status] of bodyCases) {
    const answer = await replay(body);
    assert.equal(answer.status, status, JSON.stringify(body).slice(0, 80));
    assert.equal(answer.json.error.parameter, parameter, JSON.stringify(body).slice(0, 80));
  }
  const listCursor = (await get('/v1/dead-letters?limit=1')).json.next_cursor;
  const wrongKind = await replay({ all: true, after: listCursor });
  assert.deepEqual([wrongKind.status, wrongKind.json.error.code], [400, 'ERR_DEAD_LETTER_BAD_CURSOR'], 'a list cursor is not a replay cursor');
  const notJson = await post(`${engine.baseUrl}/v1/dead-letters/replay`, '{"ids": [1', json);
  assert.deepEqual([notJson.status, notJson.json.error.code], [400, 'ERR_DEAD_LETTER_BAD_PARAMETER']);
  const form = await post(`${engine.baseUrl}/v1/dead-letters/replay`, 'ids=1', { 'content-type': 'application/x-www-form-urlencoded' });
  assert.deepEqual([form.status, form.json.error.code], [415, 'ERR_INGEST_UNSUPPORTED_MEDIA_TYPE']);
  const wrongMethod = await post(`${engine.baseUrl}/v1/dead-letters`, '{}', json);
  assert.deepEqual([wrongMethod.status, wrongMethod.json.error.code], [405, 'ERR_METHOD_NOT_ALLOWED']);
});

/** Runs the CLI to completion. */
function runCli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const childEnv = engineEnv(env);
  for (const name of Object.keys(childEnv)) if (name.startsWith('FLOODGATE_') && !(name in env)) delete childEnv[name];
  const child = spawn(process.execPath, [cli, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) => child.on('close', (code) => {
    clearTimeout(timer);
    resolve({ code, stdout, stderr });
  }));
}

test('floodgate dlq list reads the database; dlq replay drives the running engine', async () => {
  const env = { DATABASE_URL: engine.databaseUrl };
  const table = await runCli(['dlq', 'list', '--limit', '3', '--reason-code', '22P05'], env);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.trim().split('\n');
  assert.match(lines[0] as string, /^id\s+failed_at\s+code\s+attempts\s+replayed_at\s+event_id\s+reason$/);
  assert.equal(lines.length, 5, table.stdout);
  assert.match(lines[4] as string, /^more: floodgate dlq list --after \S+$/);
  const cursor = (lines[4] as string).split(' ').at(-1) as string;
  const jsonLines = await runCli(['dlq', 'list', '--json', '--limit', '2', '--after', cursor, '--reason-code=22P05'], env);
  assert.equal(jsonLines.code, 0, jsonLines.stderr);
  const items = jsonLines.stdout.trim().split('\n').map((line) => JSON.parse(line));
  const viaApi = await get(`/v1/dead-letters?limit=2&reason_code=22P05&after=${encodeURIComponent(cursor)}`);
  assert.deepEqual(items, viaApi.json.items, 'the CLI prints what the API answers');
  assert.match(jsonLines.stderr, /^more: floodgate dlq list --after /);

  const id = await insertFixture(recentEvent('cli-replay-1'));
  const bad = await insertFixture(recentEvent('cli-replay-bad', { attributesJson: '{"x":"\\u0000"}' }));
  const replayed = await runCli(['dlq', 'replay', '--ids', `${id},${bad}`, '--url', engine.baseUrl], {});
  assert.equal(replayed.code, 0, replayed.stderr);
  assert.match(replayed.stdout, new RegExp(`id ${bad} \\(cli-replay-bad\\) rejected: ERR_EVENT_ATTRIBUTES_INVALID`));
  assert.match(replayed.stdout, /replayed 2, committed 1, duplicates 0, rejected 1, dead_lettered 0, failed 0, not_found 0, already_replayed 0/);
  assert.equal(Number((await client.query("SELECT count(*) AS n FROM events WHERE event_id = 'cli-replay-1'")).rows[0].n), 1);

  const unreachable = await runCli(['dlq', 'replay', '--all', '--url', `http://127.0.0.1:${await freePort()}`], {});
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /cannot reach the engine at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  const usage = await runCli(['dlq', 'replay', '--ids', '1', '--all'], {});
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /exactly one of --ids/);
  const badLimit = await runCli(['dlq', 'list', '--limit', '0'], env);
  assert.equal(badLimit.code, 2);
  assert.match(badLimit.stderr, /--limit must be an integer from 1 to 1000/);
});

/**
 * Regression: with the embedded PostgreSQL, `dlq list` reuses the server a running engine
 * started; resolveDatabase's exit hook then stopped that server when the command exited,
 * taking the engine's database down (readyz went 503 with ECONNREFUSED).
 */
test('dlq list on the embedded database leaves a running engine\'s PostgreSQL up', async () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'floodgate-dlq-'));
  // As root, PostgreSQL runs as the postgres user, which must be able to enter the directory.
  chmodSync(dataDir, 0o755);
  const embedded = { FLOODGATE_DATA_DIR: dataDir, FLOODGATE_EMBEDDED_PG_PORT: String(await freePort()) };
  const engineProcess = await spawnEngine(engineEnv({ ...embedded, PORT: '0', FLOODGATE_HOST: '127.0.0.1' }, ['DATABASE_URL']));
  const { child, exited, port } = engineProcess;
  try {
    const listed = await runCli(['dlq', 'list'], { ...embedded, DATABASE_URL: '' });
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal(listed.stdout, 'no dead letters\n');
    const stored = await post(`http://127.0.0.1:${port}/v1/events/bulk`, JSON.stringify({ events: wireEvents(3, 'after-dlq-list') }), json);
    assert.deepEqual([stored.status, stored.json?.accepted], [200, 3], stored.text);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
  } finally {
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    rmSync(dataDir, { recursive: true, force: true });
  }
});
