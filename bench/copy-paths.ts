/**
 * Measures the sink's two write paths on the real schema, one connection, to back the
 * design choice "COPY straight into events; fall back to staging + ON CONFLICT only when a
 * batch meets a unique violation" (docs/decisions/0011-dedupe-layers-and-primary-key.md):
 *
 *   fast     – batches of new ids: BEGIN; COPY events; COMMIT
 *   staging  – batches that each contain one already-stored id, which forces
 *              ROLLBACK + COPY into the temp staging table + INSERT … ON CONFLICT DO NOTHING
 *
 *   DATABASE_URL=postgres://… node dist/bench/copy-paths.js [--batches 20] [--rows 5000]
 *
 * It creates and drops its own scratch database on that server. Results are written to
 * bench/results/copy-paths-<timestamp>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import type { ValidEvent } from '../src/event';
import { BatchWriter, type BatchRow } from '../src/sink/batch-writer';
import { migrateDatabase } from '../src/sink/migrations';
import { createLogger } from '../src/log';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

function rowsFor(prefix: string, count: number, nowUs: number): BatchRow[] {
  return Array.from({ length: count }, (_, i) => {
    const event: ValidEvent = {
      eventId: `${prefix}-${i}`,
      eventType: i % 2 === 0 ? 'page_view' : 'click',
      source: 'bench',
      actorId: `user-${i % 1000}`,
      occurredAtUs: nowUs - i * 1000,
      attributesJson: `{"path":"/page/${i}","referrer":"https://example.com/","value":${i * 3}}`,
    };
    return { event, receivedAtUs: nowUs };
  });
}

async function timeBatches(writer: BatchWriter, batches: BatchRow[][]): Promise<{ rowsPerSecond: number; paths: string[] }> {
  const paths = new Set<string>();
  let rows = 0;
  const startedAt = performance.now();
  for (const batch of batches) {
    const report = await writer.write(batch, new Uint8Array(batch.length));
    paths.add(report.path);
    rows += batch.length;
  }
  return { rowsPerSecond: Math.round(rows / ((performance.now() - startedAt) / 1000)), paths: [...paths] };
}

async function main(): Promise<void> {
  const serverUrl = process.env.DATABASE_URL;
  if (!serverUrl) throw new Error('set DATABASE_URL to a PostgreSQL server (a scratch database is created on it)');
  const batchCount = option('batches', 20);
  const rowsPerBatch = option('rows', 5000);
  const scratch = `floodgate_bench_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${scratch}`);
  const url = new URL(serverUrl);
  url.pathname = `/${scratch}`;
  const log = createLogger('warn');
  try {
    await migrateDatabase(url.toString(), log);
    const writer = await BatchWriter.open(url.toString(), log);
    const nowUs = Date.now() * 1000;
    // Warm-up creates the day partitions and fills caches on both sides.
    await timeBatches(writer, [rowsFor('warm', rowsPerBatch, nowUs)]);
    const fast = await timeBatches(writer, Array.from({ length: batchCount }, (_, b) => rowsFor(`fast-${b}`, rowsPerBatch, nowUs)));
    const staging = await timeBatches(
      writer,
      Array.from({ length: batchCount }, (_, b) => {
        const batch = rowsFor(`stage-${b}`, rowsPerBatch, nowUs);
        batch[0] = rowsFor('warm', 1, nowUs)[0] as BatchRow; // one id already stored
        return batch;
      }),
    );
    await writer.close();
    const version = (await admin.query('SHOW server_version')).rows[0].server_version as string;
    const result = { date: new Date().toISOString(), postgres: version, rowsPerBatch, batchCount, fast, staging };
    const directory = path.join(__dirname, '..', '..', 'bench', 'results');
    mkdirSync(directory, { recursive: true });
    const file = path.join(directory, `copy-paths-${result.date.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\nwritten to ${path.relative(process.cwd(), file)}\n`);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${scratch} WITH (FORCE)`);
    await admin.end();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
