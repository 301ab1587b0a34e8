import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import type { ValidEvent } from '../../src/event';
import { CopyEncoder, copyIntoEventsSql } from '../../src/sink/copy-encoder';
import { copyIn, copyInMessages } from '../../src/sink/copy-in';
import { dayOfUs, ensurePartitions } from '../../src/sink/partitions';
import { RollupCounts } from '../../src/sink/rollup-counts';
import { baseUs, buildEvent, countRows, createMigratedDatabase, type MigratedDatabase } from './fixtures';

const copySql = copyIntoEventsSql;

let database: MigratedDatabase;
before(async () => {
  database = await createMigratedDatabase();
  await ensurePartitions(database.client, [dayOfUs(baseUs)]);
});
after(async () => {
  await database?.close();
});

function encode(events: readonly ValidEvent[]): Uint8Array {
  const encoder = new CopyEncoder();
  for (const event of events) encoder.addRow(event, baseUs);
  return encoder.finish();
}

async function connectionStillWorks(): Promise<void> {
  const answer = await database.client.query<{ one: number }>('SELECT 1 AS one');
  assert.deepEqual(answer.rows, [{ one: 1 }]);
}

test('the three frontend messages, byte for byte', () => {
  const messages = copyInMessages('COPY t FROM STDIN', Uint8Array.of(1, 2, 3));
  const expected = Buffer.concat([
    Buffer.from([0x51, 0, 0, 0, 4 + 17 + 1]),
    Buffer.from('COPY t FROM STDIN\0'),
    Buffer.from([0x64, 0, 0, 0, 4 + 3, 1, 2, 3]),
    Buffer.from([0x63, 0, 0, 0, 4]),
  ]);
  assert.deepEqual(messages, expected);
});

test('a COPY resolves with the rows the server stored, once they are committed', async () => {
  const events = Array.from({ length: 250 }, () => buildEvent());
  const before = await countRows(database.client, 'events');
  assert.equal(await copyIn(database.client, copySql, encode(events)), 250);
  assert.equal(await countRows(database.client, 'events'), before + 250);
});

test('the rollup upserts after the COPY ride in its Query message: one transaction, resolved with the COPY\'s row count', async () => {
  const events = Array.from({ length: 7 }, () => buildEvent({ eventType: 'trailing' }));
  const counts = new RollupCounts(0);
  for (const event of events) counts.add(event);
  assert.equal(await copyIn(database.client, copySql, encode(events), counts.upsertSql()), 7, 'not the last INSERT\'s count of 1');
  const sums = await database.client.query<{ minute: number; hour: number; day: number }>(
    `SELECT (SELECT sum(count) FROM event_counts_minute WHERE event_type = 'trailing')::int AS minute,
            (SELECT sum(count) FROM event_counts_hourly WHERE event_type = 'trailing')::int AS hour,
            (SELECT sum(count) FROM event_counts_daily WHERE event_type = 'trailing')::int AS day`,
  );
  assert.deepEqual(sums.rows[0], { minute: 7, hour: 7, day: 7 });
  // A failure in the last statement takes the COPY's rows with it.
  const before = await countRows(database.client, 'events');
  await assert.rejects(copyIn(database.client, copySql, encode([buildEvent()]), `${counts.upsertSql()}; SELECT 1 / 0`), { code: '22012' });
  assert.equal(await countRows(database.client, 'events'), before);
  await connectionStillWorks();
});

function socketQueuedBytes(client: unknown): number {
  return (client as { connection: { stream: { writableLength: number } } }).connection.stream.writableLength;
}

test('it settles only once the socket has let go of the payload, so the caller may reuse it', async () => {
  // ~8 MB into a table that does not exist: the server answers at once, long before it has
  // read the data, so the answer arrives while most of the payload is still queued.
  const payload = encode(Array.from({ length: 60_000 }, () => buildEvent()));
  assert.ok(payload.length > 4_000_000);
  let queuedAtAnswer = -1;
  await assert.rejects(
    copyIn(database.client, copySql.replace('COPY events', 'COPY no_such_table'), payload).catch((error: unknown) => {
      queuedAtAnswer = socketQueuedBytes(database.client);
      throw error;
    }),
    { code: '42P01' },
  );
  assert.equal(queuedAtAnswer, 0);
  payload.fill(0xff);
  assert.equal(await copyIn(database.client, copySql, encode([buildEvent()])), 1);
});

test('a statement that fails before copy-in rejects with the server error; the data sent after it is ignored', async () => {
  // Big enough (~8 MB) that the server answers long before it has read all of it.
  const events = Array.from({ length: 60_000 }, () => buildEvent());
  const payload = encode(events);
  assert.ok(payload.length > 4_000_000);
  await assert.rejects(copyIn(database.client, copySql.replace('COPY events', 'COPY no_such_table'), payload), { code: '42P01' });
  await connectionStillWorks();
  // The same connection then takes a good COPY: the stray CopyData/CopyDone did not desync it.
  assert.equal(await copyIn(database.client, copySql, encode([buildEvent()])), 1);
});

test('a row that fails mid-COPY rolls the whole COPY back and leaves the connection usable', async () => {
  const before = await countRows(database.client, 'events');
  const first = buildEvent();
  const events = [first, ...Array.from({ length: 500 }, () => buildEvent()), { ...first }];
  await assert.rejects(copyIn(database.client, copySql, encode(events)), { code: '23505' });
  assert.equal(await countRows(database.client, 'events'), before);
  await connectionStillWorks();
});

test('a large COPY goes through in one piece', async () => {
  const events = Array.from({ length: 40_000 }, () => buildEvent());
  assert.equal(await copyIn(database.client, copySql, encode(events)), 40_000);
});

test('a closed connection rejects instead of hanging', async () => {
  const client = new pg.Client({ connectionString: database.url });
  client.on('error', () => undefined);
  await client.connect();
  await client.end();
  await assert.rejects(copyIn(client, copySql, encode([buildEvent()])), /not queryable|Connection terminated|ended/i);
});
