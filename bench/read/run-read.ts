/**
 * `npm run bench:read -- [options]`: the read side under load (issue #23's read targets).
 *
 *   seed     a kept database `floodgate_read_bench` with --events events spread over the
 *            --days days before today, UTC (types, sources and actors in rotation), rollups
 *            rebuilt, analyzed; reused while its spec matches and it was seeded today.
 *            Today's partition takes only live ingest and is emptied before every phase
 *   engine   started once on it (loopback, no keys: the read scope is open to loopback)
 *   alone    the readers for the same time with no ingest
 *   latency  half-load ingest (the half-load-durable scenario) with --readers concurrent
 *            readers looping over the analytics routes and one-hour pages
 *   ratio    --pairs alternating pairs of sustained-bulk without and with the readers:
 *            ingest throughput under read load against without it
 *   export   GET /v1/events as NDJSON over the whole seeded range, first --export-rows rows
 *
 * Writes bench/results/read-load-<date>.json and .md. Options: --events N (10,000,000),
 * --days N (30), --readers N (32), --reader-interval-ms N (1000: each reader one request a
 * second, like a dashboard user; 0: back to back, a saturation test), --pairs N (2),
 * --duration-scale X (1), --export-rows N (2,000,000). The readers run in a child process of their own (this file, --reader-child).
 */
import { fork } from 'node:child_process';
import type pg from 'pg';
import http from 'node:http';
import { parseToolArgs, positiveNumber } from '../common/cli-args';
import { fileStamp, formatCount, machineInfo, markdownTable, round, writeResultFiles } from '../common/results';
import { defaultServerUrl, serverUrlFromEnv } from '../common/scratch-database';
import { runScenario, type LoadResult } from '../load/load-run';
import { adjustScenario, loadScenario, scenarioDurationS } from '../load/scenario';
import { startFloodgate, type RunningTarget } from '../load/targets';
import { databaseUrlFor, withClient } from '../../test/support/database';
import { migrateDatabase } from '../../src/sink/migrations';
import { ensurePartitionWindow, partitionName } from '../../src/sink/partitions';
import { dayRangeOf, rebuildRollups } from '../../src/rollups/rollup-check';

const usage = 'usage: npm run bench:read -- [--events N] [--days N] [--readers N] [--reader-interval-ms N] [--pairs N] [--duration-scale X] [--export-rows N]';
const databaseName = 'floodgate_read_bench';
const dayMs = 86_400_000;
const hourMs = 3_600_000;
const seedChunkRows = 1_000_000;
const types = ['page_view', 'click', 'purchase', 'signup', 'login', 'logout', 'search', 'add_to_cart'];
const sources = ['web', 'ios', 'android', 'api'];

interface Options {
  /** Each reader's pace: one request every this many ms (0: back to back, a saturation test). */
  readonly readerIntervalMs: number;
  readonly events: number;
  readonly days: number;
  readonly readers: number;
  readonly pairs: number;
  readonly durationScale: number;
  readonly exportRows: number;
}

/** One route family's latencies, in ms, with the answers that were not 200. */
interface RouteLatency {
  readonly route: string;
  readonly group: 'aggregate' | 'page';
  readonly requests: number;
  readonly failed: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

interface ReaderReport {
  readonly routes: RouteLatency[];
  readonly groups: Record<'aggregate' | 'page', { requests: number; p50: number; p99: number }>;
  readonly requestsPerS: number;
  readonly failures: string[];
}

function parseCli(argv: readonly string[]): Options {
  const { values } = parseToolArgs({
    args: [...argv],
    options: {
      events: { type: 'string' }, days: { type: 'string' }, readers: { type: 'string' }, pairs: { type: 'string' },
      'duration-scale': { type: 'string' }, 'export-rows': { type: 'string' }, 'reader-interval-ms': { type: 'string' },
    },
  }, usage);
  return {
    events: positiveNumber(values.events, '--events', usage) ?? 10_000_000,
    days: positiveNumber(values.days, '--days', usage) ?? 30,
    readers: positiveNumber(values.readers, '--readers', usage) ?? 32,
    pairs: positiveNumber(values.pairs, '--pairs', usage) ?? 2,
    durationScale: positiveNumber(values['duration-scale'], '--duration-scale', usage) ?? 1,
    exportRows: positiveNumber(values['export-rows'], '--export-rows', usage) ?? 2_000_000,
    readerIntervalMs: values['reader-interval-ms'] === '0' ? 0 : positiveNumber(values['reader-interval-ms'], '--reader-interval-ms', usage) ?? 1000,
  };
}

// Seeding ---------------------------------------------------------------------------------

/** Creates or reuses the bench database; returns its URL. */
async function seed(serverUrl: string, options: Options, log: (line: string) => void): Promise<string> {
  const exists = await withClient(serverUrl, async (client) => (await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [databaseName])).rowCount === 1);
  if (!exists) await withClient(serverUrl, (client) => client.query(`CREATE DATABASE ${databaseName}`));
  const url = databaseUrlFor(serverUrl, databaseName);
  await migrateDatabase(url, { info: () => undefined, warn: () => undefined, error: () => undefined });
  const nowMs = Date.now();
  await withClient(url, async (client) => {
    await ensurePartitionWindow(client, nowMs - (options.days + 1) * dayMs, nowMs + 2 * dayMs);
    await client.query('CREATE TABLE IF NOT EXISTS read_bench_seed_v2 (events bigint NOT NULL, days int NOT NULL, seeded_at timestamptz NOT NULL)');
    const marker = (await client.query<{ events: string; days: number; fresh: boolean }>("SELECT events, days, (seeded_at AT TIME ZONE 'UTC')::date = (now() AT TIME ZONE 'UTC')::date AS fresh FROM read_bench_seed_v2")).rows[0];
    if (marker !== undefined && Number(marker.events) === options.events && marker.days === options.days && marker.fresh) {
      log(`reusing ${databaseName}: ${formatCount(options.events)} events over ${options.days} days`);
      await settle(client);
      return;
    }
    log(`seeding ${databaseName}: ${formatCount(options.events)} events over ${options.days} days`);
    await client.query('TRUNCATE events, event_counts_minute, event_counts_hourly, event_counts_daily, read_bench_seed_v2');
    const spanUs = options.days * dayMs * 1000;
    const seedEndMs = todayStartMs(nowMs) - 1;
    for (let first = 0; first < options.events; first += seedChunkRows) {
      const last = Math.min(options.events, first + seedChunkRows) - 1;
      const started = Date.now();
      // Times spread evenly over the `days` days before today: today's partition takes only
      // the live ingest, which clearToday() empties before every phase.
      await client.query(
        `INSERT INTO events (event_id, event_type, source, actor_id, occurred_at, received_at, attributes)
         SELECT 'seed-' || g, ($3::text[])[1 + g % $5], ($4::text[])[1 + (g / $5) % $6], 'user-' || (g % 100000),
                to_timestamp($7 / 1e6) - make_interval(secs => ($8::float8 * g / $2) / 1e6),
                to_timestamp($7 / 1e6) - make_interval(secs => ($8::float8 * g / $2) / 1e6) + interval '2 seconds',
                jsonb_build_object('path', '/p/' || (g % 1000), 'n', g % 97)
         FROM generate_series($1::bigint, $9::bigint) AS g`,
        [first, options.events, types, sources, types.length, sources.length, seedEndMs * 1000, spanUs, last],
      );
      log(`  rows ${formatCount(first)}–${formatCount(last + 1)} in ${round((Date.now() - started) / 1000, 1)} s`);
    }
    const rebuilt = Date.now();
    await rebuildRollups(client, dayRangeOf(null, null));
    log(`  rollups rebuilt in ${round((Date.now() - rebuilt) / 1000, 1)} s`);
    await client.query('INSERT INTO read_bench_seed_v2 VALUES ($1, $2, now())', [options.events, options.days]);
    await settle(client);
  });
  return url;
}

/**
 * Vacuums, analyzes and checkpoints the seeded database before anything is measured: right
 * after seeding (and the rollups' rebuild, which leaves a dead row per rollup row) the
 * first phases paid for that debt — half-load ingest had a commit p50 of 22 ms against
 * 2.1 ms once it was settled, and every read's p99 followed it to ~470 ms.
 */
async function settle(client: pg.Client): Promise<void> {
  await client.query('VACUUM ANALYZE');
  await client.query('CHECKPOINT');
}

function todayStartMs(nowMs: number): number {
  return Math.floor(nowMs / dayMs) * dayMs;
}

/**
 * Empties today's partition and today's rollup rows: each phase's live ingest lands there,
 * and without this every run of the bench grew today's partition by some twenty million
 * rows (65 million after a few runs, 26 GB, whose primary key no longer fit in memory),
 * which is not the database the targets describe. A run that crosses midnight UTC keeps
 * yesterday's live rows.
 */
async function clearToday(url: string): Promise<void> {
  const todayMs = todayStartMs(Date.now());
  const today = new Date(todayMs).toISOString();
  await withClient(url, async (client) => {
    await client.query(`TRUNCATE ${partitionName(Math.floor(todayMs / dayMs))}`);
    await client.query('DELETE FROM event_counts_minute WHERE bucket >= $1', [today]);
    await client.query('DELETE FROM event_counts_hourly WHERE hour >= $1', [today]);
    await client.query('DELETE FROM event_counts_daily WHERE day >= $1::timestamptz::date', [today]);
    // Each phase starts from a checkpoint, not in the middle of the last phase's writeback.
    await client.query('CHECKPOINT');
  });
}

// Readers ---------------------------------------------------------------------------------

interface ReaderChildConfig {
  readonly port: number;
  readonly readers: number;
  readonly days: number;
  readonly intervalMs: number;
}

/** The requests a reader loops over, each with fresh random windows inside the seeded range. */
function readPaths(days: number, random: () => number): Array<{ route: string; group: 'aggregate' | 'page'; path: string }> {
  const nowMs = Date.now();
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  const hourStart = nowMs - hourMs - Math.floor(random() * (days - 1) * 24) * hourMs;
  const iso = (ms: number) => encodeURIComponent(new Date(ms).toISOString());
  return [
    { route: 'daily (30 days, 500 rows)', group: 'aggregate', path: `/v1/analytics/events/daily?start_date=${day(nowMs - days * dayMs)}&end_date=${day(nowMs)}&limit=500` },
    { route: 'summary (30 days, top 10)', group: 'aggregate', path: `/v1/analytics/events/summary?start_date=${day(nowMs - days * dayMs)}&end_date=${day(nowMs)}&top_n=10` },
    { route: 'counts (24 h hourly by type)', group: 'aggregate', path: `/v1/analytics/counts?from=${iso(nowMs - dayMs)}&to=${iso(nowMs)}&interval=hour&group_by=event_type` },
    { route: 'counts (30 days daily by source)', group: 'aggregate', path: `/v1/analytics/counts?from=${iso(nowMs - days * dayMs)}&to=${iso(nowMs)}&interval=day&group_by=source` },
    { route: 'raw (one hour, 100 rows)', group: 'page', path: `/v1/analytics/events/raw?since=${iso(hourStart)}&until=${iso(hourStart + hourMs)}&limit=100` },
    { route: 'keyset page (one hour, 100 rows)', group: 'page', path: `/v1/events?from=${iso(hourStart)}&to=${iso(hourStart + hourMs)}&limit=100` },
  ];
}

function get(agent: http.Agent, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path, agent, timeout: 30_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', reject);
  });
}

function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  return round(sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)] as number, 2);
}

/** The child: `readers` loops until told to stop, then reports per-route latencies. */
async function readerChild(config: ReaderChildConfig): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: config.readers });
  const samples = new Map<string, { group: 'aggregate' | 'page'; ms: number[]; failed: number }>();
  const failures: string[] = [];
  let stopping = false;
  process.on('message', (message: { type: string }) => {
    if (message.type === 'stop') stopping = true;
  });
  const startedMs = performance.now();
  let seed = 1;
  const random = () => ((seed = (Math.imul(seed, 48271) >>> 0) % 2147483647) / 2147483647);
  // Paced readers keep a schedule, staggered across readers, and measure from the scheduled
  // instant: a slow answer delays the next request, and that delay counts as latency.
  const loop = async (reader: number): Promise<void> => {
    let scheduledMs = startedMs + (config.intervalMs * reader) / config.readers;
    for (let turn = reader; !stopping; turn++) {
      if (config.intervalMs > 0) {
        const waitMs = scheduledMs - performance.now();
        if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
        if (stopping) break;
      }
      const paths = readPaths(config.days, random);
      const chosen = paths[turn % paths.length] as (typeof paths)[number];
      const entry = samples.get(chosen.route) ?? { group: chosen.group, ms: [], failed: 0 };
      samples.set(chosen.route, entry);
      const sentMs = config.intervalMs > 0 ? scheduledMs : performance.now();
      scheduledMs += config.intervalMs;
      const answer = await get(agent, config.port, chosen.path).catch((error: Error) => ({ status: 0, body: error.message }));
      entry.ms.push(performance.now() - sentMs);
      if (answer.status !== 200) {
        entry.failed += 1;
        if (failures.length < 10) failures.push(`${answer.status} ${chosen.path}: ${answer.body.slice(0, 200)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: config.readers }, (_, reader) => loop(reader)));
  const elapsedS = (performance.now() - startedMs) / 1000;
  const routes: RouteLatency[] = [];
  const byGroup = { aggregate: [] as number[], page: [] as number[] };
  for (const [route, entry] of samples) {
    const sorted = entry.ms.sort((a, b) => a - b);
    byGroup[entry.group].push(...sorted);
    routes.push({ route, group: entry.group, requests: sorted.length, failed: entry.failed, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: round(sorted.at(-1) ?? 0, 2) });
  }
  const group = (values: number[]) => {
    const sorted = values.sort((a, b) => a - b);
    return { requests: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
  };
  const total = routes.reduce((sum, route) => sum + route.requests, 0);
  const report: ReaderReport = { routes, groups: { aggregate: group(byGroup.aggregate), page: group(byGroup.page) }, requestsPerS: round(total / elapsedS, 1), failures };
  agent.destroy();
  // The IPC channel would keep this process (and so the runner) alive after its report.
  process.send?.({ type: 'report', report }, () => process.disconnect?.());
}

/** Starts the reader process; `stop()` ends the loops and resolves with their report. */
function startReaders(config: ReaderChildConfig): { stop(): Promise<ReaderReport> } {
  const child = fork(__filename, ['--reader-child', JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const report = new Promise<ReaderReport>((resolve, reject) => {
    child.on('message', (message: { type: string; report: ReaderReport }) => {
      if (message.type === 'report') resolve(message.report);
    });
    child.once('exit', (code) => reject(new Error(`reader process exited with code ${code} before reporting`)));
  });
  return {
    stop: async () => {
      child.send({ type: 'stop' });
      return report;
    },
  };
}

// Export ----------------------------------------------------------------------------------

/** Streams the NDJSON export of the whole range and stops after `rowsMax` rows. */
function measureExport(port: number, days: number, rowsMax: number): Promise<{ rows: number; bytes: number; seconds: number; rowsPerS: number; status: number }> {
  const nowMs = Date.now();
  const path = `/v1/events?from=${encodeURIComponent(new Date(nowMs - days * dayMs).toISOString())}&to=${encodeURIComponent(new Date(nowMs).toISOString())}&order=asc`;
  return new Promise((resolve, reject) => {
    const startedMs = performance.now();
    let rows = 0;
    let bytes = 0;
    const finish = (status: number) => {
      const seconds = (performance.now() - startedMs) / 1000;
      resolve({ rows, bytes, seconds: round(seconds, 2), rowsPerS: Math.round(rows / seconds), status });
    };
    const request = http.get({ host: '127.0.0.1', port, path, headers: { accept: 'application/x-ndjson' } }, (response) => {
      if (response.statusCode !== 200) {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString()));
        response.on('end', () => reject(new Error(`export answered ${response.statusCode}: ${body.slice(0, 300)}`)));
        return;
      }
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        for (let index = chunk.indexOf(10); index !== -1; index = chunk.indexOf(10, index + 1)) rows += 1;
        if (rows >= rowsMax) {
          finish(200);
          request.destroy();
        }
      });
      response.on('end', () => finish(200));
    });
    request.on('error', (error) => (rows >= rowsMax ? undefined : reject(error)));
  });
}

// The run ---------------------------------------------------------------------------------

function runSummary(result: LoadResult): { eventsPerS: number; p50: number; p99: number; ok: boolean } {
  return { eventsPerS: result.totals.eventsPerS, p50: result.latencyMs.p50, p99: result.latencyMs.p99, ok: result.verification.ok };
}

async function main(): Promise<void> {
  const options = parseCli(process.argv.slice(2));
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const serverUrl = serverUrlFromEnv() || defaultServerUrl;
  const startedAt = new Date();
  const url = await seed(serverUrl, options, log);
  let target: RunningTarget | null = null;
  try {
    target = await startFloodgate(url, {});
    const engine = target;
    const port = engine.port;
    const readerConfig = { port, readers: options.readers, days: options.days, intervalMs: options.readerIntervalMs };
    const scale = (name: string) => adjustScenario(loadScenario(name), { durationScale: options.durationScale });
    const quiet = () => undefined;

    // The same readers with no ingest first: what the read side costs on its own.
    await clearToday(url);
    log(`${options.readers} readers alone`);
    let readers = startReaders(readerConfig);
    await new Promise((resolve) => setTimeout(resolve, scenarioDurationS(scale('half-load-durable')) * 1000));
    const alone = await readers.stop();
    log(`  aggregate p99 ${alone.groups.aggregate.p99} ms, page p99 ${alone.groups.page.p99} ms, ${alone.requestsPerS} reads/s`);

    log(`half load with ${options.readers} readers`);
    await clearToday(url);
    readers = startReaders(readerConfig);
    const halfLoad = await runScenario(scale('half-load-durable'), { url: `http://127.0.0.1:${port}`, databaseUrl: url, progress: quiet });
    const latency = await readers.stop();
    log(`  ingest ${formatCount(halfLoad.totals.eventsPerS)} events/s; aggregate p99 ${latency.groups.aggregate.p99} ms, page p99 ${latency.groups.page.p99} ms, ${latency.requestsPerS} reads/s`);

    const pairs: Array<{ alone: ReturnType<typeof runSummary>; withReads: ReturnType<typeof runSummary>; reads: ReaderReport }> = [];
    for (let pair = 0; pair < options.pairs; pair++) {
      await clearToday(url);
      const alone = await runScenario(scale('sustained-bulk'), { url: `http://127.0.0.1:${port}`, databaseUrl: url, progress: quiet });
      await clearToday(url);
      readers = startReaders(readerConfig);
      const withReads = await runScenario(scale('sustained-bulk'), { url: `http://127.0.0.1:${port}`, databaseUrl: url, progress: quiet });
      const reads = await readers.stop();
      pairs.push({ alone: runSummary(alone), withReads: runSummary(withReads), reads });
      log(`  pair ${pair + 1}: alone ${formatCount(alone.totals.eventsPerS)}, with reads ${formatCount(withReads.totals.eventsPerS)} events/s (${round(withReads.totals.eventsPerS / alone.totals.eventsPerS, 3)})`);
    }

    log(`export, first ${formatCount(options.exportRows)} rows`);
    const exported = await measureExport(port, options.days, options.exportRows);
    log(`  ${formatCount(exported.rows)} rows in ${exported.seconds} s = ${formatCount(exported.rowsPerS)} rows/s`);

    const medians = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      return sorted.length % 2 === 1 ? (sorted[(sorted.length - 1) / 2] as number) : ((sorted[sorted.length / 2 - 1] as number) + (sorted[sorted.length / 2] as number)) / 2;
    };
    const aloneMedian = medians(pairs.map((pair) => pair.alone.eventsPerS));
    const withMedian = medians(pairs.map((pair) => pair.withReads.eventsPerS));
    const record = {
      date: startedAt.toISOString(),
      machine: machineInfo(),
      options,
      readsAlone: alone,
      halfLoad: { ingest: runSummary(halfLoad), reads: latency },
      pairs,
      ingestRatio: round(withMedian / aloneMedian, 3),
      export: exported,
    };
    const stem = `read-load-${fileStamp(startedAt)}`;
    for (const file of writeResultFiles(stem, { json: `${JSON.stringify(record, null, 2)}\n`, md: renderMarkdown(record) })) log(`written: ${file}`);
  } finally {
    await target?.stop();
  }
}

function renderMarkdown(record: {
  date: string; machine: ReturnType<typeof machineInfo>; options: Options; readsAlone: ReaderReport; halfLoad: { ingest: ReturnType<typeof runSummary>; reads: ReaderReport };
  pairs: Array<{ alone: ReturnType<typeof runSummary>; withReads: ReturnType<typeof runSummary>; reads: ReaderReport }>; ingestRatio: number;
  export: { rows: number; seconds: number; rowsPerS: number };
}): string {
  const { options, halfLoad, readsAlone } = record;
  const routeRowsOf = (report: ReaderReport) => report.routes.map((route) => [route.route, route.group, formatCount(route.requests), String(route.failed), String(route.p50), String(route.p99), String(route.max)]);
  const routeHeader = ['route', 'group', 'requests', 'not 200', 'p50 ms', 'p99 ms', 'max ms'];
  const pairRows = record.pairs.map((pair, index) => [String(index + 1), formatCount(pair.alone.eventsPerS), formatCount(pair.withReads.eventsPerS), String(round(pair.withReads.eventsPerS / pair.alone.eventsPerS, 3)), String(pair.reads.requestsPerS)]);
  return [
    '# Read side under load',
    '',
    `${formatCount(options.events)} events over ${options.days} days (seeded), ${options.readers} concurrent readers ${options.readerIntervalMs === 0 ? 'back to back (no pause: a saturation test)' : `each sending one request every ${options.readerIntervalMs} ms on a schedule (latency counted from the scheduled instant)`}, duration scale ${options.durationScale}. Started ${record.date}; ${record.machine.cpuModel} × ${record.machine.cores}, Node ${record.machine.node}. Command: \`npm run bench:read -- --events ${options.events} --days ${options.days} --readers ${options.readers} --reader-interval-ms ${options.readerIntervalMs} --pairs ${options.pairs} --duration-scale ${options.durationScale}\`.`,
    '',
    '## Read latency with no ingest',
    '',
    markdownTable(routeHeader, routeRowsOf(readsAlone)),
    '',
    `Aggregates: p50 ${readsAlone.groups.aggregate.p50} ms, p99 ${readsAlone.groups.aggregate.p99} ms. Pages: p50 ${readsAlone.groups.page.p50} ms, p99 ${readsAlone.groups.page.p99} ms. ${readsAlone.requestsPerS} reads/s.`,
    '',
    `## Read latency at half load (ingest ${formatCount(halfLoad.ingest.eventsPerS)} events/s durable, client p99 ${halfLoad.ingest.p99} ms)`,
    '',
    markdownTable(routeHeader, routeRowsOf(halfLoad.reads)),
    '',
    `Aggregates (daily, summary, counts): p50 ${halfLoad.reads.groups.aggregate.p50} ms, **p99 ${halfLoad.reads.groups.aggregate.p99} ms** (target ≤ 20). Pages of 100 (raw, keyset): p50 ${halfLoad.reads.groups.page.p50} ms, **p99 ${halfLoad.reads.groups.page.p99} ms** (target ≤ 50). ${halfLoad.reads.requestsPerS} reads/s.`,
    ...(halfLoad.reads.failures.length === 0 ? [] : ['', 'First failures:', '', ...halfLoad.reads.failures.map((failure) => `- ${failure}`)]),
    '',
    '## Ingest under read load (sustained-bulk, alternating pairs)',
    '',
    markdownTable(['pair', 'alone events/s', 'with readers events/s', 'ratio', 'reads/s'], pairRows),
    '',
    `Medians' ratio: **${record.ingestRatio}** (target ≥ 0.8).`,
    '',
    '## NDJSON export',
    '',
    `${formatCount(record.export.rows)} rows in ${record.export.seconds} s: **${formatCount(record.export.rowsPerS)} rows/s** (target ≥ 200,000).`,
    '',
  ].join('\n');
}

if (process.argv[2] === '--reader-child') {
  readerChild(JSON.parse(process.argv[3] as string) as ReaderChildConfig).catch((error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  });
} else {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exit(1);
  });
}
