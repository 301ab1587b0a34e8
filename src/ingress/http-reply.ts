/**
 * Writing HTTP answers with uWebSockets.js. Every answer is JSON and carries
 * X-Request-ID. uWebSockets.js requires writes made outside the route handler's own tick
 * to be corked, so every write goes through `reply`, which always corks: corking an
 * already-corked response is cheap.
 */
import { errorCatalogue, type ErrorCode } from '../errors';
import { writeCorsHeaders } from './cors';
import { echoableRequestId } from './request-id';
import type { UwsHttpResponse } from './uws';

export { echoableRequestId } from './request-id';

const statusLines: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  202: '202 Accepted',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  408: '408 Request Timeout',
  413: '413 Payload Too Large',
  415: '415 Unsupported Media Type',
  422: '422 Unprocessable Entity',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

/** Every status Floodgate answers with; /metrics starts each at 0 from this list. */
export const answerStatuses: readonly number[] = Object.keys(statusLines).map(Number);

export interface ReplyOptions {
  /** Close the connection after answering: used when the body was not (fully) read. */
  readonly close?: boolean;
  /** Seconds for Retry-After (503/429). */
  readonly retryAfterS?: number;
  readonly contentType?: string;
  /** Further headers (lower-case names), e.g. WWW-Authenticate on a 401. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Writes the answer and returns its status (callers record it in the metrics). */
export function reply(res: UwsHttpResponse, status: number, requestId: string, body: unknown, options: ReplyOptions = {}): number {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.cork(() => {
    res.writeStatus(statusLines[status] ?? String(status));
    res.writeHeader('content-type', options.contentType ?? 'application/json');
    res.writeHeader('x-request-id', echoableRequestId(requestId));
    // Every answer: a browser must not guess a JSON error (which may echo input) to be HTML.
    res.writeHeader('x-content-type-options', 'nosniff');
    // Set only when CORS is on and the Origin is allowed (./cors.ts): one property read otherwise.
    if (res.corsAllowOrigin !== undefined) writeCorsHeaders(res, res.corsAllowOrigin);
    if (options.retryAfterS !== undefined) res.writeHeader('retry-after', String(options.retryAfterS));
    for (const [name, value] of Object.entries(options.headers ?? {})) res.writeHeader(name, value);
    if (options.close) res.writeHeader('connection', 'close');
    res.end(text, options.close === true);
  });
  return status;
}

/** Answers a request-level error with its catalogue status and `{request_id, error}`. */
export function replyError(
  res: UwsHttpResponse,
  requestId: string,
  code: ErrorCode,
  message: string,
  options: ReplyOptions = {},
): number {
  const status = errorCatalogue[code].status;
  const retryAfterS = options.retryAfterS ?? (status === 503 ? 1 : undefined);
  const merged: ReplyOptions = retryAfterS === undefined ? options : { ...options, retryAfterS };
  const echoed = echoableRequestId(requestId);
  return reply(res, status, echoed, { request_id: echoed, error: { code, message } }, merged);
}
