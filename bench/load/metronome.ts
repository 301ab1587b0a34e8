/**
 * Wakes a load client's event loop at an exact instant, for the open model's sends.
 *
 * Why not setTimeout: Node's timers count in whole milliseconds of the loop's cached
 * clock, so a request scheduled between two ticks left up to ~1 ms late, ~0.6 ms in the
 * median. That lateness is the generator's own error, yet it counts in every latency,
 * since latency runs from the scheduled instant. Here a helper thread sleeps in
 * `Atomics.wait`, whose timeout is a fraction of a millisecond, and posts a message at the
 * instant; the message wakes the client's loop like any I/O, so answers keep flowing
 * while it waits. It cut the median send lag to under 0.2 ms for about 0.01 more client
 * cores (docs/decisions/0014-metronome-sends.md).
 *
 * Protocol, over one SharedArrayBuffer: the client writes the wake-up instant (epoch ms,
 * as a double) and bumps a generation counter; the helper waits until that instant or a
 * newer generation, posts the generation it woke for, then waits for the next one. A
 * negative generation stops it.
 */
import { Worker } from 'node:worker_threads';

const helperSource = `
const { parentPort, workerData } = require('node:worker_threads');
const generation = new Int32Array(workerData, 0, 1);
const wakeAtEpochMs = new Float64Array(workerData, 8, 1);
const nowEpochMs = () => performance.timeOrigin + performance.now();
let posted = 0;
for (;;) {
  const current = Atomics.load(generation, 0);
  if (current < 0) break;
  if (current === posted) { Atomics.wait(generation, 0, current); continue; }
  const delayMs = wakeAtEpochMs[0] - nowEpochMs();
  if (delayMs > 0 && Atomics.wait(generation, 0, current, delayMs) !== 'timed-out') continue;
  posted = current;
  parentPort.postMessage(current);
}
`;

export class Metronome {
  readonly #worker: Worker;
  readonly #generation: Int32Array;
  readonly #wakeAtEpochMs: Float64Array;
  #waiting: { generation: number; resolve: () => void; reject: (error: Error) => void } | null = null;
  #failure: Error | null = null;

  constructor() {
    const shared = new SharedArrayBuffer(16);
    this.#generation = new Int32Array(shared, 0, 1);
    this.#wakeAtEpochMs = new Float64Array(shared, 8, 1);
    this.#worker = new Worker(helperSource, { eval: true, workerData: shared });
    this.#worker.on('message', (woke: number) => {
      const waiting = this.#waiting;
      if (waiting === null || waiting.generation !== woke) return;
      this.#waiting = null;
      waiting.resolve();
    });
    this.#worker.on('error', (error) => {
      this.#failure = error;
      this.#waiting?.reject(error);
      this.#waiting = null;
    });
  }

  /**
   * Resolves at `performance.now()` instant `atMs` (at once if it has passed). One wait at
   * a time: a new one resolves the previous one at once.
   */
  until(atMs: number): Promise<void> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    const previous = this.#waiting;
    this.#waiting = null;
    previous?.resolve();
    if (atMs <= performance.now()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#wakeAtEpochMs[0] = performance.timeOrigin + atMs;
      const generation = Atomics.add(this.#generation, 0, 1) + 1;
      this.#waiting = { generation, resolve, reject };
      Atomics.notify(this.#generation, 0);
    });
  }

  async stop(): Promise<void> {
    Atomics.store(this.#generation, 0, -1);
    Atomics.notify(this.#generation, 0);
    await this.#worker.terminate();
  }
}
