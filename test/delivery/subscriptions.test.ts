/**
 * Subscriptions against real engines and a real PostgreSQL: the routes' happy paths and
 * shapes, every validation error naming its field or parameter, the SSRF guard at create
 * and update (refused by default, accepted with FLOODGATE_DELIVERY_ALLOW_PRIVATE_NETWORKS),
 * the fan-out epoch and coverage window written under the lock, delete discarding pending
 * deliveries, secret rotation with a grace period (as the senders read it through
 * loadSubscriptions), 503 with the database unreachable, keys and audit lines, and the
 * `floodgate subscriptions` CLI on the same database.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { generateKey } from '../../src/auth/key-format';
import { loadSubscriptions } from '../../src/delivery/delivery-schema';
import { disableSubscription } from '../../src/delivery/subscription-store';
import { cliPath, engineEnv } from '../support/engine-process';
import { callRoute, loggedEngines, startTestEngine, type Answer, type LoggedEngine, type TestEngine } from '../support/engine';

const engines = loggedEngines();
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await engines.closeAll();
});

const graceMs = 60_000;
const secretOf = (bytes: number, fill = 7) => `whsec_${Buffer.alloc(bytes, fill).toString('base64')}`;
const givenSecret = secretOf(32);

/** An engine that may deliver to 127.0.0.1 (its receivers in tests), with a short secret grace. */
let open: TestEngine;
before(async () => {
  open = await startTestEngine({ deliveryAllowPrivateNetworks: true, deliverySecretGraceMs: graceMs });
  cleanups.push(() => open.close());
});

const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> => callRoute(open.baseUrl, method, path, headers, body);
const epoch = async (engine: TestEngine = open) => Number((await engine.query<{ epoch: string }>('SELECT epoch FROM floodgate_subscription_epoch'))[0]?.epoch);

async function created(body: Record<string, unknown>): Promise<Record<string, any>> {
  const answer = await call('POST', '/v1/subscriptions', body);
  assert.equal(answer.status, 201, answer.text);
  return answer.json;
}

function assertRefused(answer: Answer, status: number, code: string, where: { field?: string | null; parameter?: string }, label: string): void {
  assert.equal(answer.status, status, `${label}: ${answer.text}`);
  assert.equal(answer.json.error.code, code, label);
  if ('field' in where) assert.equal(answer.json.error.field, where.field, `${label}: ${answer.text}`);
  if ('parameter' in where) assert.equal(answer.json.error.parameter, where.parameter, `${label}: ${answer.text}`);
  assert.equal(typeof answer.json.error.message, 'string');
}

test('create, get, list by keyset, patch, delete: shapes, defaults and 404 after delete', async () => {
  const full = {
    url: 'http://127.0.0.1:9/hooks/a?x=1', event_types: ['user.signup', 'invoice.*'], sources: ['web', 'shop'], description: 'billing',
    secret: givenSecret, rate_limit_per_s: 50, max_in_flight: 4, retry_schedule_s: [1, 2, 3], retry_max_age_s: 3600, enabled: true,
  };
  const first = await created(full);
  const { secret, ...rest } = full;
  for (const [name, value] of Object.entries(rest)) assert.deepEqual(first[name], value, name);
  assert.equal(first.secret, secret);
  assert.match(first.id, /^[1-9][0-9]*$/);
  assert.deepEqual([first.disabled_reason, first.previous_secrets_expire_at], [null, []]);
  assert.ok(Date.parse(first.created_at) > Date.now() - 60_000 && first.created_at === first.updated_at);

  const minimal = await created({ url: 'https://Example.COM' });
  assert.equal(minimal.url, 'https://example.com/', 'stored as the URL parser writes it');
  assert.match(minimal.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  assert.equal(Buffer.from(minimal.secret.slice(6), 'base64').length, 32);
  assert.deepEqual(
    [minimal.event_types, minimal.sources, minimal.description, minimal.rate_limit_per_s, minimal.max_in_flight, minimal.retry_schedule_s, minimal.retry_max_age_s, minimal.enabled],
    [null, null, null, null, 16, null, null, true],
  );
  const third = await created({ url: 'http://127.0.0.1:9/c', enabled: false, retry_schedule_s: [] });
  assert.deepEqual([third.enabled, third.retry_schedule_s], [false, []]);

  const got = await call('GET', `/v1/subscriptions/${first.id}`);
  assert.deepEqual([got.status, got.json], [200, first]);

  const all = await call('GET', '/v1/subscriptions');
  assert.equal(all.status, 200);
  assert.deepEqual(all.json.subscriptions.map((item: { id: string }) => item.id), [first.id, minimal.id, third.id]);
  assert.equal(all.json.next_after, null);
  const { secret: _secret, previous_secrets_expire_at: _expiries, ...listed } = first;
  assert.deepEqual(all.json.subscriptions[0], listed, 'the list item is the agreed shape, without secrets');
  assert.ok(!all.text.includes('whsec_'));
  const page1 = await call('GET', '/v1/subscriptions?limit=2');
  assert.deepEqual([page1.json.subscriptions.length, page1.json.next_after], [2, minimal.id]);
  const page2 = await call('GET', `/v1/subscriptions?after=${page1.json.next_after}&limit=2`);
  assert.deepEqual([page2.json.subscriptions.map((item: { id: string }) => item.id), page2.json.next_after], [[third.id], null]);

  const patched = await call('PATCH', `/v1/subscriptions/${first.id}`, { description: null, event_types: null, max_in_flight: null, rate_limit_per_s: 7, url: 'http://127.0.0.1:9/b' });
  assert.equal(patched.status, 200, patched.text);
  assert.deepEqual(
    [patched.json.description, patched.json.event_types, patched.json.max_in_flight, patched.json.rate_limit_per_s, patched.json.url],
    [null, null, 16, 7, 'http://127.0.0.1:9/b'],
  );
  assert.deepEqual([patched.json.sources, patched.json.retry_schedule_s, patched.json.secret], [['web', 'shop'], [1, 2, 3], givenSecret], 'fields not given are kept');
  assert.ok(patched.json.updated_at > first.updated_at);
  const unchanged = await call('PATCH', `/v1/subscriptions/${first.id}`, {});
  assert.deepEqual([unchanged.status, unchanged.json], [200, patched.json]);

  const deleted = await call('DELETE', `/v1/subscriptions/${minimal.id}`);
  assert.equal(deleted.status, 200, deleted.text);
  assert.deepEqual([deleted.json.id, deleted.json.outcome, deleted.json.discarded_deliveries], [minimal.id, 'deleted', 0]);
  for (const [method, path, body] of [['GET', ''], ['PATCH', '', { enabled: true }], ['DELETE', ''], ['POST', '/rotate-secret', {}]] as const) {
    assertRefused(await call(method, `/v1/subscriptions/${minimal.id}${path}`, body), 404, 'ERR_SUBSCRIPTION_NOT_FOUND', { parameter: 'id' }, `${method} deleted`);
  }
  assertRefused(await call('GET', '/v1/subscriptions/999999'), 404, 'ERR_SUBSCRIPTION_NOT_FOUND', { parameter: 'id' }, 'GET unknown');
  assert.deepEqual((await call('GET', '/v1/subscriptions')).json.subscriptions.map((item: { id: string }) => item.id), [first.id, third.id]);
});

test('every change bumps the fan-out epoch once (a refused or unknown one not at all); coverage follows filter and enabled', async () => {
  type Coverage = { covered_from: Date; covered_until: Date | null; disabled_reason: string | null };
  const coverage = async (id: string) => (await open.query<Coverage>('SELECT covered_from, covered_until, disabled_reason FROM subscriptions WHERE id = $1', [id]))[0] as Coverage;
  let expected = await epoch();
  const step = async (method: string, path: string, body: unknown, bumps: boolean) => {
    const answer = await call(method, path, body);
    if (bumps) expected += 1;
    assert.equal(await epoch(), expected, `${method} ${path} ${JSON.stringify(body)} → ${answer.status}`);
    return answer;
  };
  const made = (await step('POST', '/v1/subscriptions', { url: 'http://127.0.0.1:9/e', event_types: ['a'] }, true)).json;
  const base = `/v1/subscriptions/${made.id}`;
  const born = await coverage(made.id);
  assert.equal(born.covered_until, null);
  assert.ok(Math.abs(born.covered_from.getTime() - Date.parse(made.created_at)) < 5_000);

  await step('PATCH', base, { description: 'only a label' }, true);
  assert.deepEqual(await coverage(made.id), born, 'a label does not touch coverage');
  await step('PATCH', base, { event_types: ['a'] }, true);
  assert.deepEqual(await coverage(made.id), born, 'the same filter again is not a change');
  await step('PATCH', base, { event_types: ['a', 'b'] }, true);
  const refiltered = await coverage(made.id);
  assert.ok(refiltered.covered_from > born.covered_from && refiltered.covered_until === null, 'a new filter restarts coverage');

  await step('PATCH', base, { enabled: false }, true);
  const disabled = await coverage(made.id);
  assert.deepEqual([disabled.covered_from, disabled.disabled_reason], [refiltered.covered_from, 'disabled by an administrator']);
  assert.ok(disabled.covered_until !== null && disabled.covered_until >= refiltered.covered_from);
  await step('PATCH', base, { sources: ['web'] }, true);
  assert.deepEqual(await coverage(made.id), disabled, 'a filter change while disabled covers nothing');
  await step('PATCH', base, { enabled: true }, true);
  const enabled = await coverage(made.id);
  assert.ok(enabled.covered_from >= (disabled.covered_until as Date));
  assert.deepEqual([enabled.covered_until, enabled.disabled_reason], [null, null]);

  await step('PATCH', base, { max_in_flight: 0 }, false);
  await step('PATCH', '/v1/subscriptions/999999', { enabled: false }, false);
  await step('POST', '/v1/subscriptions/999999/rotate-secret', {}, false);
  await step('DELETE', '/v1/subscriptions/999999', undefined, false);
  await step('POST', `${base}/rotate-secret`, {}, true);
  await step('DELETE', base, undefined, true);
  const gone = await coverage(made.id);
  assert.ok(gone.covered_until !== null && gone.covered_until >= enabled.covered_from, 'delete ends coverage');

  const createdOff = (await step('POST', '/v1/subscriptions', { url: 'http://127.0.0.1:9/f', enabled: false }, true)).json;
  const off = await coverage(createdOff.id);
  assert.ok(off.covered_until !== null && off.covered_until >= off.covered_from, 'created disabled: an empty window');
  await step('DELETE', `/v1/subscriptions/${createdOff.id}`, undefined, true);
  assert.deepEqual((await coverage(createdOff.id)).covered_until, off.covered_until, 'deleting a disabled one keeps when coverage ended');
});

test('disableSubscription (a receiver\'s 410): ends coverage with its reason, once; shown by the routes, cleared by enabling', async () => {
  const made = await created({ url: 'http://127.0.0.1:9/gone' });
  const client = new pg.Client({ connectionString: open.databaseUrl });
  await client.connect();
  try {
    const before = await epoch();
    assert.equal(await disableSubscription(client, Number(made.id), 'the receiver answered 410 Gone'), true);
    assert.equal(await epoch(), before + 1);
    const shown = (await call('GET', `/v1/subscriptions/${made.id}`)).json;
    assert.deepEqual([shown.enabled, shown.disabled_reason], [false, 'the receiver answered 410 Gone']);
    const [row] = await open.query<{ covered_until: Date | null }>('SELECT covered_until FROM subscriptions WHERE id = $1', [made.id]);
    assert.notEqual(row?.covered_until, null);
    assert.equal(await disableSubscription(client, made.id, 'again'), false, 'already disabled');
    assert.equal(await disableSubscription(client, '999999', 'absent'), false);
    assert.equal(await epoch(), before + 1, 'no change, no epoch bump');
  } finally {
    await client.end();
  }
  const enabled = await call('PATCH', `/v1/subscriptions/${made.id}`, { enabled: true });
  assert.deepEqual([enabled.json.enabled, enabled.json.disabled_reason], [true, null]);
});

test('delete discards every pending delivery of that subscription (both lanes), clears leases, cancels its replays', async () => {
  const doomed = await created({ url: 'http://127.0.0.1:9/d' });
  const kept = await created({ url: 'http://127.0.0.1:9/k' });
  const insert = (subscription: string, eventId: string, status: string, lane = 0, lease: number | null = null) =>
    open.query('INSERT INTO deliveries (subscription_id, event_id, occurred_at, status, lane, lease_token) VALUES ($1, $2, now(), $3, $4, $5)', [subscription, eventId, status, lane, lease]);
  await insert(doomed.id, 'e1', 'pending');
  await insert(doomed.id, 'e2', 'pending', 1, 42);
  await insert(doomed.id, 'e3', 'delivered');
  await insert(doomed.id, 'e4', 'failed');
  await insert(kept.id, 'e1', 'pending');
  await open.query(`INSERT INTO delivery_replays (subscription_id, from_time, to_time, statuses, total) VALUES ($1, now() - interval '1 hour', now(), '{failed}', 1)`, [doomed.id]);
  const answer = await call('DELETE', `/v1/subscriptions/${doomed.id}`);
  assert.deepEqual([answer.status, answer.json.discarded_deliveries], [200, 2]);
  const rows = await open.query<{ subscription_id: string; event_id: string; status: string; last_error: string | null; lease_token: string | null }>(
    'SELECT subscription_id::text, event_id, status, last_error, lease_token FROM deliveries WHERE subscription_id IN ($1, $2) ORDER BY subscription_id, event_id',
    [doomed.id, kept.id],
  );
  assert.deepEqual(rows.map((row) => [row.subscription_id === doomed.id ? 'doomed' : 'kept', row.event_id, row.status, row.last_error, row.lease_token]), [
    ['doomed', 'e1', 'discarded', 'subscription deleted', null],
    ['doomed', 'e2', 'discarded', 'subscription deleted', null],
    ['doomed', 'e3', 'delivered', null, null],
    ['doomed', 'e4', 'failed', null, null],
    ['kept', 'e1', 'pending', null, null],
  ]);
  const replays = await open.query<{ state: string }>('SELECT state FROM delivery_replays WHERE subscription_id = $1', [doomed.id]);
  assert.deepEqual(replays.map((row) => row.state), ['cancelled']);
  const client = new pg.Client({ connectionString: open.databaseUrl });
  await client.connect();
  try {
    const loaded = await loadSubscriptions(client);
    assert.ok(!loaded.subscriptions.some((row) => String(row.id) === doomed.id), 'fan-out no longer sees it');
    assert.equal(loaded.epoch, await epoch());
  } finally {
    await client.end();
  }
});

test('rotate-secret: the new secret signs first, the previous one until now + grace, expired ones dropped, at most 10', async () => {
  const made = await created({ url: 'http://127.0.0.1:9/r', secret: givenSecret });
  const path = `/v1/subscriptions/${made.id}/rotate-secret`;
  const next = secretOf(24, 9);
  const before = Date.now();
  const rotated = await call('POST', path, { secret: next });
  assert.equal(rotated.status, 200, rotated.text);
  assert.equal(rotated.json.secret, next);
  assert.equal(rotated.json.previous_secrets_expire_at.length, 1);
  const expiresMs = Date.parse(rotated.json.previous_secrets_expire_at[0]);
  assert.ok(expiresMs >= before + graceMs - 2_000 && expiresMs <= Date.now() + graceMs + 2_000, 'grace from FLOODGATE_DELIVERY_SECRET_GRACE_MS');
  assert.ok(!rotated.text.includes(givenSecret), 'previous secrets are never shown');
  const generated = await call('POST', path);
  assert.equal(generated.status, 200, generated.text);
  assert.match(generated.json.secret, /^whsec_/);
  assert.notEqual(generated.json.secret, next);

  const client = new pg.Client({ connectionString: open.databaseUrl });
  await client.connect();
  try {
    const row = (await loadSubscriptions(client)).subscriptions.find((subscription) => String(subscription.id) === made.id);
    assert.deepEqual(row?.secrets, [generated.json.secret, next, givenSecret], 'what the senders sign with');
    assert.equal(row?.secretExpiresAtMs.length, 2);
    assert.ok(Math.abs((row?.secretExpiresAtMs[1] as number) - expiresMs) < 2, 'each previous secret keeps its own expiry');
  } finally {
    await client.end();
  }

  await open.query(`UPDATE subscriptions SET secret_expires_at[2] = now() - interval '1 second' WHERE id = $1`, [made.id]);
  const pruned = await call('POST', path, {});
  assert.equal(pruned.status, 200);
  const secrets = async () => (await open.query<{ secrets: string[] }>('SELECT secrets FROM subscriptions WHERE id = $1', [made.id]))[0]?.secrets ?? [];
  assert.deepEqual(await secrets(), [pruned.json.secret, generated.json.secret, next], 'the expired oldest secret is gone');
  for (let round = 0; round < 10; round += 1) assert.equal((await call('POST', path, '')).status, 200);
  const all = await secrets();
  assert.equal(all.length, 10);
  const expiries = await open.query<{ n: number }>('SELECT cardinality(secret_expires_at) AS n FROM subscriptions WHERE id = $1', [made.id]);
  assert.equal(expiries[0]?.n, 9, 'one expiry per previous secret');
  assert.ok(!all.includes(next), 'the oldest go first');
});

describe('every invalid input is refused with 400 naming its field or parameter, and writes nothing', () => {
  const long = (n: number) => 'x'.repeat(n);
  const many = (n: number, item: (index: number) => unknown) => Array.from({ length: n }, (_, index) => item(index));
  const url = 'http://127.0.0.1:9/v';
  const invalidBodies: ReadonlyArray<readonly [string, unknown, string | null, string?]> = [
    ['not JSON', '{"url":', null],
    ['an array', '[]', null],
    ['no url', {}, 'url'],
    ['unknown field', { url, colour: 'red' }, 'colour'],
    ['url not a string', { url: 5 }, 'url'],
    ['url null', { url: null }, 'url'],
    ['url too long', { url: `http://h.example/${long(2040)}` }, 'url'],
    ['url relative', { url: '/hooks' }, 'url'],
    ['url ftp', { url: 'ftp://files.example/x' }, 'url', 'ERR_SUBSCRIPTION_DESTINATION_REFUSED'],
    ['url with credentials', { url: 'https://user:pass@hooks.example/' }, 'url', 'ERR_SUBSCRIPTION_DESTINATION_REFUSED'],
    ['event_types empty', { url, event_types: [] }, 'event_types'],
    ['event_types a string', { url, event_types: 'user.signup' }, 'event_types'],
    ['event_types 101', { url, event_types: many(101, (index) => `t${index}`) }, 'event_types'],
    ['event_types empty string', { url, event_types: [''] }, 'event_types'],
    ['event_types not a string', { url, event_types: [1] }, 'event_types'],
    ['event_types too long', { url, event_types: [long(129)] }, 'event_types'],
    ['event_types star inside', { url, event_types: ['user*'] }, 'event_types'],
    ['event_types star first', { url, event_types: ['*.signup'] }, 'event_types'],
    ['event_types star in the middle', { url, event_types: ['a.*.b'] }, 'event_types'],
    ['event_types bare .*', { url, event_types: ['.*'] }, 'event_types'],
    ['sources empty', { url, sources: [] }, 'sources'],
    ['sources 101', { url, sources: many(101, (index) => `s${index}`) }, 'sources'],
    ['sources empty string', { url, sources: [''] }, 'sources'],
    ['sources too long', { url, sources: [long(65)] }, 'sources'],
    ['sources NUL', { url, sources: ['a\u0000b'] }, 'sources'],
    ['description too long', { url, description: long(1001) }, 'description'],
    ['description a number', { url, description: 5 }, 'description'],
    ['secret not whsec_', { url, secret: 'abc' }, 'secret'],
    ['secret too short', { url, secret: secretOf(23) }, 'secret'],
    ['secret too long', { url, secret: secretOf(65) }, 'secret'],
    ['secret not base64', { url, secret: 'whsec_!!!!' }, 'secret'],
    ['secret a number', { url, secret: 5 }, 'secret'],
    ['rate_limit_per_s 0', { url, rate_limit_per_s: 0 }, 'rate_limit_per_s'],
    ['rate_limit_per_s too high', { url, rate_limit_per_s: 100_001 }, 'rate_limit_per_s'],
    ['rate_limit_per_s fractional', { url, rate_limit_per_s: 1.5 }, 'rate_limit_per_s'],
    ['rate_limit_per_s a string', { url, rate_limit_per_s: '5' }, 'rate_limit_per_s'],
    ['max_in_flight 0', { url, max_in_flight: 0 }, 'max_in_flight'],
    ['max_in_flight too high', { url, max_in_flight: 1001 }, 'max_in_flight'],
    ['retry_schedule_s not an array', { url, retry_schedule_s: 5 }, 'retry_schedule_s'],
    ['retry_schedule_s 51 entries', { url, retry_schedule_s: many(51, () => 1) }, 'retry_schedule_s'],
    ['retry_schedule_s negative', { url, retry_schedule_s: [5, -1] }, 'retry_schedule_s'],
    ['retry_schedule_s over a week', { url, retry_schedule_s: [604_801] }, 'retry_schedule_s'],
    ['retry_schedule_s fractional', { url, retry_schedule_s: [1.5] }, 'retry_schedule_s'],
    ['retry_max_age_s 0', { url, retry_max_age_s: 0 }, 'retry_max_age_s'],
    ['retry_max_age_s over 30 days', { url, retry_max_age_s: 2_592_001 }, 'retry_max_age_s'],
    ['enabled a string', { url, enabled: 'yes' }, 'enabled'],
    ['enabled null', { url, enabled: null }, 'enabled'],
  ];

  test('POST /v1/subscriptions', async () => {
    const countBefore = (await open.query('SELECT 1 FROM subscriptions')).length;
    const epochBefore = await epoch();
    for (const [label, body, field, code = 'ERR_SUBSCRIPTION_BAD_REQUEST'] of invalidBodies) {
      const answer = await call('POST', '/v1/subscriptions', body);
      assertRefused(answer, 400, code, { field }, label);
      const secret = (body as { secret?: unknown }).secret;
      if (typeof secret === 'string' && secret.length > 10) assert.ok(!answer.text.includes(secret), `${label}: the secret is echoed`);
    }
    assert.equal((await open.query('SELECT 1 FROM subscriptions')).length, countBefore);
    assert.equal(await epoch(), epochBefore);
  });

  test('the limits themselves are accepted', async () => {
    const edge = await created({
      url: `http://127.0.0.1:9/${long(2048 - 'http://127.0.0.1:9/'.length)}`, event_types: ['*', 'invoice.*', 'a.b.*', long(128), ...many(96, (index) => `t${index}`)],
      sources: [long(64), ...many(99, (index) => `s${index}`)], description: '', secret: secretOf(64), rate_limit_per_s: 100_000,
      max_in_flight: 1000, retry_schedule_s: many(50, () => 604_800), retry_max_age_s: 2_592_000,
    });
    assert.deepEqual([edge.url.length, edge.event_types.length, edge.sources.length, edge.retry_schedule_s.length], [2048, 100, 100, 50]);
    const small = await created({ url, secret: secretOf(24), rate_limit_per_s: 1, max_in_flight: 1, retry_schedule_s: [0], retry_max_age_s: 1 });
    assert.deepEqual([small.rate_limit_per_s, small.max_in_flight, small.retry_schedule_s], [1, 1, [0]]);
    const unpadded = await created({ url, secret: secretOf(32).replace(/=+$/, '') });
    assert.equal(unpadded.secret, secretOf(32).replace(/=+$/, ''));
  });

  test('PATCH, rotate-secret, the path id and the list query', async () => {
    const made = await created({ url });
    const path = `/v1/subscriptions/${made.id}`;
    const epochBefore = await epoch();
    for (const [label, body, field, code = 'ERR_SUBSCRIPTION_BAD_REQUEST'] of invalidBodies) {
      if (label === 'no url') continue;
      assertRefused(await call('PATCH', path, body), 400, code, { field }, `PATCH ${label}`);
    }
    assertRefused(await call('PATCH', path, { secret: givenSecret }), 400, 'ERR_SUBSCRIPTION_BAD_REQUEST', { field: 'secret' }, 'PATCH secret');
    assertRefused(await call('PATCH', path, ''), 400, 'ERR_SUBSCRIPTION_BAD_REQUEST', { field: null }, 'PATCH empty body');
    for (const [label, body, field] of [['not JSON', '{', null], ['an array', '[1]', null], ['unknown field', { secret: givenSecret, grace: 1 }, 'grace'], ['bad secret', { secret: 'whsec_AAAA' }, 'secret']] as const) {
      assertRefused(await call('POST', `${path}/rotate-secret`, body), 400, 'ERR_SUBSCRIPTION_BAD_REQUEST', { field }, `rotate ${label}`);
    }
    for (const id of ['abc', '0', '01', '-1', '99999999999999999999', '1.5']) {
      for (const [method, suffix, body] of [['GET', ''], ['PATCH', '', {}], ['DELETE', ''], ['POST', '/rotate-secret', {}]] as const) {
        assertRefused(await call(method, `/v1/subscriptions/${id}${suffix}`, body), 400, 'ERR_SUBSCRIPTION_BAD_REQUEST', { parameter: 'id' }, `${method} id ${id}`);
      }
    }
    for (const [query, parameter] of [['limit=0', 'limit'], ['limit=1001', 'limit'], ['limit=x', 'limit'], ['limit=', 'limit'], ['after=x', 'after'], ['after=0', 'after'], ['colour=red', 'colour'], ['limit=1&limit=2', 'limit']] as const) {
      assertRefused(await call('GET', `/v1/subscriptions?${query}`), 400, 'ERR_SUBSCRIPTION_BAD_REQUEST', { parameter }, `list ?${query}`);
    }
    assert.equal(await epoch(), epochBefore);
    assert.deepEqual((await call('GET', path)).json, made, 'nothing changed');
  });
});

describe('the SSRF guard at create and update', () => {
  const adminKey = generateKey();
  let guarded: LoggedEngine;
  before(async () => {
    guarded = await engines.start({ adminKey });
  });
  const refusedUrls = [
    'http://127.0.0.1/hook', 'http://10.1.2.3/hook', 'http://169.254.169.254/latest/meta-data', 'http://[::1]:8080/hook',
    'http://[::ffff:127.0.0.1]/hook', 'http://localhost:8080/hook', 'http://192.168.0.10/', 'http://0.0.0.0/',
  ];

  test('private, loopback and link-local destinations are refused by default, on create and on PATCH', async () => {
    const admin = { authorization: `Bearer ${adminKey}` };
    const public_ = await callRoute(guarded.base, 'POST', '/v1/subscriptions', admin, { url: 'http://93.184.216.34/hook' });
    assert.equal(public_.status, 201, public_.text);
    for (const url of refusedUrls) {
      assertRefused(await callRoute(guarded.base, 'POST', '/v1/subscriptions', admin, { url }), 400, 'ERR_SUBSCRIPTION_DESTINATION_REFUSED', { field: 'url' }, `create ${url}`);
      const patched = await callRoute(guarded.base, 'PATCH', `/v1/subscriptions/${public_.json.id}`, admin, { url });
      assertRefused(patched, 400, 'ERR_SUBSCRIPTION_DESTINATION_REFUSED', { field: 'url' }, `patch ${url}`);
      assert.match(patched.json.error.message, /FLOODGATE_DELIVERY_ALLOW_PRIVATE_NETWORKS/);
    }
    assert.equal((await callRoute(guarded.base, 'GET', `/v1/subscriptions/${public_.json.id}`, admin)).json.url, 'http://93.184.216.34/hook');
  });

  test('the same destinations are accepted with FLOODGATE_DELIVERY_ALLOW_PRIVATE_NETWORKS=true', async () => {
    for (const url of refusedUrls) assert.equal((await call('POST', '/v1/subscriptions', { url })).status, 201, url);
  });

  test('admin scope only; audit lines name the change and never a secret', async () => {
    const ingest = await callRoute(guarded.base, 'POST', '/v1/keys', { authorization: `Bearer ${adminKey}` }, { name: 'writer', scopes: ['ingest'] });
    const asWriter = { authorization: `Bearer ${ingest.json.key}` };
    assert.equal((await callRoute(guarded.base, 'GET', '/v1/subscriptions', asWriter)).status, 403);
    assert.equal((await callRoute(guarded.base, 'POST', '/v1/subscriptions', {}, { url: 'http://93.184.216.34/' })).status, 401);
    const admin = { authorization: `Bearer ${adminKey}` };
    const made = await callRoute(guarded.base, 'POST', '/v1/subscriptions', admin, { url: 'http://93.184.216.34/?token=abc', secret: givenSecret });
    await callRoute(guarded.base, 'PATCH', `/v1/subscriptions/${made.json.id}`, admin, { description: 'x' });
    await callRoute(guarded.base, 'POST', `/v1/subscriptions/${made.json.id}/rotate-secret`, admin, {});
    await callRoute(guarded.base, 'DELETE', `/v1/subscriptions/${made.json.id}`, admin);
    const audits = guarded.logs.map((line) => JSON.parse(line)).filter((line) => line.audit === true && String(line.action).startsWith('subscription.'));
    const actions = audits.map((line) => line.action);
    for (const action of ['subscription.create', 'subscription.created', 'subscription.update', 'subscription.updated', 'subscription.rotate_secret', 'subscription.secret_rotated', 'subscription.delete', 'subscription.deleted']) {
      assert.ok(actions.includes(action), `${action} in ${actions.join(', ')}`);
    }
    assert.equal(audits.find((line) => line.action === 'subscription.created')?.origin, 'http://93.184.216.34');
    const logText = guarded.logs.join('\n');
    assert.ok(!logText.includes('whsec_') && !logText.includes('token=abc'), 'no secret and no URL query in the log');
  });
});

test('503 ERR_DELIVERY_UNAVAILABLE when the database cannot be reached, and back by itself', async () => {
  const database = new URL(open.databaseUrl).pathname.slice(1);
  const admin = new pg.Client({ connectionString: open.databaseUrl.replace(/\/[^/?]+(\?|$)/, '/postgres$1') });
  await admin.connect();
  try {
    await admin.query(`ALTER DATABASE "${database}" ALLOW_CONNECTIONS false`);
    await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'floodgate-subscriptions'`, [database]);
    const down = await call('GET', '/v1/subscriptions');
    assertRefused(down, 503, 'ERR_DELIVERY_UNAVAILABLE', {}, 'list with the database down');
    assert.equal(down.headers.get('retry-after'), '1');
    assertRefused(await call('POST', '/v1/subscriptions', { url: 'http://127.0.0.1:9/z' }), 503, 'ERR_DELIVERY_UNAVAILABLE', {}, 'create with the database down');
  } finally {
    await admin.query(`ALTER DATABASE "${database}" ALLOW_CONNECTIONS true`);
    await admin.end();
  }
  assert.equal((await call('GET', '/v1/subscriptions')).status, 200);
});

test('floodgate subscriptions: create, list, show, update, rotate-secret, delete on the engine\'s database; usage errors exit 2', async () => {
  const run = (args: readonly string[], extra: Record<string, string> = {}) =>
    spawnSync(process.execPath, [cliPath, 'subscriptions', ...args], { encoding: 'utf8', env: engineEnv({ DATABASE_URL: open.databaseUrl, FLOODGATE_LOG_LEVEL: 'warn', ...extra }) });
  const allow = { FLOODGATE_DELIVERY_ALLOW_PRIVATE_NETWORKS: 'true' };
  const made = run(['create', '--url', 'http://127.0.0.1:9/cli', '--event-type', 'user.*', '--event-type', 'order.paid', '--source', 'web', '--max-in-flight', '4', '--retry-schedule-s', '5,60', '--json'], allow);
  assert.equal(made.status, 0, made.stderr);
  const item = JSON.parse(made.stdout);
  assert.deepEqual([item.event_types, item.sources, item.max_in_flight, item.retry_schedule_s], [['user.*', 'order.paid'], ['web'], 4, [5, 60]]);
  assert.match(item.secret, /^whsec_/);
  assert.match(made.stderr, /"audit":true.*"action":"subscription.created"/);
  const viaApi = await call('GET', `/v1/subscriptions/${item.id}`);
  assert.deepEqual([viaApi.status, viaApi.json.secret], [200, item.secret], 'the engine sees what the CLI wrote');

  const plain = run(['create', '--url', 'http://127.0.0.1:9/cli2', '--disabled', '--secret', givenSecret], allow);
  assert.equal(plain.status, 0, plain.stderr);
  assert.match(plain.stdout, /^created subscription \d+ → http:\/\/127\.0\.0\.1:9\/cli2 \(disabled\)\nsecret: whsec_/);

  const table = run(['list']);
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /^id\s+enabled\s+url\s+event_types\s+sources/);
  assert.match(table.stdout, new RegExp(`\\n${item.id}\\s+yes\\s+http://127\\.0\\.0\\.1:9/cli\\s+user\\.\\*,order\\.paid\\s+web\\s+4`));
  const lines = run(['list', '--json']).stdout.trim().split('\n').map((line) => JSON.parse(line));
  assert.ok(lines.some((line) => line.id === item.id) && lines.every((line) => line.secret === undefined));
  assert.ok(!table.stdout.includes('whsec_'));
  const shown = run(['show', item.id]);
  assert.match(shown.stdout, new RegExp(`secret: ${item.secret.replace(/[+/]/g, '\\$&')}`));

  const updated = run(['update', item.id, '--disable', '--clear', 'event_types,max_in_flight', '--description', 'from the CLI', '--json']);
  assert.equal(updated.status, 0, updated.stderr);
  const after = JSON.parse(updated.stdout);
  assert.deepEqual([after.enabled, after.event_types, after.max_in_flight, after.description, after.sources], [false, null, 16, 'from the CLI', ['web']]);
  const rotated = run(['rotate-secret', item.id, '--json']);
  assert.equal(rotated.status, 0, rotated.stderr);
  assert.notEqual(JSON.parse(rotated.stdout).secret, item.secret);
  assert.equal(JSON.parse(rotated.stdout).previous_secrets_expire_at.length, 1);

  await open.query(`INSERT INTO deliveries (subscription_id, event_id, occurred_at) VALUES ($1, 'cli-e1', now())`, [item.id]);
  const deleted = run(['delete', item.id]);
  assert.equal(deleted.status, 0, deleted.stderr);
  assert.equal(deleted.stdout, `deleted subscription ${item.id}; 1 pending delivery discarded\n`);
  for (const args of [['delete', item.id], ['show', item.id], ['update', item.id, '--enable'], ['rotate-secret', item.id]]) {
    const missing = run(args);
    assert.equal(missing.status, 1, `${args.join(' ')}: ${missing.stderr}`);
    assert.match(missing.stderr, new RegExp(`no subscription has id ${item.id}`));
  }

  for (const [args, message] of [
    [['create'], /--url is required/],
    [['create', '--url', 'http://127.0.0.1:9/x'], /--url: url 127\.0\.0\.1 is in a non-public range/],
    [['create', '--url', 'http://localhost:9/x'], /--url: url host localhost resolves to/],
    [['create', '--url', 'http://93.184.216.34/', '--max-in-flight', '0'], /--max-in-flight: max_in_flight must be from 1 to 1000/],
    [['create', '--url', 'http://93.184.216.34/', '--event-type', 'a*'], /--event-type: event_types\[0\] must be an exact event type/],
    [['create', '--url', 'http://93.184.216.34/', '--retry-schedule-s', '5,x'], /--retry-schedule-s: retry_schedule_s\[1\] must be an integer/],
    [['create', '--url', 'http://93.184.216.34/', '--secret', 'nope'], /--secret: secret must be "whsec_"/],
    [['create', '--url', 'http://93.184.216.34/', '--enable'], /subscriptions create does not take --enable/],
    [['list', '--url', 'x'], /subscriptions list does not take --url/],
    [['list', 'extra'], /unexpected argument "extra"/],
    [['show'], /needs the subscription id/],
    [['show', 'abc'], /"abc" is not a subscription id/],
    [['update', '1'], /update needs at least one change/],
    [['update', '1', '--enable', '--disable'], /--enable or --disable, not both/],
    [['update', '1', '--clear', 'url'], /--clear: "url" cannot be cleared/],
    [['update', '1', '--clear', 'sources', '--source', 'web'], /--clear sources and --source contradict/],
    [['rotate-secret', '1', '--secret', secretOf(8)], /--secret: secret must decode to 24 to 64 bytes/],
    [['create', '--nope'], /--nope/],
    [['rotate'], /unknown subscriptions action "rotate"/],
  ] as const) {
    const result = run(args);
    assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message, args.join(' '));
    assert.ok(!result.stderr.includes(givenSecret));
  }
  assert.equal(run(['help']).status, 0);
});
