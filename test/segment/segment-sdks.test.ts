/**
 * The tracking SDKs people already run, unchanged, against real engines (issue 26):
 * Segment's `@segment/analytics-node` and RudderStack's `@rudderstack/rudder-sdk-node`,
 * pointed at Floodgate with their own host option, send a few thousand events over every
 * call type (track, identify, page, screen, group, alias). Every event is stored exactly
 * once, and each row is mapped as the Segment routes document: messageId → event_id, the
 * track event or the call type → event_type, userId else anonymousId → actor_id, the key's
 * name (or `segment`) → source, the time from `timestamp` or corrected from
 * `sentAt − originalTimestamp` (for a clock off by more than 5 minutes), and the rest of the
 * message (what did not become a column) → attributes.
 *
 * Then the same with the engine killed (SIGKILL) for a few seconds mid-run and restarted on
 * the same port and database: both SDKs' own retries carry every event, stored once.
 *
 * What the SDKs send, read from their source (versions in package-lock.json):
 * - Segment: `{batch, writeKey, sentAt}` as application/json, never gzip; each message has
 *   `timestamp` set at the call (so occurred_at is always explicit), `_metadata`, and
 *   `context.library`. Retries: 5xx (not 501/505/511), 408/410/429/460 and network errors,
 *   `maxRetries` (default 10) with backoff from 1–2 s doubling to 60 s: enough for a few
 *   seconds down, so the defaults stand. A 400 or any other 4xx drops the batch at once.
 * - RudderStack: `{batch, timestamp, sentAt}`, gzip by default, sent with Content-Type
 *   application/x-www-form-urlencoded (axios posting a Buffer), application/json without
 *   gzip; each message has `originalTimestamp` and its own `sentAt` (set once per batch,
 *   not per retry), `channel`, `_metadata`, and no `timestamp` unless the caller gives one.
 *   Retries: axios-retry on network errors, 5xx and 429, `retryCount` (default 3) with
 *   exponential delays of 200, 400, 800 ms (or Retry-After if longer): about 1.4 s, which
 *   gives a batch up before a restarted engine answers, so these tests set retryCount 10
 *   (about 3.4 minutes in all, 200 ms doubling).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import { Analytics as SegmentAnalytics } from '@segment/analytics-node';
import RudderAnalytics from '@rudderstack/rudder-sdk-node';
import { generateKey } from '../../src/auth/key-format';
import { createTestDatabase, withClient } from '../support/database';
import { callRoute, startTestEngine, type TestEngine } from '../support/engine';
import { engineEnv, spawnEngine, type EngineProcess } from '../support/engine-process';
import { freePort } from '../support/free-port';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const marker = (name: string): string => `${name}-${Math.random().toString(36).slice(2, 10)}`;

type CallType = 'track' | 'identify' | 'page' | 'screen' | 'group' | 'alias';
type Message = Record<string, unknown>;
type Query = <Row extends Record<string, unknown>>(sql: string, values?: unknown[]) => Promise<Row[]>;

const callTypes: readonly CallType[] = ['track', 'identify', 'page', 'screen', 'group', 'alias'];
const trackEvents = ['Order Completed', 'Product Viewed', 'Signed Up'];
/** What the SDKs' callbacks are given up on: longer than any retry schedule used here needs. */
const settleTimeoutMs = 60_000;
/** How long the engine stays down in the kill tests, counted from its exit. */
const downMs = 3_000;

interface PlannedCall {
  readonly type: CallType;
  readonly message: Message;
}

/**
 * `count` calls spread evenly over the six types: a third with an explicit timestamp, a
 * fifth without a messageId of ours (the SDK makes one), userId alone, anonymousId alone or
 * both, and RudderStack's device-clock case: an originalTimestamp ten minutes behind.
 */
function planCalls(run: string, count: number, options: { skewedClock?: boolean } = {}): PlannedCall[] {
  const base = Math.floor((Date.now() - 2 * 86_400_000) / 1_000) * 1_000;
  const calls: PlannedCall[] = [];
  for (let i = 0; i < count; i++) {
    const type = callTypes[i % callTypes.length] as CallType;
    const message: Message = identityOf(type, i, run);
    if (i % 5 !== 4) message.messageId = `${run}-${i}`;
    if (i % 3 === 0) message.timestamp = new Date(base + i * 1_000);
    else if (options.skewedClock === true && i % 3 === 1) message.originalTimestamp = new Date(Date.now() - 600_000);
    if (i % 7 === 0) message.integrations = { All: true, Mixpanel: false };
    message.context = { ip: `10.0.${i % 250}.1`, locale: 'en-GB', campaign: { name: run, n: i } };
    Object.assign(message, payloadOf(type, i));
    calls.push({ type, message });
  }
  return calls;
}

function identityOf(type: CallType, i: number, run: string): Message {
  const userId = `user-${run}-${i % 41}`;
  const anonymousId = `anon-${run}-${i}`;
  if (type === 'alias') return { userId, previousId: anonymousId };
  if (i % 4 === 1) return { anonymousId };
  if (i % 4 === 2) return { userId, anonymousId };
  return { userId };
}

function payloadOf(type: CallType, i: number): Message {
  switch (type) {
    case 'track':
      return { event: trackEvents[i % trackEvents.length], properties: { i, revenue: i / 4, tags: ['a', 'b'], nested: { ok: true } } };
    case 'identify':
      return { traits: { email: `u${i}@example.com`, plan: i % 2 === 0 ? 'pro' : 'free' } };
    case 'page':
      return { name: 'Pricing', category: 'Docs', properties: { path: `/pricing/${i}`, title: 'Pricing' } };
    case 'screen':
      return { name: 'Settings', category: 'App', properties: { tab: i % 3 } };
    case 'group':
      return { groupId: `group-${i % 13}`, traits: { seats: i, industry: 'retail' } };
    case 'alias':
      return {};
  }
}

/** One SDK behind one shape: send a call (its callback settles a promise), then drain. */
interface SdkUnderTest {
  /** Every message as the SDK built it for the wire, by messageId (JSON round-tripped). */
  readonly sent: Map<string, Message>;
  /** Requests the SDK sent (Segment's, as its http_request events; RudderStack's are not seen) and retries among them. */
  readonly requests: () => { sent: number | null; retried: number };
  send(call: PlannedCall): Promise<unknown>;
  drain(): Promise<void>;
}

function segmentSdk(host: string, writeKey: string): SdkUnderTest {
  const sent = new Map<string, Message>();
  const requests = { sent: 0, retried: 0 };
  // flushAt/flushInterval: small batches, sent fast; httpRequestTimeout: a killed engine's
  // open requests fail with a reset anyway, this only bounds a hung one.
  const analytics = new SegmentAnalytics({ writeKey, host, flushAt: 100, flushInterval: 50, httpRequestTimeout: 5_000 });
  analytics.on('http_request', (request) => {
    requests.sent++;
    if ('X-Retry-Count' in request.headers) requests.retried++;
  });
  analytics.on('error', () => undefined);
  return {
    sent,
    requests: () => ({ ...requests }),
    send: (call) =>
      new Promise((resolve) => {
        const method = analytics[call.type].bind(analytics) as (message: Message, callback: (error: unknown, ctx?: { event: Message }) => void) => void;
        method(call.message, (error, ctx) => {
          if (ctx !== undefined) sent.set(ctx.event.messageId as string, JSON.parse(JSON.stringify(ctx.event)) as Message);
          resolve(error);
        });
      }),
    drain: () => analytics.closeAndFlush({ timeout: settleTimeoutMs }),
  };
}

function rudderSdk(dataPlaneUrl: string, writeKey: string, options: { gzip: boolean; retryCount?: number }): SdkUnderTest {
  const sent = new Map<string, Message>();
  const requests = { retried: 0 };
  const client = new RudderAnalytics(writeKey, {
    dataPlaneUrl,
    flushAt: 100,
    flushInterval: 50,
    gzip: options.gzip,
    logLevel: 'none',
    ...(options.retryCount === undefined ? {} : { retryCount: options.retryCount }),
    axiosRetryConfig: { onRetry: () => void requests.retried++ },
    // The hook sees each event after the SDK enriched it; only the per-message sentAt is
    // added later, at flush. It changes nothing.
    beforeEnqueue: (event) => {
      sent.set(event.messageId, JSON.parse(JSON.stringify(event)) as Message);
      return event;
    },
  });
  return {
    sent,
    requests: () => ({ sent: null, retried: requests.retried }),
    send: (call) =>
      new Promise((resolve) => {
        const method = client[call.type].bind(client) as unknown as (message: Message, callback: (error?: unknown) => void) => void;
        method(call.message, (error) => resolve(error));
      }),
    drain: async () => {
      await client.flush();
    },
  };
}

interface RunResult {
  readonly calls: readonly PlannedCall[];
  readonly errors: readonly unknown[];
  readonly elapsedMs: number;
}

/** Sends every call, `chunk` at a time with `pauseMs` between, then drains and waits for every callback. */
async function runCalls(
  sdk: SdkUnderTest,
  calls: readonly PlannedCall[],
  pace: { chunk: number; pauseMs: number; between?: (acknowledged: number) => Promise<void> | void },
): Promise<RunResult> {
  const started = Date.now();
  let acknowledged = 0;
  const settled: Promise<unknown>[] = [];
  for (let i = 0; i < calls.length; i++) {
    settled.push(sdk.send(calls[i] as PlannedCall).then((error) => ((acknowledged += error === undefined ? 1 : 0), error)));
    if (i % pace.chunk !== pace.chunk - 1) continue;
    await sleep(pace.pauseMs);
    await pace.between?.(acknowledged);
  }
  await sdk.drain();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), settleTimeoutMs)));
  // The timer is cleared, not left to run out: it would hold the test process open.
  const outcomes = await Promise.race([Promise.all(settled), timedOut]).finally(() => clearTimeout(timer));
  assert.ok(outcomes !== null, `every callback within ${settleTimeoutMs} ms (${acknowledged} of ${calls.length} acknowledged)`);
  return { calls, errors: outcomes.filter((error) => error !== undefined && error !== null), elapsedMs: Date.now() - started };
}

interface StoredRow extends Record<string, unknown> {
  event_id: string;
  event_type: string;
  source: string;
  actor_id: string | null;
  occurred_at: Date;
  received_at: Date;
  attributes: Message;
}

const expectedEventType = (message: Message): string => (message.type === 'track' ? (message.event as string) : (message.type as string));

/**
 * The rows for every message the SDK sent: each id once, each field mapped. `exactTimes`
 * false (after a kill) checks only explicit timestamps: a retried RudderStack batch keeps
 * the sentAt of its first try, so a derived time moves by the time spent retrying.
 */
async function verifyStored(t: TestContext, query: Query, sdk: SdkUnderTest, run: RunResult, source: string, exactTimes = true): Promise<string> {
  const failures = new Map<string, number>();
  for (const error of run.errors) failures.set(String(error), (failures.get(String(error)) ?? 0) + 1);
  assert.equal(run.errors.length, 0, `no call failed; got ${[...failures].map(([error, n]) => `${n} × ${error}`).join('; ')}`);
  assert.equal(sdk.sent.size, run.calls.length, 'the SDK built one message per call, each with its own messageId');
  for (const call of run.calls) {
    if (typeof call.message.messageId === 'string') assert.ok(sdk.sent.has(call.message.messageId), `our messageId ${call.message.messageId} kept`);
  }
  const ids = [...sdk.sent.keys()];
  const [totals] = await query<{ rows: number; ids: number }>(
    'SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS ids FROM events WHERE event_id = ANY($1)', [ids]);
  assert.equal(totals?.ids, ids.length, 'loss: every messageId is stored');
  assert.equal(totals?.rows, ids.length, 'duplicates: no messageId is stored twice');

  const rows = await query<StoredRow>(
    'SELECT event_id, event_type, source, actor_id, occurred_at, received_at, attributes FROM events WHERE event_id = ANY($1)', [ids]);
  const expectedTypes = new Map<string, number>();
  for (const message of sdk.sent.values()) expectedTypes.set(expectedEventType(message), (expectedTypes.get(expectedEventType(message)) ?? 0) + 1);
  const storedTypes = new Map<string, number>();
  for (const row of rows) storedTypes.set(row.event_type, (storedTypes.get(row.event_type) ?? 0) + 1);
  assert.deepEqual(new Map([...storedTypes].sort()), new Map([...expectedTypes].sort()), 'counts per event_type');

  const extraKeys = new Set<string>();
  const sampled = new Set<string>();
  for (const row of rows) {
    const message = sdk.sent.get(row.event_id) as Message;
    const what = `${message.type} ${row.event_id}`;
    assert.equal(row.event_type, expectedEventType(message), `${what}: event_type`);
    assert.equal(row.actor_id, (message.userId ?? message.anonymousId) as string, `${what}: actor_id is userId, else anonymousId`);
    assert.equal(row.source, source, `${what}: source`);
    assert.equal(row.attributes.messageId, undefined, `${what}: messageId is the event_id, not an attribute`);
    assert.equal(row.attributes.type, message.type, `${what}: attributes.type`);
    checkOccurredAt(row, message, exactTimes);
    // Every message gets the light checks above; one of each call type also the whole message.
    if (sampled.has(message.type as string)) continue;
    sampled.add(message.type as string);
    // What became a column is stored once, there; every other field as sent.
    const columns = new Set(['messageId', ...(message.type === 'track' ? ['event'] : []), row.actor_id === message.userId ? 'userId' : 'anonymousId']);
    if (typeof message.timestamp === 'string' && message.timestamp.endsWith('Z')) columns.add('timestamp');
    for (const [key, value] of Object.entries(message)) {
      if (columns.has(key)) assert.equal(row.attributes[key], undefined, `${what}: attributes.${key} is a column, not kept twice`);
      else assert.deepEqual(row.attributes[key], value, `${what}: attributes.${key} as sent`);
    }
    for (const key of Object.keys(row.attributes)) if (!(key in message)) extraKeys.add(key);
  }
  assert.deepEqual([...sampled].sort(), [...callTypes].sort(), 'a full sample of every call type');
  if (extraKeys.size > 0) t.diagnostic(`attributes beyond the message the SDK built: ${[...extraKeys].sort().join(', ')}`);
  return [...storedTypes].sort().map(([type, n]) => `${type} ${n}`).join(', ');
}

function checkOccurredAt(row: StoredRow, message: Message, exactTimes: boolean): void {
  const what = `${message.type} ${row.event_id}`;
  if (typeof message.timestamp === 'string') {
    assert.equal(row.occurred_at.getTime(), Date.parse(message.timestamp), `${what}: an explicit timestamp as given`);
    return;
  }
  if (!exactTimes || typeof message.originalTimestamp !== 'string') return;
  // One clock here, so sentAt is within the 5-minute tolerance and the time is originalTimestamp
  // as sent (a corrected one would differ by the trip); for the skewed calls, ten minutes
  // away from the receive time.
  const original = Date.parse(message.originalTimestamp);
  const offsetMs = row.occurred_at.getTime() - original;
  assert.ok(offsetMs >= -5 && offsetMs < 5_000, `${what}: occurred_at ${row.occurred_at.toISOString()} is originalTimestamp corrected, off by ${offsetMs} ms`);
  assert.ok(row.received_at.getTime() - row.occurred_at.getTime() > -5, `${what}: not after its receipt`);
}

async function createIngestKey(baseUrl: string, adminKey: string, name: string): Promise<string> {
  const created = await callRoute(baseUrl, 'POST', '/v1/keys', { authorization: `Bearer ${adminKey}` }, { name, scopes: ['ingest'] });
  assert.equal(created.status, 201, created.text);
  return created.json.key as string;
}

const report = (line: string): void => void process.stdout.write(`# ${line}\n`);

describe('with an ingest key as the write key (HTTP Basic user name)', () => {
  const adminKey = generateKey();
  let engine: TestEngine;
  const keys: Record<string, string> = {};

  before(async () => {
    engine = await startTestEngine({ adminKey });
    for (const name of ['segment-web', 'rudder-web']) keys[name] = await createIngestKey(engine.baseUrl, adminKey, name);
  });
  after(() => engine.close());

  test('Segment analytics-node: 3,000 calls of every type, each stored once under the key\'s name, mapped', { timeout: 90_000 }, async (t) => {
    const sdk = segmentSdk(engine.baseUrl, keys['segment-web'] as string);
    const run = await runCalls(sdk, planCalls(marker('seg'), 3_000), { chunk: 500, pauseMs: 5 });
    const types = await verifyStored(t, engine.query, sdk, run, 'segment-web');
    report(`segment keyed: ${run.calls.length} calls, ${sdk.requests().sent} requests, ${run.elapsedMs} ms; ${types}`);
  });

  // Its gzip body comes as Content-Type application/x-www-form-urlencoded (see the top):
  // the routes must read it as JSON, or every call fails with 415.
  test('RudderStack (gzip, its default): 3,000 calls of every type, each stored once under the key\'s name, mapped', { timeout: 90_000 }, async (t) => {
    const sdk = rudderSdk(engine.baseUrl, keys['rudder-web'] as string, { gzip: true });
    const run = await runCalls(sdk, planCalls(marker('rud'), 3_000, { skewedClock: true }), { chunk: 500, pauseMs: 5 });
    const types = await verifyStored(t, engine.query, sdk, run, 'rudder-web');
    report(`rudderstack keyed gzip: ${run.calls.length} calls, ${run.elapsedMs} ms; ${types}`);
  });

  test('RudderStack without gzip (application/json): 1,200 calls, each stored once, mapped', { timeout: 90_000 }, async (t) => {
    const sdk = rudderSdk(engine.baseUrl, keys['rudder-web'] as string, { gzip: false });
    const run = await runCalls(sdk, planCalls(marker('rud-plain'), 1_200, { skewedClock: true }), { chunk: 200, pauseMs: 5 });
    const types = await verifyStored(t, engine.query, sdk, run, 'rudder-web');
    report(`rudderstack keyed plain: ${run.calls.length} calls, ${run.elapsedMs} ms; ${types}`);
  });

  test('a write key that is no key: both SDKs are refused (401), do not retry, and nothing is stored', { timeout: 60_000 }, async () => {
    await refusedWriteKey(engine);
  });
});

/** Both SDKs with a write key that is no Floodgate key: every call fails at once, nothing stored. */
async function refusedWriteKey(engine: TestEngine): Promise<void> {
  const wrong = generateKey();
  const segment = segmentSdk(engine.baseUrl, wrong);
  const rudder = rudderSdk(engine.baseUrl, wrong, { gzip: false, retryCount: 10 });
  for (const sdk of [segment, rudder]) {
    const calls = planCalls(marker('bad'), 12);
    const run = await runCalls(sdk, calls, { chunk: 12, pauseMs: 0 });
    assert.equal(run.errors.length, calls.length, 'every call reports the refusal');
    assert.match(String(run.errors[0]), /401|Unauthorized/);
    const ids = calls.map((call) => call.message.messageId).filter((id) => id !== undefined);
    const [row] = await engine.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE event_id = ANY($1)', [ids]);
    assert.equal(row?.n, 0);
  }
  assert.deepEqual(segment.requests(), { sent: 1, retried: 0 }, 'Segment sent its one batch once: a 401 is final');
  assert.equal(rudder.requests().retried, 0, 'RudderStack did not retry a 401');
}

// Both SDKs refuse to start without a write key, so "no key" never reaches the engine from
// them: with no key created, the write key they send anyway is an unknown credential, which
// the ingest posture refuses like any other (source "segment" is for raw calls without one).
describe('with no key created (open ingest), an SDK still sends its write key', () => {
  let engine: TestEngine;
  before(async () => {
    engine = await startTestEngine();
  });
  after(() => engine.close());

  test('a write key that is no Floodgate key is refused (401), not retried, nothing stored', { timeout: 60_000 }, async () => {
    await refusedWriteKey(engine);
  });
});

/**
 * A child engine killed with SIGKILL once a third of the calls are acknowledged, down for
 * `downMs` while the SDK keeps taking calls, then started again on the same port and
 * database. Calls go in chunks so that some are sent before, during and after the outage.
 */
async function killMidRun(t: TestContext, name: string, makeSdk: (baseUrl: string, writeKey: string) => SdkUnderTest, count: number): Promise<void> {
  const database = await createTestDatabase();
  const port = await freePort();
  const adminKey = generateKey();
  const baseUrl = `http://127.0.0.1:${port}`;
  const env = engineEnv({ DATABASE_URL: database.url, PORT: String(port), FLOODGATE_HOST: '127.0.0.1', FLOODGATE_ADMIN_KEY: adminKey });
  let engine: EngineProcess = await spawnEngine(env);
  // Started by a timer, not by the calls: the SDKs' drain must find an engine again.
  let restarted: Promise<EngineProcess> | null = null;
  const query: Query = async (sql, values) => withClient(database.url, async (client) => (await client.query(sql, values)).rows);
  try {
    // The key lives in the database, so the restarted engine knows it too.
    const sdk = makeSdk(baseUrl, await createIngestKey(baseUrl, adminKey, `${name}-crash`));
    const calls = planCalls(marker(name), count, { skewedClock: true });
    const run = await runCalls(sdk, calls, {
      chunk: 100,
      pauseMs: 60,
      between: async (acknowledged) => {
        // Kill by progress, not by time: a fast engine could finish before a timed kill.
        if (restarted !== null || acknowledged < count / 3) return;
        engine.child.kill('SIGKILL');
        await engine.exited;
        restarted = sleep(downMs).then(() => spawnEngine(env));
        restarted.then((next) => (engine = next), () => undefined);
      },
    });
    assert.ok(restarted !== null, 'the engine was killed mid-run');
    engine = await restarted;
    const types = await verifyStored(t, query, sdk, run, `${name}-crash`, false);
    const { sent, retried } = sdk.requests();
    report(`${name} kill -9: ${count} calls, ${sent === null ? '' : `${sent} requests, `}${retried} retries, ${run.elapsedMs} ms; ${types}`);
    assert.ok(retried > 0, 'the outage made the SDK retry');
  } finally {
    if (restarted !== null) engine = await (restarted as Promise<EngineProcess>).catch(() => engine);
    engine.child.kill('SIGKILL');
    await engine.exited;
    await database.drop();
  }
}

describe('engine killed (SIGKILL) for a few seconds mid-run, restarted on the same port and database', () => {
  test('Segment analytics-node with its default retries: every event stored exactly once', { timeout: 90_000 }, async (t) => {
    await killMidRun(t, 'segment', (baseUrl, writeKey) => segmentSdk(baseUrl, writeKey), 3_000);
  });

  // Without gzip, so that this test is about retries alone: gzip has its own test above.
  test('RudderStack with retryCount 10: every event stored exactly once', { timeout: 90_000 }, async (t) => {
    await killMidRun(t, 'rudderstack', (baseUrl, writeKey) => rudderSdk(baseUrl, writeKey, { gzip: false, retryCount: 10 }), 3_000);
  });
});
