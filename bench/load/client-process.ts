/**
 * Entry point of one load client process (forked by the runner). Separate processes, not
 * worker threads, so that each client has its own event loop and garbage collector and
 * its CPU time can be read per process from /proc.
 *
 *   runner → client  {type: 'start', config: ClientConfig}
 *   client → runner  {type: 'tick', stats: IntervalStats}   once a second
 *                    {type: 'done', lateMs}                   after the last tick
 *                    {type: 'failed', message}
 */
import { initHistograms, type IntervalStats } from './interval-stats';
import { LoadClient, type ClientConfig } from './load-client';

export type ToClient = { type: 'start'; config: ClientConfig };
export type FromClient =
  | { type: 'tick'; stats: IntervalStats }
  | { type: 'done'; lateMs: number }
  | { type: 'failed'; message: string };

function send(message: FromClient): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) throw new Error('client-process must be started with an IPC channel (fork)');
    process.send(message, undefined, {}, () => resolve());
  });
}

async function start(config: ClientConfig): Promise<void> {
  await initHistograms();
  const pending: Promise<void>[] = [];
  const client = new LoadClient(config, (stats) => pending.push(send({ type: 'tick', stats })));
  const lateMs = Math.max(0, Date.now() - config.startAtEpochMs);
  await client.run();
  await Promise.all(pending);
  await send({ type: 'done', lateMs });
}

process.on('message', (message: ToClient) => {
  if (message.type !== 'start') return;
  start(message.config).then(
    () => process.disconnect(),
    async (error: unknown) => {
      await send({ type: 'failed', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      process.exit(1);
    },
  );
});
