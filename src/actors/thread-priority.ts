/**
 * Lowers the scheduling priority of the calling thread, for the actor threads.
 *
 * Why: on a machine where the engine, PostgreSQL and (in benchmarks) the load clients
 * share two cores, every hop of a request waits for a core. The main thread receives and
 * answers; an actor batches and writes, and in async mode nobody waits for it. A higher
 * niceness on the actor lets the main thread take a contended core at once instead of
 * waiting for the actor's time slice to end. Linux applies nice per thread (a thread id
 * is a task id for setpriority), and only among tasks of one scheduling group (autogroup
 * or cgroup): it never changes how the engine shares the machine with PostgreSQL
 * (docs/decisions/0010-actor-nice-in-async-mode.md).
 *
 * Linux only: elsewhere, or when /proc is not mounted, the thread keeps its priority and
 * the caller gets a reason to log.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

export type PriorityResult = { applied: true; threadId: number } | { applied: false; reason: string };

/** The calling thread's kernel task id, from /proc/thread-self (a link to "<pid>/task/<tid>"). */
export function currentThreadId(): number | null {
  try {
    const target = readlinkSync('/proc/thread-self');
    const threadId = Number(target.slice(target.lastIndexOf('/') + 1));
    return Number.isInteger(threadId) && threadId > 0 ? threadId : null;
  } catch {
    return null;
  }
}

/** Sets the calling thread's niceness; 0 is the default and changes nothing. */
export function setCurrentThreadNice(nice: number): PriorityResult {
  if (nice === 0) return { applied: false, reason: 'niceness 0 is the default' };
  const threadId = currentThreadId();
  if (threadId === null) return { applied: false, reason: 'no /proc/thread-self (not Linux, or /proc not mounted)' };
  try {
    setPriority(threadId, nice);
    return { applied: true, threadId };
  } catch (error) {
    return { applied: false, reason: (error as Error).message };
  }
}
