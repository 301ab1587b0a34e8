/**
 * The main thread's side of the actors: a piscina pool with exactly one thread per actor,
 * each running one never-ending task (src/actors/actor-worker.ts).
 *
 * piscina settings for never-ending tasks: `atomics: 'disabled'` (the default parks idle
 * workers in Atomics.wait and stalls their timers and sockets), min = max threads,
 * `idleTimeout: Infinity`, one task per worker
 * (docs/decisions/0002-long-lived-actors-on-piscina.md). Stopping is cooperative: the
 * engine sets each ring's stop flag, the actors drain and return, and only then is the
 * pool closed.
 */
import path from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { Config } from '../config/config';
import type { Logger } from '../log';
import type { ActorInput, ActorMessage } from './messages';

export interface ActorPool {
  /** Resolves once every actor has drained its ring and its last ack has been delivered. */
  readonly finished: Promise<void>;
  close(): Promise<void>;
}

export async function startActors(options: {
  config: Config;
  rings: readonly SharedArrayBuffer[];
  connectionString: string;
  databaseId: string;
  log: Logger;
  onMessage: (message: ActorMessage) => void;
  readyTimeoutMs: number;
}): Promise<ActorPool> {
  const { config, rings, log } = options;
  const pool = new Piscina({
    filename: path.join(__dirname, 'actor-worker.js'),
    minThreads: rings.length,
    maxThreads: rings.length,
    idleTimeout: Infinity,
    concurrentTasksPerWorker: 1,
    atomics: 'disabled',
    maxQueue: 0,
  });
  let readyCount = 0;
  let stoppedCount = 0;
  let onAllReady: () => void = () => undefined;
  let onAllStopped: () => void = () => undefined;
  const allReady = new Promise<void>((resolve) => (onAllReady = resolve));
  const allStopped = new Promise<void>((resolve) => (onAllStopped = resolve));
  const ports: MessagePort[] = [];
  const tasks = rings.map((ring, actorIndex) => {
    const channel = new MessageChannel();
    ports.push(channel.port1);
    channel.port1.on('message', (message: ActorMessage) => {
      options.onMessage(message);
      if (message.type === 'ready' && ++readyCount === rings.length) onAllReady();
      if (message.type === 'stopped' && ++stoppedCount === rings.length) onAllStopped();
    });
    const input: ActorInput = { actorIndex, ring, port: channel.port2, connectionString: options.connectionString, databaseId: options.databaseId, config };
    const task = pool.run(input, { transferList: [channel.port2] as never });
    return task;
  });
  const tasksDone = Promise.all(tasks);
  // A task that throws rejects `finished` at once instead of waiting for a 'stopped' that never comes.
  const finished = tasksDone.then(() => allStopped);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`actors not ready within ${options.readyTimeoutMs} ms`)), options.readyTimeoutMs);
  });
  try {
    // A task that fails during start-up (database unreachable) rejects `finished` first.
    await Promise.race([allReady, tasksDone.then(() => Promise.reject(new Error('an actor exited during start-up'))), timeout]);
  } catch (error) {
    for (const port of ports) port.close();
    await pool.destroy();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  log.info({ actors: rings.length }, 'actors ready');
  return {
    finished,
    close: async () => {
      for (const port of ports) port.close();
      await pool.destroy();
    },
  };
}
