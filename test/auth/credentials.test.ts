/**
 * Pure tests of what a credential looks like and what the guard decides from it: no
 * database, no sockets (the unit tier).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { bearerTokenOf, readCredential } from '../../src/auth/credentials';
import { decideScope, metricsTokenMatches, RouteGuard, type GuardState } from '../../src/auth/guard';
import type { ActiveKey } from '../../src/auth/key-cache';
import { generateKey, hashKey, isWellFormedKey, keyHashText, keyNameProblem, parseScopes } from '../../src/auth/key-format';
import { isLoopbackAddress } from '../../src/auth/loopback';
import { accessOf, routeAccess } from '../../src/auth/route-access';

const key = `fgk_${'a'.repeat(43)}`;
const basic = (text: string) => `Basic ${Buffer.from(text).toString('base64')}`;
const read = (authorization: string[], apiKey: string[] = []) => readCredential({ authorization, apiKey });

describe('key format', () => {
  test('the cache\'s hash text is the stored hash in base64, for any key', () => {
    for (const key of [generateKey(), generateKey(), 'fgk_short', 'not a key at all, é']) assert.equal(keyHashText(key), hashKey(key).toString('base64'));
  });

  test('generated keys are fgk_ + 43 base64url characters, different every time', () => {
    const keys = new Set(Array.from({ length: 100 }, generateKey));
    assert.equal(keys.size, 100);
    for (const generated of keys) {
      assert.match(generated, /^fgk_[A-Za-z0-9_-]{43}$/);
      assert.ok(isWellFormedKey(generated));
    }
  });

  test('malformed keys are refused', () => {
    for (const bad of ['', 'fgk_', `fgk_${'a'.repeat(31)}`, `FGK_${'a'.repeat(43)}`, `sk_${'a'.repeat(43)}`, `fgk_${'a'.repeat(42)}=`, `fgk_${'a'.repeat(129)}`, `fgk_${'a'.repeat(40)} ab`]) {
      assert.equal(isWellFormedKey(bad), false, bad);
    }
    assert.ok(isWellFormedKey(`fgk_${'a'.repeat(32)}`));
  });

  test('the stored hash is the SHA-256 of the key, 32 bytes', () => {
    assert.equal(hashKey(key).length, 32);
    assert.deepEqual(hashKey(key), createHash('sha256').update(key).digest());
    assert.notDeepEqual(hashKey(key), hashKey(`${key.slice(0, -1)}b`));
  });

  test('scopes: known, at least one, no repeats, returned in catalogue order', () => {
    assert.deepEqual(parseScopes('read,ingest'), { ok: true, scopes: ['ingest', 'read'] });
    assert.deepEqual(parseScopes(['admin']), { ok: true, scopes: ['admin'] });
    for (const bad of ['', 'write', 'ingest,ingest', 'ingest,', 'Admin']) assert.equal(parseScopes(bad).ok, false, bad);
    for (const bad of [[], [1], ['ingest', null]]) assert.equal(parseScopes(bad).ok, false, JSON.stringify(bad));
  });

  test('names: non-empty, at most 100 characters, no control characters', () => {
    assert.equal(keyNameProblem('ci'), null);
    for (const bad of ['', '   ', 'a'.repeat(101), 'a\nb', 7, null]) assert.notEqual(keyNameProblem(bad), null, String(bad));
  });
});

describe('reading the credential', () => {
  test('Bearer, X-API-Key and Basic with the key as user name', () => {
    assert.deepEqual(read([]), { kind: 'none' });
    assert.deepEqual(read([`Bearer ${key}`]), { kind: 'key', key });
    assert.deepEqual(read([`bearer   ${key} `]), { kind: 'key', key });
    assert.deepEqual(read([], [key]), { kind: 'key', key });
    assert.deepEqual(read([basic(`${key}:`)]), { kind: 'key', key });
  });

  test('two credentials, repeated headers, other schemes and malformed keys are invalid', () => {
    const cases: Array<[string[], string[]]> = [
      [[`Bearer ${key}`, `Bearer ${key}`], []],
      [[`Bearer ${key}`], [key]],
      [[], [key, key]],
      [[`Token ${key}`], []],
      [['Bearer'], []],
      [['Bearer fgk_short'], []],
      [[basic(`${key}:password`)], []],
      [[basic(key)], []],
      [['Basic !!!'], []],
      [[], ['not-a-key']],
    ];
    for (const [authorization, apiKey] of cases) {
      const credential = read(authorization, apiKey);
      assert.equal(credential.kind, 'invalid', JSON.stringify([authorization, apiKey]));
      if (credential.kind === 'invalid') assert.ok(!credential.message.includes(key), 'the key is never in a message');
    }
  });

  test('the metrics token is read from a lone Bearer header', () => {
    assert.equal(bearerTokenOf({ authorization: ['Bearer scrape-token-1234567'], apiKey: [] }), 'scrape-token-1234567');
    assert.equal(bearerTokenOf({ authorization: ['Bearer a', 'Bearer a'], apiKey: [] }), null);
    assert.equal(bearerTokenOf({ authorization: ['Basic a'], apiKey: [] }), null);
    assert.ok(metricsTokenMatches('scrape-token-1234567', 'scrape-token-1234567'));
    assert.ok(!metricsTokenMatches('scrape-token-123456', 'scrape-token-1234567'));
    assert.ok(!metricsTokenMatches(null, 'scrape-token-1234567'));
  });
});

describe('the decision', () => {
  const ingestKey: ActiveKey = { id: '1', name: 'writer', scopes: new Set(['ingest']), rateLimit: null };
  const state = (mode: 'auto' | 'required', keysExist: boolean): GuardState => ({ mode, keysExist, lookup: (text) => (text === key ? ingestKey : undefined) });
  const none = { kind: 'none' } as const;
  const codeOf = (decision: ReturnType<typeof decideScope>) => (decision.ok ? 'ok' : decision.code);

  test('auto posture without keys: ingest open, read and admin for loopback only', () => {
    assert.equal(codeOf(decideScope('ingest', none, state('auto', false), () => false)), 'ok');
    assert.equal(codeOf(decideScope('read', none, state('auto', false), () => true)), 'ok');
    assert.equal(codeOf(decideScope('admin', none, state('auto', false), () => false)), 'ERR_AUTH_REQUIRED');
  });

  test('once a key exists, or in required posture, every scoped route needs a key', () => {
    for (const posture of [state('auto', true), state('required', false)]) {
      for (const scope of ['ingest', 'read', 'admin']) assert.equal(codeOf(decideScope(scope, none, posture, () => true)), 'ERR_AUTH_REQUIRED');
    }
  });

  test('unknown keys are invalid, keys without the scope are forbidden', () => {
    const other = { kind: 'key', key: `fgk_${'b'.repeat(43)}` } as const;
    assert.equal(codeOf(decideScope('ingest', other, state('auto', true), () => true)), 'ERR_AUTH_INVALID');
    assert.equal(codeOf(decideScope('read', { kind: 'key', key }, state('auto', true), () => true)), 'ERR_AUTH_SCOPE');
    assert.equal(codeOf(decideScope('ingest', { kind: 'key', key }, state('required', true), () => false)), 'ok');
    assert.equal(codeOf(decideScope('ingest', { kind: 'invalid', message: 'x' }, state('auto', false), () => true)), 'ERR_AUTH_INVALID');
  });
});

describe('loopback', () => {
  test('127.0.0.0/8, ::1 and IPv4-mapped loopback, in the forms uWS gives', () => {
    for (const address of ['127.0.0.1', '127.9.8.7', '::1', '::ffff:127.0.0.1', '0000:0000:0000:0000:0000:0000:0000:0001', '0000:0000:0000:0000:0000:ffff:7f00:0001']) {
      assert.ok(isLoopbackAddress(address), address);
    }
    for (const address of ['10.0.0.1', '::ffff:10.0.0.1', '128.0.0.1', '::2', '', 'localhost', '0.0.0.0']) assert.ok(!isLoopbackAddress(address), address);
  });
});

describe('route access table', () => {
  test('every ingest route needs ingest, dead letters and keys need admin, probes are open', () => {
    for (const route of ['POST /v1/events', 'POST /v1/events/bulk', 'POST /webhook/events', 'POST /webhook/batch']) assert.deepEqual(routeAccess[route], { kind: 'scope', scope: 'ingest' });
    for (const route of ['GET /v1/dead-letters', 'POST /v1/dead-letters/replay', 'POST /v1/keys', 'GET /v1/keys', 'DELETE /v1/keys/:id']) {
      const access = routeAccess[route];
      assert.ok(access?.kind === 'scope' && access.scope === 'admin', route);
    }
    assert.deepEqual(accessOf('GET', '/healthz'), { kind: 'open' });
    assert.deepEqual(accessOf('GET', '/readyz'), { kind: 'open' });
    assert.equal(accessOf('GET', '/v1/new-route'), undefined);
  });

  test('the guard refuses to register a route without an access rule', () => {
    const guard = new RouteGuard({ mode: 'auto', metricsToken: null, log: {} as never, state: { mode: 'auto', keysExist: false, lookup: () => undefined } });
    assert.throws(() => guard.wrap('GET', '/v1/new-route', () => undefined), /no access rule: add it to src\/auth\/route-access.ts/);
    assert.throws(() => guard.wrap('POST', '/v1/stats', () => undefined), /no access rule/);
  });
});
