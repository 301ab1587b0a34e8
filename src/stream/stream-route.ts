/**
 * GET /v1/events/stream: batches of events over one WebSocket, each answered by one ack
 * after its commit (durable mode) or once queued (async), on the same uWS app as HTTP.
 *
 *   upgrade ─▶ guard (ingest scope; key in headers or a `floodgate.key.<key>` subprotocol)
 *     ─▶ frame ─▶ decode (./stream-frames.ts) ─▶ in-flight cap ─▶ rate limit (src/limits)
 *     ─▶ IngestPipeline.submit, the HTTP routes' own path ─▶ ack │ nack
 *
 * A batch's `batch_id` is its idempotency key: events without `event_id` get ids derived
 * from it and their index, exactly as with HTTP's Idempotency-Key, so a batch resent after
 * a reconnect (or sent over HTTP with that key) stores nothing twice.
 *
 * Nothing is dropped silently: every frame gets an ack or a nack. A client that does not
 * read its acks is closed (1008) once maxBackpressure bytes of them wait, since an ack uWS
 * would drop cannot be sent again; its unacked batches are its own to resend. On SIGTERM
 * new frames are nacked (retryable), and each stream is closed with 1001 once its last
 * batch in flight has been acked.
 */
import type { Actor } from '../auth/audit';
import type { GuardedHandler } from '../auth/guard';
import type { Config } from '../config/config';
import { errorCatalogue, type ErrorCode } from '../errors';
import type { IngestOutcome, IngestPipeline } from '../ingress/ingest-pipeline';
import type { UwsHttpRequest, UwsUpgradeResponse, UwsWebSocket, UwsWebSocketBehavior } from '../ingress/uws';
import { limitSubjectOf, spendEvents, type RateLimits } from '../limits/limit-subject';
import type { LimitSubject } from '../limits/rate-limiter';
import type { Logger } from '../log';
import { replyError } from '../ingress/http-reply';
import { requestIdOf } from '../ingress/request-id';
import { ackFrame, decodeBatchFrame, nackFrame } from './stream-frames';
import type { Metric } from 'prom-client';
import { collector, windowSummary } from '../metrics/prometheus';
import { SlidingHistogram } from '../metrics/sliding-histogram';

export const streamPath = '/v1/events/stream';
/** The protocol version a client may offer in Sec-WebSocket-Protocol; echoed when offered. */
export const streamProtocol = 'floodgate.v1';
/** Close codes (RFC 6455): going away (shutdown), policy (acks not read), message too big. */
export const closeGoingAway = 1001;
export const closePolicy = 1008;
export const closeTooBig = 1009;
/** How long a client waits before resending a batch nacked for a full in-flight window. */
const inFlightRetryAfterMs = 100;

export interface StreamDependencies {
  readonly config: Config;
  readonly pipeline: IngestPipeline;
  readonly log: Logger;
  readonly isDraining: () => boolean;
  readonly rateLimits?: RateLimits;
  readonly metrics: StreamMetrics;
}

export type StreamBehavior = Omit<UwsWebSocketBehavior<StreamState>, 'upgrade'> & { readonly upgrade: GuardedHandler };

interface StreamState {
  readonly limitSubject: LimitSubject | null;
  readonly openedAtMs: number;
  inFlight: number;
  batches: number;
  events: number;
  closed: boolean;
}

export class StreamRoute {
  readonly #deps: StreamDependencies;
  readonly #open = new Set<UwsWebSocket<StreamState>>();

  constructor(deps: StreamDependencies) {
    this.#deps = deps;
  }

  get openStreams(): number {
    return this.#open.size;
  }

  /** The behavior for `app.ws`; its `upgrade` is a guarded handler (src/ingress/server.ts wraps it). */
  behavior(): StreamBehavior {
    const { config } = this.#deps;
    return {
      // uWS cuts a frame over its limit without a close frame; up to twice the body limit we
      // read it and close with 1009 ourselves, so a client learns why.
      maxPayloadLength: 2 * config.bodyBytesMax,
      idleTimeout: Math.round(config.wsIdleTimeoutMs / 1000),
      // Our own check closes a stream at the configured limit with 1008 (#send); uWS's, set
      // above it, would cut the socket without a close frame, or drop frames.
      maxBackpressure: 2 * config.wsBackpressureBytesMax,
      closeOnBackpressureLimit: false,
      sendPingsAutomatically: true,
      upgrade: (res, req, caller, context) => this.#upgrade(res as UwsUpgradeResponse, req, caller, context),
      open: (ws) => {
        this.#open.add(ws);
        this.#deps.metrics.opened();
      },
      message: (ws, message, isBinary) => this.#message(ws, message, isBinary),
      close: (ws, code) => {
        const state = ws.getUserData();
        state.closed = true;
        this.#open.delete(ws);
        this.#deps.metrics.closed(code);
        this.#deps.log.debug({ code, batches: state.batches, events: state.events, inFlight: state.inFlight, openMs: Math.round(performance.now() - state.openedAtMs) }, 'stream closed');
      },
    };
  }

  /** Shutdown, step one: streams with nothing in flight close now; the others after their last ack. */
  closeIdle(): void {
    for (const ws of [...this.#open]) {
      if (ws.getUserData().inFlight === 0) endStream(ws, closeGoingAway, 'server shutting down');
    }
  }

  #upgrade(res: UwsUpgradeResponse, req: UwsHttpRequest, caller: Actor | undefined, context: unknown): void {
    if (this.#deps.isDraining()) {
      replyError(res, requestIdOf(req), 'ERR_INGEST_DRAINING', 'Floodgate is shutting down; reconnect shortly');
      return;
    }
    const rateLimits = this.#deps.rateLimits;
    const state: StreamState = {
      limitSubject: rateLimits === undefined ? null : limitSubjectOf(rateLimits, caller, res, req),
      openedAtMs: performance.now(),
      inFlight: 0,
      batches: 0,
      events: 0,
      closed: false,
    };
    // Only the version is echoed: a `floodgate.key.…` entry carries the credential.
    const offered = req.getHeader('sec-websocket-protocol').split(',').map((entry) => entry.trim());
    const protocol = offered.includes(streamProtocol) ? streamProtocol : '';
    res.upgrade(state, req.getHeader('sec-websocket-key'), protocol, req.getHeader('sec-websocket-extensions'), context);
  }

  #message(ws: UwsWebSocket<StreamState>, message: ArrayBuffer, isBinary: boolean): void {
    const startedAtMs = performance.now();
    const state = ws.getUserData();
    const { config, metrics } = this.#deps;
    if (message.byteLength > config.bodyBytesMax) return endStream(ws, closeTooBig, `frame of ${message.byteLength} bytes exceeds FLOODGATE_BODY_BYTES_MAX (${config.bodyBytesMax})`);
    // A copy: uWS reclaims `message` when this callback returns, and a batch lives until its ack.
    const frame = decodeBatchFrame(Buffer.from(new Uint8Array(message)), isBinary, config);
    if (!frame.ok) return this.#nack(ws, frame.batchId, frame.error.code, frame.error.message);
    const { batchId } = frame;
    if (this.#deps.isDraining()) return this.#nack(ws, batchId, 'ERR_INGEST_DRAINING', 'Floodgate is shutting down; resend this batch after reconnecting');
    if (state.inFlight >= config.wsBatchesInFlightMax) {
      const text = `this stream already has ${state.inFlight} batches unacknowledged (FLOODGATE_WS_BATCHES_IN_FLIGHT_MAX = ${config.wsBatchesInFlightMax}); wait for acks, then resend`;
      return this.#nack(ws, batchId, 'ERR_STREAM_TOO_MANY_BATCHES', text, inFlightRetryAfterMs);
    }
    state.inFlight++;
    state.batches++;
    state.events += frame.items.length;
    metrics.batchReceived(frame.items.length);
    const request = {
      requestId: batchId,
      items: frame.items,
      lineErrors: frame.lineErrors,
      rawAttributes: frame.rawAttributes,
      idempotencyKey: batchId,
      ackMode: config.ackMode,
      startedAtMs,
    };
    const settle = (outcome: IngestOutcome): void => {
      state.inFlight--;
      metrics.ackLatency(performance.now() - startedAtMs);
      if (outcome.ok && outcome.result.writeFailures === 0) this.#send(ws, ackFrame(batchId, outcome.result), 'ack');
      else if (outcome.ok) this.#nack(ws, batchId, 'ERR_INGEST_WRITE_FAILED', `the database could not take ${outcome.result.writeFailures} of the events; resend the whole batch: dedupe makes it safe`);
      else this.#nack(ws, batchId, outcome.code, outcome.message);
      if (state.inFlight === 0 && this.#deps.isDraining()) endStream(ws, closeGoingAway, 'server shutting down');
    };
    const subject = state.limitSubject;
    if (subject === null || this.#deps.rateLimits === undefined) return this.#deps.pipeline.submit(request, settle);
    spendEvents(this.#deps.rateLimits, subject, frame.items.length, 'batch').then((spent) => {
      if (spent.taken) return this.#deps.pipeline.submit(request, settle);
      state.inFlight--;
      this.#nack(ws, batchId, spent.code, spent.message, spent.outcome === null ? undefined : spent.outcome.retryAfterS * 1000);
    }, (error: unknown) => settle({ ok: false, code: 'ERR_INTERNAL', message: `rate limiter failed: ${String(error)}` }));
  }

  /** A nack; retryable codes (429, 503) carry `retry_after_ms`, the others none. */
  #nack(ws: UwsWebSocket<StreamState>, batchId: string | null, code: ErrorCode, message: string, retryAfterMs?: number): void {
    const status = errorCatalogue[code].status;
    const retry = retryAfterMs ?? (status === 503 ? 1000 : status === 429 ? inFlightRetryAfterMs : null);
    this.#send(ws, nackFrame(batchId, code, message, retry), 'nack');
  }

  #send(ws: UwsWebSocket<StreamState>, frame: string, kind: 'ack' | 'nack'): void {
    if (ws.getUserData().closed) {
      this.#deps.metrics.answerLost();
      return;
    }
    // A client that lets this many bytes of answers wait is not reading them: an answer uWS
    // would drop could never be sent again, so the stream ends and the client resends what it
    // holds unacked.
    if (ws.getBufferedAmount() + frame.length > this.#deps.config.wsBackpressureBytesMax) {
      this.#deps.metrics.answerLost();
      return endStream(ws, closePolicy, 'acks not read: backpressure limit');
    }
    ws.cork(() => ws.send(frame, false));
    this.#deps.metrics.answered(kind);
  }
}

function endStream(ws: UwsWebSocket<StreamState>, code: number, reason: string): void {
  if (ws.getUserData().closed) return;
  ws.cork(() => ws.end(code, reason));
}

/** Close codes counted by name; a client may close with any of thousands, which count as `other`. */
const closeCodeLabels: readonly number[] = [1000, 1001, 1005, 1006, closePolicy, closeTooBig, 1011];

/**
 * The stream's series on /metrics: open streams, batches and events taken, answers by kind,
 * ack latency (frame received → ack written, durable mode: the commit included) and how
 * streams ended, by close code (a fixed few, the rest `other`).
 */
export class StreamMetrics {
  #open = 0;
  #opened = 0;
  #batches = 0;
  #events = 0;
  #lost = 0;
  readonly #answers = { ack: 0, nack: 0 };
  readonly #closedByCode = new Map<string, number>([...closeCodeLabels.map(String), 'other'].map((label) => [label, 0]));
  readonly #ackUs = new SlidingHistogram({ sliceMs: 10_000, sliceCount: 6 });

  opened(): void {
    this.#open++;
    this.#opened++;
  }

  closed(code: number): void {
    this.#open--;
    const label = closeCodeLabels.includes(code) ? String(code) : 'other';
    this.#closedByCode.set(label, (this.#closedByCode.get(label) ?? 0) + 1);
  }

  batchReceived(events: number): void {
    this.#batches++;
    this.#events += events;
  }

  answered(kind: 'ack' | 'nack'): void {
    this.#answers[kind]++;
  }

  /** An answer whose stream had closed: the client resends the batch, and dedupe absorbs it. */
  answerLost(): void {
    this.#lost++;
  }

  ackLatency(ms: number): void {
    this.#ackUs.record(Math.max(1, Math.round(ms * 1000)));
  }

  metrics(): Metric[] {
    const one = (value: number) => [{ labels: {}, value }];
    return [
      collector('floodgate_streams_open', 'WebSocket streams open now (GET /v1/events/stream).', 'gauge', () => one(this.#open)),
      collector('floodgate_streams_opened_total', 'WebSocket streams opened since start.', 'counter', () => one(this.#opened)),
      collector('floodgate_streams_closed_total', 'WebSocket streams closed, by close code (1001 shutdown, 1006 dropped, 1008 acks not read, 1009 frame too big).', 'counter', () =>
        [...this.#closedByCode].map(([code, value]) => ({ labels: { close_code: code }, value }))),
      collector('floodgate_stream_batches_total', 'Batches taken from streams (decoded and within the in-flight cap); divide by streams opened for batches per stream.', 'counter', () => one(this.#batches)),
      collector('floodgate_stream_events_total', 'Events in the batches taken from streams, valid or not.', 'counter', () => one(this.#events)),
      collector('floodgate_stream_answers_total', 'Frames answered on streams: ack (processed) or nack (not taken), and answers lost because the stream had closed.', 'counter', () => [
        { labels: { kind: 'ack' }, value: this.#answers.ack },
        { labels: { kind: 'nack' }, value: this.#answers.nack },
        { labels: { kind: 'lost' }, value: this.#lost },
      ]),
      windowSummary('floodgate_stream_ack_seconds', 'Batch frame received to its ack written; quantiles over the last 50-60 s.', this.#ackUs),
    ];
  }

  close(): void {
    this.#ackUs.destroy();
  }
}
