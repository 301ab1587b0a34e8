import { existsSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import type { SinkLogger } from './sink-logger';

/**
 * The postmaster.pid a PostgreSQL server keeps in its data directory while it runs, read
 * to find a server left behind by an engine that was SIGKILLed (its PostgreSQL child
 * survives it). Line 1 of the file is the postmaster's pid, line 4 its port (see
 * PostgreSQL's miscadmin.h).
 */

/** How often stopPostmaster checks whether the server has exited. */
const stopPollMs = 50;

export function readPostmasterPid(clusterDir: string): number | null {
  try {
    const pid = Number(readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Looks at a postmaster.pid left in the cluster directory. Returns the pid of a live
 * server to reuse (it runs from this directory, on `port`, and `answers()` — connecting
 * with our credentials — succeeds), or null when there is none: a stale file, whose server
 * is dead, is removed. Throws when a live server holds the directory but cannot be reused.
 */
export async function inspectPostmasterPid(
  clusterDir: string,
  port: number,
  answers: () => Promise<boolean>,
  logger: SinkLogger,
): Promise<number | null> {
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return null;
    throw error;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  const filePort = Number(lines[3]);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid) && (await isPostgresProcess(pid))) {
    if (filePort === port && (await answers())) return pid;
    throw new Error(
      `a PostgreSQL server (pid ${pid}, port ${lines[3] ?? '?'}) already runs on ${clusterDir} ` +
        `and does not answer on port ${port}: stop it, or set FLOODGATE_EMBEDDED_PG_PORT to its port`,
    );
  }
  await rm(pidFile, { force: true });
  logger.warn({ pid, pidFile }, 'removed a stale postmaster.pid left by a previous run');
  return null;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to a user we may not signal.
    return (error as { code?: unknown }).code === 'EPERM';
  }
}

/** A recycled pid may now belong to anything; on Linux, check the process name. */
async function isPostgresProcess(pid: number): Promise<boolean> {
  try {
    const name = await readFile(`/proc/${pid}/comm`, 'utf8');
    return name.trim() === 'postgres';
  } catch {
    return !existsSync('/proc/self');
  }
}

/** SIGINT is PostgreSQL's fast shutdown: open transactions abort, data is flushed. */
export async function stopPostmaster(pid: number, timeoutMs: number): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, 'SIGINT');
  const deadlineMs = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadlineMs) throw new Error(`embedded PostgreSQL (pid ${pid}) did not stop within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, stopPollMs));
  }
}
