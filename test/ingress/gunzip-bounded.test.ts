import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { contentEncodingOf, gunzipBounded } from '../../src/ingress/gunzip-bounded';

describe('contentEncodingOf', () => {
  it('treats a missing, empty or identity header as identity', () => {
    for (const header of [undefined, '', '  ', 'identity', 'IDENTITY']) assert.equal(contentEncodingOf(header), 'identity', String(header));
  });

  it('accepts gzip and x-gzip in any case', () => {
    for (const header of ['gzip', 'GZip', ' x-gzip ', 'X-GZIP']) assert.equal(contentEncodingOf(header), 'gzip', header);
  });

  it('refuses other and stacked encodings', () => {
    for (const header of ['deflate', 'br', 'zstd', 'compress', 'gzip, gzip', 'gzip,identity', 'identity, gzip', 'gzip;q=1', 'gzipx']) {
      assert.equal(contentEncodingOf(header), null, header);
    }
  });
});

describe('gunzipBounded', () => {
  const text = 'a'.repeat(1000);
  const gzipped = gzipSync(Buffer.from(text));

  it('inflates a body up to and including the cap', () => {
    const result = gunzipBounded(gzipped, 1000);
    assert.ok(result.ok);
    assert.equal(result.bytes.toString(), text);
  });

  it('inflates concatenated gzip members as one body', () => {
    const result = gunzipBounded(Buffer.concat([gzipped, gzipped]), 5000);
    assert.ok(result.ok);
    assert.equal(result.bytes.length, 2000);
  });

  it('refuses output one byte past the cap as too large, naming the cap', () => {
    const result = gunzipBounded(gzipped, 999);
    assert.ok(!result.ok);
    assert.equal(result.error.code, 'ERR_INGEST_BODY_TOO_LARGE');
    assert.match(result.error.message, /bodyDecodedBytesMax \(999 bytes\)/);
  });

  it('stops a gzip bomb at the cap without inflating the rest', () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    assert.ok(bomb.length < 100 * 1024, 'the bomb is small on the wire');
    const heapBefore = process.memoryUsage().arrayBuffers;
    const startedAt = performance.now();
    const result = gunzipBounded(bomb, 1024 * 1024);
    const elapsedMs = performance.now() - startedAt;
    assert.ok(!result.ok);
    assert.equal(result.error.code, 'ERR_INGEST_BODY_TOO_LARGE');
    assert.ok(process.memoryUsage().arrayBuffers - heapBefore < 16 * 1024 * 1024, 'no allocation near the inflated size');
    assert.ok(elapsedMs < 1000, `took ${elapsedMs} ms`);
  });

  it('reports truncated, corrupt and non-gzip input as malformed', () => {
    const corrupt = Buffer.from(gzipped);
    corrupt[corrupt.length - 6] = (corrupt[corrupt.length - 6] as number) ^ 0xff; // inside the CRC-32
    const cases: Array<[string, Uint8Array]> = [
      ['truncated', gzipped.subarray(0, gzipped.length - 5)],
      ['header only', gzipped.subarray(0, 10)],
      ['empty', new Uint8Array(0)],
      ['bad CRC', corrupt],
      ['not gzip', Buffer.from('{"events": []}')],
      ['bad method', Buffer.from([0x1f, 0x8b, 0x01, 0, 0, 0, 0, 0, 0, 0])],
      ['trailing garbage', Buffer.concat([gzipped, Buffer.from('xyz')])],
    ];
    for (const [name, bytes] of cases) {
      const result = gunzipBounded(bytes, 10_000);
      assert.ok(!result.ok, name);
      assert.equal(result.error.code, 'ERR_INGEST_MALFORMED_BODY', name);
      assert.match(result.error.message, /^body is not valid gzip: /, name);
    }
  });
});
