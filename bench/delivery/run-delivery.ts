/**
 * `npm run bench:delivery -- [options]`: delivery to subscribers (issue #24's targets).
 *
 *   receivers  a child process (this file, --receiver-child) on uWebSockets.js with three
 *              ports: `ok` answers 200 at once, `fail` answers 500, `hang` never answers.
 *              Each delivery's latency is taken from the event's own timestamp, which the
 *              load client stamps with the request's send time: send → received, an upper
 *              bound of commit → received (it also holds the ingest commit wait)
 *   lag        one subscription to `ok` matching every event; the delivery-lag scenario
 *              (10,000 events/s durable for 60 s after a 5 s warm-up); then wait until every
 *              stored event has arrived; p50/p95/p99 at the receiver, and the engine's own
 *              commit → delivered percentiles from /metrics
 *   drain      an engine with FLOODGATE_DELIVERY_ACTORS=0 stores --backlog events (records
 *              made, nothing sent); a new engine with one delivery actor drains them:
 *              deliveries/s from its start to the last arrival
 *   isolation  one uncounted phase, then --pairs alternating 30 s phases at the lag rate,
 *              each on emptied tables and a fresh engine: the healthy subscription alone,
 *              then beside two more matching every event (to `hang` and to `fail`); the
 *              healthy one's receiver p95 (after each phase's warm-up) with them over without
 *
 * Writes bench/results/delivery-<date>.json and .md. Options: --phases lag,drain,isolation
 * (all), --backlog N (300,000), --pairs N (2), --duration-scale X (1).
 */
import { fork } from 'node:child_process';
import { parseToolArgs, positiveNumber } from '../common/cli-args';
import { median } from '../common/median';
import { fileStamp, formatCount, machineInfo, markdownTable, round, writeResultFiles } from '../common/results';
import { createScratchDatabase, prepareSchema, serverUrlFromEnv } from '../common/scratch-database';
import { runScenario } from '../load/load-run';
import { adjustScenario, loadScenario } from '../load/scenario';
import { startFloodgate, type RunningTarget } from '../load/targets';
import { withClient } from '../../test/support/database';
import { loadUws, type UwsHttpResponse } from '../../src/ingress/uws';

const usage = 'usage: npm run bench:delivery -- [--phases lag,drain,isolation] [--backlog N] [--pairs N] [--duration-scale X]';
const phaseNames = ['lag', 'drain', 'isolation'] as const;
type PhaseName = (typeof phaseNames)[number];
const arrivalTimeoutMs = 120_000;
const isolationPhaseS = 30;

interface Options {
  readonly phases: readonly PhaseName[];
  readonly backlog: number;
  readonly pairs: number;
  readonly durationScale: number;
}

function parseCli(argv: readonly string[]): Options {
  const { values } = parseToolArgs({
    args: [...argv],
    options: { phases: { type: 'string' }, backlog: { type: 'string' }, pairs: { type: 'string' }, 'duration-scale': { type: 'string' } },
  }, usage);
  const phases = (values.phases ?? phaseNames.join(',')).split(',').map((name) => name.trim());
  for (const name of phases) if (!(phaseNames as readonly string[]).includes(name)) throw new Error(`unknown phase "${name}"; ${usage}`);
  return {
    phases: phases as PhaseName[],
    backlog: positiveNumber(values.backlog, '--backlog', usage) ?? 300_000,
    pairs: positiveNumber(values.pairs, '--pairs', usage) ?? 2,
    durationScale: positiveNumber(values['duration-scale'], '--duration-scale', usage) ?? 1,
  };
}

// The receivers ---------------------------------------------------------------------------

type ReceiverName = 'ok' | 'fail' | 'hang';
interface ReceiverCounts {
  readonly received: number;
  readonly distinctIds: number;
  readonly repeated: number;
  readonly firstAtMs: number | null;
  readonly lastAtMs: number | null;
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number; readonly max: number; readonly samples: number };
}
type ToReceiver = { type: 'counts'; reset: boolean };
type FromReceiver = { type: 'ports'; ports: Record<ReceiverName, number> } | { type: 'counts'; counts: Record<ReceiverName, ReceiverCounts> };

function percentileOf(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  return round(sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)] as number, 1);
}

/** The child: three uWS apps; counts per receiver, latencies since the last reset. */
function receiverChild(): void {
  const { uws } = loadUws({ allowFallback: false });
  const state = new Map<ReceiverName, { ids: Set<string>; received: number; repeated: number; latencies: number[]; firstAtMs: number | null; lastAtMs: number | null }>();
  const ports: Partial<Record<ReceiverName, number>> = {};
  const names: ReceiverName[] = ['ok', 'fail', 'hang'];
  for (const name of names) {
    const entry = { ids: new Set<string>(), received: 0, repeated: 0, latencies: [] as number[], firstAtMs: null as number | null, lastAtMs: null as number | null };
    state.set(name, entry);
    const app = uws.App();
    app.any('/*', (res: UwsHttpResponse, req) => {
      const id = req.getHeader('webhook-id');
      let aborted = false;
      res.onAborted(() => (aborted = true));
      const chunks: Buffer[] = [];
      res.onData((chunk, isLast) => {
        chunks.push(Buffer.from(chunk.slice(0)));
        if (!isLast) return;
        const nowMs = Date.now();
        entry.received += 1;
        entry.firstAtMs ??= nowMs;
        entry.lastAtMs = nowMs;
        if (entry.ids.has(id)) entry.repeated += 1;
        else entry.ids.add(id);
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { timestamp: string };
        entry.latencies.push(nowMs - Date.parse(body.timestamp));
        if (name === 'hang' || aborted) return;
        res.cork(() => res.writeStatus(name === 'ok' ? '200 OK' : '500 Internal Server Error').end(name === 'ok' ? 'ok' : 'failing on purpose'));
      });
    });
    app.listen('127.0.0.1', 0, (socket) => {
      if (socket === false) throw new Error(`receiver ${name} could not listen`);
      ports[name] = uws.us_socket_local_port(socket);
      if (Object.keys(ports).length === names.length) process.send?.({ type: 'ports', ports: ports as Record<ReceiverName, number> } satisfies FromReceiver);
    });
  }
  process.on('message', (message: ToReceiver) => {
    const counts = {} as Record<ReceiverName, ReceiverCounts>;
    for (const [name, entry] of state) {
      const sorted = [...entry.latencies].sort((a, b) => a - b);
      counts[name] = {
        received: entry.received, distinctIds: entry.ids.size, repeated: entry.repeated, firstAtMs: entry.firstAtMs, lastAtMs: entry.lastAtMs,
        latencyMs: { p50: percentileOf(sorted, 0.5), p95: percentileOf(sorted, 0.95), p99: percentileOf(sorted, 0.99), max: round(sorted.at(-1) ?? 0, 1), samples: sorted.length },
      };
      if (message.reset) entry.latencies = [];
    }
    process.send?.({ type: 'counts', counts } satisfies FromReceiver);
  });
  process.on('disconnect', () => process.exit(0));
}

interface Receivers {
  readonly ports: Record<ReceiverName, number>;
  counts(reset?: boolean): Promise<Record<ReceiverName, ReceiverCounts>>;
  stop(): void;
}

async function startReceivers(): Promise<Receivers> {
  const child = fork(__filename, ['--receiver-child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiters: Array<(counts: Record<ReceiverName, ReceiverCounts>) => void> = [];
  const ports = await new Promise<Record<ReceiverName, number>>((resolve, reject) => {
    child.on('message', (message: FromReceiver) => {
      if (message.type === 'ports') resolve(message.ports);
      else waiters.shift()?.(message.counts);
    });
    child.once('exit', (code) => reject(new Error(`receiver process exited with code ${code}`)));
  });
  return {
    ports,
    counts: (reset = false) => new Promise((resolve) => {
      waiters.push(resolve);
      child.send({ type: 'counts', reset } satisfies ToReceiver);
    }),
    stop: () => child.disconnect(),
  };
}

// The engine's side -----------------------------------------------------------------------

async function api(port: number, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text.slice(0, 300)}`);
  return text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
}

/**
 * The healthy receiver's subscription allows 256 requests in flight: at the default 16 one
 * subscription is bound by round trips, not by the machine (10,184 deliveries/s drained at 64,
 * 13,469 at 128, 16,763 at 256, 7 Dec). The failing ones keep the default, as most would.
 */
const healthyInFlightMax = 256;

async function subscribe(port: number, receiverPort: number, description: string, maxInFlight: number | null = healthyInFlightMax): Promise<string> {
  const created = await api(port, 'POST', '/v1/subscriptions', { url: `http://127.0.0.1:${receiverPort}/hook`, description, max_in_flight: maxInFlight });
  return String(created.id);
}

/** The engine's commit → delivered quantiles (ms) from /metrics, or null if it exports none. */
async function engineLatency(port: number): Promise<Record<string, number> | null> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const quantiles: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = /^floodgate_delivery_latency_seconds\{[^}]*quantile="([0-9.]+)"[^}]*\} ([0-9.e+-]+)$/.exec(line);
    if (match !== null) quantiles[`p${Math.round(Number(match[1]) * 100)}`] = round(Number(match[2]) * 1000, 1);
  }
  return Object.keys(quantiles).length === 0 ? null : quantiles;
}

async function storedEvents(databaseUrl: string): Promise<number> {
  return withClient(databaseUrl, async (client) => Number((await client.query('SELECT count(*)::bigint AS n FROM events')).rows[0]?.n ?? 0));
}

/** Waits until `name` has received `expected` distinct ids (or the timeout passes). */
async function waitForArrivals(receivers: Receivers, name: ReceiverName, expected: number): Promise<ReceiverCounts> {
  const deadline = Date.now() + arrivalTimeoutMs;
  for (;;) {
    const counts = (await receivers.counts())[name];
    if (counts.distinctIds >= expected || Date.now() > deadline) return counts;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const deliveryEnv = { FLOODGATE_DELIVERY_ALLOW_PRIVATE_NETWORKS: 'true' };

// The phases ------------------------------------------------------------------------------

interface LagResult {
  readonly ingest: { eventsPerS: number; p99Ms: number; stored: number };
  readonly received: ReceiverCounts;
  readonly engineLatencyMs: Record<string, number> | null;
}

async function runLag(databaseUrl: string, receivers: Receivers, scale: number, log: (line: string) => void): Promise<LagResult> {
  const engine = await startFloodgate(databaseUrl, deliveryEnv);
  try {
    await subscribe(engine.port, receivers.ports.ok, 'bench: lag');
    const before = (await receivers.counts(true)).ok.distinctIds;
    const scenario = adjustScenario(loadScenario('delivery-lag'), { durationScale: scale });
    // Latencies count from the end of the warm-up, like the load run's own headline numbers.
    const warmupMs = scenario.phases.filter((phase) => phase.warmup).reduce((sum, phase) => sum + phase.durationS * 1000, 0);
    const warmupEnd = setTimeout(() => void receivers.counts(true), warmupMs);
    const load = await runScenario(scenario, { url: `http://127.0.0.1:${engine.port}`, databaseUrl, progress: () => undefined });
    clearTimeout(warmupEnd);
    const stored = await storedEvents(databaseUrl);
    const received = await waitForArrivals(receivers, 'ok', before + stored);
    const engineLatencyMs = await engineLatency(engine.port);
    log(`  lag: ${formatCount(load.totals.eventsPerS)} events/s stored ${formatCount(stored)}, received ${formatCount(received.distinctIds - before)}; send → received p95 ${received.latencyMs.p95} ms, p99 ${received.latencyMs.p99} ms`);
    return { ingest: { eventsPerS: load.totals.eventsPerS, p99Ms: load.latencyMs.p99, stored }, received, engineLatencyMs };
  } finally {
    await engine.stop();
  }
}

interface DrainResult {
  readonly backlog: number;
  readonly delivered: number;
  readonly seconds: number;
  readonly deliveriesPerS: number;
  readonly repeated: number;
}

async function runDrain(databaseUrl: string, receivers: Receivers, backlog: number, log: (line: string) => void): Promise<DrainResult> {
  await clearDeliveryState(databaseUrl);
  let engine: RunningTarget = await startFloodgate(databaseUrl, { ...deliveryEnv, FLOODGATE_DELIVERY_ACTORS: '0' });
  try {
    await subscribe(engine.port, receivers.ports.ok, 'bench: drain');
    // sustained-bulk stores ~120,000 events/s here; run it just long enough for the backlog.
    const seed = adjustScenario(loadScenario('sustained-bulk'), { durationScale: Math.max(0.05, backlog / 120_000 / 30) });
    await runScenario(seed, { url: `http://127.0.0.1:${engine.port}`, databaseUrl, progress: () => undefined });
  } finally {
    await engine.stop();
  }
  const stored = await storedEvents(databaseUrl);
  const before = (await receivers.counts(true)).ok;
  const startedMs = Date.now();
  engine = await startFloodgate(databaseUrl, deliveryEnv);
  try {
    const after = await waitForArrivals(receivers, 'ok', before.distinctIds + stored);
    const delivered = after.distinctIds - before.distinctIds;
    const seconds = ((after.lastAtMs ?? Date.now()) - startedMs) / 1000;
    const result = { backlog: stored, delivered, seconds: round(seconds, 2), deliveriesPerS: Math.round(delivered / seconds), repeated: after.repeated - before.repeated };
    log(`  drain: ${formatCount(delivered)} of ${formatCount(stored)} in ${result.seconds} s (engine start included) = ${formatCount(result.deliveriesPerS)} deliveries/s`);
    return result;
  } finally {
    await engine.stop();
  }
}

interface IsolationPair {
  /** Send → received at the healthy receiver. */
  readonly aloneP95Ms: number;
  readonly withBadP95Ms: number;
  readonly ratio: number;
  /** The engine's commit → delivered p95 (only the healthy subscription delivers), or null. */
  readonly aloneEngineP95Ms: number | null;
  readonly withBadEngineP95Ms: number | null;
}

interface IsolationResult {
  readonly pairs: IsolationPair[];
  /** Medians of send → received p95, with the two over alone. */
  readonly ratio: number;
  /** The same for the engine's commit → delivered p95. */
  readonly engineRatio: number | null;
}

interface PhaseLatency {
  readonly receiverP95Ms: number;
  readonly engineP95Ms: number | null;
}

/** Empties the tables a phase writes, so each phase starts from the same state. */
async function clearDeliveryState(databaseUrl: string): Promise<void> {
  await withClient(databaseUrl, async (client) => {
    await client.query('TRUNCATE events, deliveries, delivery_attempts, delivery_replays, subscriptions');
    await client.query('VACUUM ANALYZE deliveries');
  });
}

async function runIsolation(databaseUrl: string, receivers: Receivers, pairs: number, scale: number, log: (line: string) => void): Promise<IsolationResult> {
  const phase = adjustScenario(loadScenario('delivery-lag'), { durationScale: (isolationPhaseS / 60) * scale });
  const warmupMs = phase.phases.filter((step) => step.warmup).reduce((sum, step) => sum + step.durationS * 1000, 0);
  // Each phase: empty tables, a fresh engine, its subscriptions, the load, the healthy p95
  // after the warm-up. A bad subscription's backlog grows by the event rate while it is
  // on, so phases do not share state: an "alone" phase after one with them would carry it.
  const measure = async (withBad: boolean): Promise<PhaseLatency> => {
    await clearDeliveryState(databaseUrl);
    const engine = await startFloodgate(databaseUrl, deliveryEnv);
    try {
      await subscribe(engine.port, receivers.ports.ok, 'bench: healthy');
      if (withBad) {
        await subscribe(engine.port, receivers.ports.hang, 'bench: never answers', null);
        await subscribe(engine.port, receivers.ports.fail, 'bench: always 500', null);
      }
      await receivers.counts(true);
      const warmupEnd = setTimeout(() => void receivers.counts(true), warmupMs);
      await runScenario(phase, { url: `http://127.0.0.1:${engine.port}`, databaseUrl, progress: () => undefined });
      clearTimeout(warmupEnd);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const engineP95Ms = (await engineLatency(engine.port))?.p95 ?? null;
      return { receiverP95Ms: (await receivers.counts(true)).ok.latencyMs.p95, engineP95Ms };
    } finally {
      await engine.stop();
    }
  };
  // A first phase, not counted, warms the receivers and PostgreSQL's caches.
  await measure(false);
  const results: IsolationPair[] = [];
  for (let pair = 0; pair < pairs; pair++) {
    const alone = await measure(false);
    const withBad = await measure(true);
    const aloneP95Ms = alone.receiverP95Ms;
    const withBadP95Ms = withBad.receiverP95Ms;
    results.push({ aloneP95Ms, withBadP95Ms, ratio: round(withBadP95Ms / Math.max(aloneP95Ms, 0.1), 3), aloneEngineP95Ms: alone.engineP95Ms, withBadEngineP95Ms: withBad.engineP95Ms });
    log(`  isolation pair ${pair + 1}: healthy p95 alone ${aloneP95Ms} ms (engine ${alone.engineP95Ms}), beside a hanging and a failing subscription ${withBadP95Ms} ms (engine ${withBad.engineP95Ms})`);
  }
  const ratioOf = (withBad: number[], alone: number[]): number | null =>
    (withBad.length === 0 || alone.length === 0 ? null : round(median(withBad) / Math.max(median(alone), 0.1), 3));
  const known = (values: Array<number | null>): number[] => values.filter((value): value is number => value !== null);
  return {
    pairs: results,
    ratio: ratioOf(results.map((pair) => pair.withBadP95Ms), results.map((pair) => pair.aloneP95Ms)) ?? 0,
    engineRatio: ratioOf(known(results.map((pair) => pair.withBadEngineP95Ms)), known(results.map((pair) => pair.aloneEngineP95Ms))),
  };
}

// The run ---------------------------------------------------------------------------------

async function main(): Promise<void> {
  const options = parseCli(process.argv.slice(2));
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const startedAt = new Date();
  const database = await createScratchDatabase(serverUrlFromEnv(), `delivery_${fileStamp(startedAt)}`);
  await prepareSchema(database.url);
  const receivers = await startReceivers();
  const record: { date: string; machine: ReturnType<typeof machineInfo>; options: Options; lag?: LagResult; drain?: DrainResult; isolation?: IsolationResult } =
    { date: startedAt.toISOString(), machine: machineInfo(), options };
  try {
    if (options.phases.includes('lag')) record.lag = await runLag(database.url, receivers, options.durationScale, log);
    if (options.phases.includes('drain')) record.drain = await runDrain(database.url, receivers, options.backlog, log);
    if (options.phases.includes('isolation')) record.isolation = await runIsolation(database.url, receivers, options.pairs, options.durationScale, log);
    const stem = `delivery-${fileStamp(startedAt)}`;
    for (const file of writeResultFiles(stem, { json: `${JSON.stringify(record, null, 2)}\n`, md: renderMarkdown(record) })) log(`written: ${file}`);
  } finally {
    receivers.stop();
    await database.drop();
  }
}

function renderMarkdown(record: { date: string; machine: ReturnType<typeof machineInfo>; options: Options; lag?: LagResult; drain?: DrainResult; isolation?: IsolationResult }): string {
  const { options } = record;
  const lines = [
    '# Delivery to subscribers',
    '',
    `Started ${record.date}; ${record.machine.cpuModel} × ${record.machine.cores}, Node ${record.machine.node}. Command: \`npm run bench:delivery -- --phases ${options.phases.join(',')} --backlog ${options.backlog} --pairs ${options.pairs} --duration-scale ${options.durationScale}\`. Receivers: uWebSockets.js in a child process on loopback; the healthy subscription allows ${healthyInFlightMax} requests in flight, the failing ones the default 16; latency is send → received (each event's timestamp is its request's send time).`,
    '',
  ];
  if (record.lag !== undefined) {
    const { lag } = record;
    lines.push('## Lag at 10,000 events/s durable', '', markdownTable(
      ['ingest events/s', 'ingest p99 ms', 'stored', 'received', 'repeated', 'send → received p50 / p95 / p99 / max ms', 'engine commit → delivered'],
      [[formatCount(lag.ingest.eventsPerS), String(lag.ingest.p99Ms), formatCount(lag.ingest.stored), formatCount(lag.received.distinctIds), String(lag.received.repeated),
        `${lag.received.latencyMs.p50} / ${lag.received.latencyMs.p95} / ${lag.received.latencyMs.p99} / ${lag.received.latencyMs.max}`,
        lag.engineLatencyMs === null ? 'not exported' : Object.entries(lag.engineLatencyMs).map(([key, value]) => `${key} ${value} ms`).join(', ')]],
    ), '');
  }
  if (record.drain !== undefined) {
    const { drain } = record;
    lines.push('## Backlog drain', '', markdownTable(['backlog', 'delivered', 'seconds (engine start included)', 'deliveries/s', 'repeated'],
      [[formatCount(drain.backlog), formatCount(drain.delivered), String(drain.seconds), formatCount(drain.deliveriesPerS), String(drain.repeated)]]), '');
  }
  if (record.isolation !== undefined) {
    const { isolation } = record;
    lines.push('## Isolation: the healthy subscription beside one that never answers and one that answers 500', '',
      markdownTable(['pair', 'send → received p95 alone ms', 'with the two ms', 'ratio', 'engine commit → delivered p95 alone ms', 'with the two ms'],
        isolation.pairs.map((pair, index) => [String(index + 1), String(pair.aloneP95Ms), String(pair.withBadP95Ms), String(pair.ratio), String(pair.aloneEngineP95Ms), String(pair.withBadEngineP95Ms)])),
      '', `Median ratios: send → received ${isolation.ratio}, engine commit → delivered ${isolation.engineRatio ?? 'not exported'}.`, '');
  }
  return `${lines.join('\n')}\n`;
}

if (process.argv.includes('--receiver-child')) receiverChild();
else main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
