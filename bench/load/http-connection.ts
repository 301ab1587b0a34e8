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
