/**
 * The ingest request lifecycle, shared by every route that takes events:
 *
 *   headers ─▶ checks (draining, media type, encoding, Content-Length, request id)
 *     ─▶ body streams in (byte limit, timeout; bulk: EventCountScanner counts events)
 *     ─▶ gunzip (bounded; bulk: scanned whole now) ─▶ decode the bytes + the scan's
 *        summary (src/decode) ─▶ rate limit (key or address; whole request or 429: src/limits)
 *     ─▶ validate each event (src/validate) ─▶ ring router (all rings or none; full → 503)
 *     ─▶ async: 202 now │ durable: wait for the actors' outcomes, then 200 (or 503)
 *
 * uWebSockets.js lets `req` be read only synchronously inside the route handler, so all
 * headers are copied out first. `res.onAborted` is attached before anything else: a
 * handler that returns without it takes the whole process down.
 */
import { randomUUID } from 'node:crypto';
import type { Actor } from '../auth/audit';
import type { Config } from '../config/config';
import { statusOf, type ErrorInfo, type EventError } from '../errors';
import { limitSubjectOf, spendEvents, type RateLimits } from '../limits/limit-subject';
import { rateLimitHeaders } from '../limits/rate-limit-headers';
import type { LimitSubject } from '../limits/rate-limiter';
import type { Logger } from '../log';
import { drainBodyThenAnswer } from './body-drain';
import { bodyFormatOf, type BodyFormat } from '../decode/body-format';
import { declaredLengthOf, notDecimalLength, readBody } from './body-reader';
import { nestedTooDeep } from '../decode/body-depth';
import { decodeBulkBody, decodeSingleBody, type RawAttributes } from '../decode/decode-body';
import { EventCountScanner, scanBody } from '../decode/event-count-scanner';
import { contentEncodingOf, gunzipBounded } from './gunzip-bounded';
import { reply, replyError } from './http-reply';
import type { IngestPipeline } from './ingest-pipeline';
import { isValidRequestId, requestIdCharsMax } from './request-id';
import { segmentBody, v1Body, webhookBatchBody, webhookEventBody, type IngestResult } from './responses';
import { decodeSegmentBody, type SegmentCall } from '../segment/segment-mapping';
import type { UwsHttpRequest, UwsHttpResponse } from './uws';

/** Every ingest route, as named in metrics and logs; /metrics starts each at 0 from this list. */
export const ingestRoutes = [
  'v1-single', 'v1-bulk', 'webhook-event', 'webhook-batch',
  'segment-batch', 'segment-track', 'segment-identify', 'segment-page', 'segment-screen', 'segment-group', 'segment-alias',
] as const;
export type IngestRoute = (typeof ingestRoutes)[number];

/** The Segment-spec call a route takes (src/segment), null for `segment-batch`, undefined for the others. */
function segmentCallOf(route: IngestRoute): SegmentCall | null | undefined {
  if (!route.startsWith('segment-')) return undefined;
  return route === 'segment-batch' ? null : (route.slice('segment-'.length) as SegmentCall);
}

export interface IngestDependencies {
  readonly config: Config;
  readonly pipeline: IngestPipeline;
  readonly log: Logger;
  readonly isDraining: () => boolean;
  /** Told about every answered request (src/metrics/engine-metrics.ts). */
  readonly observer?: RequestObserver;
  /**
   * Sees the complete raw body (before gunzip and decoding) with the X-Webhook-Signature
   * header; an error refuses the request. src/webhooks/day15-signature.ts provides it.
   */
  readonly checkBody?: (route: IngestRoute, body: Buffer, signature: string) => ErrorInfo | null;
  /** Per-key and per-address rate limits (src/limits); absent: none. */
  readonly rateLimits?: RateLimits;
}

export interface RequestObserver {
  requestAnswered(route: IngestRoute, status: number, durationMs: number, requestId: string, code: string | null): void;
}

/** One request in flight: whether the client went away, and where its answer is reported. */
interface Call {
  aborted: boolean;
  cancelRead: () => void;
  readonly answered: (status: number, code: string | null) => void;
}

interface RequestHeaders {
  readonly contentType: string;
  readonly contentEncoding: string;
  readonly contentLength: number | null;
  readonly requestId: string;
  readonly idempotencyKey: string;
  readonly signature: string;
}

export function handleIngest(deps: IngestDependencies, route: IngestRoute, res: UwsHttpResponse, req: UwsHttpRequest, caller?: Actor): void {
  const startedAtMs = performance.now();
  const headers = readHeaders(req);
  // Decided now: uWS lets `req` be read only in this tick; the tokens are taken once the body is decoded.
  const limitSubject = deps.rateLimits === undefined ? null : limitSubjectOf(deps.rateLimits, caller, res, req);
  const requestId = headers.requestId === '' ? randomUUID() : headers.requestId;
  const call: Call = {
    aborted: false,
    cancelRead: (): void => undefined,
    // Measured right after the answer is handed to the socket: receipt → answer written.
    answered: (status, code) => deps.observer?.requestAnswered(route, status, performance.now() - startedAtMs, requestId, code),
  };
  res.onAborted(() => {
    call.aborted = true;
    call.cancelRead();
  });
  const refuse = (error: ErrorInfo, close: boolean): void => {
    if (!call.aborted) call.answered(replyError(res, requestId, error.code, error.message, { close }), error.code);
  };
  const checked = checkHeaders(deps, route, headers);
  if ('code' in checked) {
    // The client may be sending its body already: it is drained first so the answer reaches it.
    call.cancelRead = drainBodyThenAnswer(res, headers.contentLength === -1 ? null : headers.contentLength, () => refuse(checked, true));
    return;
  }
  const { format, gzip } = checked;
  // Events are counted while the body streams only when the bytes are the events themselves.
  const bulk = route === 'v1-bulk' || route === 'webhook-batch';
  const scanner = bulk && !gzip ? new EventCountScanner(format) : null;
  const { eventsPerRequestMax } = deps.config;
  call.cancelRead = readBody(res, {
    contentLength: headers.contentLength,
    bodyBytesMax: deps.config.bodyBytesMax,
    bodyTimeoutMs: deps.config.bodyTimeoutMs,
    inspect: scanner === null ? undefined : (chunk) => {
      scanner.feed(chunk);
      if (scanner.nestsTooDeep) return nestedTooDeep;
      return scanner.count > eventsPerRequestMax ? tooManyEvents(scanner.count, eventsPerRequestMax) : null;
    },
    onError: (error) => refuse(error, true),
    onBody: (raw) => {
      if (call.aborted) return;
      try {
        const refusal = deps.checkBody?.(route, raw, headers.signature) ?? null;
        if (refusal !== null) return refuse(refusal, false);
        const body = gzip ? gunzipBounded(raw, deps.config.bodyDecodedBytesMax) : { ok: true as const, bytes: raw };
        if (!body.ok) return refuse(body.error, false);
        ingestBody(deps, route, res, call, { requestId, headers, format, bytes: body.bytes, scanner, startedAtMs, limitSubject, keyName: caller?.keyName ?? null });
      } catch (error) {
        deps.log.error({ err: error, requestId, route }, 'ingest request failed unexpectedly');
        refuse({ code: 'ERR_INTERNAL', message: 'internal error while handling the request' }, true);
      }
    },
  });
}

function readHeaders(req: UwsHttpRequest): RequestHeaders {
  return {
    contentType: req.getHeader('content-type'),
    contentEncoding: req.getHeader('content-encoding'),
    contentLength: declaredLengthOf(req),
    requestId: req.getHeader('x-request-id'),
    idempotencyKey: req.getHeader('idempotency-key'),
    signature: req.getHeader('x-webhook-signature'),
  };
}

/** The body's format and encoding, or the error that refuses the request before its body is read. */
function checkHeaders(deps: IngestDependencies, route: IngestRoute, headers: RequestHeaders): ErrorInfo | { format: BodyFormat; gzip: boolean } {
  if (deps.isDraining()) return { code: 'ERR_INGEST_DRAINING', message: 'Floodgate is shutting down; retry shortly' };
  // Segment's browser library posts JSON as text/plain (no CORS preflight), and RudderStack's
  // Node SDK posts its gzipped JSON as a form (axios names a Buffer so): both are JSON here.
  const segment = segmentCallOf(route) !== undefined;
  const format = segment && /^\s*(text\/plain|application\/x-www-form-urlencoded)\s*(;|$)/i.test(headers.contentType) ? 'json' : bodyFormatOf(headers.contentType);
  if (segment && format !== 'json') {
    return { code: 'ERR_INGEST_UNSUPPORTED_MEDIA_TYPE', message: `Content-Type "${headers.contentType}" is not supported here; the Segment-spec routes take JSON (application/json, text/plain or a form type holding JSON)` };
  }
  if (format === null || (format === 'ndjson' && (route === 'v1-single' || route === 'webhook-event'))) {
    return { code: 'ERR_INGEST_UNSUPPORTED_MEDIA_TYPE', message: `Content-Type "${headers.contentType}" is not supported here; use application/json${route.endsWith('bulk') || route.endsWith('batch') ? ', application/x-ndjson' : ''} or application/msgpack` };
  }
  const encoding = contentEncodingOf(headers.contentEncoding);
  if (encoding === null) {
    return { code: 'ERR_INGEST_UNSUPPORTED_ENCODING', message: `Content-Encoding "${headers.contentEncoding}" is not supported; use gzip or none` };
  }
  if (headers.contentLength === -1) return notDecimalLength;
  if (headers.contentLength !== null && headers.contentLength > deps.config.bodyBytesMax) {
    return { code: 'ERR_INGEST_BODY_TOO_LARGE', message: `Content-Length ${headers.contentLength} exceeds bodyBytesMax (${deps.config.bodyBytesMax} bytes)` };
  }
  for (const [name, value] of [['X-Request-ID', headers.requestId], ['Idempotency-Key', headers.idempotencyKey]] as const) {
    if (value !== '' && !isValidRequestId(value)) {
      return { code: 'ERR_INGEST_BAD_HEADER', message: `${name} must be 1-${requestIdCharsMax} printable ASCII characters` };
    }
  }
  return { format, gzip: encoding === 'gzip' };
}

function tooManyEvents(count: number, max: number): ErrorInfo {
  return { code: 'ERR_INGEST_TOO_MANY_EVENTS', message: `request holds ${count > max ? `more than ${max}` : count} events; the limit is eventsPerRequestMax = ${max}` };
}

interface DecodedRequest {
  readonly requestId: string;
  readonly headers: RequestHeaders;
  readonly format: BodyFormat;
  readonly bytes: Buffer;
  /** The scanner that saw `bytes` while they streamed in (uncompressed bulk bodies), else null. */
  readonly scanner: EventCountScanner | null;
  readonly startedAtMs: number;
  /** The bucket this request spends from, or null when it is not limited. */
  readonly limitSubject: LimitSubject | null;
  /** The calling key's name: the source of Segment-spec events. */
  readonly keyName: string | null;
}

function ingestBody(deps: IngestDependencies, route: IngestRoute, res: UwsHttpResponse, call: Call, request: DecodedRequest): void {
  const { requestId, headers } = request;
  const single = route === 'v1-single' || route === 'webhook-event';
  const segmentCall = segmentCallOf(route);
  let items: unknown[];
  let lineErrors: readonly EventError[] = [];
  let bodyRequestId: string | null = null;
  let rawAttributes: RawAttributes | null = null;
  if (segmentCall !== undefined) {
    const receipt = { receivedAtMs: Date.now(), source: request.keyName ?? deps.config.segmentSource };
    const decoded = decodeSegmentBody(segmentCall, request.bytes, deps.config, receipt);
    if (!decoded.ok) return call.answered(replyError(res, requestId, decoded.error.code, decoded.error.message), decoded.error.code);
    items = decoded.items;
    lineErrors = decoded.lineErrors;
  } else if (single) {
    const decoded = decodeSingleBody(request.format as 'json' | 'msgpack', request.bytes, deps.config);
    if (!decoded.ok) return call.answered(replyError(res, requestId, decoded.error.code, decoded.error.message), decoded.error.code);
    items = [decoded.item];
  } else {
    // Uncompressed bodies were scanned while they streamed in; gunzipped ones are scanned
    // now, before the decoder allocates anything for them.
    const scan = request.scanner === null ? scanBody(request.format, request.bytes) : request.scanner.summary();
    const decoded = decodeBulkBody(request.format, request.bytes, deps.config, scan);
    if (!decoded.ok) return call.answered(replyError(res, requestId, decoded.error.code, decoded.error.message), decoded.error.code);
    items = decoded.items;
    lineErrors = decoded.lineErrors;
    bodyRequestId = decoded.requestId;
    rawAttributes = decoded.rawAttributes;
  }
  const idempotencyKey = headers.idempotencyKey || headers.requestId || bodyRequestId || null;
  const ingestRequest = { requestId, items, lineErrors, rawAttributes, idempotencyKey, ackMode: deps.config.ackMode, startedAtMs: request.startedAtMs };
  const submit = (answerHeaders: Readonly<Record<string, string>> | undefined): void => {
    deps.pipeline.submit(ingestRequest, (outcome) => {
      if (call.aborted) return;
      if (!outcome.ok) return call.answered(replyError(res, requestId, outcome.code, outcome.message), outcome.code);
      call.answered(answer(deps, route, res, outcome.result, answerHeaders), null);
    });
  };
  const subject = request.limitSubject;
  if (subject === null || deps.rateLimits === undefined) return submit(undefined);
  spendTokens(deps.rateLimits, subject, items.length, res, call, requestId, submit);
}

/** Spends the request's tokens (src/limits), then submits it with the limit's headers or answers 413/429. */
function spendTokens(
  rateLimits: RateLimits,
  subject: LimitSubject,
  events: number,
  res: UwsHttpResponse,
  call: Call,
  requestId: string,
  submit: (headers: Readonly<Record<string, string>>) => void,
): void {
  spendEvents(rateLimits, subject, events, 'request').then((spent) => {
    if (call.aborted) return;
    if (spent.taken) return submit(rateLimitHeaders(subject.limit, spent.outcome));
    const options = spent.outcome === null ? {} : { headers: rateLimitHeaders(subject.limit, spent.outcome), retryAfterS: spent.outcome.retryAfterS };
    call.answered(replyError(res, requestId, spent.code, spent.message, options), spent.code);
  }, (error: unknown) => {
    if (!call.aborted) call.answered(replyError(res, requestId, 'ERR_INTERNAL', `rate limiter failed: ${String(error)}`), 'ERR_INTERNAL');
  });
}

/** Chooses the status and body for a finished request, by route and outcome; returns the status. */
function answer(deps: IngestDependencies, route: IngestRoute, res: UwsHttpResponse, result: IngestResult, headers?: Readonly<Record<string, string>>): number {
  const options = headers === undefined ? {} : { headers };
  const stored = result.accepted + result.duplicates;
  // A 2xx must never cover an event that was not written. When the database could not take
  // some of a request's events (their actor gave up retrying while another actor's part
  // committed), the whole request is answered 503: the client resends it, and the events
  // already stored come back as duplicates. Found by test/faults/database-outage.test.ts,
  // whose retrying client had taken such a 200 as done.
  if (result.writeFailures > 0) {
    const message = `the database could not take ${result.writeFailures} of the events (${stored} were stored); resend the whole request after the Retry-After delay: dedupe makes it safe`;
    return replyError(res, result.requestId, 'ERR_INGEST_WRITE_FAILED', message);
  }
  const okStatus = deps.config.ackMode === 'durable' ? 200 : 202;
  if (route === 'webhook-event') {
    const { status, body } = webhookEventBody(result, new Date().toISOString());
    return reply(res, status, result.requestId, body, options);
  }
  if (route === 'webhook-batch') {
    return reply(res, stored === 0 && result.errors.length > 0 ? 400 : 202, result.requestId, webhookBatchBody(result), options);
  }
  const segmentCall = segmentCallOf(route);
  // Segment-spec SDKs read the status only: 200 once durable (async mode too, as the spec's
  // servers answer), 400 when nothing of the body could be taken.
  if (segmentCall !== undefined) return reply(res, stored > 0 || result.errors.length === 0 ? 200 : 400, result.requestId, segmentBody(result), options);
  const body = v1Body(result, route === 'v1-single');
  if (stored > 0) return reply(res, okStatus, result.requestId, body, options);
  const first = result.errors[0];
  if (route === 'v1-single' && first !== undefined) {
    return reply(res, statusOf(first.code), result.requestId, { ...body, error: { code: first.code, field: first.field, message: first.message } });
  }
  return reply(res, 400, result.requestId, { ...body, error: { code: 'ERR_INGEST_ALL_INVALID', message: `all ${result.totalEvents} events are invalid; see errors` } });
}
