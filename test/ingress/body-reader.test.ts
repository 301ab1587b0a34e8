import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ErrorInfo } from '../../src/errors';
import { readBody, type BodyReadOptions } from '../../src/ingress/body-reader';
import { chunksOf } from '../support/builders';
import { FakeResponse } from './fake-response';

interface Reading {
  readonly res: FakeResponse;
  readonly cancel: () => void;
  body: Buffer | null;
  error: ErrorInfo | null;
}

function startReading(options: Partial<BodyReadOptions> = {}): Reading {
  const res = new FakeResponse();
  const reading: Reading = { res, cancel: () => undefined, body: null, error: null };
  const cancel = readBody(res, {
    contentLength: null,
    bodyBytesMax: 1024 * 1024,
    bodyTimeoutMs: 10_000,
    onBody: (body) => (reading.body = body),
    onError: (error) => (reading.error = error),
    ...options,
  });
  return Object.assign(reading, { cancel });
}

function deliverAll(reading: Reading, bytes: Uint8Array, chunkBytes: number): void {
  const chunks = chunksOf(bytes, chunkBytes);
  if (chunks.length === 0) reading.res.deliver(new Uint8Array(), true);
  chunks.forEach((chunk, index) => reading.res.deliver(chunk, index === chunks.length - 1));
}

describe('readBody', () => {
  const body = randomBytes(100_000);

  it('assembles a body with a Content-Length from chunks of any size, exactly that long', () => {
    for (const chunkBytes of [1, 7, 16 * 1024, 16 * 1024 + 1, 65_536, 100_000]) {
      const reading = startReading({ contentLength: body.length });
      deliverAll(reading, body, chunkBytes);
      assert.equal(reading.error, null, `chunks of ${chunkBytes}`);
      assert.equal(reading.body?.length, body.length, `chunks of ${chunkBytes}`);
      assert.ok(reading.body?.equals(body), `chunks of ${chunkBytes}`);
    }
  });

  it('joins the chunks of a body without Content-Length, and takes an empty one', () => {
    const reading = startReading();
    deliverAll(reading, body, 4096);
    assert.ok(reading.body?.equals(body));
    const empty = startReading({ contentLength: 0 });
    deliverAll(empty, new Uint8Array(), 1);
    assert.equal(empty.body?.length, 0);
  });

  it('refuses a body that ends before its Content-Length, or runs past it or past bodyBytesMax', () => {
    const short = startReading({ contentLength: 10 });
    short.res.deliver(Buffer.from('12345'), true);
    assert.equal(short.error?.code, 'ERR_INGEST_MALFORMED_BODY');
    assert.match(short.error?.message ?? '', /ended after 5 of 10 declared bytes/);
    const long = startReading({ contentLength: 4 });
    long.res.deliver(Buffer.from('12345'), false);
    assert.equal(long.error?.code, 'ERR_INGEST_BODY_TOO_LARGE');
    const chunked = startReading({ bodyBytesMax: 1000 });
    deliverAll(chunked, randomBytes(1001), 100);
    assert.equal(chunked.error?.code, 'ERR_INGEST_BODY_TOO_LARGE');
    assert.equal(chunked.body, null);
  });

  it('stops when inspect finds a problem, and after bodyTimeoutMs', async () => {
    const inspected = startReading({ inspect: (chunk) => (chunk[0] === 0x21 ? { code: 'ERR_INGEST_TOO_MANY_EVENTS', message: 'too many' } : null) });
    inspected.res.deliver(Buffer.from('ok'), false);
    inspected.res.deliver(Buffer.from('!'), false);
    inspected.res.deliver(Buffer.from('late'), true);
    assert.equal(inspected.error?.code, 'ERR_INGEST_TOO_MANY_EVENTS');
    assert.equal(inspected.body, null);
    const slow = startReading({ contentLength: 10, bodyTimeoutMs: 30 });
    slow.res.deliver(Buffer.from('123'), false);
    await sleep(80);
    assert.equal(slow.error?.code, 'ERR_INGEST_BODY_TIMEOUT');
    assert.match(slow.error?.message ?? '', /within 30 ms \(got 3 bytes\)/);
  });

  it('does not reserve the declared Content-Length before the bytes arrive (regression: headers alone pinned bodyBytesMax)', () => {
    const declaredBytes = 64 * 1024 * 1024;
    const before = process.memoryUsage().arrayBuffers;
    const readings = Array.from({ length: 100 }, () => startReading({ contentLength: declaredBytes, bodyBytesMax: declaredBytes }));
    for (const reading of readings) reading.res.deliver(Buffer.from('['), false);
    const grownBytes = process.memoryUsage().arrayBuffers - before;
    for (const reading of readings) reading.cancel();
    // Reserving the declared length would be 6.4 GB here; a 16 KiB start per body is 1.6 MiB.
    assert.ok(grownBytes < 8 * 1024 * 1024, `ArrayBuffer memory grew by ${grownBytes} bytes`);
  });
});
