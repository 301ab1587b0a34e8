import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveDatabase } from '../../src/sink/database';
import { recordingLogger } from './fixtures';

test('a DATABASE_URL is used as is, and stopping it does nothing', async () => {
  const logger = recordingLogger();
  const database = await resolveDatabase({ databaseUrl: 'postgres://u@db.example:5433/x', dataDir: '/nonexistent', embeddedPgPort: 1 }, logger);
  assert.equal(database.connectionString, 'postgres://u@db.example:5433/x');
  assert.equal(database.embedded, false);
  await database.stop();
  assert.deepEqual(logger.entries, []);
});
