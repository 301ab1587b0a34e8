/**
 * The client SDK (client/src) over the WebSocket stream. First against a scripted
 * uWebSockets.js server, to provoke what a healthy engine rarely does on demand: a nack
 * with retry_after_ms (resent after the delay, same batch_id), a nack without it (the
 * events fail, no retry), a connection closed with batches in flight and an ack that never
 * comes (reconnect, resend). Then against real engines: batches stored once with
 * per-event errors mapped, and the key as a subprotocol. The kill -9 of the engine
 * mid-stream is test/client/http.test.ts's, run over both transports.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'undici';
import { FloodgateClient, type FloodgateEventError } from '../../client/src/index';
import { generateKey } from '../../src/auth/key-format';
import { callRoute, startTestEngine, type TestEngine } from '../support/engine';
import { freePort } from '../support/free-port';

const marker = (name: string): string => `${name}-${Math.random().toString(36).slice(2, 10)}`;

interface Frame {
  readonly batch_id: string;
  readonly events: unknown[];
}

/** What the scripted server lets a test do with one connection. */
interface ScriptedSocket {
  send(text: string): void;
  end(code: number, reason: string): void;
}

interface ScriptedServer {
  readonly url: string;
  readonly frames: { connection: number; frame: Frame; atMs: number }[];
  readonly offeredProtocols: string[];
  connections: number;
  close(): void;
}

type Script = (socket: ScriptedSocket, frame: Frame, seen: number) => void;

const ack = (frame: Frame): string =>
  JSON.stringify({ type: 'ack', batch_id: frame.batch_id, accepted: frame.events.length, duplicates: 0, rejected: 0, errors: [], queued: frame.events.length });

/** A uWS server on the stream's path that answers each frame as `script` says (`seen`: frames so far, this one included). */
async function scriptedServer(script: Script): Promise<ScriptedServer> {
  // eslint-style narrowing is not worth a declaration file for a test double.
  const uws = require('@trufflesuite/uws-js-unofficial') as any;
  const server: ScriptedServer = { url: '', frames: [], offeredProtocols: [], connections: 0, close: () => undefined };
  let listenSocket: unknown = null;
  const app = uws.App().ws('/v1/events/stream', {
    upgrade: (res: any, req: any, context: unknown) => {
      server.offeredProtocols.push(req.getHeader('sec-websocket-protocol'));
      res.upgrade({ connection: ++server.connections }, req.getHeader('sec-websocket-key'), 'floodgate.v1', req.getHeader('sec-websocket-extensions'), context);
    },
    message: (ws: any, message: ArrayBuffer) => {
      const frame = JSON.parse(Buffer.from(message).toString('utf8')) as Frame;
      server.frames.push({ connection: ws.getUserData().connection, frame, atMs: Date.now() });
      script({ send: (text) => ws.send(text, false), end: (code, reason) => ws.end(code, reason) }, frame, server.frames.length);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    app.listen('127.0.0.1', 0, (socket: unknown) => {
      if (!socket) return reject(new Error('the scripted server could not listen'));
      listenSocket = socket;
      resolve(uws.us_socket_local_port(socket));
    }),
  );
  return Object.assign(server, {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      uws.us_listen_socket_close(listenSocket);
      app.close();
    },
  });
}

async function withServer(script: Script, body: (server: ScriptedServer) => Promise<void>): Promise<void> {
  const server = await scriptedServer(script);
  try {
    await body(server);
  } finally {
    server.close();
  }
}

describe('WebSocket against a scripted server', () => {
  test('a nack with retry_after_ms: the batch is resent after the delay with the same batch_id; the key is offered as a subprotocol', async () => {
    const nack = (frame: Frame): string => JSON.stringify({ type: 'nack', batch_id: frame.batch_id, error: { code: 'ERR_INGEST_OVERLOADED', message: 'ring full' }, retry_after_ms: 300 });
    await withServer((socket, frame, seen) => socket.send(seen === 1 ? nack(frame) : ack(frame)), async (server) => {
      const client = new FloodgateClient({ url: server.url, apiKey: 'fgk_test-key', transport: 'websocket', WebSocket, retry: { baseMs: 1, maxMs: 10 } });
      const receipts = [client.track({ event_type: 'a' }), client.track({ event_type: 'b' })];
      await client.close();
      assert.deepEqual((await Promise.all(receipts)).map((result) => result.index), [0, 1]);
      assert.equal(server.frames.length, 2);
      const [first, second] = server.frames;
      assert.equal(first!.frame.batch_id, second!.frame.batch_id);
      assert.deepEqual(first!.frame.events, second!.frame.events);
      assert.ok(second!.atMs - first!.atMs >= 290, `resent ${second!.atMs - first!.atMs} ms later, the nack said 300`);
      assert.equal(server.connections, 1, 'a nack does not end the connection');
      assert.deepEqual(server.offeredProtocols, ['floodgate.v1, floodgate.key.fgk_test-key']);
    });
  });

  test('a nack without retry_after_ms fails the batch\'s events at once, with its code', async () => {
    const refuse = (frame: Frame): string => JSON.stringify({ type: 'nack', batch_id: frame.batch_id, error: { code: 'ERR_INGEST_TOO_MANY_EVENTS', message: 'too many' } });
    await withServer((socket, frame) => socket.send(refuse(frame)), async (server) => {
      const failed: FloodgateEventError[] = [];
      const client = new FloodgateClient({ url: server.url, transport: 'websocket', WebSocket, onError: (error) => failed.push(error) });
      const receipt = client.track({ event_type: 'a' });
      client.track({ event_type: 'b' });
      await client.close();
      await assert.rejects(receipt, { code: 'ERR_INGEST_TOO_MANY_EVENTS', index: 0 });
      assert.deepEqual(failed.map((error) => error.code), ['ERR_INGEST_TOO_MANY_EVENTS', 'ERR_INGEST_TOO_MANY_EVENTS']);
      assert.equal(server.frames.length, 1, 'not retried');
      assert.deepEqual(server.offeredProtocols, ['floodgate.v1'], 'without a key, only the version is offered');
    });
  });

  test('the connection closes with batches in flight: the client reconnects and resends each with its batch_id', async () => {
    // The first connection takes three batches and closes without acking any of them.
    await withServer((socket, frame, seen) => (seen === 3 ? socket.end(1011, 'going away') : seen > 3 ? socket.send(ack(frame)) : undefined), async (server) => {
      const client = new FloodgateClient({ url: server.url, transport: 'websocket', WebSocket, batchEvents: 10, retry: { baseMs: 20, maxMs: 100 } });
      const receipts = Array.from({ length: 30 }, (_, i) => client.track({ event_type: 'r', event_id: `r-${i}` }));
      await client.close();
      assert.equal((await Promise.all(receipts)).length, 30);
      const firstIds = server.frames.filter((entry) => entry.connection === 1).map((entry) => entry.frame.batch_id).sort();
      const resentIds = server.frames.filter((entry) => entry.connection > 1).map((entry) => entry.frame.batch_id).sort();
      assert.equal(firstIds.length, 3);
      assert.deepEqual(resentIds, firstIds, 'the same three batches, by batch_id, on a new connection');
      assert.equal(client.stats().batchesRetried, 3);
    });
  });

  test('an ack that never comes: after timeoutMs the client reconnects and resends', async () => {
    await withServer((socket, frame, seen) => (seen === 1 ? undefined : socket.send(ack(frame))), async (server) => {
      const client = new FloodgateClient({ url: server.url, transport: 'websocket', WebSocket, timeoutMs: 300, retry: { baseMs: 1, maxMs: 10 } });
      const receipt = client.track({ event_type: 'slow' });
      await client.close();
      assert.equal((await receipt).status, 'accepted');
      assert.deepEqual(server.frames.map((entry) => entry.connection), [1, 2]);
      assert.equal(server.frames[0]!.frame.batch_id, server.frames[1]!.frame.batch_id);
    });
  });

  test('nothing listening: attempts are bounded and the events fail naming the last error', async () => {
    const port = await freePort();
    const client = new FloodgateClient({ url: `http://127.0.0.1:${port}`, transport: 'websocket', WebSocket, retry: { attemptsMax: 3, baseMs: 1, maxMs: 5 } });
    const receipt = client.track({ event_type: 'nowhere' });
    await client.close();
    await assert.rejects(receipt, (error: FloodgateEventError) => {
      assert.equal(error.code, 'ERR_CLIENT_RETRIES_EXHAUSTED');
      assert.match(error.message, /after 3 attempts.*ERR_CLIENT_NETWORK/);
      return true;
    });
  });
});

describe('WebSocket against a real engine', () => {
  let engine: TestEngine;
  before(async () => {
    engine = await startTestEngine();
  });
  after(async () => {
    await engine.close();
  });

  test('500 events in batches of 100 over one connection: stored once, per-event errors on the right events', async () => {
    const source = marker('ws');
    const failures: FloodgateEventError[] = [];
    const client = new FloodgateClient({ url: engine.baseUrl, transport: 'websocket', WebSocket, onError: (error) => failures.push(error) });
    const receipts = Array.from({ length: 500 }, (_, i) =>
      client.track(i === 250 ? { event_type: 'ws', source, timestamp: 'not a time' } : { event_type: 'ws', source, attributes: { i } }),
    );
    await client.flush();
    const outcomes = await Promise.allSettled(receipts);
    assert.deepEqual(outcomes.flatMap((outcome, i) => (outcome.status === 'rejected' ? [i] : [])), [250]);
    assert.deepEqual(failures.map((error) => [error.index, error.code, error.field]), [[50, 'ERR_EVENT_TIMESTAMP_FORMAT', 'timestamp']]);
    // An event_id sent again, in a batch of its own, is a duplicate.
    const timestamp = Date.now() - 60_000;
    const again = client.track({ event_type: 'ws', source, event_id: `${source}-dup`, timestamp });
    await client.flush();
    const repeat = client.track({ event_type: 'ws', source, event_id: `${source}-dup`, timestamp });
    await client.close();
    assert.equal((await again).status, 'accepted');
    assert.equal((await repeat).status, 'duplicate');
    const [row] = await engine.query<{ rows: number; ids: number }>('SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS ids FROM events WHERE source = $1', [source]);
    assert.deepEqual(row, { rows: 500, ids: 500 }, '499 tracked + the one sent twice');
    assert.equal(client.stats().batchesRetried, 0);
  });
});

test('keys required: an ingest key offered as a subprotocol is accepted; a wrong one fails after attemptsMax, nothing stored', async () => {
  const adminKey = generateKey();
  const engine = await startTestEngine({ authMode: 'required', adminKey });
  try {
    const created = await callRoute(engine.baseUrl, 'POST', '/v1/keys', { authorization: `Bearer ${adminKey}` }, { name: 'sdk', scopes: ['ingest'] });
    assert.equal(created.status, 201, created.text);
    const source = marker('keyed');
    const client = new FloodgateClient({ url: engine.baseUrl, apiKey: created.json.key as string, transport: 'websocket', WebSocket });
    const receipts = Array.from({ length: 20 }, () => client.track({ event_type: 'keyed', source }));
    await client.close();
    assert.equal((await Promise.all(receipts)).length, 20);
    const refused = new FloodgateClient({ url: engine.baseUrl, apiKey: generateKey(), transport: 'websocket', WebSocket, retry: { attemptsMax: 2, baseMs: 1, maxMs: 5 } });
    const receipt = refused.track({ event_type: 'keyed', source });
    await refused.close();
    await assert.rejects(receipt, { code: 'ERR_CLIENT_RETRIES_EXHAUSTED' });
    const [row] = await engine.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE source = $1', [source]);
    assert.equal(row!.n, 20);
  } finally {
    await engine.close();
  }
});
