/**
 * GET /v1/events/stream against a real engine over real sockets: the three frame formats,
 * acks after commit, batch ids as idempotency keys (across reconnects and across HTTP),
 * nacks and their retry hints, the in-flight cap, frame size, authentication on the
 * upgrade, a client that does not read its acks, and shutdown (ack, then 1001).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pack } from 'msgpackr';
import { WebSocket } from 'undici';
import { generateKey } from '../../src/auth/key-format';
import { KiB } from '../../src/config/settings';
import { callRoute, startTestEngine, type TestEngine } from '../support/engine';
import { frameHead, serverFrameAt } from '../../bench/load/http-connection';

interface Frame {
  readonly type: 'ack' | 'nack';
  readonly batch_id: string | null;
  readonly accepted?: number;
  readonly duplicates?: number;
  readonly rejected?: number;
  readonly errors?: Array<{ index: number; code: string; field: string | null }>;
  readonly error?: { code: string; message: string };
  readonly retry_after_ms?: number;
}

/** A stream client that keeps every answer and how the socket closed. */
class TestStream {
  readonly answers: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #socket: WebSocket;
  readonly #waiters: Array<() => void> = [];

  static async open(baseUrl: string, options: { protocols?: string[]; headers?: Record<string, string> } = {}): Promise<TestStream> {
    const stream = new TestStream(new WebSocket(`${baseUrl.replace('http', 'ws')}/v1/events/stream`, options as never));
    await new Promise<void>((resolve, reject) => {
      stream.#socket.addEventListener('open', () => resolve());
      stream.#socket.addEventListener('error', () => reject(new Error('the upgrade failed')));
    });
    return stream;
  }

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.binaryType = 'arraybuffer';
    socket.addEventListener('message', (event) => {
      this.answers.push(JSON.parse(String(event.data)) as Frame);
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) => socket.addEventListener('close', (event) => {
      resolve({ code: event.code, reason: event.reason });
      for (const wake of this.#waiters.splice(0)) wake();
    }));
  }

  get protocol(): string {
    return this.#socket.protocol;
  }

  send(frame: string | Uint8Array): void {
    this.#socket.send(frame);
  }

  /** Resolves once `count` answers have arrived (or the socket closed). */
  async answersFor(count: number, timeoutMs = 15_000): Promise<Frame[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.answers.length < count && this.#socket.readyState !== WebSocket.CLOSED) {
      assert.ok(Date.now() < deadline, `only ${this.answers.length} of ${count} answers in ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
    return this.answers.slice(0, count);
  }

  close(): void {
    this.#socket.close();
  }
}

const eventsOf = (count: number, marker: string, withIds = false) =>
  Array.from({ length: count }, (_, i) => ({ ...(withIds ? { event_id: `${marker}-${i}` } : {}), event_type: 'stream.test', timestamp: new Date().toISOString(), actor_id: `a${i}`, attributes: { marker, i } }));

async function storedWith(engine: TestEngine, marker: string): Promise<number> {
  const rows = await engine.query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE attributes->>'marker' = $1", [marker]);
  return (rows[0] as { n: number }).n;
}

describe('the stream, durable mode', () => {
  let engine: TestEngine;
  before(async () => (engine = await startTestEngine({ wsBatchesInFlightMax: 4, bodyBytesMax: 64 * KiB })));
  after(() => engine.close());

  test('JSON, NDJSON and msgpack batches are each acked after their commit, with per-event errors', async () => {
    const stream = await TestStream.open(engine.baseUrl, { protocols: ['floodgate.v1'] });
    assert.equal(stream.protocol, 'floodgate.v1');
    const marker = randomUUID();
    stream.send(JSON.stringify({ batch_id: `${marker}-json`, events: [...eventsOf(3, marker), { event_type: '' }] }));
    const ndjson = [JSON.stringify({ batch_id: `${marker}-ndjson` }), ...eventsOf(2, marker).map((event) => JSON.stringify({ ...event, actor_id: `n-${event.actor_id}` })), '{"broken'].join('\n');
    stream.send(ndjson);
    stream.send(pack({ batch_id: `${marker}-msgpack`, events: eventsOf(2, marker).map((event) => ({ ...event, actor_id: `m-${event.actor_id}` })) }));
    const answers = await stream.answersFor(3);
    const byId = new Map(answers.map((answer) => [answer.batch_id, answer]));
    const json = byId.get(`${marker}-json`);
    assert.deepEqual([json?.type, json?.accepted, json?.duplicates, json?.rejected], ['ack', 3, 0, 1]);
    assert.deepEqual(json?.errors?.map((error) => [error.index, error.code, error.field]), [[3, 'ERR_EVENT_FIELD_LENGTH', 'event_type']]);
    const lines = byId.get(`${marker}-ndjson`);
    assert.deepEqual([lines?.type, lines?.accepted, lines?.rejected, lines?.errors?.[0]?.index, lines?.errors?.[0]?.code], ['ack', 2, 1, 2, 'ERR_EVENT_MALFORMED']);
    assert.deepEqual([byId.get(`${marker}-msgpack`)?.type, byId.get(`${marker}-msgpack`)?.accepted], ['ack', 2]);
    // Durable: an ack means the rows are there.
    assert.equal(await storedWith(engine, marker), 7);
    stream.close();
  });

  test('a batch resent after a reconnect, or over HTTP with its id as Idempotency-Key, stores nothing twice', async () => {
    const marker = randomUUID();
    const batch = JSON.stringify({ batch_id: `${marker}-b`, events: eventsOf(5, marker) });
    const first = await TestStream.open(engine.baseUrl);
    first.send(batch);
    assert.equal((await first.answersFor(1))[0]?.accepted, 5);
    first.close();
    const second = await TestStream.open(engine.baseUrl);
    second.send(batch);
    const again = (await second.answersFor(1))[0];
    assert.deepEqual([again?.type, again?.accepted, again?.duplicates], ['ack', 0, 5]);
    second.close();
    const overHttp = await callRoute(engine.baseUrl, 'POST', '/v1/events/bulk', { 'idempotency-key': `${marker}-b` }, { events: eventsOf(5, marker) });
    assert.deepEqual([overHttp.status, overHttp.json.accepted, overHttp.json.duplicates], [200, 0, 5]);
    assert.equal(await storedWith(engine, marker), 5);
  });

  test('frames that are not a batch are nacked for good, and the stream goes on', async () => {
    const stream = await TestStream.open(engine.baseUrl);
    stream.send('{"events": [');
    stream.send(JSON.stringify({ events: eventsOf(1, 'x') }));
    stream.send(JSON.stringify({ batch_id: 'has-extra', events: [], extra: 1 }));
    stream.send(JSON.stringify({ batch_id: 'empty', events: [] }));
    const marker = randomUUID();
    stream.send(JSON.stringify({ batch_id: marker, events: eventsOf(1, marker) }));
    const answers = await stream.answersFor(5);
    const nacks = answers.filter((answer) => answer.type === 'nack');
    assert.deepEqual(nacks.map((nack) => nack.error?.code), ['ERR_INGEST_MALFORMED_BODY', 'ERR_INGEST_BAD_SHAPE', 'ERR_INGEST_BAD_SHAPE', 'ERR_INGEST_EMPTY']);
    assert.ok(nacks.every((nack) => nack.retry_after_ms === undefined), 'a malformed batch is never to be resent');
    assert.match(nacks[1]?.error?.message ?? '', /batch_id/);
    // A frame refused after its batch_id could be read names it, so the client can fail that batch.
    assert.deepEqual(nacks.map((nack) => nack.batch_id), [null, null, 'has-extra', 'empty']);
    assert.deepEqual(answers.filter((answer) => answer.type === 'ack').map((ack) => [ack.batch_id, ack.accepted]), [[marker, 1]]);
    stream.close();
  });

  test('past the in-flight cap a batch is nacked with a retry hint, and resending it then stores it once', async () => {
    const stream = await TestStream.open(engine.baseUrl);
    const marker = randomUUID();
    const batches = Array.from({ length: 24 }, (_, i) => JSON.stringify({ batch_id: `${marker}-${i}`, events: eventsOf(20, `${marker}`).map((event) => ({ ...event, actor_id: `${i}-${event.actor_id}` })) }));
    for (const batch of batches) stream.send(batch);
    const answers = await stream.answersFor(24);
    const nacked = answers.filter((answer) => answer.type === 'nack');
    assert.ok(nacked.length > 0, 'with a cap of 4, some of 24 batches sent at once must be refused');
    for (const nack of nacked) {
      assert.equal(nack.error?.code, 'ERR_STREAM_TOO_MANY_BATCHES');
      assert.ok((nack.retry_after_ms ?? 0) > 0);
    }
    for (const nack of nacked) stream.send(batches[Number(nack.batch_id?.split('-').pop())] as string);
    const all = await stream.answersFor(24 + nacked.length, 30_000);
    const acked = new Set(all.filter((answer) => answer.type === 'ack').map((answer) => answer.batch_id));
    const stillRefused = all.length - 24 - [...all.slice(24)].filter((answer) => answer.type === 'ack').length;
    assert.equal(acked.size + stillRefused, 24);
    assert.equal(await storedWith(engine, marker), acked.size * 20);
    stream.close();
  });

  test('a frame over the body limit closes the stream with 1009', async () => {
    const stream = await TestStream.open(engine.baseUrl);
    stream.send(JSON.stringify({ batch_id: 'big', events: [{ event_type: 'x', timestamp: Date.now(), attributes: { pad: 'p'.repeat(70 * KiB) } }] }));
    const { code, reason } = await stream.closed;
    assert.equal(code, 1009);
    assert.match(reason, /64 ?KiB|65536/);
  });
});

describe('the stream with keys', () => {
  const adminKey = generateKey();
  let engine: TestEngine;
  let ingestKey: string;
  before(async () => {
    engine = await startTestEngine({ adminKey });
    const created = await callRoute(engine.baseUrl, 'POST', '/v1/keys', { authorization: `Bearer ${adminKey}` }, { name: 'stream', scopes: ['ingest'] });
    ingestKey = created.json.key as string;
  });
  after(() => engine.close());

  test('the upgrade is refused without a key or with a key lacking ingest, and taken with one in a header or in the subprotocol list', async () => {
    assert.equal(await upgradeStatus(engine.baseUrl, {}), 401);
    const readKey = (await callRoute(engine.baseUrl, 'POST', '/v1/keys', { authorization: `Bearer ${adminKey}` }, { name: 'r', scopes: ['read'] })).json.key as string;
    assert.equal(await upgradeStatus(engine.baseUrl, { authorization: `Bearer ${readKey}` }), 403);
    assert.equal(await upgradeStatus(engine.baseUrl, { 'sec-websocket-protocol': `floodgate.v1, floodgate.key.${generateKey()}` }), 401);
    assert.equal(await upgradeStatus(engine.baseUrl, { authorization: `Bearer ${ingestKey}` }), 101);
    // What a browser does: the key rides in the protocol list, and only the version comes back.
    const stream = await TestStream.open(engine.baseUrl, { protocols: ['floodgate.v1', `floodgate.key.${ingestKey}`] });
    assert.equal(stream.protocol, 'floodgate.v1');
    const marker = randomUUID();
    stream.send(JSON.stringify({ batch_id: marker, events: eventsOf(2, marker) }));
    assert.equal((await stream.answersFor(1))[0]?.accepted, 2);
    stream.close();
  });
});

describe('the stream, async mode', () => {
  let engine: TestEngine;
  before(async () => (engine = await startTestEngine({ ackMode: 'async', wsBackpressureBytesMax: 64 * KiB })));
  after(() => engine.close());

  test('a client that sends but never reads its acks is closed with 1008 once they pile up', async () => {
    const socket = await rawStream(engine.baseUrl);
    socket.pause();
    const marker = randomUUID();
    // Each batch holds 60 events without a type, so its ack carries 60 errors (about 7 KB):
    // 5,000 of them are far more than the kernel's buffers and the 64 KiB limit hold.
    const invalid = Array.from({ length: 60 }, () => ({ timestamp: Date.now(), attributes: { marker } }));
    let sent = 0;
    for (; sent < 5000 && !socket.destroyed; sent++) {
      const events = [{ event_type: 'bp', timestamp: Date.now(), attributes: { marker } }, ...invalid];
      const text = Buffer.from(JSON.stringify({ batch_id: `${marker}-${sent}`, events }));
      const ok = socket.write(Buffer.concat([frameHead(text.length, 0x1), text]));
      if (!ok) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), new Promise((resolve) => setTimeout(resolve, 2000))]);
    }
    socket.resume();
    const received = await readUntilClosed(socket);
    const close = received.closeCode;
    assert.equal(close, 1008, `close code ${String(close)} after ${received.acks} acks`);
    assert.ok(received.acks < sent, 'the engine stopped answering a client that did not read');
    // Every event it acked is stored (async mode: queued, written shortly).
    await waitUntil(async () => (await storedWith(engine, marker)) >= received.acks);
  });

  test('on shutdown a stream gets the ack of its batch, then a close with 1001', async () => {
    const stream = await TestStream.open(engine.baseUrl);
    const marker = randomUUID();
    stream.send(JSON.stringify({ batch_id: marker, events: eventsOf(200, marker) }));
    await stream.answersFor(1);
    await engine.stopEngine();
    const { code } = await stream.closed;
    assert.equal(code, 1001);
    assert.equal(stream.answers[0]?.type, 'ack');
    assert.equal(await storedWith(engine, marker), 200);
  });
});

function upgradeStatus(baseUrl: string, headers: Record<string, string>): Promise<number> {
  const url = new URL(`${baseUrl}/v1/events/stream`);
  return new Promise((resolve, reject) => {
    const request = httpRequest({
      host: url.hostname, port: url.port, path: url.pathname,
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': Buffer.from(randomUUID().slice(0, 16)).toString('base64'), ...headers },
    });
    request.on('upgrade', (response, socket) => {
      socket.destroy();
      resolve(response.statusCode ?? 0);
    });
    request.on('response', (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('error', reject);
    request.end();
  });
}

/** A WebSocket handshake on a plain TCP socket, so the test controls reading. */
function rawStream(baseUrl: string): Promise<Socket> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(`GET /v1/events/stream HTTP/1.1\r\nHost: ${url.host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${Buffer.from('0123456789abcdef').toString('base64')}\r\n\r\n`);
    });
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      if (!head.subarray(0, 12).toString().includes('101')) return reject(new Error(head.toString()));
      if (head.length > end + 4) socket.unshift(head.subarray(end + 4));
      resolve(socket);
    };
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

/** Reads server frames until the close frame or the end; counts acks. */
function readUntilClosed(socket: Socket): Promise<{ acks: number; closeCode: number | null }> {
  return new Promise((resolve) => {
    let buffered = Buffer.alloc(0);
    let acks = 0;
    const finish = (closeCode: number | null): void => resolve({ acks, closeCode });
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (let frame = serverFrameAt(buffered); frame !== null; frame = serverFrameAt(buffered)) {
        buffered = buffered.subarray(frame.bytes);
        if (frame.opcode === 0x1 && frame.payload.includes('"type":"ack"')) acks++;
        if (frame.opcode === 0x8) {
          socket.destroy();
          return finish(frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : null);
        }
      }
    });
    socket.on('close', () => finish(null));
    socket.on('error', () => finish(null));
  });
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, 'condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
