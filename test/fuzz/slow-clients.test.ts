/**
 * Slow and vanishing clients against a real engine: a body trickled slower than
 * bodyTimeoutMs, a Content-Length larger than what arrives, a chunked body that never
 * ends, clients that drop the connection mid-body or while waiting for their commit, and
 * many connections that declare large bodies and send nothing more.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { post, startTestEngine, type TestEngine } from '../support/engine';
import { wireEvent, wireEvents } from '../support/wire-events';
import { catalogueErrorOf, chunk, headerOf, jsonOf, RawConnection } from './raw-http';

const bodyTimeoutMs = 1500;
const bodyBytesMax = 1024 * 1024;
/** How late after bodyTimeoutMs the 408 may come on a busy 2-core machine. */
const timeoutSlackMs = 1500;

let harness: TestEngine;

before(async () => {
  harness = await startTestEngine({ bodyTimeoutMs, bodyBytesMax });
});
after(async () => {
  await harness?.close();
});

async function countEvents(where: string): Promise<number> {
  const [row] = await harness.query<{ n: number }>(`SELECT count(*)::int AS n FROM events WHERE ${where}`);
  return row?.n ?? 0;
}

function head(path: string, framing: string): Buffer {
  return Buffer.from(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${framing}\r\n\r\n`, 'latin1');
}

/** Writes `bytes` one at a time every `intervalMs` until they run out or the server closes. */
async function trickle(connection: RawConnection, bytes: Uint8Array, intervalMs: number): Promise<void> {
  for (let i = 0; i < bytes.length && !connection.isClosed; i++) {
    connection.write(bytes.subarray(i, i + 1));
    await sleep(intervalMs);
  }
}

/** The answer was a 408 ERR_INGEST_BODY_TIMEOUT with Connection: close, and the socket was closed. */
async function assertTimedOut(connection: RawConnection, what: string): Promise<void> {
  assert.ok(await connection.closedWithin(bodyTimeoutMs + timeoutSlackMs), `${what}: the server did not close the connection`);
  const { status, body } = connection.answer;
  assert.equal(status, 408, `${what}: ${body.toString()}`);
  assert.equal(catalogueErrorOf(jsonOf(body))?.code, 'ERR_INGEST_BODY_TIMEOUT');
  assert.match(headerOf(connection.answer, 'connection') ?? '', /close/);
  const closedAfterMs = connection.closedAfterMs ?? Number.NaN;
  assert.ok(closedAfterMs >= bodyTimeoutMs - 50 && closedAfterMs <= bodyTimeoutMs + timeoutSlackMs, `${what}: closed after ${closedAfterMs} ms`);
}

describe('slow clients', () => {
  test('a body trickled slower than bodyTimeoutMs gets 408 and a closed connection, while other connections are served', async (t) => {
    const body = Buffer.from(JSON.stringify({ events: [wireEvent('slow-trickle-1')] }));
    const slow = await RawConnection.open(harness.engine.port);
    slow.write(head('/v1/events/bulk', `Content-Length: ${body.length}`));
    const trickling = trickle(slow, body, 100);
    await sleep(300);
    const startedAt = performance.now();
    const normal = await post(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events: wireEvents(5, 'slow-neighbour') }));
    const normalMs = performance.now() - startedAt;
    t.diagnostic(`a normal request during the trickle was answered in ${normalMs.toFixed(1)} ms`);
    assert.equal(normal.status, 200, normal.text);
    assert.equal(normal.json.accepted, 5);
    assert.ok(normalMs < bodyTimeoutMs, `the normal request waited ${normalMs} ms behind the slow one`);
    await assertTimedOut(slow, 'trickled body');
    await trickling;
    assert.equal(await countEvents("event_id = 'slow-trickle-1'"), 0);
  });

  test('a Content-Length larger than what is sent, then silence: 408 and closed', async () => {
    const body = Buffer.from(JSON.stringify(wireEvent('short-body-1')));
    const connection = await RawConnection.open(harness.engine.port);
    connection.write(Buffer.concat([head('/v1/events', `Content-Length: ${body.length + 500}`), body]));
    await assertTimedOut(connection, 'short body');
  });

  test('a chunked body that never ends: 408 and closed', async () => {
    const connection = await RawConnection.open(harness.engine.port);
    connection.write(Buffer.concat([head('/v1/events/bulk', 'Transfer-Encoding: chunked'), chunk(Buffer.from('{"events":['))]));
    await assertTimedOut(connection, 'unfinished chunked body');
  });
});

describe('vanishing clients', () => {
  test('fifty clients dropping the connection mid-body leave the engine serving', async () => {
    const body = Buffer.from(JSON.stringify({ events: wireEvents(50, 'vanished') }));
    const drops = Array.from({ length: 50 }, async (_, i) => {
      const connection = await RawConnection.open(harness.engine.port);
      const framing = i % 2 === 0 ? `Content-Length: ${body.length}` : 'Transfer-Encoding: chunked';
      const part = body.subarray(0, 1 + ((i * 997) % (body.length - 1)));
      connection.write(Buffer.concat([head('/v1/events/bulk', framing), i % 2 === 0 ? part : chunk(part)]));
      await sleep(i * 4);
      connection.destroy();
    });
    await Promise.all(drops);
    const health = await fetch(`${harness.baseUrl}/healthz`);
    assert.equal(health.status, 200);
    const answer = await post(`${harness.baseUrl}/v1/events/bulk`, JSON.stringify({ events: wireEvents(3, 'after-vanished') }));
    assert.equal(answer.status, 200, answer.text);
    assert.equal(await countEvents("event_id LIKE 'vanished-%'"), 0);
  });

  test('a client that leaves while waiting for its commit: the events are stored once and the engine stays up', async () => {
    const body = Buffer.from(JSON.stringify({ events: wireEvents(100, 'left-early') }));
    const connection = await RawConnection.open(harness.engine.port);
    connection.write(Buffer.concat([head('/v1/events/bulk', `Content-Length: ${body.length}`), body]));
    await sleep(1);
    connection.destroy();
    let stored = 0;
    for (let waitedMs = 0; waitedMs < 5000 && stored < 100; waitedMs += 50) {
      await sleep(50);
      stored = await countEvents("event_id LIKE 'left-early-%'");
    }
    assert.equal(stored, 100);
    const [distinct] = await harness.query<{ ids: number }>("SELECT count(DISTINCT event_id)::int AS ids FROM events WHERE event_id LIKE 'left-early-%'");
    assert.equal(distinct?.ids, 100);
    assert.equal((await fetch(`${harness.baseUrl}/healthz`)).status, 200);
  });
});

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

describe('declared sizes', () => {
  test('two hundred connections declaring bodyBytesMax and sending one byte do not reserve it', async (t) => {
    collectGarbage();
    const before = process.memoryUsage().arrayBuffers;
    const connections = await Promise.all(Array.from({ length: 200 }, () => RawConnection.open(harness.engine.port)));
    for (const connection of connections) connection.write(Buffer.concat([head('/v1/events/bulk', `Content-Length: ${bodyBytesMax}`), Buffer.from('[')]));
    await sleep(300);
    collectGarbage();
    const grownBytes = process.memoryUsage().arrayBuffers - before;
    t.diagnostic(`ArrayBuffer memory while 200 connections each declared ${bodyBytesMax} bytes and sent 1: +${(grownBytes / 1024 / 1024).toFixed(1)} MiB`);
    for (const connection of connections) connection.destroy();
    // Reserving the declared length would be 200 MiB here; a 16 KiB start per body is ~3 MiB.
    assert.ok(grownBytes < 16 * 1024 * 1024, `ArrayBuffer memory grew by ${grownBytes} bytes`);
    assert.equal((await fetch(`${harness.baseUrl}/healthz`)).status, 200);
  });
});
