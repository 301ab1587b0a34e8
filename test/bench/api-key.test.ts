/**
 * The load runner's --api-key-scopes option: the scopes it accepts and refuses (src/auth's
 * own rules), the request head carrying the key built once, and the runner's own refusal
 * of a bad value (exit 2, before any engine starts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { parseApiKeyScopes } from '../../bench/load/api-key';
import { requestHead } from '../../bench/load/http-connection';

test('scopes: one or several known ones, in the catalogue order; unknown, empty or repeated ones are refused', () => {
  assert.deepEqual(parseApiKeyScopes('ingest'), { ok: true, scopes: ['ingest'] });
  assert.deepEqual(parseApiKeyScopes('read, ingest'), { ok: true, scopes: ['ingest', 'read'] });
  for (const text of ['', 'write', 'ingest,ingest', 'ingest,', 'INGEST']) {
    const parsed = parseApiKeyScopes(text);
    assert.equal(parsed.ok, false, JSON.stringify(text));
    if (!parsed.ok) assert.match(parsed.message, /^--api-key-scopes: /);
  }
});

test('the request head carries Authorization only when a key is given, before the body framing', () => {
  const plain = requestHead('127.0.0.1', 8080, '/v1/events/bulk', 'application/json', 123).toString('latin1');
  assert.doesNotMatch(plain, /authorization/i);
  const keyed = requestHead('127.0.0.1', 8080, '/v1/events/bulk', 'application/json', 123, 'Bearer fgk_abc').toString('latin1');
  assert.equal(keyed, 'POST /v1/events/bulk HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer fgk_abc\r\nContent-Type: application/json\r\nContent-Length: 123\r\n\r\n');
});

test('run-load refuses a bad --api-key-scopes with exit code 2 and the usage', () => {
  const script = path.join(__dirname, '..', '..', 'bench', 'load', 'run-load.js');
  const result = spawnSync(process.execPath, [script, 'sustained-bulk', '--api-key-scopes', 'write'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /--api-key-scopes: unknown scope "write"/);
  assert.match(result.stderr, /\[--api-key-scopes ingest\[,read\]\]/);
});
