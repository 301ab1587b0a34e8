/**
 * Reads a request body under limits, while it streams in.
 *
 * uWebSockets.js hands each chunk as an ArrayBuffer that is detached when the callback
 * returns, so every chunk is copied at once. With a Content-Length the whole body goes
 * into one buffer allocated up front (its size was checked against bodyBytesMax before);
 * without one, chunks are collected and joined at the end. Bytes beyond bodyBytesMax, or
 * beyond the declared length, stop the read at that chunk; a body that does not complete
 * within bodyTimeoutMs stops with a timeout (slow clients trickling a body).
 */
import type { ErrorInfo } from '../errors';
import type { UwsHttpResponse } from './uws';

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
  const whole = contentLength !== null ? Buffer.allocUnsafe(contentLength) : null;
  const chunks: Buffer[] = [];
  let received = 0;
  let finished = false;
  const timer = setTimeout(() => {
    finish();
    options.onError({ code: 'ERR_INGEST_BODY_TIMEOUT', message: `request body not received within ${options.bodyTimeoutMs} ms (got ${received} bytes)` });
  }, options.bodyTimeoutMs);
  const finish = (): void => {
    finished = true;
    clearTimeout(timer);
  };
  res.onData((chunk, isLast) => {
    if (finished) return;
    const bytes = new Uint8Array(chunk);
    const total = received + bytes.byteLength;
    if (total > bodyBytesMax || (contentLength !== null && total > contentLength)) {
      finish();
      const limit = contentLength !== null && contentLength < bodyBytesMax ? `the declared Content-Length ${contentLength}` : `bodyBytesMax (${bodyBytesMax} bytes)`;
      options.onError({ code: 'ERR_INGEST_BODY_TOO_LARGE', message: `request body exceeds ${limit}` });
      return;
    }
    if (whole !== null) whole.set(bytes, received);
    else chunks.push(Buffer.from(bytes));
    received = total;
    const problem = options.inspect?.(bytes) ?? null;
    if (problem !== null) {
      finish();
      options.onError(problem);
      return;
    }
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
