/**
 * The two network transports. Each turns a sealed batch into one attempt and maps the
 * engine's answer onto a BatchAck or a FloodgateBatchError whose `retriable` the batcher
 * acts on (the rule table is in ./batcher.ts, `asBatchError`). Neither retries by itself.
 *
 *   HTTP       POST {url}/v1/events/bulk   Idempotency-Key: <batch_id>   {"events":[…]}
 *   WebSocket  {ws url}/v1/events/stream   text frame {"batch_id":"…","events":[…]}
 *              ◀ {"type":"ack","batch_id",…} | {"type":"nack","batch_id","error","retry_after_ms"?}
 */
import { FloodgateBatchError, isRetriableStatus, type BatchAck, type EventErrorDetail, type OutgoingBatch, type SendBatch } from './batcher';

/** The part of `fetch` the HTTP transport uses (globalThis.fetch, undici's, or a test double). */
export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: string | Uint8Array; signal: AbortSignal }) => Promise<{
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}>;

export interface HttpTransportSettings {
  readonly url: string;
  readonly apiKey: string | null;
  readonly gzip: boolean;
  readonly timeoutMs: number;
  readonly fetch: FetchLike;
}

export function httpTransport(settings: HttpTransportSettings): SendBatch {
  const endpoint = `${settings.url.replace(/\/+$/, '')}/v1/events/bulk`;
  const baseHeaders: Record<string, string> = { 'content-type': 'application/json' };
  if (settings.apiKey !== null) baseHeaders.authorization = `Bearer ${settings.apiKey}`;
  if (settings.gzip) baseHeaders['content-encoding'] = 'gzip';
  // A batch never changes, so a resend reuses the bytes compressed for its first attempt.
  const compressed = new WeakMap<OutgoingBatch, Uint8Array>();
  return async (batch) => {
    const text = `{"events":${batch.eventsJson}}`;
    let body: string | Uint8Array = text;
    if (settings.gzip) {
      body = compressed.get(batch) ?? (await gzip(text));
      compressed.set(batch, body);
    }
    const headers = { ...baseHeaders, 'idempotency-key': batch.batchId };
    let status: number;
    let retryAfter: string | null;
    let answer: string;
    try {
      const response = await settings.fetch(endpoint, { method: 'POST', headers, body, signal: AbortSignal.timeout(settings.timeoutMs) });
      status = response.status;
      retryAfter = response.headers.get('retry-after');
      answer = await response.text();
    } catch (error) {
      throw networkError(error, settings.timeoutMs);
    }
    return httpOutcome(status, retryAfter, answer);
  };
}

function networkError(error: unknown, timeoutMs: number): FloodgateBatchError {
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return new FloodgateBatchError('ERR_CLIENT_TIMEOUT', `no answer within ${timeoutMs} ms (timeoutMs)`, { retriable: true, cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new FloodgateBatchError('ERR_CLIENT_NETWORK', `the request failed: ${message}`, { retriable: true, cause: error });
}

/** Gzip with CompressionStream, which Node 18+ and browsers both have. */
async function gzip(text: string): Promise<Uint8Array> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

interface AnswerBody {
  accepted?: unknown;
  duplicates?: unknown;
  errors?: unknown;
  error?: { code?: unknown; message?: unknown };
}

function parseAnswer(text: string): AnswerBody | null {
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed !== null && typeof parsed === 'object' ? (parsed as AnswerBody) : null;
  } catch {
    return null;
  }
}

/** The engine's answer to one POST: per-event results, or the error the batcher acts on. */
export function httpOutcome(status: number, retryAfter: string | null, text: string): BatchAck {
  const body = parseAnswer(text);
  const ack = body === null ? null : ackOf(body);
  if (status >= 200 && status < 300 && ack !== null) return ack;
  // Every event invalid: an answer with per-event errors, not a refusal of the batch.
  if (status === 400 && ack !== null && ack.errors.length > 0) return ack;
  const retriable = isRetriableStatus(status) || (status >= 200 && status < 300);
  const code = typeof body?.error?.code === 'string' ? body.error.code : `ERR_CLIENT_HTTP_${status}`;
  const message = typeof body?.error?.message === 'string' ? body.error.message : `HTTP ${status}: ${text.slice(0, 200)}`;
  throw new FloodgateBatchError(code, message, { status, retriable, retryAfterMs: retryAfterMsOf(retryAfter) });
}

function ackOf(body: AnswerBody): BatchAck | null {
  const { accepted, duplicates, errors } = body;
  if (typeof accepted !== 'number' || typeof duplicates !== 'number' || !Array.isArray(errors)) return null;
  return { accepted, duplicates, errors: errors as EventErrorDetail[] };
}

/** Retry-After in seconds or as an HTTP date; null when absent or unreadable. */
export function retryAfterMsOf(value: string | null, nowMs: number = Date.now()): number | null {
  if (value === null || value.trim() === '') return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds >= 0 ? Math.round(seconds * 1000) : null;
  const dateMs = Date.parse(value);
  return Number.isNaN(dateMs) ? null : Math.max(0, dateMs - nowMs);
}

/** The part of the WebSocket API the transport uses: the browsers', undici's, or `ws`'s. */
export interface WebSocketLike {
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: any) => void): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface WebSocketTransportSettings {
  readonly url: string;
  readonly apiKey: string | null;
  readonly timeoutMs: number;
  readonly WebSocket: WebSocketConstructor;
}

export const streamProtocol = 'floodgate.v1';

interface PendingBatch {
  readonly resolve: (ack: BatchAck) => void;
  readonly reject: (error: FloodgateBatchError) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** One socket and the batches sent on it; a closed connection fails all of them, retriably. */
interface Connection {
  readonly socket: WebSocketLike;
  readonly pending: Map<string, PendingBatch>;
  closed: boolean;
}

/** `ws(s)://…/v1/events/stream` from the client's url (http(s):// or ws(s)://). */
export function streamUrlOf(url: string): string {
  return `${url.replace(/\/+$/, '').replace(/^http(s?):\/\//i, 'ws$1://')}/v1/events/stream`;
}

/**
 * One connection, opened on the first send and again after any close or error. Batches in
 * flight on a connection that closes are failed retriably, so the batcher resends each,
 * with its batch_id, after its backoff; the first resend opens the next connection.
 */
export class WebSocketTransport {
  readonly #settings: WebSocketTransportSettings;
  readonly #url: string;
  readonly #protocols: string[];
  #connection: Promise<Connection> | null = null;

  constructor(settings: WebSocketTransportSettings) {
    this.#settings = settings;
    this.#url = streamUrlOf(settings.url);
    // Browsers cannot set headers on the upgrade, so the key travels as a subprotocol.
    this.#protocols = settings.apiKey === null ? [streamProtocol] : [streamProtocol, `floodgate.key.${settings.apiKey}`];
  }

  readonly send: SendBatch = async (batch) => {
    const connection = await this.#connect();
    if (connection.closed) throw closedError('the stream closed before the batch was sent');
    return new Promise<BatchAck>((resolve, reject) => {
      const timer = setTimeout(() => this.#drop(connection, timeoutError(this.#settings.timeoutMs)), this.#settings.timeoutMs);
      connection.pending.set(batch.batchId, { resolve, reject, timer });
      try {
        connection.socket.send(`{"batch_id":"${batch.batchId}","events":${batch.eventsJson}}`);
      } catch (error) {
        this.#drop(connection, closedError(`sending on the stream failed: ${String(error)}`));
      }
    });
  };

  /** Closes the connection (1000); batches still in flight fail retriably, as on any close. */
  async close(): Promise<void> {
    const opening = this.#connection;
    this.#connection = null;
    if (opening === null) return;
    const connection = await opening.catch(() => null);
    if (connection === null || connection.closed) return;
    await new Promise<void>((resolve) => {
      connection.socket.addEventListener('close', () => resolve());
      connection.socket.close(1000, 'client closed');
      // A peer that never completes the closing handshake must not hold close() up.
      setTimeout(resolve, 1000);
    });
  }

  #connect(): Promise<Connection> {
    const current = this.#connection;
    if (current !== null) return current;
    const opening = this.#open();
    this.#connection = opening;
    // A failed open is forgotten at once, so the next attempt dials again.
    opening.catch(() => {
      if (this.#connection === opening) this.#connection = null;
    });
    return opening;
  }

  #open(): Promise<Connection> {
    return new Promise<Connection>((resolve, reject) => {
      const socket = new this.#settings.WebSocket(this.#url, this.#protocols);
      const connection: Connection = { socket, pending: new Map(), closed: false };
      let opened = false;
      socket.addEventListener('open', () => {
        opened = true;
        if (socket.protocol !== streamProtocol) {
          const error = new FloodgateBatchError('ERR_CLIENT_PROTOCOL', `the server chose subprotocol "${socket.protocol}", not ${streamProtocol}`, { retriable: false });
          socket.close(1002, 'subprotocol');
          return reject(error);
        }
        resolve(connection);
      });
      socket.addEventListener('message', (event: { data: unknown }) => this.#onMessage(connection, event.data));
      socket.addEventListener('error', () => undefined);
      socket.addEventListener('close', (event: { code?: number; reason?: string }) => {
        const why = `the stream closed (code ${event.code ?? 'none'}${event.reason ? `: ${event.reason}` : ''})`;
        if (!opened) {
          // The browser API hides the upgrade's status: a refused key looks like this too.
          reject(new FloodgateBatchError('ERR_CLIENT_NETWORK', `could not open ${this.#url}: ${why}; a refused API key also ends here`, { retriable: true }));
        }
        this.#drop(connection, closedError(why));
      });
    });
  }

  #onMessage(connection: Connection, data: unknown): void {
    const message = typeof data === 'string' ? parseFrame(data) : null;
    if (message === null) return this.#drop(connection, protocolError('an answer frame that is not a JSON object'));
    const pending = typeof message.batch_id === 'string' ? connection.pending.get(message.batch_id) : undefined;
    if (message.type === 'nack' && pending === undefined) {
      // A nack for no batch of ours (batch_id null: the frame was unreadable) ends the stream.
      const code = typeof message.error?.code === 'string' ? message.error.code : 'ERR_CLIENT_PROTOCOL';
      return this.#drop(connection, new FloodgateBatchError(code, String(message.error?.message ?? 'nack'), { retriable: true }));
    }
    if (pending === undefined) return;
    connection.pending.delete(message.batch_id as string);
    clearTimeout(pending.timer);
    if (message.type === 'ack') {
      const errors = Array.isArray(message.errors) ? (message.errors as EventErrorDetail[]) : [];
      return pending.resolve({ accepted: Number(message.accepted ?? 0), duplicates: Number(message.duplicates ?? 0), errors });
    }
    pending.reject(nackError(message));
  }

  /** Ends a connection: every batch in flight on it fails with `error` (retriable). */
  #drop(connection: Connection, error: FloodgateBatchError): void {
    if (!connection.closed) {
      connection.closed = true;
      try {
        connection.socket.close(1000, 'client reconnects');
      } catch {
        // Already closing or closed.
      }
    }
    for (const [batchId, pending] of connection.pending) {
      connection.pending.delete(batchId);
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    void this.#connection?.then((current) => {
      if (current === connection) this.#connection = null;
    }, () => undefined);
  }
}

interface Frame {
  type?: unknown;
  batch_id?: unknown;
  accepted?: unknown;
  duplicates?: unknown;
  errors?: unknown;
  error?: { code?: unknown; message?: unknown };
  retry_after_ms?: unknown;
}

function parseFrame(text: string): Frame | null {
  const parsed = parseAnswer(text);
  return parsed as Frame | null;
}

function nackError(message: Frame): FloodgateBatchError {
  const code = typeof message.error?.code === 'string' ? message.error.code : 'ERR_CLIENT_PROTOCOL';
  const text = typeof message.error?.message === 'string' ? message.error.message : 'the batch was refused';
  const retryAfterMs = typeof message.retry_after_ms === 'number' && message.retry_after_ms >= 0 ? message.retry_after_ms : null;
  return new FloodgateBatchError(code, text, { retriable: retryAfterMs !== null, retryAfterMs });
}

function closedError(message: string): FloodgateBatchError {
  return new FloodgateBatchError('ERR_CLIENT_STREAM_CLOSED', message, { retriable: true });
}

function timeoutError(timeoutMs: number): FloodgateBatchError {
  return new FloodgateBatchError('ERR_CLIENT_TIMEOUT', `no ack within ${timeoutMs} ms (timeoutMs); reconnecting`, { retriable: true });
}

function protocolError(what: string): FloodgateBatchError {
  return new FloodgateBatchError('ERR_CLIENT_PROTOCOL', `the server sent ${what}`, { retriable: true });
}
