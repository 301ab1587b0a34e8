/**
 * Reads a request body under limits, while it streams in.
 *
 * uWebSockets.js hands each chunk as an ArrayBuffer that is detached when the callback
 * returns, so every chunk is copied at once. With a Content-Length the body goes into one
 * buffer that grows by doubling, never past the declared length, so the finished body
 * needs no final join; without one, chunks are collected and joined at the end. The
 * buffer follows what arrived rather than what was declared: allocating the declared
 * length up front let headers alone reserve bodyBytesMax per connection (measured by
 * test/fuzz: 400 connections declaring 64 MiB and sending one byte each pinned 26.8 GB of
 * external memory). Bytes beyond bodyBytesMax, or
 * beyond the declared length, stop the read at that chunk, and so does an error `inspect`
 * finds; the rest of such a body is then drained (src/ingress/body-drain.ts) before
 * onError is called, so that the client reads the answer. A body that does not complete
 * within bodyTimeoutMs stops with a timeout (slow clients trickling a body).
 */
import type { ErrorInfo } from '../errors';
import { isDrainable, startBodyDrain, type BodyDrain } from './body-drain';
import type { UwsHttpRequest, UwsHttpResponse } from './uws';

/** Content-Length as the client declared it: null when absent, -1 when not a decimal number (refuse with notDecimalLength). */
export function declaredLengthOf(req: UwsHttpRequest): number | null {
  const text = req.getHeader('content-length');
  return text === '' ? null : /^\d{1,15}$/.test(text) ? Number(text) : -1;
}

export const notDecimalLength = { code: 'ERR_INGEST_BAD_HEADER', message: 'Content-Length is not a decimal number' } as const satisfies ErrorInfo;

export interface BodyReadOptions {
  readonly contentLength: number | null;
  readonly bodyBytesMax: number;
  readonly bodyTimeoutMs: number;
  /** Sees each chunk as it arrives; returning an error stops the read (e.g. too many events). */
  readonly inspect?: (chunk: Uint8Array) => ErrorInfo | null;
  readonly onBody: (body: Buffer) => void;
  readonly onError: (error: ErrorInfo) => void;
}

/** Starts reading; the caller must already have attached res.onAborted and call the returned cancel on abort. */
export function readBody(res: UwsHttpResponse, options: BodyReadOptions): () => void {
  const { contentLength, bodyBytesMax } = options;
  let whole: Buffer | null = contentLength !== null ? emptyBody : null;
  const chunks: Buffer[] = [];
  let received = 0;
  let finished = false;
  let drain: BodyDrain | null = null;
  const timer = setTimeout(() => {
    finish();
    options.onError({ code: 'ERR_INGEST_BODY_TIMEOUT', message: `request body not received within ${options.bodyTimeoutMs} ms (got ${received} bytes)` });
  }, options.bodyTimeoutMs);
  const finish = (): void => {
    finished = true;
    clearTimeout(timer);
    drain?.cancel();
  };
  /** Refuses the body at this chunk: the answer waits until the rest is drained. */
  const refuse = (error: ErrorInfo, total: number, isLast: boolean): void => {
    finish();
    // Nothing more is coming when the declared length is already reached.
    const restBytes = contentLength === null ? null : contentLength - total;
    if (isLast || (restBytes !== null && restBytes <= 0) || !isDrainable(restBytes)) return options.onError(error);
    drain = startBodyDrain(() => options.onError(error));
  };
  res.onData((chunk, isLast) => {
    if (drain !== null) {
      drain.discard(chunk.byteLength, isLast);
      return;
    }
    if (finished) return;
    const bytes = new Uint8Array(chunk);
    const total = received + bytes.byteLength;
    if (total > bodyBytesMax || (contentLength !== null && total > contentLength)) {
      const limit = contentLength !== null && contentLength < bodyBytesMax ? `the declared Content-Length ${contentLength}` : `bodyBytesMax (${bodyBytesMax} bytes)`;
      return refuse({ code: 'ERR_INGEST_BODY_TOO_LARGE', message: `request body exceeds ${limit}` }, total, isLast);
    }
    if (whole !== null) {
      const target = total <= whole.length ? whole : grown(whole, received, Math.min(contentLength ?? total, Math.max(total, whole.length * 2, firstBodyBytes)));
      target.set(bytes, received);
      whole = target;
    } else chunks.push(Buffer.from(bytes));
    received = total;
    const problem = options.inspect?.(bytes) ?? null;
    if (problem !== null) return refuse(problem, total, isLast);
    if (!isLast) return;
    finish();
    if (whole !== null && received !== contentLength) {
      options.onError({ code: 'ERR_INGEST_MALFORMED_BODY', message: `request body ended after ${received} of ${contentLength} declared bytes` });
      return;
    }
    options.onBody(whole ?? Buffer.concat(chunks, received));
  });
  return finish;
}

const emptyBody = Buffer.alloc(0);
/**
 * The smallest buffer a body with a Content-Length starts in (or its declared length, if
 * less): typical single events and small batches fit in one allocation, and a client that
 * declares megabytes but sends one byte holds 16 KiB.
 */
const firstBodyBytes = 16 * 1024;

/** A buffer of `size` bytes holding the first `used` bytes of `buffer`. */
function grown(buffer: Buffer, used: number, size: number): Buffer {
  const next = Buffer.allocUnsafe(size);
  buffer.copy(next, 0, 0, used);
  return next;
}
