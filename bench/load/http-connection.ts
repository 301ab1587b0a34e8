/**
 * One keep-alive HTTP/1.1 connection that sends one request at a time and reads answers
 * framed by Content-Length (both targets, uWebSockets.js and Fastify, frame every answer
 * that way). node:http's client costs several times more CPU per request than this, and
 * on a 2-core machine every microsecond the client spends is taken from the engine.
 * Anything it does not understand (chunked answers, bytes after an answer) is an error,
 * not a guess.
 */
import net from 'node:net';

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

export type AnswerCallback = (error: Error | null, answer: HttpAnswer | null) => void;

const headerEnd = Buffer.from('\r\n\r\n');
/** An answer head larger than this is not from our targets: fail instead of buffering. */
const headBytesMax = 16 * 1024;

export class HttpConnection {
  readonly #host: string;
  readonly #port: number;
  #socket: net.Socket | null = null;
  #callback: AnswerCallback | null = null;
  #buffer: Buffer = Buffer.alloc(0);
  /** Set once the head is parsed: total bytes of the answer (head + body). */
  #answerBytes = -1;
  #status = 0;
  #closeAfter = false;
  /** performance.now() when the pending request was sent; 0 when idle. */
  sentAtMs = 0;

  constructor(host: string, port: number) {
    this.#host = host;
    this.#port = port;
  }

  get busy(): boolean {
    return this.#callback !== null;
  }

  send(head: Buffer, body: Buffer, callback: AnswerCallback): void {
    if (this.#callback !== null) throw new Error('HttpConnection: one request at a time');
    this.#callback = callback;
    this.sentAtMs = performance.now();
    const socket = this.#socket ?? this.#connect();
    socket.cork();
    socket.write(head);
    socket.write(body);
    process.nextTick(() => socket.uncork());
  }

  /** Closes the socket; a pending request fails with `reason`. */
  destroy(reason: string): void {
    const socket = this.#socket;
    this.#socket = null;
    socket?.destroy();
    this.#fail(new Error(reason));
  }

  #connect(): net.Socket {
    const socket = net.connect({ host: this.#host, port: this.#port });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (error) => {
      if (this.#socket === socket) this.#socket = null;
      this.#fail(error);
    });
    socket.on('close', () => {
      if (this.#socket === socket) this.#socket = null;
      this.#fail(new Error('connection closed by the server'));
    });
    this.#socket = socket;
    this.#buffer = Buffer.alloc(0);
    this.#answerBytes = -1;
    return socket;
  }

  #fail(error: Error): void {
    const callback = this.#callback;
    this.#reset();
    callback?.(error, null);
  }

  #reset(): void {
    this.#callback = null;
    this.sentAtMs = 0;
    this.#buffer = Buffer.alloc(0);
    this.#answerBytes = -1;
    this.#closeAfter = false;
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    if (this.#answerBytes < 0 && !this.#parseHead()) return;
    if (this.#buffer.length < this.#answerBytes) return;
    if (this.#buffer.length > this.#answerBytes || this.#callback === null) {
      this.destroy('unexpected bytes after the answer (pipelining is not used)');
      return;
    }
    const headBytes = this.#buffer.indexOf(headerEnd) + headerEnd.length;
    const answer = { status: this.#status, body: this.#buffer.toString('utf8', headBytes, this.#answerBytes) };
    const callback = this.#callback;
    const closeAfter = this.#closeAfter;
    this.#reset();
    if (closeAfter) {
      const socket = this.#socket;
      this.#socket = null;
      socket?.destroy();
    }
    callback(null, answer);
  }

  /** Returns true once the head is complete and parsed; fails the request on a bad head. */
  #parseHead(): boolean {
    const end = this.#buffer.indexOf(headerEnd);
    if (end < 0) {
      if (this.#buffer.length > headBytesMax) this.destroy('answer head too large');
      return false;
    }
    const head = this.#buffer.toString('latin1', 0, end);
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (status === null || length === null || /\r\ntransfer-encoding:/i.test(head)) {
      this.destroy(`unsupported answer framing: ${head.split('\r\n', 1)[0] ?? ''}`);
      return false;
    }
    this.#status = Number(status[1]);
    this.#closeAfter = /\r\nconnection:\s*close/i.test(head);
    this.#answerBytes = end + headerEnd.length + Number(length[1]);
    return true;
  }
}

/**
 * The request head for a body of `bodyBytes` bytes (the same for every stamped body), with
 * an Authorization header when the run sends an API key (./api-key.ts).
 */
export function requestHead(host: string, port: number, route: string, contentType: string, bodyBytes: number, authorization: string | null = null): Buffer {
  const auth = authorization === null ? '' : `Authorization: ${authorization}\r\n`;
  return Buffer.from(
    `POST ${route} HTTP/1.1\r\nHost: ${host}:${port}\r\n${auth}Content-Type: ${contentType}\r\nContent-Length: ${bodyBytes}\r\n\r\n`,
    'latin1',
  );
}

/** What the load client needs of a connection, HTTP or stream. */
export interface LoadConnection {
  readonly busy: boolean;
  /** performance.now() when the oldest unanswered request was sent; 0 when idle. */
  readonly sentAtMs: number;
  send(head: Buffer, body: Buffer, callback: AnswerCallback, batchId?: string): void;
  destroy(reason: string): void;
}

const zeroMask = Buffer.alloc(4);

/**
 * One WebSocket to GET /v1/events/stream that carries many batches at once, each answered
 * by an ack or nack frame naming its batch_id (docs/stream.md). Hand-written for the same
 * reason as HttpConnection: the client's CPU is taken from the engine. Frames go out
 * masked with a zero key (the XOR is then a no-op; the engine does not judge the key).
 * An ack is reported as status 200, a nack as 503 when it may be resent, else 400.
 */
export class StreamConnection implements LoadConnection {
  readonly #host: string;
  readonly #port: number;
  readonly #upgrade: Buffer;
  readonly #pending = new Map<string, { callback: AnswerCallback; sentAtMs: number }>();
  #socket: net.Socket | null = null;
  #open = false;
  #waiting: Buffer[] = [];
  #buffer: Buffer = Buffer.alloc(0);

  constructor(host: string, port: number, path: string, authorization: string | null) {
    this.#host = host;
    this.#port = port;
    const auth = authorization === null ? '' : `Authorization: ${authorization}\r\n`;
    this.#upgrade = Buffer.from(
      `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\n${auth}Connection: Upgrade\r\nUpgrade: websocket\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${Buffer.from('floodgate-bench!').toString('base64')}\r\n\r\n`,
      'latin1',
    );
  }

  get busy(): boolean {
    return this.#pending.size > 0;
  }

  get sentAtMs(): number {
    for (const entry of this.#pending.values()) return entry.sentAtMs;
    return 0;
  }

  send(_head: Buffer, body: Buffer, callback: AnswerCallback, batchId?: string): void {
    if (batchId === undefined) throw new Error('StreamConnection: every batch needs its batch_id');
    this.#pending.set(batchId, { callback, sentAtMs: performance.now() });
    const frame = [frameHead(body.length, body[0] === 0x7b ? 0x1 : 0x2), body];
    if (!this.#open) {
      if (this.#socket === null) this.#connect();
      this.#waiting.push(...frame);
      return;
    }
    const socket = this.#socket as net.Socket;
    socket.cork();
    for (const part of frame) socket.write(part);
    process.nextTick(() => socket.uncork());
  }

  destroy(reason: string): void {
    const socket = this.#socket;
    this.#socket = null;
    this.#open = false;
    socket?.destroy();
    this.#failAll(new Error(reason));
  }

  #connect(): void {
    const socket = net.connect({ host: this.#host, port: this.#port });
    socket.setNoDelay(true);
    socket.write(this.#upgrade);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (error) => this.#lost(socket, error));
    socket.on('close', () => this.#lost(socket, new Error('connection closed by the server')));
    this.#socket = socket;
    this.#buffer = Buffer.alloc(0);
  }

  #lost(socket: net.Socket, error: Error): void {
    if (this.#socket !== socket) return;
    this.#socket = null;
    this.#open = false;
    this.#waiting = [];
    this.#failAll(error);
  }

  #failAll(error: Error): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const { callback } of pending) callback(error, null);
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    if (!this.#open) {
      const end = this.#buffer.indexOf(headerEnd);
      if (end < 0) return;
      const status = this.#buffer.toString('latin1', 0, Math.min(end, 64));
      if (!status.startsWith('HTTP/1.1 101')) return this.destroy(`upgrade refused: ${status.split('\r\n', 1)[0] ?? ''}`);
      this.#buffer = this.#buffer.subarray(end + headerEnd.length);
      this.#open = true;
      const socket = this.#socket as net.Socket;
      for (const part of this.#waiting.splice(0)) socket.write(part);
    }
    this.#readFrames();
  }

  #readFrames(): void {
    for (;;) {
      const frame = serverFrameAt(this.#buffer);
      if (frame === null) return;
      this.#buffer = this.#buffer.subarray(frame.bytes);
      const { opcode, payload } = frame;
      if (opcode === 0x8) return this.destroy(`closed by the engine (${payload.length >= 2 ? payload.readUInt16BE(0) : 'no code'})`);
      if (opcode === 0x9) this.#socket?.write(Buffer.concat([frameHead(payload.length, 0xa), payload]));
      if (opcode === 0x1) this.#answer(payload.toString('utf8'));
    }
  }

  #answer(text: string): void {
    const frame = JSON.parse(text) as { type: string; batch_id: string | null; retry_after_ms?: number };
    const entry = frame.batch_id === null ? undefined : this.#pending.get(frame.batch_id);
    if (entry === undefined) return this.destroy(`an answer for no batch in flight: ${text.slice(0, 120)}`);
    this.#pending.delete(frame.batch_id as string);
    const status = frame.type === 'ack' ? 200 : frame.retry_after_ms === undefined ? 400 : 503;
    entry.callback(null, { status, body: text });
  }
}

/** A client frame's head: FIN, the opcode, the mask bit with the length, and a zero mask. */
export function frameHead(length: number, opcode: number): Buffer {
  if (length < 126) return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | length]), zeroMask]);
  if (length < 65_536) return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 0xff]), zeroMask]);
  const head = Buffer.alloc(14);
  head[0] = 0x80 | opcode;
  head[1] = 0x80 | 127;
  head.writeBigUInt64BE(BigInt(length), 2);
  return head;
}

/** The server frame (unmasked) at the start of `buffer`, or null while it is incomplete. */
export function serverFrameAt(buffer: Buffer): { opcode: number; payload: Buffer; bytes: number } | null {
  if (buffer.length < 2) return null;
  let length = (buffer[1] as number) & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buffer.length < 4) return null;
    length = buffer.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buffer.length < 10) return null;
    length = Number(buffer.readBigUInt64BE(2));
    offset = 10;
  }
  if (buffer.length < offset + length) return null;
  return { opcode: (buffer[0] as number) & 0x0f, payload: buffer.subarray(offset, offset + length), bytes: offset + length };
}
