/**
 * Entry point of an actor thread. piscina runs this once per actor as a task that lasts
 * the engine's lifetime; with `atomics: 'disabled'` piscina does not block the thread
 * between tasks, so timers and sockets here keep working
 * (docs/decisions/0002-long-lived-actors-on-piscina.md).
 *
 * Order matters: the database connection is opened before `ready` is sent, so the main
 * thread starts listening only when every actor can write.
 */
import { createLogger } from '../log';
import { ActorStats } from '../metrics/actor-stats';
import { recordingWriter } from '../metrics/recording-writer';
import { RingConsumer } from '../ring/ring-consumer';
import { BatchWriter } from '../sink/batch-writer';
import { AckBuffer } from './ack-buffer';
import { Actor } from './actor';
import { RedisDedupe } from './redis-dedupe';
import { setCurrentThreadNice } from './thread-priority';
import type { ActorInput, FaultMessage, ReadyMessage, StoppedMessage } from './messages';

/** How often an actor posts its StatsMessage. */
const statsIntervalMs = 1000;

export default async function runActor(input: ActorInput): Promise<void> {
  const { actorIndex, config, port } = input;
  const log = createLogger(config.logLevel, { actor: actorIndex });
  // Async mode only: in durable mode every answer waits for this thread (settings.ts).
  if (config.ackMode === 'async' && config.actorNice !== 0) {
    const priority = setCurrentThreadNice(config.actorNice);
    if (priority.applied) log.info({ nice: config.actorNice, threadId: priority.threadId }, 'actor thread niceness set');
    else log.warn({ nice: config.actorNice, reason: priority.reason }, 'actor thread niceness not set');
  }
  const rollupShard = config.rollups === 'on' ? actorIndex : null;
  const writer = await BatchWriter.open(input.connectionString, log, { flushAfterBytes: config.writerFlushAfterBytes }, rollupShard);
  const sharedLayer = config.redisUrl === null ? null : new RedisDedupe(config.redisUrl, input.databaseId, config.redisDedupeTtlMs, log);
  // Measurements are posted once per second (and once more after the drain), never per event.
  const stats = new ActorStats(actorIndex);
  const postStats = (): void => port.postMessage(stats.takeMessage());
  const statsTimer = setInterval(postStats, statsIntervalMs);
  statsTimer.unref();
  try {
    const acks = new AckBuffer(port, actorIndex, config.batchRowsMax + config.eventsPerRequestMax);
    const actor = new Actor({
      consumer: new RingConsumer(input.ring),
      writer: recordingWriter(writer, stats),
      observer: stats,
      acks,
      settings: config,
      log,
      sharedLayer,
      onFault: (fault) => {
        const message: FaultMessage = { type: 'fault', actorIndex, ...fault };
        port.postMessage(message);
      },
    });
    const ready: ReadyMessage = { type: 'ready', actorIndex };
    port.postMessage(ready);
    await actor.run();
    clearInterval(statsTimer);
    postStats();
    const stopped: StoppedMessage = { type: 'stopped', actorIndex };
    port.postMessage(stopped);
    log.debug({}, 'actor drained and stopped');
  } finally {
    clearInterval(statsTimer);
    stats.destroy();
    await sharedLayer?.close();
    await writer.close();
    port.close();
  }
}
