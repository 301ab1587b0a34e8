/**
 * POST /v1/webhooks/{name}: one signed delivery becomes one event on the engine's usual
 * path (pipeline → rings → actors → COPY), so it is acknowledged and deduplicated like
 * any other event.
 *
 *   headers (copied: uWS lets req be read only now) ─▶ source by name from the cache
 *     (unknown → 404) ─▶ body under bodyBytesMax / bodyTimeoutMs ─▶ verify the raw bytes
 *     (refused → 401, counted, nothing stored) ─▶ JSON.parse ─▶ the scheme maps the
 *     delivery to event fields ─▶ pipeline ─▶ 200 once durable (a retry: duplicates 1)
 *
 * The body must be identity-encoded JSON: providers sign the bytes they send, and none of
 * the four schemes compresses.
 */
import type { Config } from '../config/config';
import { statusOf, type ErrorInfo } from '../errors';
import { drainBodyThenAnswer } from '../ingress/body-drain';
import { declaredLengthOf, notDecimalLength, readBody } from '../ingress/body-reader';
import { isPlainObject } from '../decode/client-input';
import { reply, replyError } from '../ingress/http-reply';
import type { IngestPipeline } from '../ingress/ingest-pipeline';
import { requestIdOf } from '../ingress/request-id';
import { v1Body, type IngestResult } from '../ingress/responses';
import type { UwsHttpRequest, UwsHttpResponse } from '../ingress/uws';
import type { Logger } from '../log';
import { schemes } from './schemes';
import type { SignedRequest } from './signature';
import type { WebhookSourceCache } from './source-cache';
import type { WebhookSource } from './source-store';
import type { WebhookRejections } from './webhook-metrics';

export interface WebhookRouteDependencies {
  readonly config: Config;
  readonly pipeline: IngestPipeline;
  readonly log: Logger;
  readonly isDraining: () => boolean;
  readonly sources: WebhookSourceCache;
  readonly rejections: WebhookRejections;
}

interface Delivery {
  readonly requestId: string;
  readonly source: WebhookSource;
  readonly headers: ReadonlyMap<string, string>;
  readonly startedAtMs: number;
}

export function handleSignedWebhook(deps: WebhookRouteDependencies, res: UwsHttpResponse, req: UwsHttpRequest): void {
  const startedAtMs = performance.now();
  const name = req.getParameter(0) ?? '';
  const source = deps.sources.get(name);
  const requestId = requestIdOf(req);
  const contentLength = declaredLengthOf(req);
  const encoding = req.getHeader('content-encoding');
  const headers = new Map<string, string>();
  if (source !== undefined) {
    for (const header of [...schemes[source.scheme].headerNames, source.signatureHeader]) headers.set(header, req.getHeader(header));
  }
  let aborted = false;
  let cancelRead = (): void => undefined;
  res.onAborted(() => {
    aborted = true;
    cancelRead();
  });
  const refuse = (error: ErrorInfo, close: boolean): void => {
    if (!aborted) replyError(res, requestId, error.code, error.message, { close });
  };
  const early = earlyRefusal(deps, name, source, contentLength, encoding);
  if (early !== null || source === undefined) {
    const error = early ?? { code: 'ERR_INTERNAL' as const, message: 'no source' };
    cancelRead = drainBodyThenAnswer(res, contentLength === -1 ? null : contentLength, () => refuse(error, true));
    return;
  }
  cancelRead = readBody(res, {
    contentLength,
    bodyBytesMax: deps.config.bodyBytesMax,
    bodyTimeoutMs: deps.config.bodyTimeoutMs,
    onError: (error) => refuse(error, true),
    onBody: (body) => {
      if (aborted) return;
      try {
        receive(deps, res, () => aborted, { requestId, source, headers, startedAtMs }, body);
      } catch (error) {
        deps.log.error({ err: error, requestId, source: source.name }, 'signed webhook failed unexpectedly');
        refuse({ code: 'ERR_INTERNAL', message: 'internal error while handling the request' }, true);
      }
    },
  });
}

function earlyRefusal(deps: WebhookRouteDependencies, name: string, source: WebhookSource | undefined, contentLength: number | null, encoding: string): ErrorInfo | null {
  if (deps.isDraining()) return { code: 'ERR_INGEST_DRAINING', message: 'Floodgate is shutting down; retry shortly' };
  // The name is the client's: it is echoed only when it is a well-formed source name.
  if (source === undefined) return { code: 'ERR_WEBHOOK_SOURCE_UNKNOWN', message: /^[A-Za-z0-9._-]{1,64}$/.test(name) ? `no webhook source named "${name}"` : 'no such webhook source' };
  if (encoding !== '' && encoding.toLowerCase() !== 'identity') return { code: 'ERR_INGEST_UNSUPPORTED_ENCODING', message: 'signed webhooks take identity-encoded bodies only' };
  if (contentLength === -1) return notDecimalLength;
  if (contentLength !== null && contentLength > deps.config.bodyBytesMax) {
    return { code: 'ERR_INGEST_BODY_TOO_LARGE', message: `Content-Length ${contentLength} exceeds bodyBytesMax (${deps.config.bodyBytesMax} bytes)` };
  }
  return null;
}

function receive(deps: WebhookRouteDependencies, res: UwsHttpResponse, isAborted: () => boolean, delivery: Delivery, body: Buffer): void {
  const { requestId, source } = delivery;
  const scheme = schemes[source.scheme];
  const signed: SignedRequest = { body, header: (name) => delivery.headers.get(name) ?? '', secrets: source.secrets, signatureHeader: source.signatureHeader, nowMs: Date.now() };
  const verdict = scheme.verify(signed);
  if (!verdict.ok) {
    deps.rejections.count(source.name, verdict.reason);
    replyError(res, requestId, verdict.reason === 'timestamp' ? 'ERR_WEBHOOK_TIMESTAMP' : 'ERR_WEBHOOK_SIGNATURE', verdict.message);
    return;
  }
  let payload: unknown;
  try {
    payload = JSON.parse(body.toString('utf8'));
  } catch {
    replyError(res, requestId, 'ERR_INGEST_MALFORMED_BODY', 'the signed body is not JSON');
    return;
  }
  const fields = scheme.map(payload, signed);
  // attributes must be an object; a payload that is an array or a scalar is wrapped.
  const item = { event_id: fields.eventId, event_type: fields.eventType, source: source.name, timestamp: fields.timestamp, attributes: isPlainObject(payload) ? payload : { payload } };
  const request = { requestId, items: [item], lineErrors: [], idempotencyKey: null, ackMode: deps.config.ackMode, startedAtMs: delivery.startedAtMs };
  deps.pipeline.submit(request, (outcome) => {
    if (isAborted()) return;
    if (!outcome.ok) return void replyError(res, requestId, outcome.code, outcome.message);
    answer(deps.config, res, outcome.result);
  });
}

/** 200 (durable) or 202 (async) for a stored or duplicate delivery, as POST /v1/events answers. */
function answer(config: Config, res: UwsHttpResponse, result: IngestResult): void {
  if (result.writeFailures > 0) {
    replyError(res, result.requestId, 'ERR_INGEST_WRITE_FAILED', 'the database could not take the event; the provider\'s retry is safe (dedupe)');
    return;
  }
  const body = v1Body(result, true);
  if (result.accepted + result.duplicates > 0) {
    reply(res, config.ackMode === 'durable' ? 200 : 202, result.requestId, body);
    return;
  }
  const first = result.errors[0];
  const code = first?.code ?? 'ERR_INGEST_ALL_INVALID';
  reply(res, statusOf(code), result.requestId, { ...body, error: { code, field: first?.field ?? null, message: first?.message ?? 'the event is invalid' } });
}
