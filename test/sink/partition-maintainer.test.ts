import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { maintenanceLockKey, PartitionMaintainer } from '../../src/sink/partition-maintainer';
import { existingPartitionDays, partitionName } from '../../src/sink/partitions';
import { createMigratedDatabase, recordingLogger, type MigratedDatabase } from './fixtures';

let database: MigratedDatabase;
before(async () => {
  database = await createMigratedDatabase();
});
after(async () => {
  await database?.close();
});

test('runOnce covers now - past .. now + future + one day, then finds nothing to do', async () => {
  const logger = recordingLogger();
  const settings = { timestampPastMs: 2 * 86_400_000, timestampFutureMs: 3_600_000 };
  const maintainer = new PartitionMaintainer(database.url, settings, logger);
  const nowMs = Date.UTC(2060, 0, 10, 23, 30);
  assert.equal(await maintainer.runOnce(nowMs), 5);
  assert.equal(await maintainer.runOnce(nowMs), 0);
  const names = (await existingPartitionDays(database.client)).map(partitionName).sort();
  assert.deepEqual(names, ['events_p20600108', 'events_p20600109', 'events_p20600110', 'events_p20600111', 'events_p20600112']);
  assert.equal(logger.entries.filter((entry) => entry.msg === 'event partitions created ahead of time').length, 1);
});

test('start fails loudly when the database cannot be reached; stop is always safe', async () => {
  const url = new URL(database.url);
  url.port = '1';
  const maintainer = new PartitionMaintainer(url.toString(), { timestampPastMs: 0, timestampFutureMs: 0 }, recordingLogger());
  await assert.rejects(maintainer.start(), { code: 'ECONNREFUSED' });
  await maintainer.stop();
});

test('start creates the window around today and leaves no timer keeping the process alive', async () => {
  const maintainer = new PartitionMaintainer(database.url, { timestampPastMs: 0, timestampFutureMs: 0 }, recordingLogger());
  await maintainer.start();
  const today = Math.floor(Date.now() / 86_400_000);
  const days = new Set(await existingPartitionDays(database.client));
  assert.ok(days.has(today) && days.has(today + 1));
  await maintainer.stop();
});

test('across nodes: the hourly run skips while another node holds the lock; start-up waits for it', async () => {
  const settings = { timestampPastMs: 0, timestampFutureMs: 0 };
  const maintainer = new PartitionMaintainer(database.url, settings, recordingLogger());
  const nowMs = Date.UTC(2070, 5, 1, 12);
  await database.client.query('SELECT pg_advisory_lock($1)', [maintenanceLockKey]);
  try {
    assert.equal(await maintainer.runOnce(nowMs), null);
    let waited = false;
    const blocked = maintainer.runOnce(nowMs, { waitForLock: true }).then((created) => {
      waited = true;
      return created;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(waited, false, 'start-up maintenance must wait for the lock holder');
    await database.client.query('SELECT pg_advisory_unlock($1)', [maintenanceLockKey]);
    assert.equal(await blocked, 2);
  } finally {
    await database.client.query('SELECT pg_advisory_unlock_all()');
  }
});
