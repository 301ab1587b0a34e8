/**
 * A first load generator (closed model): `connections` clients each post bulk requests
 * of `events` events back to back for `durationS` seconds over keep-alive HTTP, then the
 * database is checked: events acknowledged must equal rows stored with this run's prefix,
 * and no id may be stored twice.
 *
 *   node dist/bench/load.js --url http://127.0.0.1:8080 --database-url postgres://… \
 *        [--duration 20] [--connections 32] [--events 100]
 *
 * Results go to bench/results/load-<timestamp>.json. The richer scenario runner
 * (open model, several client processes, HDR percentiles, charts) builds on this.
 */
import http from 'node:http';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';

interface Options {
  url: string;
  databaseUrl: string;
  durationS: number;
  connections: number;
  events: number;
}

function parseOptions(argv: readonly string[]): Options {
  const value = (name: string, fallback?: string): string => {
    const at = argv.indexOf(`--${name}`);
    const found = at >= 0 ? argv[at + 1] : fallback;
    if (found === undefined) throw new Error(`--${name} is required`);
    return found;
  };
  return {
    url: value('url', 'http://127.0.0.1:8080'),
    databaseUrl: value('database-url', process.env.DATABASE_URL),
    durationS: Number(value('duration', '20')),
    connections: Number(value('connections', '32')),
    events: Number(value('events', '100')),
  };
}

function bulkBody(prefix: string, request: number, events: number, nowMs: number): string {
  const list = [];
  for (let i = 0; i < events; i++) {
    list.push({
      event_id: `${prefix}-${request}-${i}`,
      event_type: i % 2 === 0 ? 'page_view' : 'click',
      source: 'bench',
      user_id: `user-${i % 1000}`,
      timestamp: nowMs - i,
      properties: { path: `/page/${i}`, referrer: 'https://example.com/', value: i * 3 },
    });
  }
  return JSON.stringify({ events: list });
}

function postOnce(agent: http.Agent, url: URL, body: string): Promise<{ status: number; accepted: number }> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        const status = response.statusCode ?? 0;
        resolve({ status, accepted: status === 200 || status === 202 ? (JSON.parse(text) as { accepted: number }).accepted : 0 });
      });
    });
    request.on('error', reject);
    request.end(body);
  });
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const prefix = `bench-${Date.now().toString(36)}`;
  const url = new URL('/v1/events/bulk', options.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections });
  const latenciesMs: number[] = [];
  const statuses: Record<number, number> = {};
  let acknowledged = 0;
  let nextRequest = 0;
  const startedAt = performance.now();
  const deadline = startedAt + options.durationS * 1000;
  const progress = setInterval(() => {
    const seconds = (performance.now() - startedAt) / 1000;
    process.stderr.write(`  ${seconds.toFixed(0)} s: ${acknowledged} events acknowledged (${Math.round(acknowledged / seconds)}/s)\n`);
  }, 5000);
  await Promise.all(
    Array.from({ length: options.connections }, async () => {
      while (performance.now() < deadline) {
        const body = bulkBody(prefix, nextRequest++, options.events, Date.now());
        const sentAt = performance.now();
        const answer = await postOnce(agent, url, body);
        latenciesMs.push(performance.now() - sentAt);
        statuses[answer.status] = (statuses[answer.status] ?? 0) + 1;
        acknowledged += answer.accepted;
      }
    }),
  );
  const elapsedS = (performance.now() - startedAt) / 1000;
  clearInterval(progress);
  agent.destroy();

  const client = new pg.Client({ connectionString: options.databaseUrl });
  await client.connect();
  const stored = (await client.query('SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS ids FROM events WHERE event_id LIKE $1', [`${prefix}-%`])).rows[0] as { rows: number; ids: number };
  await client.end();

  latenciesMs.sort((a, b) => a - b);
  const result = {
    scenario: `closed, ${options.connections} connections, ${options.events}-event JSON bulk`,
    date: new Date().toISOString(),
    durationS: Number(elapsedS.toFixed(2)),
    requests: latenciesMs.length,
    statuses,
    eventsAcknowledged: acknowledged,
    rowsStored: stored.rows,
    duplicatesStored: stored.rows - stored.ids,
    lost: acknowledged - stored.rows,
    eventsPerSecond: Math.round(acknowledged / elapsedS),
    latencyMs: { p50: percentile(latenciesMs, 50), p90: percentile(latenciesMs, 90), p99: percentile(latenciesMs, 99), max: latenciesMs.at(-1) ?? 0 },
  };
  const directory = path.join(__dirname, '..', '..', 'bench', 'results');
  mkdirSync(directory, { recursive: true });
  const file = path.join(directory, `load-${result.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\nwritten to ${path.relative(process.cwd(), file)}\n`);
  if (result.lost !== 0 || result.duplicatesStored !== 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
