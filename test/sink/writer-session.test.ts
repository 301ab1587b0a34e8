import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { KiB, MiB } from '../../src/config/settings';
import { BatchWriter } from '../../src/sink/batch-writer';
import { connectWriterSession, writerSessionSql } from '../../src/sink/writer-session';
import { createTestDatabase, withClient, type TestDatabase } from '../support/database';
import { buildRows, createMigratedDatabase, recordingLogger } from './fixtures';

let database: TestDatabase;
before(async () => {
  database = await createTestDatabase();
});
after(async () => {
  await database?.drop();
});

async function showFlushAfter(client: pg.Client): Promise<string> {
  const result = await client.query<{ backend_flush_after: string }>('SHOW backend_flush_after');
  return result.rows[0]?.backend_flush_after ?? '';
}

/** The setting as a session that is not a writer's sees it. */
function serverSetting(): Promise<string> {
  return withClient(database.url, showFlushAfter);
}

test('the session statement names the size in kB, and 0 sets nothing', () => {
  assert.equal(writerSessionSql({ flushAfterBytes: 256 * KiB }), "SET backend_flush_after = '256kB'");
  assert.equal(writerSessionSql({ flushAfterBytes: 2 * MiB }), "SET backend_flush_after = '2048kB'");
  assert.equal(writerSessionSql({ flushAfterBytes: 0 }), null);
});

test('a writer session flushes after the configured size; other sessions keep the server setting', async () => {
  const serverDefault = await serverSetting();
  const client = new pg.Client({ connectionString: database.url });
  const logger = recordingLogger();
  await connectWriterSession(client, { flushAfterBytes: 512 * KiB }, logger);
  try {
    assert.equal(await showFlushAfter(client), '512kB');
    assert.deepEqual(logger.entries, []);
  } finally {
    await client.end();
  }
  assert.equal(await serverSetting(), serverDefault);
});

test('0 leaves the server setting in the writer session', async () => {
  const serverDefault = await serverSetting();
  const client = new pg.Client({ connectionString: database.url });
  await connectWriterSession(client, { flushAfterBytes: 0 }, recordingLogger());
  try {
    assert.equal(await showFlushAfter(client), serverDefault);
  } finally {
    await client.end();
  }
});

test('a value the server refuses costs a warning, not the connection', async () => {
  // PostgreSQL's limit is 2 MB; the engine's configuration never goes past it, so only a
  // server that refuses the setting outright (no sync_file_range) would take this path.
  const client = new pg.Client({ connectionString: database.url });
  const logger = recordingLogger();
  await connectWriterSession(client, { flushAfterBytes: 4 * MiB }, logger);
  try {
    assert.equal(logger.entries.length, 1);
    const [entry] = logger.entries;
    assert.equal(entry?.level, 'warn');
    assert.equal((entry?.obj as { code: string }).code, '22023');
    assert.equal((entry?.obj as { setting: string }).setting, 'backend_flush_after');
    const result = await client.query<{ one: number }>('SELECT 1 AS one');
    assert.equal(result.rows[0]?.one, 1);
  } finally {
    await client.end();
  }
});

test('a failed connection rejects with its error', async () => {
  const url = new URL(database.url);
  url.pathname = '/floodgate_no_such_database';
  const client = new pg.Client({ connectionString: url.toString() });
  await assert.rejects(connectWriterSession(client, { flushAfterBytes: 256 * KiB }, recordingLogger()), (error: unknown) => {
    assert.equal((error as { code?: string }).code, '3D000');
    return true;
  });
});

test('a batch writer opened with a session setting writes its rows', async () => {
  const migrated = await createMigratedDatabase();
  const writer = await BatchWriter.open(migrated.url, recordingLogger(), { flushAfterBytes: 8 * KiB });
  try {
    const rows = buildRows(50);
    const outcomes = new Uint8Array(rows.length);
    const report = await writer.write(rows, outcomes);
    assert.equal(report.committed, 50);
    const stored = await migrated.client.query<{ n: number }>('SELECT count(*)::int AS n FROM events');
    assert.equal(stored.rows[0]?.n, 50);
  } finally {
    await writer.close();
    await migrated.close();
  }
});
