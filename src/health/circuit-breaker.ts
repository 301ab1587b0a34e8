/**
 * The sink's circuit breaker, seen from the main thread. While it is open, ingest answers
 * 503 with Retry-After at once instead of queueing events that cannot be written.
 *
 * Two signals open it:
 * - the readiness probe cannot reach PostgreSQL (checked every second), and
 * - an actor reports a transient write failure (it retries with bounded backoff and
 *   reports each failed attempt).
 * It closes when the probe answers again and no actor has reported a failure for
 * `faultHoldMs`. The hold is longer than the actors' longest backoff (2 s), so an actor
 * still retrying keeps the circuit open between its attempts, and an actor with nothing
 * left to write (it never reports "recovered") cannot keep it open forever.
 *
 * Events already in the rings are not refused: actors keep retrying them, durable
 * requests get their answer from the outcome, async ones are written when the database
 * returns. Only new work is turned away.
 */
import type { ErrorCode } from '../errors';
import type { Logger } from '../log';

export type CircuitState = 'closed' | 'open';

/** Longer than the sink's backoff ceiling (src/sink/retry-policy.ts) so retries hold it open. */
export const faultHoldMs = 2500;
/** How often a state change is looked for, so it is logged even when no request arrives. */
const watchIntervalMs = 250;

export class CircuitBreaker {
  readonly #log: Logger;
  readonly #onChange: (state: CircuitState) => void;
  #probeOk = true;
  #probeDetail = '';
  #lastFaultAtMs = Number.NEGATIVE_INFINITY;
  #lastFault = '';
  #state: CircuitState = 'closed';
  #openedAtMs = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(log: Logger, onChange: (state: CircuitState) => void = () => undefined) {
    this.#log = log;
    this.#onChange = onChange;
  }

  start(): void {
    this.#timer = setInterval(() => this.#evaluate(), watchIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  probeResult(ok: boolean, detail: string): void {
    this.#probeOk = ok;
    this.#probeDetail = detail;
    this.#evaluate();
  }

  actorFault(actorIndex: number, code: string, message: string): void {
    this.#lastFaultAtMs = performance.now();
    this.#lastFault = `actor ${actorIndex}: ${code} ${message}`;
    this.#evaluate();
  }

  get state(): CircuitState {
    this.#evaluate();
    return this.#state;
  }

  /** Why the circuit is open, for /readyz. */
  get reason(): string {
    if (!this.#probeOk) return `database unreachable: ${this.#probeDetail}`;
    return this.#state === 'open' ? `recent write failure (${this.#lastFault})` : 'writes succeeding';
  }

  /** For the ingest pipeline: the error new requests get while the circuit is open. */
  blocker(): { code: ErrorCode; message: string } | null {
    if (this.state === 'closed') return null;
    return { code: 'ERR_INGEST_DATABASE_UNAVAILABLE', message: `the database is unavailable (${this.reason}); nothing was queued; retry after the Retry-After delay` };
  }

  #evaluate(): void {
    const faulty = performance.now() - this.#lastFaultAtMs < faultHoldMs;
    const next: CircuitState = this.#probeOk && !faulty ? 'closed' : 'open';
    if (next === this.#state) return;
    this.#state = next;
    if (next === 'open') {
      this.#openedAtMs = performance.now();
      this.#log.warn({ circuit: 'open', reason: this.reason }, 'sink circuit opened: new writes are refused with 503');
    } else {
      this.#log.info({ circuit: 'closed', openMs: Math.round(performance.now() - this.#openedAtMs) }, 'sink circuit closed: writes resumed');
    }
    this.#onChange(next);
  }
}
