/**
 * The analytics view of the page at / (src/metrics/analytics-view.ts) in a real headless
 * Chromium against a real engine, with events posted at chosen times, types and sources:
 *
 * - every number the chart draws (one SVG bar per bucket and series) equals count(*) of the
 *   stored events grouped the same way in SQL, for the last hour per minute (UTC), the last
 *   24 h per hour in the browser's zone (Asia/Kolkata, so hours start at :30 UTC), the last
 *   30 days per day by source, and with a type filter;
 * - the bucket still filling is marked (hatched column, lighter bars, a legend note);
 * - the top lists, the summary tiles and the filter options equal SQL over the same days;
 * - the raw tail pages with the cursor through every row, newest first, none repeated;
 * - a 400, a 503 (a lock held past the read statement timeout) and a 401 each show in
 *   their panel, and the view recovers; a screenshot lands in test-output/.
 *
 * The Grafana panels of docker/grafana/dashboards/floodgate-analytics.json run here too,
 * against the same database, with Grafana's macros substituted: their totals must equal
 * count(*) as well. That part needs no browser.
 *
 * Without /usr/bin/chromium the browser test is skipped with the reason, unless
 * FLOODGATE_TEST_REQUIRE_CHROMIUM=1 (CI installs chromium), which makes its absence fail.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import type { Page } from 'playwright-core';
import { post, request, startTestEngine, type TestEngine } from '../support/engine';
import type { WireEvent } from '../support/wire-events';

const chromiumPath = '/usr/bin/chromium';
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const repoRoot = path.join(__dirname, '..', '..', '..');
const screenshotPath = path.join(repoRoot, 'test-output', 'analytics-dashboard.png');
const browserZone = 'Asia/Kolkata';
const minuteMs = 60_000;
const hourMs = 60 * minuteMs;
const dayMs = 24 * hourMs;
/** The read API's statement timeout here: short, so a held lock turns into a 503 quickly. */
const readStatementTimeoutMs = 400;

function missingChromium(): string | null {
  if (existsSync(chromiumPath)) return null;
  const reason = `${chromiumPath} is not installed (apt-get install chromium)`;
  if (process.env.FLOODGATE_TEST_REQUIRE_CHROMIUM === '1') throw new Error(`FLOODGATE_TEST_REQUIRE_CHROMIUM=1 but ${reason}`);
  return reason;
}

const types = ['page_view', 'page_view', 'click', 'purchase', 'signup', 'click', 'page_view'];
const sources = ['web', 'ios', 'web', 'api', 'backend'];

/** One event `ageMs` before `nowMs`; `index` picks type and source, so the mix is uneven. */
function eventAt(nowMs: number, ageMs: number, index: number, prefix: string): WireEvent {
  return {
    event_id: `${prefix}-${index}`,
    event_type: types[index % types.length] ?? 'page_view',
    source: sources[(index * 3) % sources.length] ?? 'web',
    user_id: `user-${index % 13}`,
    timestamp: new Date(nowMs - ageMs).toISOString(),
    properties: { index, path: `/p/${index % 7}` },
  };
}

/**
 * 110 events in the last hour, denser towards now (each at its own millisecond), 14 over the
 * last day at odd hours, 16 over the last 30 days: every range of the view has several
 * buckets with several series, and no two neighbouring buckets need look alike.
 */
function seedEvents(nowMs: number): WireEvent[] {
  const hour = Array.from({ length: 110 }, (_, i) => eventAt(nowMs, 40_000 + Math.floor(3_400 * (i / 110) ** 1.7) * 1_000 + i, i, 'hour'));
  const day = Array.from({ length: 14 }, (_, i) => eventAt(nowMs, (2 + i * 1.6) * hourMs + i * 1_000, i + 3, 'day'));
  const month = Array.from({ length: 16 }, (_, i) => eventAt(nowMs, (1.3 + i * 1.8) * dayMs + i * 1_000, i + 5, 'month'));
  return [...hour, ...day, ...month];
}

let harness: TestEngine;
let seeded = 0;
before(async () => {
  harness = await startTestEngine({ readStatementTimeoutMs });
  const events = seedEvents(Date.now());
  const answer = await post(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events }));
  assert.equal(answer.status, 200, answer.text);
  assert.equal(answer.json.accepted, events.length);
  seeded = events.length;
  await waitFor(async () => (await harness.countEvents()) === seeded, 10_000, () => `${seeded} events stored`);
});
after(async () => {
  await harness?.close();
});

// ---- what the page drew -------------------------------------------------------------------

interface Drawn {
  readonly query: URLSearchParams;
  readonly buckets: ReadonlyArray<{ start: string; complete: boolean; total: number }>;
  readonly segments: ReadonlyArray<{ bucket: number; series: string; count: number; other: boolean }>;
  readonly incompleteMarks: readonly number[];
}

/** Everything the chart shows, read in one evaluate so a refresh cannot tear it. */
async function readDrawn(page: Page): Promise<Drawn> {
  // The callback runs in the page; its DOM values are untyped here (no DOM lib in tsconfig).
  const raw = await page.locator('#volume-chart').evaluate((svg) => {
    const attribute = (node: { getAttribute(name: string): string | null }, name: string): string => node.getAttribute(name) ?? '';
    const all = (selector: string): Array<{ getAttribute(name: string): string | null; classList: { contains(name: string): boolean } }> => [...svg.querySelectorAll(selector)];
    return {
      query: attribute(svg, 'data-query'),
      buckets: all('rect.column').map((node) => ({
        start: attribute(node, 'data-start'), complete: attribute(node, 'data-complete') === 'true', total: Number(attribute(node, 'data-total')),
      })),
      segments: all('rect.segment').map((node) => ({
        bucket: Number(attribute(node, 'data-bucket')), series: attribute(node, 'data-series'), count: Number(attribute(node, 'data-count')),
        other: attribute(node, 'data-other') === 'true', incomplete: node.classList.contains('incomplete'), height: Number(attribute(node, 'height')),
      })),
      incompleteMarks: all('rect.incomplete-mark').map((node) => Number(attribute(node, 'data-bucket'))),
    };
  });
  for (const segment of raw.segments) {
    assert.ok(segment.count > 0 && segment.height > 0, `a drawn bar has a count and a height (${JSON.stringify(segment)})`);
    assert.equal(segment.incomplete, raw.buckets[segment.bucket]?.complete === false, 'bars of the bucket still filling are drawn lighter, and only those');
  }
  return { ...raw, query: new URLSearchParams(raw.query) };
}

/** Waits until the chart shows an answer to a counts query that `wanted` accepts. */
async function waitForChart(page: Page, wanted: (query: URLSearchParams) => boolean, what: string): Promise<Drawn> {
  let last = '';
  let status = '';
  await waitFor(async () => {
    last = (await page.locator('#volume-chart').getAttribute('data-query')) ?? '';
    status = (await page.locator('#volume-status').textContent()) ?? '';
    return (await page.locator('#volume-chart').getAttribute('data-state')) === 'drawn' && wanted(new URLSearchParams(last));
  }, 10_000, () => `the chart of ${what} (last drawn: "${last}", status: "${status}")`);
  return readDrawn(page);
}

/** bucket start (ms) | series → count, as drawn. */
function drawnCounts(drawn: Drawn): Map<string, number> {
  const counts = new Map<string, number>();
  for (const segment of drawn.segments) {
    assert.equal(segment.other, false, 'few enough series that none is folded into "other"');
    const bucket = drawn.buckets[segment.bucket];
    assert.ok(bucket !== undefined, `bar in bucket ${segment.bucket}`);
    counts.set(`${Date.parse(bucket.start)}|${segment.series}`, segment.count);
  }
  return counts;
}

/** The same numbers from the events table: count(*) per bucket in the zone and per series. */
async function storedCounts(query: URLSearchParams, zone: string): Promise<Map<string, number>> {
  const field = query.get('group_by') === 'source' ? 'source' : 'event_type';
  const rows = await harness.query<{ bucket_ms: string; series: string; n: number }>(
    `SELECT (extract(epoch FROM date_trunc($3, occurred_at AT TIME ZONE $4) AT TIME ZONE $4) * 1000)::bigint AS bucket_ms,
            ${field} AS series, count(*)::int AS n
       FROM events
      WHERE occurred_at >= $1 AND occurred_at < $2
        AND ($5::text IS NULL OR event_type = $5) AND ($6::text IS NULL OR source = $6)
      GROUP BY 1, 2`,
    [query.get('from'), query.get('to'), query.get('interval'), zone, query.get('event_type'), query.get('source')],
  );
  return new Map(rows.map((row) => [`${row.bucket_ms}|${row.series}`, row.n]));
}

async function assertChartMatchesDatabase(drawn: Drawn, bucketCount: number, zone: string): Promise<void> {
  assert.equal(drawn.buckets.length, bucketCount);
  const sorted = (map: Map<string, number>): Array<[string, number]> => [...map].sort(([a], [b]) => a.localeCompare(b));
  const stored = await storedCounts(drawn.query, zone);
  assert.ok(stored.size > 0, 'the window holds stored events');
  assert.deepEqual(sorted(drawnCounts(drawn)), sorted(stored));
  // Each column's total is its bars' sum, and every bucket but the newest is complete.
  drawn.buckets.forEach((bucket, index) => {
    const sum = drawn.segments.filter((segment) => segment.bucket === index).reduce((total, segment) => total + segment.count, 0);
    assert.equal(bucket.total, sum, `bucket ${index} total`);
  });
  assert.deepEqual(drawn.buckets.map((bucket) => bucket.complete).slice(0, -1), Array(bucketCount - 1).fill(true));
  assert.equal(drawn.buckets.at(-1)?.complete, false, 'the newest bucket is still filling');
  assert.deepEqual(drawn.incompleteMarks, [bucketCount - 1], 'exactly the filling bucket is hatched');
}

test('the analytics view draws what the database holds, pages the tail, shows each error, and is captured', async (context) => {
  const reason = missingChromium();
  if (reason !== null) {
    process.stdout.write(`# analytics dashboard test skipped: ${reason}\n`);
    return context.skip(reason);
  }
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, timeout: 30_000 });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, timezoneId: browserZone });
    const origin = new URL(harness.baseUrl).origin;
    const foreign: string[] = [];
    const scriptErrors: string[] = [];
    page.on('request', (sent) => {
      if (new URL(sent.url()).origin !== origin) foreign.push(sent.url());
    });
    page.on('pageerror', (error) => scriptErrors.push(error.message));
    // A refused inline style or script (CSP) shows up only as a console error. The 400, 503
    // and 401 provoked below log "Failed to load resource", which is expected.
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) scriptErrors.push(message.text());
    });

    // A few events in the minute now filling, so the hatched bucket has bars of its own
    // (unless the minute turns before the page loads: the comparison holds either way).
    const now = Date.now();
    const fresh = [0, 1, 2].map((i) => eventAt(now, i * 10, 40 + i, 'fresh'));
    assert.equal((await post(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events: fresh }))).status, 200);
    seeded += fresh.length;
    await waitFor(async () => (await harness.countEvents()) === seeded, 10_000, () => 'fresh events stored');

    await page.goto(`${harness.baseUrl}/#analytics`, { timeout: 15_000 });
    assert.equal(await page.locator('#live-view').isHidden(), true);

    // Last hour, per minute, by event type, UTC (the defaults).
    const hour = await waitForChart(page, (query) => query.get('interval') === 'minute', 'the last hour');
    assert.equal(hour.query.get('tz'), null, 'UTC is the API default and is not sent');
    await assertChartMatchesDatabase(hour, 60, 'UTC');
    assert.match((await page.locator('#incomplete-note').textContent()) ?? '', /still filling/);
    assert.equal(await page.locator('#volume-table tbody tr.incomplete').count(), 1, 'the numbers table marks the filling bucket too');

    // Last 24 h, per hour, in the browser's zone: Kolkata is UTC+5:30, so buckets start at :30 UTC.
    await page.selectOption('#zone', 'browser');
    await page.selectOption('#range', 'day');
    const day = await waitForChart(page, (query) => query.get('interval') === 'hour' && query.get('tz') !== null, 'the last 24 h');
    const zone = day.query.get('tz') ?? '';
    assert.ok(['Asia/Kolkata', 'Asia/Calcutta'].includes(zone), `the page sends the browser's zone, not ${zone}`);
    for (const bucket of day.buckets) assert.equal(new Date(bucket.start).getUTCMinutes(), 30, `hour bucket ${bucket.start} starts on a Kolkata hour`);
    await assertChartMatchesDatabase(day, 24, zone);

    // Last 30 days, per UTC day, stacked by source.
    await page.selectOption('#zone', 'UTC');
    await page.selectOption('#range', 'month');
    await page.selectOption('#group-by', 'source');
    const month = await waitForChart(page, (query) => query.get('interval') === 'day' && query.get('group_by') === 'source' && query.get('tz') === null, 'the last 30 days');
    await assertChartMatchesDatabase(month, 30, 'UTC');
    await checkSummary(page, month.query);

    // A type filter, picked from the list the engine gives (never one written in the page).
    await page.selectOption('#filter-type', 'purchase');
    const purchases = await waitForChart(page, (query) => query.get('event_type') === 'purchase' && query.get('interval') === 'day', 'purchases');
    await assertChartMatchesDatabase(purchases, 30, 'UTC');
    await page.selectOption('#filter-type', '');

    await checkTailPaging(page);

    mkdirSync(path.dirname(screenshotPath), { recursive: true });
    await page.selectOption('#range', 'hour');
    await page.selectOption('#group-by', 'event_type');
    await waitForChart(page, (query) => query.get('interval') === 'minute' && query.get('group_by') === 'event_type', 'the last hour again');
    await page.screenshot({ path: screenshotPath, fullPage: true });
    context.diagnostic(`screenshot: ${screenshotPath}`);

    await checkBadRequest(page);
    await checkUnavailable(page);
    await checkKeyRequired(page);

    assert.deepEqual(foreign, [], 'the page loads nothing from elsewhere');
    assert.deepEqual(scriptErrors, []);
  } finally {
    await browser.close();
  }
});

/** The tiles, top lists and filter options equal SQL over the UTC days the summary covers. */
async function checkSummary(page: Page, query: URLSearchParams): Promise<void> {
  const firstDay = (query.get('from') ?? '').slice(0, 10);
  const lastDay = new Date(Date.parse(query.get('to') ?? '') - 1).toISOString().slice(0, 10);
  await waitFor(async () => ((await page.locator('#top-status').textContent()) ?? '').includes(`${firstDay} to ${lastDay}`), 10_000, () => 'the summary of the 30 days');
  const grouped = async (field: string): Promise<Array<[string, number]>> => {
    const rows = await harness.query<{ name: string; n: number }>(
      `SELECT ${field} AS name, count(*)::int AS n FROM events
        WHERE occurred_at >= $1::date AND occurred_at < $2::date + 1 GROUP BY 1 ORDER BY 2 DESC, 1`,
      [firstDay, lastDay],
    );
    return rows.map((row) => [row.name, row.n]);
  };
  const listed = (id: string): Promise<Array<[string, number]>> =>
    page.locator(`#${id} li[data-name]`).evaluateAll((items) => items.map((item) => [item.getAttribute('data-name') ?? '', Number(item.getAttribute('data-total'))] as [string, number]));
  const byName = (rows: Array<[string, number]>): Array<[string, number]> => [...rows].sort(([a], [b]) => a.localeCompare(b));
  const types = await grouped('event_type');
  const sourceRows = await grouped('source');
  for (const [id, stored] of [['top-types', types], ['top-sources', sourceRows]] as const) {
    const shown = await listed(id);
    assert.deepEqual(byName(shown), byName(stored), `#${id}`);
    assert.deepEqual(shown.map(([, n]) => n), [...shown.map(([, n]) => n)].sort((a, b) => b - a), `#${id} is ordered by total`);
  }
  const total = types.reduce((sum, [, n]) => sum + n, 0);
  assert.equal(await page.locator('#summary-total').textContent(), total.toLocaleString('en-US'));
  assert.equal(await page.locator('#summary-types').textContent(), String(types.length));
  assert.equal(await page.locator('#summary-sources').textContent(), String(sourceRows.length));

  const options = (id: string): Promise<string[]> => page.locator(`#${id} option`).evaluateAll((nodes) => nodes.map((node) => (node as { value: string }).value).filter((value) => value !== ''));
  const everyType = (await harness.query<{ name: string }>('SELECT DISTINCT event_type AS name FROM events')).map((row) => row.name).sort();
  await waitFor(async () => JSON.stringify(await options('filter-type')) === JSON.stringify(everyType), 10_000, () => 'the type options');
  assert.deepEqual(await options('filter-source'), sourceRows.map(([name]) => name).sort());
}

/** Newest first, 20 a page, every row of the window once, then no older page. */
async function checkTailPaging(page: Page): Promise<void> {
  await page.selectOption('#range', 'hour');
  await waitFor(async () => new URLSearchParams((await page.locator('#tail-table').getAttribute('data-query')) ?? '').get('limit') !== null
    && (await page.locator('#tail-table').getAttribute('data-page')) === '1'
    && (await page.locator('#tail-status').textContent()) === '', 10_000, () => 'the first page of the tail');
  const query = new URLSearchParams((await page.locator('#tail-table').getAttribute('data-query')) ?? '');
  assert.equal(query.get('order'), 'desc');
  const stored = (await harness.query<{ event_id: string }>(
    'SELECT event_id FROM events WHERE occurred_at >= $1 AND occurred_at < $2 ORDER BY occurred_at DESC, event_id DESC',
    [query.get('from'), query.get('to')],
  )).map((row) => row.event_id);
  assert.ok(stored.length > 100, `enough rows in the last hour for six pages (${stored.length})`);
  const shown: string[] = [];
  for (let pageNumber = 1; ; pageNumber++) {
    await waitFor(async () => (await page.locator('#tail-table').getAttribute('data-page')) === String(pageNumber) && (await page.locator('#tail-status').textContent()) === '', 10_000, () => `tail page ${pageNumber}`);
    const ids = await page.locator('#tail-table tbody tr[data-event-id]').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-event-id') ?? ''));
    assert.deepEqual(ids, stored.slice(shown.length, shown.length + 20), `tail page ${pageNumber}`);
    shown.push(...ids);
    if (await page.locator('#tail-older').isDisabled()) break;
    await page.click('#tail-older');
  }
  assert.deepEqual(shown, stored, 'the pages together hold every row once, newest first');
  await page.click('#tail-newest');
  await waitFor(async () => (await page.locator('#tail-table').getAttribute('data-page')) === '1', 10_000, () => 'back to the newest page');
}

/** A 400 from the engine (an extra parameter slipped into the request) shows its message. */
async function checkBadRequest(page: Page): Promise<void> {
  const pattern = (url: URL): boolean => url.pathname === '/v1/analytics/counts';
  await page.route(pattern, (route) => route.continue({ url: `${route.request().url()}&colour=blue` }));
  await page.click('#analytics-refresh');
  await waitFor(async () => (await page.locator('#volume-status').getAttribute('data-status')) === '400', 10_000, () => 'the 400 shown');
  const answer = await request('GET', `${harness.baseUrl}/v1/analytics/counts?colour=blue`);
  assert.equal(answer.status, 400);
  assert.ok(((await page.locator('#volume-status').textContent()) ?? '').includes(answer.json.error.message), 'the engine\'s own message is shown');
  assert.equal(await page.locator('#volume-chart').getAttribute('data-state'), 'drawn', 'the last chart stays on screen');
  await page.unroute(pattern);
  await page.click('#analytics-refresh');
  await waitFor(async () => (await page.locator('#volume-status').getAttribute('data-status')) === null, 10_000, () => 'the 400 cleared');
}

/** A lock held past the read statement timeout: 503, "retrying", then recovery by itself. */
async function checkUnavailable(page: Page): Promise<void> {
  const blocker = new pg.Client({ connectionString: harness.databaseUrl });
  await blocker.connect();
  try {
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE event_counts_minute, event_counts_daily IN ACCESS EXCLUSIVE MODE');
    await page.click('#analytics-refresh');
    await waitFor(async () => (await page.locator('#volume-status').getAttribute('data-status')) === '503', 10_000, () => 'the 503 shown');
    assert.match((await page.locator('#volume-status').textContent()) ?? '', /busy or unavailable.*retrying/);
  } finally {
    await blocker.query('ROLLBACK');
    await blocker.end();
  }
  await waitFor(async () => (await page.locator('#volume-status').getAttribute('data-status')) === null, 15_000, () => 'recovery after the 503');
}

/** Once a key exists the view asks for one, and shows the numbers again with a read key. */
async function checkKeyRequired(page: Page): Promise<void> {
  const created = await post(`${harness.baseUrl}/v1/keys`, JSON.stringify({ name: 'dashboard-reader', scopes: ['read'] }));
  assert.equal(created.status, 201, created.text);
  await page.reload();
  await waitFor(async () => (await page.locator('#volume-status').getAttribute('data-status')) === '401', 10_000, () => 'the 401 shown');
  assert.equal(await page.locator('#key-form').isVisible(), true, 'the key form is offered');
  await page.fill('#key-input', created.json.key as string);
  await page.click('#key-form button[type=submit]');
  await waitFor(async () => (await page.locator('#volume-chart').getAttribute('data-state')) === 'drawn'
    && (await page.locator('#volume-status').getAttribute('data-status')) === null, 10_000, () => 'the chart with the key');
  const drawn = await readDrawn(page);
  await assertChartMatchesDatabase(drawn, 60, 'UTC');
}

// ---- Grafana's panels, run for real -------------------------------------------------------

interface GrafanaPanel {
  readonly title: string;
  readonly targets: ReadonlyArray<{ readonly rawSql: string }>;
}

/** Grafana's PostgreSQL macros as Grafana expands them, for a fixed range and a 1 min interval. */
function expandMacros(sql: string, fromIso: string, toIso: string): string {
  return sql
    .replace(/\$__timeGroupAlias\((\w+),\s*\$__interval\)/g, 'floor(extract(epoch from $1)/60)*60 AS "time"')
    .replace(/\$__timeFilter\((\w+)\)/g, `$1 BETWEEN '${fromIso}' AND '${toIso}'`);
}

test('the Grafana analytics panels run against the real schema and add up to count(*)', async () => {
  const file = path.join(repoRoot, 'docker', 'grafana', 'dashboards', 'floodgate-analytics.json');
  const dashboard = JSON.parse(readFileSync(file, 'utf8')) as { panels: GrafanaPanel[] };
  const fromIso = new Date(Date.now() - 40 * dayMs).toISOString();
  const toIso = new Date(Date.now() + hourMs).toISOString();
  const stored = await harness.countEvents();
  const results = new Map<string, Array<Record<string, unknown>>>();
  for (const panel of dashboard.panels) {
    for (const target of panel.targets) {
      const sql = expandMacros(target.rawSql, fromIso, toIso);
      assert.doesNotMatch(sql, /\$__/, `panel "${panel.title}": a macro left unexpanded`);
      results.set(panel.title, await harness.query(sql));
    }
  }
  const sum = (title: string, column: string): number => (results.get(title) ?? []).reduce((total, row) => total + Number(row[column]), 0);
  assert.equal(sum('Events per interval, stacked by event type', 'events'), stored);
  assert.equal(sum('Events per UTC day, stacked by source', 'events'), stored);
  assert.equal(sum('Events in range', 'events'), stored);
  const byType = await harness.query<{ event_type: string; events: string }>('SELECT event_type, count(*)::text AS events FROM events GROUP BY 1 ORDER BY count(*) DESC, 1');
  assert.deepEqual((results.get('Top event types') ?? []).map((row) => [row['event_type'], String(row['events'])]), byType.map((row) => [row.event_type, row.events]));
  assert.equal(sum('Top sources', 'events'), stored);
  const newest = await harness.query<{ event_id: string }>('SELECT event_id FROM events ORDER BY occurred_at DESC, event_id DESC LIMIT 100');
  assert.deepEqual((results.get('Latest events') ?? []).map((row) => row['event_id']), newest.map((row) => row.event_id));
});

/** Polls from Node until `done` holds or the time is up. */
async function waitFor(done: () => Promise<boolean>, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
