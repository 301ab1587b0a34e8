/**
 * Readiness needs to know whether PostgreSQL answers, without a query per /readyz call
 * (load balancers poll it often). One connection runs `SELECT 1` every intervalMs with a
 * short timeout and keeps the last result; /readyz reads that.
 */
import pg from 'pg';
import type { Logger } from '../log';

export interface ProbeState {
  readonly ok: boolean;
  readonly detail: string;
  readonly checkedAtMs: number;
}

export class DatabaseProbe {
  readonly #connectionString: string;
  readonly #intervalMs: number;
  readonly #log: Logger;
  #client: pg.Client | null = null;
  #timer: NodeJS.Timeout | null = null;
  #state: ProbeState = { ok: false, detail: 'not checked yet', checkedAtMs: 0 };
  #running = false;

  readonly #onResult: (state: ProbeState) => void;

  constructor(connectionString: string, intervalMs: number, log: Logger, onResult: (state: ProbeState) => void = () => undefined) {
    this.#connectionString = connectionString;
    this.#intervalMs = intervalMs;
    this.#log = log;
    this.#onResult = onResult;
  }

  get state(): ProbeState {
    return this.#state;
  }

  async start(): Promise<void> {
    await this.check();
    this.#timer = setInterval(() => void this.check(), this.#intervalMs);
    this.#timer.unref();
  }

  async check(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      const client = await this.#connected();
      await client.query({ text: 'SELECT 1', query_timeout: this.#intervalMs } as pg.QueryConfig);
      if (!this.#state.ok) this.#log.info({}, 'database reachable');
      this.#state = { ok: true, detail: 'SELECT 1 answered', checkedAtMs: Date.now() };
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      if (this.#state.ok) this.#log.warn({ detail }, 'database unreachable');
      this.#state = { ok: false, detail, checkedAtMs: Date.now() };
      const broken = this.#client;
      this.#client = null;
      broken?.end().catch(() => undefined);
    } finally {
      this.#running = false;
    }
    this.#onResult(this.#state);
  }

  async #connected(): Promise<pg.Client> {
    if (this.#client !== null) return this.#client;
    const client = new pg.Client({ connectionString: this.#connectionString, connectionTimeoutMillis: this.#intervalMs });
    client.on('error', () => undefined); // A dropped connection is seen by the next check.
    await client.connect();
    this.#client = client;
    return client;
  }

  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => undefined);
  }
}
