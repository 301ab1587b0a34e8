/**
 * CORS (FLOODGATE_CORS_ORIGINS) and the security headers over raw sockets against real
 * engines: an allowed origin gets the headers on preflights, answers and refusals; a
 * disallowed one gets none; `*`; a preflight never reaches a guarded handler (no key, a
 * body, nothing stored); with the setting empty no CORS header appears and OPTIONS is 405.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateKey } from '../../src/auth/key-format';
import { buildEvent } from '../support/builders';
import { startTestEngine, type TestEngine } from '../support/engine';
import { encodeRequest, exchange, headerOf, type RawAnswer } from '../fuzz/raw-http';

const allowed = 'https://app.example';
const engines: TestEngine[] = [];
after(async () => {
  for (const engine of engines) await engine.close();
});

async function start(corsOrigins: string, adminKey?: string): Promise<TestEngine> {
  const engine = await startTestEngine({ corsOrigins, ...(adminKey === undefined ? {} : { adminKey }) });
  engines.push(engine);
  return engine;
}

function send(engine: TestEngine, method: string, path: string, headers: Array<[string, string]>, body = ''): Promise<RawAnswer> {
  const pieces = encodeRequest({ method, path, headers, body: Buffer.from(body), framing: 'length' });
  return exchange(engine.engine.port, pieces, { timeoutMs: 3000 });
}

const preflightHeaders = (origin: string, method = 'POST'): Array<[string, string]> => [
  ['Origin', origin],
  ['Access-Control-Request-Method', method],
  ['Access-Control-Request-Headers', 'content-type, authorization'],
];
const eventBody = () => JSON.stringify(buildEvent({ timestamp: new Date().toISOString() }));
const corsHeaderNames = (answer: RawAnswer) => [...answer.headers.keys()].filter((name) => name.startsWith('access-control-'));

describe('with allowed origins and a key', () => {
  const adminKey = generateKey();
  let engine: TestEngine;
  before(async () => {
    engine = await start(`${allowed},http://localhost:3000`, adminKey);
  });

  test('a preflight from an allowed origin: 204 with every CORS header, no key needed', async () => {
    const answer = await send(engine, 'OPTIONS', '/v1/events/bulk', preflightHeaders(allowed));
    assert.equal(answer.status, 204);
    assert.equal(headerOf(answer, 'access-control-allow-origin'), allowed);
    assert.equal(headerOf(answer, 'vary'), 'origin');
    assert.equal(headerOf(answer, 'access-control-allow-methods'), 'POST, OPTIONS');
    assert.equal(headerOf(answer, 'access-control-allow-headers'), 'content-type, content-encoding, authorization, x-api-key, idempotency-key, x-request-id');
    assert.equal(headerOf(answer, 'access-control-max-age'), '600');
    const read = await send(engine, 'OPTIONS', '/v1/stats', preflightHeaders('http://localhost:3000', 'GET'));
    assert.equal(read.status, 204);
    assert.equal(headerOf(read, 'access-control-allow-methods'), 'GET, OPTIONS');
    // The read API: a page on another origin may page events (GET /v1/events) as well as post them.
    const events = await send(engine, 'OPTIONS', '/v1/events', preflightHeaders(allowed, 'GET'));
    assert.equal(headerOf(events, 'access-control-allow-methods'), 'GET, POST, OPTIONS');
    for (const path of ['/v1/events/evt-1', '/v1/analytics/counts', '/v1/analytics/events/daily']) {
      const answer = await send(engine, 'OPTIONS', path, preflightHeaders(allowed, 'GET'));
      assert.equal(answer.status, 204, path);
      assert.equal(headerOf(answer, 'access-control-allow-methods'), 'GET, OPTIONS', path);
    }
  });

  test('a preflight from another origin, or without a requested method, gets no CORS header', async () => {
    for (const headers of [preflightHeaders('https://evil.example'), preflightHeaders('https://APP.example.evil'), [['Origin', allowed]] as Array<[string, string]>]) {
      const answer = await send(engine, 'OPTIONS', '/v1/events', headers);
      assert.equal(answer.status, 204);
      assert.deepEqual(corsHeaderNames(answer), []);
    }
  });

  test('a preflight never reaches a guarded handler: a body on OPTIONS stores nothing; admin routes have no preflight', async () => {
    const answer = await send(engine, 'OPTIONS', '/v1/events', [...preflightHeaders(allowed), ['Content-Type', 'application/json']], eventBody());
    assert.equal(answer.status, 204);
    assert.equal(answer.body.length, 0);
    for (const path of ['/v1/dead-letters', '/v1/keys', '/v1/webhook-sources', '/v1/dead-letters/replay']) {
      const admin = await send(engine, 'OPTIONS', path, preflightHeaders(allowed));
      assert.equal(admin.status, 405, path);
    }
    assert.equal(await engine.countEvents(), 0);
  });

  test('answers and refusals carry Allow-Origin and Expose-Headers for an allowed origin only', async () => {
    const refused = await send(engine, 'POST', '/v1/events', [['Origin', allowed], ['Content-Type', 'application/json']], eventBody());
    assert.equal(refused.status, 401);
    assert.equal(headerOf(refused, 'access-control-allow-origin'), allowed);
    assert.equal(headerOf(refused, 'access-control-expose-headers'), 'x-request-id, retry-after, ratelimit, ratelimit-policy');
    const accepted = await send(engine, 'POST', '/v1/events', [['Origin', allowed], ['Content-Type', 'application/json'], ['Authorization', `Bearer ${adminKey}`]], eventBody());
    assert.equal(accepted.status, 403, 'an admin key lacks ingest: still a CORS answer');
    assert.equal(headerOf(accepted, 'access-control-allow-origin'), allowed);
    const other = await send(engine, 'POST', '/v1/events', [['Origin', 'https://evil.example'], ['Content-Type', 'application/json']], eventBody());
    assert.equal(other.status, 401);
    assert.deepEqual(corsHeaderNames(other), []);
    const none = await send(engine, 'GET', '/healthz', []);
    assert.deepEqual(corsHeaderNames(none), []);
    assert.equal(headerOf(none, 'x-content-type-options'), 'nosniff');
  });

  test('one keep-alive connection: an answer without Origin carries no header left by the one before', async () => {
    // fetch keeps the connection open between the two requests, so both reach the same socket.
    const url = `${engine.baseUrl}/healthz`;
    const first = await fetch(url, { headers: { origin: allowed } });
    assert.equal(first.headers.get('access-control-allow-origin'), allowed);
    await first.text();
    const second = await fetch(url);
    assert.equal(second.headers.get('access-control-allow-origin'), null);
    await second.text();
  });
});

describe('with * and no key', () => {
  test('any origin gets Allow-Origin *, without Vary; the event is taken', async () => {
    const engine = await start('*');
    const preflight = await send(engine, 'OPTIONS', '/v1/events', preflightHeaders('https://anyone.example'));
    assert.equal(headerOf(preflight, 'access-control-allow-origin'), '*');
    assert.equal(headerOf(preflight, 'vary'), undefined);
    const answer = await send(engine, 'POST', '/v1/events', [['Origin', 'https://anyone.example'], ['Content-Type', 'application/json']], eventBody());
    assert.ok(answer.status === 200 || answer.status === 202, String(answer.status));
    assert.equal(headerOf(answer, 'access-control-allow-origin'), '*');
    assert.equal(headerOf(answer, 'access-control-expose-headers'), 'x-request-id, retry-after, ratelimit, ratelimit-policy');
  });
});

describe('with the setting empty (the default)', () => {
  test('no CORS header anywhere and OPTIONS is 405; the dashboard still has its security headers', async () => {
    const engine = await start('');
    const answer = await send(engine, 'POST', '/v1/events', [['Origin', allowed], ['Content-Type', 'application/json']], eventBody());
    assert.ok(answer.status === 200 || answer.status === 202, String(answer.status));
    assert.deepEqual(corsHeaderNames(answer), []);
    const preflight = await send(engine, 'OPTIONS', '/v1/events', preflightHeaders(allowed));
    assert.equal(preflight.status, 405);
    assert.deepEqual(corsHeaderNames(preflight), []);
    const page = await send(engine, 'GET', '/', []);
    assert.equal(page.status, 200);
    assert.match(headerOf(page, 'content-security-policy') ?? '', /^default-src 'none'; script-src 'sha256-[^']+'; style-src 'sha256-[^']+'; connect-src 'self'/);
    assert.match(headerOf(page, 'content-security-policy') ?? '', /frame-ancestors 'none'/);
    assert.equal(headerOf(page, 'x-frame-options'), 'DENY');
    assert.equal(headerOf(page, 'referrer-policy'), 'no-referrer');
    assert.equal(headerOf(page, 'x-content-type-options'), 'nosniff');
  });
});
