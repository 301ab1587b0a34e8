/**
 * Every message that crosses between the main thread and an actor thread, declared in
 * one place (the rings' shared memory is declared in src/ring/layout.ts).
 *
 *   main ──task input (structured clone + transferred MessagePort)──▶ actor
 *   actor ──ReadyMessage, once, after its database connection works──▶ main
 *   actor ──AckMessage, once per flushed batch or drain pass──▶ main
 *   actor ──FaultMessage when a batch could not be written──▶ main (logged)
 *   actor ──StatsMessage once per second, and once more before StoppedMessage──▶ main
 *   actor ──StoppedMessage, last, after its final ack──▶ main
 *
 * Acks are three parallel typed arrays transferred (not copied) with the message: one
 * postMessage per batch instead of one per event: a postMessage costs ~3 µs of main-thread
 * CPU, which batching spreads over every row (docs/decisions/0001-shared-memory-rings.md).
 */
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config/config';
import type { EventOutcome } from '../event';

export interface ActorInput {
  readonly actorIndex: number;
  readonly ring: SharedArrayBuffer;
  readonly port: MessagePort;
  readonly connectionString: string;
  /** The database's identity: the namespace of this engine's keys in Redis (src/sink/database-identity.ts). */
  readonly databaseId: string;
  readonly config: Config;
}

export interface ReadyMessage {
  readonly type: 'ready';
  readonly actorIndex: number;
}

export interface AckMessage {
  readonly type: 'ack';
  readonly actorIndex: number;
  /** Number of valid entries in the arrays below. */
  readonly count: number;
  /** Request ticket of each event (see src/ingress/pending-requests.ts). */
  readonly tickets: Uint32Array;
  /** Position of each event in its request. */
  readonly indexes: Uint32Array;
  /** An EventOutcome per event. */
  readonly outcomes: Uint8Array;
}

export interface FaultMessage {
  readonly type: 'fault';
  readonly actorIndex: number;
  readonly code: string;
  readonly message: string;
  readonly rows: number;
  readonly attempt: number;
  /** Transient failures (the database is away) open the circuit breaker; others do not. */
  readonly transient: boolean;
}

/**
 * Sent after the actor's final ack. Messages on one port arrive in order, while the
 * piscina task's completion travels another channel, so only this message proves that
 * every ack has reached the main thread.
 */
export interface StoppedMessage {
  readonly type: 'stopped';
  readonly actorIndex: number;
}

/** The measurements an actor posts (src/metrics/actor-stats.ts records them). */
export type StatsSeries = 'ringWaitUs' | 'commitLatencyUs' | 'flushUs' | 'batchRows';

/**
 * What an actor measured since its previous StatsMessage. Each histogram is hdr-histogram-js
 * `encode()` output (null when nothing was recorded); the main thread adds them into its
 * sliding windows (src/metrics/sliding-histogram.ts), so percentiles come from merged
 * histograms, never from averaged percentiles.
 */
export interface StatsMessage {
  readonly type: 'stats';
  readonly actorIndex: number;
  /** False when the last write attempt failed because the connection was lost or refused. */
  readonly databaseConnected: boolean;
  readonly histograms: Readonly<Record<StatsSeries, Uint8Array | null>>;
  /** Exact sums of the recorded values (the histograms' own sums are bucketed). */
  readonly sums: Readonly<Record<StatsSeries, number>>;
}

export type ActorMessage = ReadyMessage | AckMessage | FaultMessage | StatsMessage | StoppedMessage;
export type { EventOutcome };
