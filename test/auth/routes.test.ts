/**
 * Keys, scopes and posture against real engines over real sockets: every guarded route
 * × {no key, malformed, wrong scope, revoked, right key}; path and header tricks through
 * a raw socket; auto posture seen from a non-loopback address; required posture with a
 * body still arriving; the metrics token; audit lines, and no key in any log line.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { after, before, describe, test } from 'node:test';
import { generateKey } from '../../src/auth/key-format';
import { buildEvent } from '../support/builders';
import { callRoute, loggedEngines, type LoggedEngine } from '../support/engine';
import { exchange, headerOf, jsonOf } from '../fuzz/raw-http';

const engines = loggedEngines();
after(() => engines.closeAll());
const run = engines.start;

const call = callRoute;

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const event = () => JSON.stringify(buildEvent({ timestamp: new Date().toISOString() }));

interface Route {
  readonly method: string;
  readonly path: string;
  readonly scope: 'ingest' | 'read' | 'admin';
  readonly body?: () => string;
}

const routes: readonly Route[] = [
  { method: 'POST', path: '/v1/events', scope: 'ingest', body: event },
  { method: 'POST', path: '/v1/events/bulk', scope: 'ingest', body: () => JSON.stringify({ events: [JSON.parse(event())] }) },
  { method: 'POST', path: '/webhook/events', scope: 'ingest', body: event },
  { method: 'POST', path: '/webhook/batch', scope: 'ingest', body: () => JSON.stringify([JSON.parse(event())]) },
  { method: 'GET', path: '/v1/stats', scope: 'read' },
  { method: 'GET', path: '/health', scope: 'read' },
  { method: 'GET', path: '/v1/events?limit=1', scope: 'read' },
  { method: 'GET', path: '/v1/events/no-such-event', scope: 'read' },
  { method: 'GET', path: '/v1/analytics/events/daily', scope: 'read' },
  { method: 'GET', path: '/v1/analytics/events/summary', scope: 'read' },
  { method: 'GET', path: '/v1/analytics/event-types', scope: 'read' },
  { method: 'GET', path: '/v1/analytics/events/raw', scope: 'read' },
  { method: 'GET', path: '/v1/analytics/counts', scope: 'read' },
  { method: 'GET', path: '/v1/dead-letters', scope: 'admin' },
  { method: 'POST', path: '/v1/dead-letters/replay', scope: 'admin', body: () => JSON.stringify({ ids: ['1'] }) },
  { method: 'GET', path: '/v1/keys', scope: 'admin' },
  { method: 'POST', path: '/v1/keys', scope: 'admin', body: () => JSON.stringify({ name: 'made-in-matrix', scopes: ['ingest'] }) },
  { method: 'DELETE', path: '/v1/keys/999999', scope: 'admin' },
  { method: 'GET', path: '/v1/webhook-sources', scope: 'admin' },
  { method: 'POST', path: '/v1/webhook-sources', scope: 'admin', body: () => JSON.stringify({ name: 'matrix', scheme: 'github', secrets: ['s'] }) },
  { method: 'DELETE', path: '/v1/webhook-sources/absent', scope: 'admin' },
];

describe('with keys (auto posture, bootstrap admin key)', () => {
  const adminKey = generateKey();
  let engine: LoggedEngine;
  const keys: Record<string, string> = {};

  before(async () => {
    engine = await run({ adminKey });
    for (const [name, scopes] of [['ingest', ['ingest']], ['read', ['read']], ['admin', ['admin']], ['ingest-read', ['ingest', 'read']], ['revoked', ['ingest', 'read', 'admin']]] as const) {
      const created = await call(engine.base, 'POST', '/v1/keys', bearer(adminKey), JSON.stringify({ name, scopes }));
      assert.equal(created.status, 201, JSON.stringify(created.json));
      assert.match(created.json.key, /^fgk_/);
      keys[name] = created.json.key;
      if (name === 'revoked') assert.equal((await call(engine.base, 'DELETE', `/v1/keys/${created.json.id}`, bearer(adminKey))).status, 200);
    }
  });

  for (const route of routes) {
    test(`${route.method} ${route.path}: no key 401, malformed 401, wrong scope 403, revoked 401, right key passes`, async () => {
      const send = (headers: Record<string, string>) => call(engine.base, route.method, route.path, headers, route.body?.());
      const wrong = route.scope === 'ingest' ? keys.read : route.scope === 'read' ? keys.ingest : keys['ingest-read'];
      const right = route.scope === 'admin' ? keys.admin : keys[route.scope];
      const cases: Array<[string, Record<string, string>, number, string | null]> = [
        ['no key', {}, 401, 'ERR_AUTH_REQUIRED'],
        ['malformed', { authorization: 'Bearer fgk_nope' }, 401, 'ERR_AUTH_INVALID'],
        ['wrong scope', bearer(wrong as string), 403, 'ERR_AUTH_SCOPE'],
        ['revoked', bearer(keys.revoked as string), 401, 'ERR_AUTH_INVALID'],
      ];
      for (const [label, headers, status, code] of cases) {
        const answer = await send(headers);
        assert.equal(answer.status, status, `${label}: ${JSON.stringify(answer.json)}`);
        assert.equal(answer.json?.error?.code, code, label);
        if (status === 401) assert.match(answer.headers.get('www-authenticate') ?? '', /^Bearer realm="floodgate"/);
      }
      const answer = await send(bearer(right as string));
      assert.ok(![401, 403].includes(answer.status), `right key: ${answer.status} ${JSON.stringify(answer.json)}`);
      assert.ok(answer.status < 500, `right key: ${answer.status}`);
    });
  }

  test('X-API-Key and Basic work too; two credentials are invalid', async () => {
    const key = keys.ingest as string;
    assert.ok([200, 202].includes((await call(engine.base, 'POST', '/v1/events', { 'x-api-key': key }, event())).status));
    const basic = `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
    assert.ok([200, 202].includes((await call(engine.base, 'POST', '/v1/events', { authorization: basic }, event())).status));
    const both = await call(engine.base, 'POST', '/v1/events', { ...bearer(key), 'x-api-key': key }, event());
    assert.equal(both.json.error.code, 'ERR_AUTH_INVALID');
  });

  test('probes and the dashboard page stay open', async () => {
    for (const path of ['/healthz', '/readyz', '/', '/metrics']) assert.equal((await call(engine.base, 'GET', path)).status, 200, path);
  });

  test('path and header tricks never reach a guarded handler', async () => {
    const port = engine.engine.port;
    const admin = keys.admin as string;
    const raw = async (method: string, path: string, headers: Array<[string, string]> = []) => {
      const head = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...headers.map(([name, value]) => `${name}: ${value}`), 'Content-Length: 0'];
      return exchange(port, [Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1')], { timeoutMs: 2000 });
    };
    for (const path of ['//v1/dead-letters', '/v1%2Fdead-letters', '/v1/dead-letters/', '/V1/Dead-Letters', '/v1/dead-letters/../dead-letters', '/v1/keys/', '/v1//keys', '/V1/KEYS', '/v1/stats/', '/v1/Stats', '/v1/webhook-sources/', '/V1/Webhook-Sources', '//v1/webhook-sources']) {
      for (const method of ['GET', 'POST', 'HEAD', 'OPTIONS', 'DELETE']) {
        const answer = await raw(method, path);
        assert.ok(answer.status !== null && [401, 403, 404, 405].includes(answer.status), `${method} ${path}: ${answer.status}`);
      }
    }
    for (const method of ['HEAD', 'OPTIONS', 'PUT', 'PATCH']) {
      const answer = await raw(method, '/v1/dead-letters');
      assert.ok(answer.status !== null && [401, 404, 405].includes(answer.status), `${method}: ${answer.status}`);
    }
    const duplicate = await raw('GET', '/v1/dead-letters', [['Authorization', `Bearer ${admin}`], ['Authorization', `Bearer ${admin}`]]);
    assert.equal(duplicate.status, 401);
    assert.equal((jsonOf(duplicate.body) as any).error.code, 'ERR_AUTH_INVALID');
    assert.ok(headerOf(duplicate, 'www-authenticate')?.startsWith('Bearer'));
    const casedHeader = await raw('GET', '/v1/dead-letters', [['AUTHORIZATION', `bearer ${admin}`]]);
    assert.equal(casedHeader.status, 200);
  });

  test('audit lines name the key and the address; no key ever appears in a log line', async () => {
    const replay = await call(engine.base, 'POST', '/v1/dead-letters/replay', bearer(keys.admin as string), JSON.stringify({ ids: ['1'] }));
    assert.equal(replay.status, 200);
    const audits = engine.logs.map((line) => JSON.parse(line)).filter((line) => line.audit === true);
    const actions = audits.map((line) => line.action);
    for (const action of ['key.create', 'key.revoke', 'dead_letters.replay']) assert.ok(actions.includes(action), `${action} in ${actions.join(',')}`);
    const replayLine = audits.findLast((line) => line.action === 'dead_letters.replay');
    assert.equal(replayLine.key_name, 'admin');
    assert.match(replayLine.address, /127\.0\.0\.1|::1|7f00:0001/);
    const all = engine.logs.join('');
    for (const key of [adminKey, ...Object.values(keys)]) assert.ok(!all.includes(key) && !all.includes(key.slice(4)), 'a key leaked into the log');
  });
});

describe('auto posture without keys', () => {
  const external = Object.values(os.networkInterfaces()).flat().find((entry) => entry?.family === 'IPv4' && !entry.internal)?.address;

  test('ingest is open, read and admin answer loopback only (engine on 0.0.0.0)', { skip: external === undefined ? 'no non-loopback IPv4 address' : false }, async () => {
    const engine = await run({ host: '0.0.0.0' });
    assert.ok(engine.logs.some((line) => line.includes('no API key exists')), 'the start-up warning');
    const outside = `http://${external}:${engine.engine.port}`;
    assert.ok([200, 202].includes((await call(outside, 'POST', '/v1/events', {}, event())).status));
    for (const path of ['/v1/stats', '/v1/dead-letters', '/v1/keys', '/health']) {
      const answer = await call(outside, 'GET', path);
      assert.equal(answer.status, 401, path);
      assert.equal(answer.json.error.code, 'ERR_AUTH_REQUIRED');
      assert.equal((await call(engine.base, 'GET', path)).status, 200, `${path} from loopback`);
    }
    assert.equal((await call(outside, 'GET', '/healthz')).status, 200);
  });
});

describe('required posture and the metrics token', () => {
  test('every request without a key is refused, also with a body on its way; /metrics wants its token', async () => {
    const engine = await run({ authMode: 'required', metricsToken: 'scrape-token-0123456789' });
    const refused = await call(engine.base, 'POST', '/v1/events', {}, event());
    assert.equal(refused.status, 401);
    assert.equal(refused.json.error.code, 'ERR_AUTH_REQUIRED');
    const big = JSON.stringify({ events: Array.from({ length: 2000 }, () => buildEvent()) });
    const bulk = await call(engine.base, 'POST', '/v1/events/bulk', {}, big);
    assert.equal(bulk.status, 401);
    for (const path of ['/v1/stats', '/v1/dead-letters']) assert.equal((await call(engine.base, 'GET', path)).status, 401, path);
    assert.equal((await call(engine.base, 'GET', '/healthz')).status, 200);
    assert.equal((await call(engine.base, 'GET', '/metrics')).status, 401);
    assert.equal((await call(engine.base, 'GET', '/metrics', { authorization: 'Bearer wrong-token-0123456789' })).status, 401);
    assert.equal((await call(engine.base, 'GET', '/metrics', { authorization: 'Bearer scrape-token-0123456789' })).status, 200);
    assert.ok(!engine.logs.join('').includes('scrape-token-0123456789'));
  });
});
