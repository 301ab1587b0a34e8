/**
 * The live dashboard (GET /) in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core; no browser is downloaded): the page loads without external requests or
 * script errors, shows numbers that change under load, draws its charts, and leaves a
 * screenshot in test-output/dashboard.png; its deliveries view lists every subscription with
 * the health the engine's route reports, and asks for an admin key once keys exist.
 *
 * Without /usr/bin/chromium the test is skipped with the reason, unless
 * FLOODGATE_TEST_REQUIRE_CHROMIUM=1 (CI installs chromium), which makes its absence fail.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { post, request, startTestEngine, type TestEngine } from '../support/engine';
import { wireEvents } from '../support/wire-events';

const chromiumPath = '/usr/bin/chromium';
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const screenshotPath = path.join(__dirname, '..', '..', '..', 'test-output', 'dashboard.png');

function missingChromium(): string | null {
  if (existsSync(chromiumPath)) return null;
  const reason = `${chromiumPath} is not installed (apt-get install chromium)`;
  if (process.env.FLOODGATE_TEST_REQUIRE_CHROMIUM === '1') throw new Error(`FLOODGATE_TEST_REQUIRE_CHROMIUM=1 but ${reason}`);
  return reason;
}

let harness: TestEngine | undefined;
before(async () => {
  // Two actors (the default is one), so the page has to draw one ring bar per actor.
  // Subscriptions point at 127.0.0.1, which the SSRF guard refuses unless told.
  if (missingChromium() === null) harness = await startTestEngine({ actorCount: 2, deliveryAllowPrivateNetworks: true });
});
after(async () => {
  await harness?.close();
});

/** Posts bulk requests from `concurrency` loops until `stop()` is called; returns events accepted. */
function loadUntilStopped(baseUrl: string, concurrency: number): { stop: () => Promise<number> } {
  let running = true;
  let accepted = 0;
  let request = 0;
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      const body = JSON.stringify({ events: wireEvents(200, `dash-${request++}`) });
      const answer = await post(`${baseUrl}/v1/events/bulk`, body);
      assert.equal(answer.status, 200, answer.text);
      accepted += answer.json.accepted as number;
    }
  });
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return accepted;
    },
  };
}

test('the dashboard loads, shows live numbers that change under load, and is captured', async (context) => {
  const reason = missingChromium();
  if (reason !== null) {
    process.stdout.write(`# dashboard test skipped: ${reason}\n`);
    return context.skip(reason);
  }
  assert.ok(harness !== undefined);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, timeout: 30_000 });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const origin = new URL(harness.baseUrl).origin;
    const foreign: string[] = [];
    const scriptErrors: string[] = [];
    page.on('request', (request) => {
      if (new URL(request.url()).origin !== origin) foreign.push(request.url());
    });
    page.on('pageerror', (error) => scriptErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') scriptErrors.push(message.text());
    });
    const response = await page.goto(`${harness.baseUrl}/`, { timeout: 15_000 });
    assert.equal(response?.status(), 200);
    assert.match(response?.headers()['content-type'] ?? '', /^text\/html/);
    const headers = response?.headers() ?? {};
    // The page works under its own Content-Security-Policy: a blocked inline script or style
    // would show up below as a console error and as tiles that never update.
    assert.match(headers['content-security-policy'] ?? '', /script-src 'sha256-[A-Za-z0-9+/]+=*'/);
    assert.equal(headers['x-content-type-options'], 'nosniff');
    assert.equal(await page.title(), 'Floodgate');
    await waitForText(page, 'updated', (text) => text !== 'never', 10_000);
    const idle = await readTiles(page);
    assert.equal(idle.committedTotal, '0');
    assert.equal(idle.circuit, 'circuit closed');

    const load = loadUntilStopped(harness.baseUrl, 4);
    let busy: Tiles;
    try {
      // Live: the page must show a non-zero rate and a total that keeps moving while load runs.
      await waitForText(page, 'committed-rate', (text) => numberIn(text) > 0, 15_000);
      const first = await readTiles(page);
      await waitForText(page, 'committed-total', (text) => text !== first.committedTotal, 5_000);
      busy = await readTiles(page);
      await waitFor(async () => Number(await page.locator('#rate-chart').getAttribute('data-points')) >= 4, 10_000, () => 'chart points');
    } finally {
      const accepted = await load.stop();
      context.diagnostic(`load: ${accepted} events accepted while the page watched`);
    }
    assert.ok(numberIn(busy.committedTotal) > 0);
    assert.notEqual(busy.commitP99, '–', 'commit p99 is shown once events committed');
    assert.notEqual(busy.requestP50, '–');
    assert.equal(await page.locator('#rings .ring').count(), 2, 'one occupancy bar per actor');

    // The final total on the page matches what the engine stored, once the page catches up.
    const stored = String(await harness.countEvents());
    await waitForText(page, 'committed-total', (text) => String(numberIn(text)) === stored, 5_000);
    mkdirSync(path.dirname(screenshotPath), { recursive: true });
    await page.screenshot({ path: screenshotPath, fullPage: true });
    assert.ok(existsSync(screenshotPath));
    context.diagnostic(`screenshot: ${screenshotPath}`);
    assert.deepEqual(foreign, [], 'the page loads nothing from elsewhere');
    assert.deepEqual(scriptErrors, []);
  } finally {
    await browser.close();
  }
});

test('the deliveries view shows each subscription with its health, and asks for an admin key', async (context) => {
  const reason = missingChromium();
  if (reason !== null) return context.skip(reason);
  assert.ok(harness !== undefined);
  const base = harness.baseUrl;
  const create = async (body: object): Promise<string> => {
    const answer = await post(`${base}/v1/subscriptions`, JSON.stringify(body));
    assert.equal(answer.status, 201, answer.text);
    return String(answer.json.id);
  };
  // Matches nothing the load above sent; the disabled one's pending rows wait unsent, so both backlogs hold still.
  const quiet = await create({ url: 'http://127.0.0.1:9/quiet', event_types: ['dashboard.never'] });
  const paused = await create({ url: 'http://127.0.0.1:9/paused', enabled: false });
  await harness.query(
    `INSERT INTO deliveries (subscription_id, event_id, occurred_at, schedule_started_at)
     SELECT $1, 'dash-pending-' || n, now(), now() - interval '90 seconds' FROM generate_series(1, 3) n`,
    [paused],
  );
  await harness.query(
    `INSERT INTO delivery_attempts (delivery_id, subscription_id, attempt, attempted_at, duration_ms, outcome, status_code, error_class, error)
     SELECT min(id), $1, 1, now(), 12, 'retry', 500, 'http_status', 'HTTP 500' FROM deliveries WHERE subscription_id = $1`,
    [paused],
  );
  const health = async (id: string): Promise<any> => (await request('GET', `${base}/v1/subscriptions/${id}/health`)).json;

  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs, timeout: 30_000 });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 700 } });
    const scriptErrors: string[] = [];
    page.on('pageerror', (error) => scriptErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) scriptErrors.push(message.text());
    });
    await page.goto(`${base}/#deliveries`, { timeout: 15_000 });
    assert.equal(await page.locator('#live-view').isHidden(), true);
    const rows = page.locator('#deliveries-table tbody tr[data-health="shown"]');
    await waitFor(async () => (await rows.count()) === 2, 10_000, () => 'two subscription rows');
    const row = (id: string): import('playwright-core').Locator => page.locator(`#deliveries-table tr[data-subscription="${id}"]`);
    for (const id of [quiet, paused]) {
      const reported = await health(id);
      assert.equal(await row(id).getAttribute('data-backlog'), String(reported.backlog), `subscription ${id}'s backlog as the route reports it`);
      assert.equal(await row(id).getAttribute('data-success-rate-1h'), String(reported.success_rate_1h));
    }
    assert.equal(await row(paused).getAttribute('data-backlog'), '3');
    assert.equal(await row(paused).getAttribute('data-last-error-status'), '500');
    assert.match((await row(paused).textContent()) ?? '', /disabled.*http_status 500 HTTP 500/);
    assert.match((await row(paused).locator('td').nth(10).textContent()) ?? '', /^1m 3\ds$/, 'oldest pending about 90 s');
    assert.equal(await row(quiet).getAttribute('data-backlog'), '0');
    assert.match((await row(quiet).textContent()) ?? '', /http:\/\/127\.0\.0\.1:9\/quiet.*dashboard\.never.*enabled/);
    await page.screenshot({ path: path.join(path.dirname(screenshotPath), 'dashboard-deliveries.png') });

    // Once a key exists, loopback needs one too: the view asks for an admin key and shows the rows with it.
    const key = await post(`${base}/v1/keys`, JSON.stringify({ name: 'dashboard admin', scopes: ['admin'] }));
    assert.equal(key.status, 201, key.text);
    await page.click('#deliveries-refresh');
    await waitFor(async () => !(await page.locator('#admin-key-form').isHidden()), 5_000, () => 'the admin key form');
    assert.equal(await page.locator('#deliveries-status').getAttribute('data-status'), '401');
    await page.fill('#admin-key-input', key.json.key);
    await page.click('#admin-key-form button');
    await waitFor(async () => (await page.locator('#deliveries-status').getAttribute('data-status')) === null && (await rows.count()) === 2, 5_000, () => 'rows with the key');
    assert.deepEqual(scriptErrors, []);
  } finally {
    await browser.close();
  }
});

interface Tiles {
  readonly committedTotal: string;
  readonly commitP99: string;
  readonly requestP50: string;
  readonly circuit: string;
}

async function readTiles(page: import('playwright-core').Page): Promise<Tiles> {
  const text = async (id: string): Promise<string> => (await page.locator(`#${id}`).textContent()) ?? '';
  return { committedTotal: await text('committed-total'), commitP99: await text('commit-p99'), requestP50: await text('request-p50'), circuit: await text('circuit') };
}

/** "12,345" → 12345; "–" (no value yet) → NaN. */
function numberIn(text: string): number {
  return Number(text.replace(/,/g, ''));
}

/** Polls from Node (no DOM types needed here) until `done` holds or the time is up. */
async function waitFor(done: () => Promise<boolean>, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function waitForText(page: import('playwright-core').Page, id: string, done: (text: string) => boolean, timeoutMs: number): Promise<void> {
  let last = '';
  await waitFor(async () => done((last = (await page.locator(`#${id}`).textContent()) ?? '')), timeoutMs, () => `#${id} (last seen "${last}")`);
}
