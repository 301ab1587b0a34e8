/**
 * Webhook sources over HTTP (POST/GET /v1/webhook-sources, DELETE …/{name}) against real
 * engines: admin key works, ingest key 403, loopback without a key in auto posture with no
 * keys; added 201, replaced 200, absent 404, bad bodies 400; a source created here verifies
 * a signed webhook at once (the cache reloads on the change); secrets never appear in an
 * answer or a log line.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { generateKey } from '../../src/auth/key-format';
import { callRoute, loggedEngines, type LoggedEngine } from '../support/engine';

const engines = loggedEngines();
after(() => engines.closeAll());
const run = engines.start;

const call = callRoute;

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const secrets = ['first-secret-do-not-show', 'second-secret-do-not-show'];

describe('with an admin key', () => {
  const adminKey = generateKey();
  let engine: LoggedEngine;
  let ingestKey = '';

  before(async () => {
    engine = await run({ adminKey });
    const created = await call(engine.base, 'POST', '/v1/keys', bearer(adminKey), { name: 'writer', scopes: ['ingest'] });
    assert.equal(created.status, 201);
    ingestKey = created.json.key;
  });

  test('added 201, replaced 200, listed with a count of secrets, removed 200, then 404', async () => {
    const source = { name: 'shop', scheme: 'hmac-sha256', secrets: [secrets[0]], header: 'X-Shop-Signature' };
    const added = await call(engine.base, 'POST', '/v1/webhook-sources', bearer(adminKey), source);
    assert.equal(added.status, 201, added.text);
    assert.deepEqual(added.json, { name: 'shop', scheme: 'hmac-sha256', secrets: 1, header: 'x-shop-signature', outcome: 'added', path: '/v1/webhooks/shop' });
    const replaced = await call(engine.base, 'POST', '/v1/webhook-sources', bearer(adminKey), { ...source, secrets });
    assert.equal(replaced.status, 200, replaced.text);
    assert.equal(replaced.json.outcome, 'replaced');
    const listed = await call(engine.base, 'GET', '/v1/webhook-sources', bearer(adminKey));
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.json.sources, [{ name: 'shop', scheme: 'hmac-sha256', secrets: 2, header: 'x-shop-signature' }]);
    for (const answer of [added, replaced, listed]) for (const secret of secrets) assert.ok(!answer.text.includes(secret), 'a secret in an answer');
    const removed = await call(engine.base, 'DELETE', '/v1/webhook-sources/shop', bearer(adminKey));
    assert.deepEqual([removed.status, removed.json], [200, { name: 'shop', outcome: 'removed' }]);
    const absent = await call(engine.base, 'DELETE', '/v1/webhook-sources/shop', bearer(adminKey));
    assert.deepEqual([absent.status, absent.json.error.code], [404, 'ERR_WEBHOOK_SOURCE_UNKNOWN']);
  });

  test('bad bodies and names are 400 and never echo a secret', async () => {
    const bad: Array<[unknown, RegExp]> = [
      ['{not json', /not valid JSON/],
      [[1], /must be an object/],
      [{ name: 'a', scheme: 'github', secrets: ['s'], extra: 1 }, /unknown field "extra"/],
      [{ name: 'a', scheme: 'github', secrets: 's' }, /secrets must be an array/],
      [{ name: 'a/b', scheme: 'github', secrets: ['s'] }, /the name must be/],
      [{ name: 'a', scheme: 'nope', secrets: ['s'] }, /the scheme must be one of/],
      [{ name: 'a', scheme: 'github', secrets: [] }, /give 1 to 8 secrets/],
      [{ name: 'a', scheme: 'standard', secrets: ['not-a-whsec-secret-do-not-show'] }, /secret 1:/],
      [{ name: 'a', scheme: 'github', secrets: ['s'], header: 'X-Sig' }, /hmac-sha256 scheme only/],
    ];
    for (const [body, message] of bad) {
      const answer = await call(engine.base, 'POST', '/v1/webhook-sources', bearer(adminKey), body);
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.equal(answer.json.error.code, 'ERR_WEBHOOK_SOURCE_BAD_REQUEST');
      assert.match(answer.json.error.message, message);
      assert.ok(!answer.text.includes('do-not-show'), 'a secret echoed');
    }
    const badName = await call(engine.base, 'DELETE', '/v1/webhook-sources/a%2Fb', bearer(adminKey));
    assert.deepEqual([badName.status, badName.json.error.code], [400, 'ERR_WEBHOOK_SOURCE_BAD_REQUEST']);
  });

  test('an ingest key is refused with 403 on every source route', async () => {
    for (const [method, path] of [['POST', '/v1/webhook-sources'], ['GET', '/v1/webhook-sources'], ['DELETE', '/v1/webhook-sources/shop']] as const) {
      const body = method === 'POST' ? { name: 'x', scheme: 'github', secrets: ['s'] } : undefined;
      const answer = await call(engine.base, method, path, bearer(ingestKey), body);
      assert.deepEqual([answer.status, answer.json.error.code], [403, 'ERR_AUTH_SCOPE'], `${method} ${path}`);
    }
  });

  test('a source created over HTTP verifies a signed webhook at once; removed, it is 404 at once', async () => {
    const created = await call(engine.base, 'POST', '/v1/webhook-sources', bearer(adminKey), { name: 'billing', scheme: 'hmac-sha256', secrets, header: 'X-Signature' });
    assert.equal(created.status, 201, created.text);
    const body = JSON.stringify({ event_id: 'http-source-1', event_type: 'invoice.paid' });
    const signature = createHmac('sha256', secrets[1] as string).update(body).digest('hex');
    const signed = await call(engine.base, 'POST', '/v1/webhooks/billing', { 'x-signature': signature }, body);
    assert.equal(signed.status, 200, signed.text);
    assert.equal(signed.json.accepted, 1);
    const forged = await call(engine.base, 'POST', '/v1/webhooks/billing', { 'x-signature': '0'.repeat(64) }, body);
    assert.equal(forged.status, 401);
    assert.equal((await call(engine.base, 'DELETE', '/v1/webhook-sources/billing', bearer(adminKey))).status, 200);
    const gone = await call(engine.base, 'POST', '/v1/webhooks/billing', { 'x-signature': signature }, body);
    assert.deepEqual([gone.status, gone.json.error.code], [404, 'ERR_WEBHOOK_SOURCE_UNKNOWN']);
  });

  test('audit lines for each change, naming the source; no secret in any log line', () => {
    const audits = engine.logs.map((line) => JSON.parse(line)).filter((line) => line.audit === true);
    const actions = new Set(audits.map((line) => line.action));
    for (const action of ['webhook_source.put', 'webhook_source.remove', 'webhook_source.added', 'webhook_source.replaced', 'webhook_source.removed']) assert.ok(actions.has(action), action);
    const added = audits.find((line) => line.action === 'webhook_source.added');
    assert.equal(added.target_source, 'shop');
    assert.equal(added.key_name, 'bootstrap-admin');
    const all = engine.logs.join('');
    for (const secret of [...secrets, 'not-a-whsec-secret-do-not-show']) assert.ok(!all.includes(secret), 'a secret in the log');
  });
});

describe('auto posture with no key', () => {
  test('loopback clients manage sources without a key, as on the other admin routes', async () => {
    const engine = await run({});
    const added = await call(engine.base, 'POST', '/v1/webhook-sources', {}, { name: 'gh', scheme: 'github', secrets: ['gh-secret-do-not-show'] });
    assert.equal(added.status, 201, added.text);
    assert.equal((await call(engine.base, 'GET', '/v1/webhook-sources')).json.sources[0].secrets, 1);
    assert.equal((await call(engine.base, 'DELETE', '/v1/webhook-sources/gh')).status, 200);
    const line = engine.logs.map((text) => JSON.parse(text)).find((entry) => entry.action === 'webhook_source.added');
    assert.equal(line.key_id, null);
    assert.ok(!engine.logs.join('').includes('gh-secret-do-not-show'));
  });
});
