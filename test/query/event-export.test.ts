/**
 * The NDJSON export of GET /v1/events and the plans of its pages, against a real engine
 * and PostgreSQL: 40,000 stored rows of about 1.6 KiB (ties on one microsecond included)
 * stream once each in order; a client that stops reading holds the export back (memory
 * does not grow by the rows it has not read); a client that leaves frees the connection;
 * a failure after the first page ends the stream with an error line whose cursor resumes
 * it; and EXPLAIN shows pages scanning the v8 indexes of the window's partitions only.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { pageStatement, type EventQuery } from '../../src/query/event-cursor';
import { isoOfMicros } from '../../src/query/query-parameters';
import { startTestEngine, type TestEngine } from '../support/engine';

const rowCount = 40_000;
const hourUs = 3_600_000_000;
/** An hour ago on a whole millisecond; the rows lie in the ten seconds before it. */
const baseUs = (Date.now() - 3_600_000) * 1000;
const fromUs = baseUs - hourUs;
const toUs = baseUs + hourUs;
const window = `from=${encodeURIComponent(isoOfMicros(fromUs))}&to=${encodeURIComponent(isoOfMicros(toUs))}`;

let harness: TestEngine;
let expectedIds: string[];

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

before(async () => {
  harness = await startTestEngine();
  // Four rows on each microsecond, a millisecond apart, straight into the table: the read
  // side reads whatever is stored, and 40,000 rows post slowly over HTTP.
  await harness.query(
    `INSERT INTO events (event_id, event_type, source, actor_id, occurred_at, received_at, attributes)
     SELECT 'x-' || lpad(g::text, 6, '0'), (ARRAY['view', 'click', 'buy'])[1 + g % 3], 'bulk', 'user-' || (g % 50),
            $1::timestamptz - (g / 4) * interval '1 millisecond', now(), jsonb_build_object('g', g, 'pad', repeat('p', 1500))
       FROM generate_series(0, $2::int - 1) AS g`,
    [isoOfMicros(baseUs), rowCount],
  );
  await harness.query('ANALYZE events');
  expectedIds = (await harness.query<{ event_id: string }>("SELECT event_id FROM events WHERE source = 'bulk' ORDER BY occurred_at DESC, event_id DESC")).map((row) => row.event_id);
});
after(() => harness?.close());

interface Export {
  readonly response: http.IncomingMessage;
  readonly request: http.ClientRequest;
  /** Resolves with every line once the answer ends. */
  readonly lines: Promise<string[]>;
}

/** GET with Accept: application/x-ndjson; the body is read only once `resume()` is called on the response. */
function openExport(query: string): Promise<Export> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${harness.baseUrl}/v1/events?${query}`, { headers: { accept: 'application/x-ndjson' }, agent: false }, (response) => {
      response.pause();
      response.setEncoding('utf8');
      const lines = new Promise<string[]>((done, failed) => {
        let text = '';
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => done(text === '' ? [] : text.replace(/\n$/, '').split('\n')));
        response.on('error', failed);
      });
      lines.catch(() => undefined);
      resolve({ response, request, lines });
    });
    request.on('error', reject);
  });
}

async function readConnections(): Promise<Array<{ pid: number; state: string }>> {
  return harness.query("SELECT pid, state FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'floodgate-read'");
}

function rssMiB(): number {
  collectGarbage();
  collectGarbage();
  return process.memoryUsage().rss / 2 ** 20;
}

test('an export streams every row once, in order, and waits while the client does not read', async (t) => {
  const whole = await openExport(window);
  assert.equal(whole.response.statusCode, 200);
  assert.equal(whole.response.headers['content-type'], 'application/x-ndjson');
  assert.equal(whole.response.headers['transfer-encoding'], 'chunked');
  whole.response.resume();
  const rows = (await whole.lines).map((line) => JSON.parse(line) as { event_id: string; attributes: { g: number; pad: string } });
  assert.deepEqual(rows.map((row) => row.event_id), expectedIds);
  assert.equal(rows[0]?.attributes.pad.length, 1500);

  // Measured after a whole export, so the allocators hold what an export needs already.
  const before = rssMiB();
  const paused = await openExport(window);
  await sleep(1500);
  const grownMiB = rssMiB() - before;
  const exportMiB = (rowCount * 1600) / 2 ** 20;
  t.diagnostic(`RSS grew by ${grownMiB.toFixed(1)} MiB while the client read nothing of a ${exportMiB.toFixed(0)} MiB export`);
  // A few pages of about 1 MiB are held; reading on regardless would hold the whole export.
  assert.ok(exportMiB > 48);
  assert.ok(grownMiB < 16, `RSS grew by ${grownMiB.toFixed(1)} MiB`);
  assert.ok((await readConnections()).every((connection) => connection.state === 'idle'), 'no statement runs while the export waits');
  paused.response.resume();
  assert.equal((await paused.lines).length, rowCount);
});

test('order=asc and filters apply to the export; an empty one is an empty answer', async () => {
  const asc = await openExport(`${window}&order=asc&actor_id=user-7&event_type=buy`);
  asc.response.resume();
  const ids = (await asc.lines).map((line) => (JSON.parse(line) as { event_id: string }).event_id);
  const expected = await harness.query<{ event_id: string }>(
    "SELECT event_id FROM events WHERE actor_id = 'user-7' AND event_type = 'buy' ORDER BY occurred_at, event_id",
  );
  assert.deepEqual(ids, expected.map((row) => row.event_id));
  assert.ok(ids.length > 200);
  const empty = await openExport(`${window}&source=nowhere`);
  empty.response.resume();
  assert.equal(empty.response.statusCode, 200);
  assert.deepEqual(await empty.lines, []);
});

test('a client that leaves ends its export and frees the connection and the slot', async () => {
  // Past the four exports a pool of eight connections allows at once, should slots leak.
  for (let round = 0; round < 6; round++) {
    const opened = await openExport(window);
    opened.response.resume();
    await new Promise((resolve) => opened.response.once('data', resolve));
    opened.request.destroy();
  }
  let connections = await readConnections();
  for (let waitedMs = 0; waitedMs < 3000 && connections.some((connection) => connection.state !== 'idle'); waitedMs += 50) {
    await sleep(50);
    connections = await readConnections();
  }
  assert.deepEqual(connections.filter((connection) => connection.state !== 'idle'), []);
  const full = await openExport(`${window}&actor_id=user-3`);
  full.response.resume();
  assert.equal(full.response.statusCode, 200);
  assert.equal((await full.lines).length, expectedIds.length / 50);
});

test('a failure after the first page ends the stream with an error line; its cursor resumes the export', async () => {
  const opened = await openExport(window);
  await sleep(300);
  await harness.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'floodgate-read'");
  opened.response.resume();
  const lines = await opened.lines;
  const last = JSON.parse(lines.at(-1) as string) as { request_id: string; error: { code: string; parameter: null; message: string }; next_cursor: string };
  assert.equal(last.error.code, 'ERR_QUERY_UNAVAILABLE');
  assert.equal(last.request_id, opened.response.headers['x-request-id']);
  const firstIds = lines.slice(0, -1).map((line) => (JSON.parse(line) as { event_id: string }).event_id);
  assert.ok(firstIds.length > 0 && firstIds.length < rowCount, `${firstIds.length} rows before the error`);
  const resumed = await openExport(`cursor=${last.next_cursor}`);
  resumed.response.resume();
  const restIds = (await resumed.lines).map((line) => (JSON.parse(line) as { event_id: string }).event_id);
  assert.deepEqual([...firstIds, ...restIds], expectedIds);
});

interface PlanNode {
  readonly 'Node Type': string;
  readonly 'Relation Name'?: string;
  readonly 'Index Name'?: string;
  readonly 'Scan Direction'?: string;
  readonly Plans?: PlanNode[];
}

function scans(node: PlanNode): PlanNode[] {
  const own = node['Relation Name'] === undefined ? [] : [node];
  return [...own, ...(node.Plans ?? []).flatMap(scans)];
}

test('EXPLAIN: pages scan the v8 time index of the window\'s partitions only, from the cursor', async () => {
  const partitions = await harness.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'events'::regclass");
  assert.ok((partitions[0]?.n ?? 0) > 20, 'the engine made a month of partitions');
  const filters = { eventType: null, source: null, actorId: null };
  const cases: Array<[EventQuery, string, string]> = [
    [{ fromUs, toUs, filters, order: 'desc', after: { occurredAtUs: baseUs - 5_000_000, eventId: 'x-020000' } }, 'events_p\\d+_occurred_at_event_id_idx', 'Backward'],
    [{ fromUs, toUs, filters, order: 'asc', after: null }, 'events_p\\d+_occurred_at_event_id_idx', 'Forward'],
    // By actor: the same time index, the actor a filter on it (v11 dropped the actor index).
    [{ fromUs, toUs, filters: { ...filters, actorId: 'user-3' }, order: 'desc', after: { occurredAtUs: baseUs - 5_000_000, eventId: 'x' } }, 'events_p\\d+_occurred_at_event_id_idx', 'Backward'],
  ];
  for (const [query, indexPattern, direction] of cases) {
    const statement = pageStatement(query, 100, ',');
    const [result] = await harness.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`EXPLAIN (FORMAT JSON) ${statement.text}`, [...statement.values]);
    const found = scans((result?.['QUERY PLAN'][0] as { Plan: PlanNode }).Plan);
    const label = `${query.order}${query.filters.actorId === null ? '' : ' by actor'}`;
    assert.ok(found.length >= 1 && found.length <= 2, `${label}: ${found.length} partitions scanned for a two-hour window`);
    for (const scan of found) {
      assert.match(scan['Node Type'], /^Index (Only )?Scan$/, label);
      assert.match(scan['Index Name'] ?? '', new RegExp(`^${indexPattern}$`), label);
      assert.equal(scan['Scan Direction'], direction, label);
    }
  }
});
