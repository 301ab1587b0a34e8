import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveDatabase } from '../../src/sink/database';
import { recordingLogger } from './fixtures';
import pino from 'pino';
import { errorFields, type SinkLogger } from '../../src/sink/sink-logger';

test('a DATABASE_URL is used as is, and stopping it does nothing', async () => {
  const logger = recordingLogger();
  const database = await resolveDatabase({ databaseUrl: 'postgres://u@db.example:5433/x', dataDir: '/nonexistent', embeddedPgPort: 1 }, logger);
  assert.equal(database.connectionString, 'postgres://u@db.example:5433/x');
  assert.equal(database.embedded, false);
  await database.stop();
  assert.deepEqual(logger.entries, []);
});

test('a pino logger is a SinkLogger', () => {
  const logger: SinkLogger = pino({ level: 'silent' });
  assert.equal(typeof logger.debug, 'function');
});

test('errorFields keeps code and message of anything thrown', () => {
  assert.deepEqual(errorFields(Object.assign(new Error('gone'), { code: '57P01' })), { code: '57P01', message: 'gone' });
  assert.deepEqual(errorFields(Object.assign(new Error('odd'), { code: 5 })), { code: null, message: 'odd' });
  assert.deepEqual(errorFields('text'), { code: null, message: 'text' });
  assert.deepEqual(errorFields(undefined), { code: null, message: 'undefined' });
  assert.deepEqual(errorFields({ code: 'ECONNRESET' }), { code: 'ECONNRESET', message: '[object Object]' });
});
