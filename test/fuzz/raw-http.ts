/**
 * HTTP/1.1 over a bare net.Socket, for the fuzz suite: fetch refuses to send what hostile
 * clients send (CR/LF in header values, a Content-Length that is not a number, a body
 * that stops halfway) and hides what the server did with the connection. Here every byte
 * on the wire is the test's, and the answer says whether the server closed the socket.
 */
import net from 'node:net';
import { errorCatalogue, type ErrorCode } from '../../src/errors';

export type Framing = 'length' | 'chunked';

export interface RawRequest {
  readonly method?: string;
  readonly path: string;
  /** Sent as given, in order, after Host; values may hold any byte (latin1). */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Uint8Array;
  /** `length`: Content-Length (unless a header already names one); `chunked`: Transfer-Encoding. */
  readonly framing: Framing;
  /** Chunk size for chunked framing; the body goes in chunks of about this size. */
  readonly chunkBytes?: number;
}

export interface RawAnswer {
  /** null when the connection ended (or the wait ran out) before a status line. */
  readonly status: number | null;
  /** Lower-case names; a repeated header keeps every value. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly body: Buffer;
  /** The server closed the connection (after answering, or instead of answering). */
  readonly closedByServer: boolean;
  /** No complete answer, and no close, within the wait. */
  readonly timedOut: boolean;
  readonly elapsedMs: number;
}

/** The request's bytes: head, then the body framed as asked. */
export function encodeRequest(request: RawRequest): Buffer[] {
  const lines = [`${request.method ?? 'POST'} ${request.path} HTTP/1.1`, 'Host: 127.0.0.1'];
  const named = new Set(request.headers.map(([name]) => name.toLowerCase()));
  for (const [name, value] of request.headers) lines.push(`${name}: ${value}`);
  if (request.framing === 'chunked') lines.push('Transfer-Encoding: chunked');
  else if (!named.has('content-length')) lines.push(`Content-Length: ${request.body.length}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  if (request.framing === 'length') return [head, Buffer.from(request.body)];
  const pieces: Buffer[] = [head];
  const size = Math.max(1, request.chunkBytes ?? 16 * 1024);
  for (let start = 0; start < request.body.length; start += size) pieces.push(chunk(request.body.subarray(start, start + size)));
  pieces.push(Buffer.from('0\r\n\r\n', 'latin1'));
  return pieces;
}

/** One chunk of a chunked body: size in hex, CRLF, bytes, CRLF. */
export function chunk(bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`, 'latin1'), bytes, Buffer.from('\r\n', 'latin1')]);
}

export interface ExchangeOptions {
  /** Longest wait for a complete answer (or a close without one). */
  readonly timeoutMs: number;
  /** After a complete answer, how long to wait for the server to close the socket. */
  readonly awaitCloseMs?: number;
}

/**
 * Connects, writes `pieces` in order and reads one answer. Write errors are ignored: a
 * server that refuses a body early (413) may close while the client is still writing,
 * and the answer it sent first is what the test wants.
 */
export function exchange(port: number, pieces: readonly Uint8Array[], options: ExchangeOptions): Promise<RawAnswer> {
  const startedAt = performance.now();
  const socket = net.connect(port, '127.0.0.1');
  return new Promise((resolve) => {
    const reader = new AnswerReader();
    let settled = false;
    let closeTimer: NodeJS.Timeout | undefined;
    const settle = (closedByServer: boolean, timedOut: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(closeTimer);
      socket.destroy();
      resolve({ ...reader.answer(), closedByServer, timedOut, elapsedMs: performance.now() - startedAt });
    };
    const timer = setTimeout(() => settle(false, !reader.complete), options.timeoutMs);
    socket.on('error', () => undefined);
    socket.on('close', () => settle(true, false));
    socket.on('data', (data: Buffer) => {
      reader.push(data);
      if (!reader.complete || closeTimer !== undefined) return;
      const awaitCloseMs = options.awaitCloseMs ?? 0;
      if (awaitCloseMs === 0) settle(false, false);
      else closeTimer = setTimeout(() => settle(false, false), awaitCloseMs);
    });
    for (const piece of pieces) socket.write(piece);
  });
}

/** Collects the bytes of one HTTP/1.1 answer until its Content-Length is met. */
export class AnswerReader {
  #buffer = Buffer.alloc(0);

  push(data: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, data]);
  }

  get complete(): boolean {
    const parsed = this.#parse();
    return parsed !== null && parsed.body.length >= parsed.contentLength;
  }

  answer(): Pick<RawAnswer, 'status' | 'headers' | 'body'> {
    const parsed = this.#parse();
    if (parsed === null) return { status: null, headers: new Map(), body: Buffer.alloc(0) };
    return { status: parsed.status, headers: parsed.headers, body: parsed.body.subarray(0, parsed.contentLength) };
  }

  #parse(): { status: number; headers: Map<string, string[]>; body: Buffer; contentLength: number } | null {
    const end = this.#buffer.indexOf('\r\n\r\n');
    if (end === -1) return null;
    const [statusLine = '', ...lines] = this.#buffer.toString('latin1', 0, end).split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    if (status === null) return null;
    const headers = new Map<string, string[]>();
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
    }
    const contentLength = Number(headers.get('content-length')?.[0] ?? 0);
    return { status: Number(status[1]), headers, body: this.#buffer.subarray(end + 4), contentLength };
  }
}

/** The single value of a header, or undefined; repeated values are joined as HTTP would. */
export function headerOf(answer: Pick<RawAnswer, 'headers'>, name: string): string | undefined {
  return answer.headers.get(name)?.join(', ');
}

export interface CatalogueError {
  readonly code: ErrorCode;
  readonly message: string;
}

/**
 * The error an answer body carries, in any of Floodgate's shapes: `{error: {code, message}}`
 * (v1 routes and every request-level error), `{error: "CODE", message}` (webhook single
 * event) or `{error_details: [{code, message}]}` (webhook batch). Null when there is
 * none, or when the code is not in the catalogue or the message is empty.
 */
export function catalogueErrorOf(body: unknown): CatalogueError | null {
  if (typeof body !== 'object' || body === null) return null;
  const fields = body as Record<string, unknown>;
  const candidates: unknown[] = [fields.error, { code: fields.error, message: fields.message }];
  if (Array.isArray(fields.error_details)) candidates.push(fields.error_details[0]);
  for (const candidate of candidates) {
    if (typeof candidate !== 'object' || candidate === null) continue;
    const { code, message } = candidate as Record<string, unknown>;
    if (typeof code === 'string' && Object.hasOwn(errorCatalogue, code) && typeof message === 'string' && message.length > 0) {
      return { code: code as ErrorCode, message };
    }
  }
  return null;
}

/** The body as JSON, or undefined when it is not JSON. */
export function jsonOf(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * A connection the test drives by hand, for slow and vanishing clients: write when it
 * likes, stop writing, or drop the socket, and see when the server answers and closes.
 */
export class RawConnection {
  readonly #socket: net.Socket;
  readonly #reader = new AnswerReader();
  readonly #startedAt = performance.now();
  #closedAfterMs: number | null = null;
  readonly #closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('error', () => undefined);
    socket.on('data', (data: Buffer) => this.#reader.push(data));
    this.#closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.#closedAfterMs = performance.now() - this.#startedAt;
        resolve();
      }),
    );
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  get isClosed(): boolean {
    return this.#closedAfterMs !== null;
  }

  /** Milliseconds from connecting to the close, or null while open. */
  get closedAfterMs(): number | null {
    return this.#closedAfterMs;
  }

  get answer(): Pick<RawAnswer, 'status' | 'headers' | 'body'> {
    return this.#reader.answer();
  }

  write(bytes: Uint8Array): void {
    if (!this.isClosed) this.#socket.write(bytes);
  }

  /** Resolves once the server closed the socket, or after `timeoutMs` (then false). */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([this.#closed, timedOut]);
    clearTimeout(timer);
    return this.isClosed;
  }

  /** Drops the connection from the client side, as a vanishing client does. */
  destroy(): void {
    this.#socket.destroy();
  }
}
