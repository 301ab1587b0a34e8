/**
 * Logs ingest requests answered with an error: 5xx at warn (the engine could not do its
 * job), 4xx at debug (the client sent something wrong), each with its request id so an
 * operator can find the line a client quotes.
 *
 * Bounded: under overload every request may be a 503, and a log line per request would
 * cost the engine what it is short of. Past `answerLinesPerSecondMax` lines in one second
 * the rest are counted, and the next line that is written says how many were left out.
 */
import type { Logger } from '../log';

export const answerLinesPerSecondMax = 100;

export interface AnsweredRequest {
  readonly requestId: string;
  readonly route: string;
  readonly status: number;
  readonly code: string | null;
  readonly durationMs: number;
}

export class AnswerLog {
  readonly #log: Logger;
  readonly #now: () => number;
  #secondStartedAtMs = Number.NEGATIVE_INFINITY;
  #linesThisSecond = 0;
  #suppressed = 0;

  constructor(log: Logger, now: () => number) {
    this.#log = log;
    this.#now = now;
  }

  answered(request: AnsweredRequest): void {
    const serverError = request.status >= 500;
    if (!serverError && !this.#log.isLevelEnabled('debug')) return;
    const nowMs = this.#now();
    if (nowMs - this.#secondStartedAtMs >= 1000) {
      this.#secondStartedAtMs = nowMs;
      this.#linesThisSecond = 0;
    }
    if (this.#linesThisSecond >= answerLinesPerSecondMax) {
      this.#suppressed++;
      return;
    }
    this.#linesThisSecond++;
    const fields: Record<string, unknown> = {
      requestId: request.requestId,
      route: request.route,
      status: request.status,
      code: request.code,
      durationMs: Math.round(request.durationMs * 1000) / 1000,
    };
    if (this.#suppressed > 0) {
      fields.suppressedLines = this.#suppressed;
      this.#suppressed = 0;
    }
    if (serverError) this.#log.warn(fields, `request answered ${request.status}`);
    else this.#log.debug(fields, `request answered ${request.status}`);
  }
}
