'use strict';
/**
 * The conventional baseline: the event-ingest service most teams would write with the
 * usual Node.js stack, so that every Floodgate number has a comparison beside it.
 *
 *   POST /v1/events/bulk   {"events": [...]} or [...] (JSON)
 *   POST /v1/events        one event
 *   POST /webhook/events   one event
 *   GET  /health
 *
 * Per request: Fastify parses the JSON, each event gets a minimal check (id, type and a
 * parseable timestamp), and the valid ones go into the same `events` table as Floodgate's
 * in ONE multi-row `INSERT … ON CONFLICT DO NOTHING` through a pg pool (10 connections by
 * default, like pg's own default). The answer (200) is sent after that statement commits,
 * so it promises what Floodgate's durable mode promises. It uses the same answer fields
 * ({accepted, duplicates, rejected}) so the load generator counts both alike.
 *
 * Deliberately ordinary: no batching across requests, no COPY, no worker threads.
 *
 * Environment: DATABASE_URL (required), PORT (8090), HOST (127.0.0.1), BASELINE_POOL_SIZE (10).
 */
const fastify = require('fastify');
const { Pool } = require('pg');

const eventsPerRequestMax = 5000;
const bodyBytesMax = 16 * 1024 * 1024;
const columnsPerRow = 6;

const pool = new Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.BASELINE_POOL_SIZE || 10),
});
pool.on('error', () => undefined);

/** Returns the row's parameters, or an error message for this event. */
function rowOf(event) {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) return 'event must be an object';
  if (typeof event.event_id !== 'string' || event.event_id.length === 0 || event.event_id.length > 128) return 'event_id must be a string of 1-128 characters';
  if (typeof event.event_type !== 'string' || event.event_type.length === 0) return 'event_type is required';
  const occurredAt = new Date(event.timestamp);
  if (event.timestamp === undefined || Number.isNaN(occurredAt.getTime())) return 'timestamp is missing or invalid';
  const attributes = event.attributes ?? event.properties ?? event.metadata ?? {};
  return [event.event_id, event.event_type, event.source ?? 'default', event.actor_id ?? event.user_id ?? null, occurredAt, JSON.stringify(attributes)];
}

async function insertEvents(events) {
  const params = [];
  const tuples = [];
  const errors = [];
  events.forEach((event, index) => {
    const row = rowOf(event);
    if (typeof row === 'string') {
      errors.push({ index, message: row });
      return;
    }
    const base = params.length;
    tuples.push(`($${base + 1}, $${base + 2}, $${base + 3}, $${base + 4}, $${base + 5}, now(), $${base + 6})`);
    params.push(...row);
  });
  if (tuples.length === 0) return { accepted: 0, duplicates: 0, errors };
  const result = await pool.query(
    'INSERT INTO events (event_id, event_type, source, actor_id, occurred_at, received_at, attributes) VALUES ' +
      `${tuples.join(', ')} ON CONFLICT DO NOTHING`,
    params,
  );
  return { accepted: result.rowCount, duplicates: params.length / columnsPerRow - result.rowCount, errors };
}

function answer(reply, outcome) {
  const status = outcome.accepted + outcome.duplicates > 0 ? 200 : 400;
  return reply.code(status).send({
    accepted: outcome.accepted,
    duplicates: outcome.duplicates,
    rejected: outcome.errors.length,
    errors: outcome.errors,
    queued: outcome.accepted + outcome.duplicates,
  });
}

const app = fastify({ logger: false, bodyLimit: bodyBytesMax });

app.post('/v1/events/bulk', async (request, reply) => {
  const events = Array.isArray(request.body) ? request.body : request.body?.events;
  if (!Array.isArray(events) || events.length === 0) return reply.code(400).send({ error: 'body must be {"events": [...]} or an array' });
  if (events.length > eventsPerRequestMax) return reply.code(413).send({ error: `at most ${eventsPerRequestMax} events per request` });
  return answer(reply, await insertEvents(events));
});

const single = async (request, reply) => answer(reply, await insertEvents([request.body]));
app.post('/v1/events', single);
app.post('/webhook/events', single);
app.get('/health', async () => ({ status: 'healthy' }));

async function main() {
  if (!process.env.DATABASE_URL) throw new Error('DATABASE_URL is required');
  await pool.query('SELECT 1');
  await app.listen({ host: process.env.HOST || '127.0.0.1', port: Number(process.env.PORT || 8090) });
  const stop = () => app.close().then(() => pool.end()).then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error) => {
  process.stderr.write(`baseline: ${error.stack || error}\n`);
  process.exit(1);
});
