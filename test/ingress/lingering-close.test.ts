/**
 * Regression tests for the lingering close (src/ingress/body-drain.ts), against a real
 * engine over real sockets: a client still sending a refused body must read the answer,
 * not a broken pipe. Before the fix, Node's fetch posting 40 MiB to the bulk route failed
 * with EPIPE / "other side closed" while curl saw the 413; and a client that never stops
 * sending must still be cut off within the linger's bounds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { lingerBytesMax, lingerIdleMs, lingerMs } from '../../src/ingress/body-drain';
import { chunk, RawConnection } from '../fuzz/raw-http';
import { startTestEngine, type TestEngine } from '../support/engine';
import { wireEvent } from '../support/wire-events';

const MiB = 1024 * 1024;
const eventsPerRequestMax = 10;
let harness: TestEngine;
before(async () => {
  harness = await startTestEngine({ eventsPerRequestMax });
});
after(async () => {
  await harness?.close();
});

/** A body of `totalBytes` streamed in 1 MiB pieces: fetch sends it chunked, with no Content-Length. */
function streamOf(first: Uint8Array, totalBytes: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      const piece = sent === 0 ? first : Buffer.alloc(Math.min(MiB, totalBytes - sent), 0x20);
      sent += piece.byteLength;
      controller.enqueue(piece);
      if (sent >= totalBytes) controller.close();
    },
  });
}

async function postToBulk(body: Uint8Array | ReadableStream<Uint8Array>, contentType = 'application/json'): Promise<{ status: number; json: any }> {
  const response = await fetch(`${harness.baseUrl}/v1/events/bulk`, { method: 'POST', body, headers: { 'content-type': contentType }, duplex: 'half' } as RequestInit);
  return { status: response.status, json: await response.json() };
}

/** The broken pipe depended on timing (how much of the body the kernel had buffered), so each case runs several times. */
const attempts = 5;

describe('a refused body is drained, so the client reads the answer', () => {
  test('fetch posting a 40 MiB Buffer (Content-Length past bodyBytesMax) gets 413 with its code', async () => {
    for (let i = 0; i < attempts; i++) {
      const answer = await postToBulk(Buffer.alloc(40 * MiB, 0x20));
      assert.equal(answer.status, 413);
      assert.equal(answer.json.error.code, 'ERR_INGEST_BODY_TOO_LARGE');
    }
  });

  test('fetch streaming 40 MiB (chunked, refused at bodyBytesMax) gets 413 with its code', async () => {
    for (let i = 0; i < attempts; i++) {
      const answer = await postToBulk(streamOf(Buffer.from('{"events": ['), 40 * MiB));
      assert.equal(answer.status, 413);
      assert.equal(answer.json.error.code, 'ERR_INGEST_BODY_TOO_LARGE');
    }
  });

  test('too many events, found while 40 MiB more are still coming: 413 ERR_INGEST_TOO_MANY_EVENTS', async () => {
    const events = Array.from({ length: eventsPerRequestMax + 1 }, (_, i) => JSON.stringify(wireEvent(`linger-${i}`))).join(',');
    for (let i = 0; i < attempts; i++) {
      const answer = await postToBulk(streamOf(Buffer.from(`{"events": [${events},`), 40 * MiB));
      assert.equal(answer.status, 413);
      assert.equal(answer.json.error.code, 'ERR_INGEST_TOO_MANY_EVENTS');
    }
  });

  test('an unsupported Content-Type with an 8 MiB body: 415 ERR_INGEST_UNSUPPORTED_MEDIA_TYPE', async () => {
    for (let i = 0; i < attempts; i++) {
      const answer = await postToBulk(Buffer.alloc(8 * MiB, 0x20), 'text/plain');
      assert.equal(answer.status, 415);
      assert.equal(answer.json.error.code, 'ERR_INGEST_UNSUPPORTED_MEDIA_TYPE');
    }
  });
});

describe('a client that never stops sending is cut off', () => {
  const slackMs = 1_000;

  async function sendForever(pieceBytes: number, everyMs: number): Promise<RawConnection> {
    const connection = await RawConnection.open(harness.engine.port);
    connection.write(Buffer.from('POST /v1/events/bulk HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n', 'latin1'));
    const piece = chunk(Buffer.alloc(pieceBytes, 0x20));
    // "Forever" for the engine: well past both bounds, yet a cap on the client's own buffers.
    let sentBytes = 0;
    const timer = setInterval(() => {
      if (sentBytes > 3 * lingerBytesMax) return clearInterval(timer);
      sentBytes += pieceBytes;
      connection.write(piece);
    }, everyMs);
    void connection.closedWithin(lingerMs * 4).then(() => clearInterval(timer));
    return connection;
  }

  test(`slowly: the connection is closed within lingerMs (${lingerMs} ms) of the refusal`, async () => {
    // 1 MiB every 100 ms passes bodyBytesMax (10 MiB) after about a second, then lingers.
    const connection = await sendForever(MiB, 100);
    const closed = await connection.closedWithin(2_000 + lingerMs + slackMs);
    assert.ok(closed, 'still open after the linger');
    assert.ok((connection.closedAfterMs as number) >= lingerMs, `closed after ${connection.closedAfterMs} ms: before the linger ended`);
    assert.equal(connection.answer.status, 413);
  });

  test(`fast: the connection is closed once lingerBytesMax (${lingerBytesMax / MiB} MiB) were discarded`, async () => {
    const connection = await sendForever(4 * MiB, 5);
    const closed = await connection.closedWithin(lingerMs + slackMs);
    assert.ok(closed, 'still open after the linger');
    assert.ok((connection.closedAfterMs as number) < lingerMs, `closed after ${connection.closedAfterMs} ms: by the time bound, not the byte bound`);
  });

  test(`a client that declares 20 MiB, sends 100 bytes and waits gets its 413 after lingerIdleMs (${lingerIdleMs} ms)`, async () => {
    const connection = await RawConnection.open(harness.engine.port);
    connection.write(Buffer.from(`POST /v1/events/bulk HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${20 * MiB}\r\n\r\n${' '.repeat(100)}`, 'latin1'));
    assert.ok(await connection.closedWithin(lingerIdleMs + slackMs), 'still open after the idle bound');
    assert.equal(connection.answer.status, 413);
  });
});
