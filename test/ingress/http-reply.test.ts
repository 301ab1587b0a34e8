import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { echoableRequestId, reply, replyError } from '../../src/ingress/http-reply';
import { FakeResponse } from './fake-response';

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Ids a client may send that must not come back: found by test/fuzz echoed byte for byte. */
const unechoable = ['', 'has space', 'has\ttab', 'has\u007fdel', 'cr\rlf\n', 'x'.repeat(201), 'x'.repeat(60_000), 'caf\u00e9', 'nul\u0000'];

describe('echoableRequestId', () => {
  it('keeps 1-200 printable ASCII characters and replaces anything else with a fresh UUID', () => {
    for (const id of ['req-1', 'x'.repeat(200), '!~', 'a%0D%0Ab']) assert.equal(echoableRequestId(id), id);
    for (const id of unechoable) assert.match(echoableRequestId(id), uuid, JSON.stringify(id.slice(0, 20)));
  });
});

describe('replyError', () => {
  it('answers with the catalogue status, the code and message, and the client id in header and body', () => {
    const res = new FakeResponse();
    assert.equal(replyError(res, 'req-7', 'ERR_INGEST_BODY_TOO_LARGE', 'too big', { close: true }), 413);
    assert.equal(res.status, '413 Payload Too Large');
    assert.equal(res.header('x-request-id'), 'req-7');
    assert.deepEqual(JSON.parse(res.body), { request_id: 'req-7', error: { code: 'ERR_INGEST_BODY_TOO_LARGE', message: 'too big' } });
    assert.equal(res.closedConnection, true);
  });

  it('does not echo an id it refuses: the same fresh id goes in the header and the body (regression)', () => {
    for (const id of unechoable) {
      const res = new FakeResponse();
      replyError(res, id, 'ERR_INGEST_BAD_HEADER', 'X-Request-ID must be 1-200 printable ASCII characters');
      const header = res.header('x-request-id') ?? '';
      assert.match(header, uuid, JSON.stringify(id.slice(0, 20)));
      assert.equal(JSON.parse(res.body).request_id, header);
    }
  });
});

describe('reply', () => {
  it('never writes an unechoable id into the X-Request-ID header', () => {
    for (const id of unechoable) {
      const res = new FakeResponse();
      reply(res, 200, id, { status: 'ok' });
      assert.match(res.header('x-request-id') ?? '', uuid);
    }
  });
});
