/**
 * The load one client process generates: its share of the scenario's virtual users
 * (closed model) or of its request rate (open model), with every answer counted and its
 * latency recorded in the current one-second interval.
 *
 * Time: all clients get the same start instant (epoch ms) from the runner, so their
 * seconds line up when the runner merges them. Within a process, performance.now() is
 * used for everything else.
 */
import type { Histogram } from 'hdr-histogram-js';
import { buildBodyTemplate, stampBody, streamBatchIdOf, type BodyTemplate } from './bodies';
import { HttpConnection, requestHead, StreamConnection, type HttpAnswer, type LoadConnection } from './http-connection';
import { Metronome } from './metronome';
import { countAnswer, emptyStats, encodeHistogram, newLatencyHistogram, type IntervalStats } from './interval-stats';
import { streamRoute, type Phase, type Scenario } from './scenario';

export interface ClientConfig {
  readonly clientIndex: number;
  readonly host: string;
  readonly port: number;
  readonly scenario: Scenario;
  /** [a-z0-9-], shared by every id of the run: the database check counts rows by it. */
  readonly idPrefix: string;
  readonly startAtEpochMs: number;
  /** `Bearer <key>` sent on every request, or null for none (--api-key-scopes). */
  readonly authorization: string | null;
}

/** How often unanswered requests are checked against requestTimeoutMs. */
const timeoutSweepMs = 100;
/** Open model: scheduled requests waiting for a connection, at most this many seconds' worth. */
const queueSecondsMax = 2;
const errorSamplesMax = 5;
/**
 * Closed model: pause of a virtual user after a request that got no answer. Without it a
 * refused connection turns every user into a tight error loop that measures nothing and
 * starves the machine.
 */
const errorPauseMs = 50;

export class LoadClient {
  readonly #config: ClientConfig;
  readonly #template: BodyTemplate;
  readonly #head: Buffer;
  readonly #connections: LoadConnection[] = [];
  readonly #stem: string;
  readonly #stream: boolean;
  /** Stream route: the next connection a request or user is dealt to. */
  #dealt = 0;
  readonly #startMs: number;
  readonly #report: (stats: IntervalStats) => void;
  #sequence = 0;
  #histogram: Histogram;
  #sendLag: Histogram;
  #stats: Omit<IntervalStats, 'histogram' | 'sendLagHistogram'>;
  #cpu = process.cpuUsage();

  constructor(config: ClientConfig, report: (stats: IntervalStats) => void) {
    this.#config = config;
    this.#report = report;
    const { scenario } = config;
    const stem = `${config.idPrefix}-c${String(config.clientIndex).padStart(2, '0')}-`;
    this.#stem = stem;
    this.#stream = scenario.route === streamRoute;
    this.#template = buildBodyTemplate(scenario.route, scenario.format, scenario.eventsPerRequest, stem);
    this.#head = requestHead(config.host, config.port, scenario.route, this.#template.contentType, this.#template.bytes.length, config.authorization);
    this.#startMs = performance.now() + (config.startAtEpochMs - Date.now());
    this.#histogram = newLatencyHistogram();
    this.#sendLag = newLatencyHistogram();
    this.#stats = emptyStats(0);
  }

  /** Runs the whole scenario, then waits for answers still due (bounded by the request timeout). */
  async run(): Promise<void> {
    await sleep(Math.max(0, this.#startMs - performance.now()));
    const flusher = this.#scheduleFlushes();
    const sweeper = setInterval(() => this.#sweepTimeouts(), timeoutSweepMs);
    try {
      if (this.#config.scenario.model === 'closed') await this.#runClosed();
      else await this.#runOpen();
      const drainDeadline = performance.now() + this.#config.scenario.requestTimeoutMs + timeoutSweepMs * 2;
      while (this.#connections.some((connection) => connection.busy) && performance.now() < drainDeadline) await sleep(10);
    } finally {
      clearInterval(sweeper);
      clearTimeout(flusher.timer);
      for (const connection of this.#connections) connection.destroy('run finished');
      this.#flush();
      this.#histogram.destroy();
    }
  }

  /** The phase at a performance.now() instant, or null past the end. */
  #phaseAt(nowMs: number): { phase: Phase; endsAtMs: number } | null {
    let endsAtMs = this.#startMs;
    for (const phase of this.#config.scenario.phases) {
      endsAtMs += phase.durationS * 1000;
      if (nowMs < endsAtMs) return { phase, endsAtMs };
    }
    return null;
  }

  /** Virtual users are dealt round-robin: global user k belongs to client k mod clients. */
  async #runClosed(): Promise<void> {
    const { scenario, clientIndex } = this.#config;
    const usersMax = Math.max(...scenario.phases.map((phase) => phase.concurrency ?? 0));
    const mine: number[] = [];
    for (let user = clientIndex; user < usersMax; user += scenario.clients) mine.push(user);
    await Promise.all(mine.map((user) => this.#virtualUser(user)));
  }

  async #virtualUser(user: number): Promise<void> {
    // HTTP: a connection per user, one request at a time. Stream: users share the
    // connections, each carrying several users' batches at once.
    const connection = this.#stream ? this.#dealConnection() : this.#newConnection();
    const thinkTimeMs = this.#config.scenario.thinkTimeMs;
    for (;;) {
      const now = performance.now();
      const current = this.#phaseAt(now);
      if (current === null) return;
      if (user >= (current.phase.concurrency ?? 0)) {
        await sleep(Math.min(50, current.endsAtMs - now));
        continue;
      }
      const answered = await new Promise<boolean>((resolve) => this.#send(connection, performance.now(), resolve));
      if (!answered) await sleep(errorPauseMs);
      else if (thinkTimeMs > 0) await sleep(thinkTimeMs);
    }
  }

  /** Sends on schedule; latency counts from the scheduled instant, queueing included. */
  async #runOpen(): Promise<void> {
    const { scenario } = this.#config;
    const queue: number[] = [];
    const idle: LoadConnection[] = [];
    const metronome = new Metronome();
    const dispatch = (): void => {
      // A stream never waits for an idle connection: its batches share the ones there are.
      while (this.#stream && queue.length > 0) this.#send(this.#dealConnection(), queue.shift() as number, () => undefined);
      while (queue.length > 0) {
        let connection = idle.pop();
        if (connection === undefined && this.#connections.length < scenario.connectionsPerClientMax) connection = this.#newConnection();
        if (connection === undefined) return;
        const chosen = connection;
        this.#send(chosen, queue.shift() as number, () => {
          idle.push(chosen);
          dispatch();
        });
      }
    };
    try {
      await this.#sendOnSchedule(queue, dispatch, metronome);
    } finally {
      await metronome.stop();
    }
    // What is still queued at the end was never sent: count it as unsent, not as load.
    this.#stats.unsent += queue.length;
    queue.length = 0;
  }

  /** Queues every request as its instant comes (at most queueSecondsMax behind) and dispatches. */
  async #sendOnSchedule(queue: number[], dispatch: () => void, metronome: Metronome): Promise<void> {
    const { scenario } = this.#config;
    let nextAtMs = this.#startMs;
    for (;;) {
      const now = performance.now();
      let current = this.#phaseAt(nextAtMs);
      while (current !== null && nextAtMs <= now) {
        const ratePerS = (current.phase.ratePerS ?? 1) / scenario.clients;
        if (queue.length < Math.max(16, ratePerS * queueSecondsMax)) queue.push(nextAtMs);
        else this.#stats.unsent += 1;
        nextAtMs += 1000 / ratePerS;
        current = this.#phaseAt(nextAtMs);
      }
      dispatch();
      if (current === null) return;
      await metronome.until(nextAtMs);
    }
  }

  #newConnection(): LoadConnection {
    const { host, port, scenario, authorization } = this.#config;
    const connection = this.#stream ? new StreamConnection(host, port, scenario.route, authorization) : new HttpConnection(host, port);
    this.#connections.push(connection);
    return connection;
  }

  /** The stream's connections in turn, opened as needed up to connectionsPerClientMax. */
  #dealConnection(): LoadConnection {
    const k = this.#dealt++ % this.#config.scenario.connectionsPerClientMax;
    return this.#connections[k] ?? this.#newConnection();
  }

  #send(connection: LoadConnection, scheduledAtMs: number, done: (answered: boolean) => void): void {
    const sequence = this.#sequence++;
    const body = stampBody(this.#template, sequence, Date.now());
    this.#stats.eventsSent += this.#template.eventCount;
    const sendLagUs = Math.max(1, Math.round((performance.now() - scheduledAtMs) * 1000));
    connection.send(this.#head, body, (error, answer) => {
      this.#record(scheduledAtMs, sendLagUs, error, answer);
      done(answer !== null);
    }, this.#stream ? streamBatchIdOf(this.#stem, sequence) : undefined);
  }

  /**
   * The send lag goes into the same second as the latency it is part of (the answer's), so
   * that every second's "sent late" describes exactly the requests of its latency: a request
   * sent just before a second's end and answered after it counts in the next one.
   */
  #record(scheduledAtMs: number, sendLagUs: number, error: Error | null, answer: HttpAnswer | null): void {
    const stats = this.#stats;
    stats.requests += 1;
    const latencyUs = Math.max(1, Math.round((performance.now() - scheduledAtMs) * 1000));
    if (answer === null) {
      const message = error?.message ?? 'no answer';
      if (message === 'timeout') stats.timeouts += 1;
      else stats.errors += 1;
      if (stats.errorSamples.length < errorSamplesMax) stats.errorSamples.push(message);
      return;
    }
    this.#histogram.recordValue(latencyUs);
    this.#sendLag.recordValue(sendLagUs);
    stats.statuses[answer.status] = (stats.statuses[answer.status] ?? 0) + 1;
    const counted = countAnswer(this.#config.scenario.route, this.#config.scenario.target, answer.status, answer.body);
    stats.eventsAcknowledged += counted.acknowledged;
    stats.duplicatesReported += counted.duplicates;
    stats.eventsRejected += counted.rejected;
  }

  #sweepTimeouts(): void {
    const limitMs = this.#config.scenario.requestTimeoutMs;
    const now = performance.now();
    for (const connection of this.#connections) {
      if (connection.busy && now - connection.sentAtMs > limitMs) connection.destroy('timeout');
    }
  }

  /** A flush at every whole second after the start; the timer re-arms against drift. */
  #scheduleFlushes(): { timer: NodeJS.Timeout | undefined } {
    const handle: { timer: NodeJS.Timeout | undefined } = { timer: undefined };
    const arm = (): void => {
      const nextMs = this.#startMs + (this.#stats.second + 1) * 1000;
      handle.timer = setTimeout(() => {
        this.#flush();
        arm();
      }, Math.max(0, nextMs - performance.now()));
    };
    arm();
    return handle;
  }

  #flush(): void {
    const cpu = process.cpuUsage(this.#cpu);
    this.#cpu = process.cpuUsage();
    const stats: IntervalStats = {
      ...this.#stats,
      cpuUs: cpu.user + cpu.system,
      histogram: encodeHistogram(this.#histogram),
      sendLagHistogram: encodeHistogram(this.#sendLag),
    };
    this.#histogram.reset();
    this.#sendLag.reset();
    this.#stats = emptyStats(this.#stats.second + 1);
    this.#report(stats);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
