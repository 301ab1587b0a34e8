/**
 * The Segment-spec routes with hand-made bodies, against a real engine: the mapping field by
 * field (ids, types, actors, the three timestamp rules, the batch's context merged, nothing
 * the client sent lost), per-event problems beside stored events, bodies that are not the
 * spec, gzip and text/plain, retries that dedupe by messageId, and the write key as Basic
 * user name naming the source. The real SDKs are driven in segment-sdks.test.ts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { generateKey } from '../../src/auth/key-format';
import { defaultConfig } from '../../src/config/load-config';
import { decodeSegmentBody, mapMessage } from '../../src/segment/segment-mapping';
import { UndecodableItem } from '../../src/decode/undecodable-item';
import { callRoute, post, startTestEngine, type TestEngine } from '../support/engine';

const receivedAtMs = Date.parse('2026-12-07T12:00:00.000Z');

describe('mapping one message', () => {
  test('a track call: messageId, event, userId, an explicit timestamp as sent, everything else in attributes', () => {
    const message = { type: 'track', messageId: 'm-1', event: 'Order Completed', userId: 'u-1', anonymousId: 'a-1', timestamp: '2026-12-07T11:59:00.000Z', properties: { total: 19.9 }, context: { ip: '1.2.3.4' } };
    assert.deepEqual(mapMessage(message, 0, null, {}, 'web', receivedAtMs), {
      event_id: 'm-1', event_type: 'Order Completed', source: 'web', actor_id: 'u-1', timestamp: '2026-12-07T11:59:00.000Z',
      attributes: { type: 'track', event: 'Order Completed', userId: 'u-1', anonymousId: 'a-1', timestamp: '2026-12-07T11:59:00.000Z', properties: { total: 19.9 }, context: { ip: '1.2.3.4' } },
    });
  });

  test('other calls are named by their type; the actor falls back to anonymousId; a device clock 5 s fast is corrected', () => {
    const message = { type: 'identify', messageId: 'm-2', anonymousId: 'a-2', traits: { plan: 'team' }, originalTimestamp: '2026-12-07T12:00:03.000Z', sentAt: '2026-12-07T12:00:05.000Z' };
    const mapped = mapMessage(message, 0, null, {}, 'web', receivedAtMs) as Record<string, unknown>;
    assert.deepEqual([mapped.event_type, mapped.actor_id, mapped.timestamp], ['identify', 'a-2', '2026-12-07T11:59:58.000Z']);
    // The batch's sentAt serves messages without their own, and is kept beside them.
    const fromBatch = mapMessage({ ...message, sentAt: undefined }, 0, null, { sentAt: '2026-12-07T12:00:05.000Z' }, 'web', receivedAtMs) as Record<string, unknown>;
    assert.equal(fromBatch.timestamp, '2026-12-07T11:59:58.000Z');
    assert.equal((fromBatch.attributes as Record<string, unknown>).sentAt, '2026-12-07T12:00:05.000Z');
    const bare = mapMessage({ type: 'page', userId: 7, name: 'Home' }, 0, null, {}, 'web', receivedAtMs) as Record<string, unknown>;
    assert.deepEqual([bare.event_id, bare.event_type, bare.actor_id, bare.timestamp], [null, 'page', '7', '2026-12-07T12:00:00.000Z']);
  });

  test('a single-call route names the type, and the batch context merges under the message\'s own', () => {
    const mapped = mapMessage({ userId: 'u', groupId: 'g-1', traits: {}, context: { locale: 'fr' } }, 0, 'group', { context: { locale: 'en', app: { name: 'x' } }, integrations: { All: false }, extra: { custom: 1 } }, 'web', receivedAtMs) as Record<string, unknown>;
    assert.equal(mapped.event_type, 'group');
    assert.deepEqual(mapped.attributes, { type: 'group', userId: 'u', groupId: 'g-1', traits: {}, context: { locale: 'fr', app: { name: 'x' } }, integrations: { All: false }, batch: { custom: 1 } });
  });

  test('messages that cannot be events say why, under the spec\'s field names', () => {
    const cases: Array<[unknown, string, string | null]> = [
      ['text', 'ERR_EVENT_NOT_OBJECT', null],
      [{ userId: 'u' }, 'ERR_EVENT_FIELD_MISSING', 'type'],
      [{ type: 'purchase', userId: 'u' }, 'ERR_EVENT_FIELD_TYPE', 'type'],
      [{ type: 'track', userId: 'u' }, 'ERR_EVENT_FIELD_MISSING', 'event'],
      [{ type: 'alias', previousId: 'p' }, 'ERR_EVENT_FIELD_MISSING', 'userId'],
      [{ type: 'screen', userId: 'u', originalTimestamp: 'yesterday' }, 'ERR_EVENT_TIMESTAMP_FORMAT', 'originalTimestamp'],
    ];
    for (const [message, code, field] of cases) {
      const mapped = mapMessage(message, 3, null, {}, 'web', receivedAtMs);
      assert.ok(mapped instanceof UndecodableItem, JSON.stringify(message));
      assert.deepEqual([mapped.error.index, mapped.error.code, mapped.error.field], [3, code, field]);
    }
  });

  test('a body that is not the spec is refused whole, naming the problem; writeKey is never kept', () => {
    const decode = (text: string) => decodeSegmentBody(null, Buffer.from(text), defaultConfig(), { receivedAtMs, source: 's' });
    for (const [text, code, pattern] of [
      ['{"batch": {}}', 'ERR_INGEST_BAD_SHAPE', /"batch" must be an array/],
      ['[]', 'ERR_INGEST_BAD_SHAPE', /JSON object/],
      ['{"batch": []}', 'ERR_INGEST_EMPTY', /empty/],
      ['{"batch": [', 'ERR_INGEST_MALFORMED_BODY', /not valid JSON/],
    ] as const) {
      const decoded = decode(text);
      assert.ok(!decoded.ok && decoded.error.code === code && pattern.test(decoded.error.message), text);
    }
    const decoded = decode(JSON.stringify({ writeKey: 'secret', batch: [{ type: 'track', event: 'e', userId: 'u' }] }));
    assert.ok(decoded.ok);
    assert.ok(!JSON.stringify(decoded.items).includes('secret'));
  });
});

describe('the routes, against an engine', () => {
  let engine: TestEngine;
  before(async () => (engine = await startTestEngine()));
  after(() => engine.close());

  const rows = (marker: string) => engine.query<{ event_id: string; event_type: string; source: string; actor_id: string; attributes: Record<string, unknown> }>(
    "SELECT event_id, event_type, source, actor_id, attributes FROM events WHERE attributes->'properties'->>'marker' = $1 OR attributes->'traits'->>'marker' = $1 ORDER BY event_id", [marker]);

  test('POST /v1/batch stores every call type once durable, answers success with per-event problems beside, and a resend dedupes by messageId', async () => {
    const marker = randomUUID();
    const now = new Date().toISOString();
    const batch = [
      { type: 'track', messageId: `${marker}-1`, userId: 'u-1', event: 'Signed Up', properties: { marker }, timestamp: now },
      { type: 'identify', messageId: `${marker}-2`, anonymousId: 'a-2', traits: { marker } },
      { type: 'page', messageId: `${marker}-3`, userId: 'u-3', name: 'Pricing', properties: { marker } },
      { type: 'screen', messageId: `${marker}-4`, userId: 'u-4', name: 'Home', properties: { marker } },
      { type: 'group', messageId: `${marker}-5`, userId: 'u-5', groupId: 'g', traits: { marker } },
      { type: 'alias', messageId: `${marker}-6`, userId: 'u-6', previousId: 'a-6', traits: { marker } },
      { type: 'track', messageId: `${marker}-7`, userId: 'u-7', properties: { marker } },
    ];
    const body = JSON.stringify({ batch, sentAt: now, context: { library: { name: 'hand' } } });
    const first = await post(`${engine.baseUrl}/v1/batch`, body);
    assert.equal(first.status, 200);
    assert.deepEqual([first.json.success, first.json.accepted, first.json.rejected, first.json.errors[0].index, first.json.errors[0].field], [true, 6, 1, 6, 'event']);
    const stored = await rows(marker);
    assert.deepEqual(stored.map((row) => [row.event_id, row.event_type, row.actor_id, row.source]), [
      [`${marker}-1`, 'Signed Up', 'u-1', 'segment'], [`${marker}-2`, 'identify', 'a-2', 'segment'], [`${marker}-3`, 'page', 'u-3', 'segment'],
      [`${marker}-4`, 'screen', 'u-4', 'segment'], [`${marker}-5`, 'group', 'u-5', 'segment'], [`${marker}-6`, 'alias', 'u-6', 'segment'],
    ]);
    assert.deepEqual(stored[5]?.attributes, { type: 'alias', userId: 'u-6', previousId: 'a-6', traits: { marker }, context: { library: { name: 'hand' } }, sentAt: now });
    // The SDK's retry of the same batch: stored once, reported as duplicates.
    const again = await post(`${engine.baseUrl}/v1/batch`, gzipSync(body), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    assert.deepEqual([again.status, again.json.accepted, again.json.duplicates], [200, 0, 6]);
    assert.equal((await rows(marker)).length, 6);
  });

  test('the single calls, text/plain as browsers send it; nothing takeable is 400, a body off the spec 400 naming it', async () => {
    const marker = randomUUID();
    for (const call of ['track', 'identify', 'page', 'screen', 'group', 'alias']) {
      const answer = await post(`${engine.baseUrl}/v1/${call}`, JSON.stringify({ messageId: `${marker}-${call}`, userId: 'u', event: 'Tapped', properties: { marker }, traits: { marker } }), { 'content-type': 'text/plain;charset=UTF-8' });
      assert.deepEqual([answer.status, answer.json.success, answer.json.accepted], [200, true, 1], call);
    }
    assert.deepEqual((await rows(marker)).map((row) => row.event_type), ['alias', 'group', 'identify', 'page', 'screen', 'Tapped']);
    const nothing = await post(`${engine.baseUrl}/v1/track`, JSON.stringify({ userId: 'u' }));
    assert.deepEqual([nothing.status, nothing.json.success, nothing.json.errors[0].field], [400, false, 'event']);
    const offSpec = await post(`${engine.baseUrl}/v1/batch`, JSON.stringify({ events: [] }));
    assert.equal(offSpec.status, 400);
    assert.match(offSpec.json.error.message, /"batch" must be an array/);
    const msgpack = await post(`${engine.baseUrl}/v1/batch`, '{}', { 'content-type': 'application/msgpack' });
    assert.equal(msgpack.status, 415);
  });
});

describe('the routes with keys', () => {
  const adminKey = generateKey();
  let engine: TestEngine;
  before(async () => (engine = await startTestEngine({ adminKey })));
  after(() => engine.close());

  test('the write key is the Basic user name with an empty password; its name is the source; no key is 401', async () => {
    const created = await callRoute(engine.baseUrl, 'POST', '/v1/keys', { authorization: `Bearer ${adminKey}` }, { name: 'ios-app', scopes: ['ingest'] });
    const writeKey = created.json.key as string;
    const marker = randomUUID();
    const body = JSON.stringify({ batch: [{ type: 'track', messageId: marker, userId: 'u', event: 'Opened', properties: { marker } }] });
    assert.equal((await post(`${engine.baseUrl}/v1/batch`, body)).status, 401);
    const answer = await post(`${engine.baseUrl}/v1/batch`, body, { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${writeKey}:`).toString('base64')}` });
    assert.equal(answer.status, 200);
    const [row] = await engine.query<{ source: string }>('SELECT source FROM events WHERE event_id = $1', [marker]);
    assert.equal(row?.source, 'ios-app');
  });
});
