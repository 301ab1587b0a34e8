/**
 * Carries out placeCluster(): creates the directories, asks the `postgres` user whether
 * it can reach them, and makes the link. Returns the real cluster directory, the one the
 * server runs on and whose postmaster.pid is read.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, readFile, readlink, realpath, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';
import { type ClusterEntry, placeCluster, relocatedClustersRoot } from './embedded-postgres-placement';
import { binaryDir, reachableRuntime } from './embedded-postgres-runtime';
import { isAlive, readPostmasterPid } from './postmaster-pid';
import type { SinkLogger } from './sink-logger';

const ownerFileName = 'data-dir';

export interface ClusterLocation {
  readonly clusterDir: string;
  /**
   * null: import the package as installed. Otherwise the URL of its copy under
   * /var/lib/floodgate, because the postgres user cannot run the installed binaries.
   */
  readonly packageUrl: string | null;
}

export async function locateCluster(configuredDataDir: string, logger: SinkLogger): Promise<ClusterLocation> {
  const runAsRoot = userInfo().uid === 0;
  await makeDirectories(path.resolve(configuredDataDir), runAsRoot);
  if (!runAsRoot) return { clusterDir: path.join(path.resolve(configuredDataDir), 'postgres'), packageUrl: null };

  const dataDir = await realpath(configuredDataDir);
  const ids = postgresUserIds();
  let packageUrl: string | null = null;
  if (!canReach(binaryDir(), ids)) {
    await makeDirectories(relocatedClustersRoot, true);
    packageUrl = await reachableRuntime(relocatedClustersRoot);
    logger.info({ binaryDir: binaryDir(), packageUrl }, 'the postgres user cannot run the installed PostgreSQL binaries: running a copy');
  }
  const placement = placeCluster({
    dataDir,
    runAsRoot,
    postgresCanReach: (dir) => canReach(dir, ids),
    entry: await readEntry(dataDir),
  });
  // The configured spelling, not the real path: exactly the directory used before
  // relocation existed.
  if (placement.kind === 'data-dir') return { clusterDir: path.join(path.resolve(configuredDataDir), 'postgres'), packageUrl };

  const { clusterDir, linkPath, previousClusterDir } = placement;
  if (previousClusterDir !== null) await takeOverPrevious(previousClusterDir, clusterDir, dataDir, logger);
  await prepareRelocatedDir(path.dirname(clusterDir), dataDir, ids);
  await rm(linkPath, { force: true });
  await symlink(clusterDir, linkPath);
  logger.info(
    { dataDir, clusterDir, linkPath },
    'embedded PostgreSQL cluster relocated: as root it runs as the postgres user, which cannot reach the data directory',
  );
  return { clusterDir, packageUrl };
}

/**
 * Creates the missing directories of `dir`. As root those get mode 0755 whatever the
 * umask, so that the postgres user can cross the ones we made.
 */
async function makeDirectories(dir: string, runAsRoot: boolean): Promise<void> {
  const missing: string[] = [];
  for (let at = dir; !existsSync(at); at = path.dirname(at)) missing.unshift(at);
  await mkdir(dir, { recursive: true });
  if (runAsRoot) for (const created of missing) await chmod(created, 0o755);
}

interface UserIds {
  readonly uid: number;
  readonly gid: number;
}

/**
 * The postgres user's uid and primary gid, creating the user (with the same commands the
 * embedded-postgres package would run in initialise()) when it does not exist yet: the
 * reachability probe needs its ids before any cluster exists.
 */
function postgresUserIds(): UserIds {
  const read = (): UserIds => ({
    uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()),
  });
  try {
    return read();
  } catch {
    execFileSync('groupadd', ['-f', 'postgres'], { stdio: 'ignore' });
    execFileSync('useradd', ['-g', 'postgres', 'postgres'], { stdio: 'ignore' });
    return read();
  }
}

/**
 * Asks the kernel rather than reading mode bits: `test -x` runs with the uid and gid the
 * package gives the server (spawn with uid/gid, which also drops supplementary groups), so
 * ACLs and group membership are judged exactly as they will be for PostgreSQL.
 */
function canReach(dir: string, ids: UserIds): boolean {
  const result = spawnSync('test', ['-x', dir], { uid: ids.uid, gid: ids.gid, cwd: '/', stdio: 'ignore' });
  if (result.error !== undefined) throw result.error;
  return result.status === 0;
}

async function readEntry(dataDir: string): Promise<ClusterEntry> {
  const linkPath = path.join(dataDir, 'postgres');
  try {
    if (!(await lstat(linkPath)).isSymbolicLink()) return { kind: 'other' };
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return { kind: 'missing' };
    throw error;
  }
  return { kind: 'link', target: path.resolve(dataDir, await readlink(linkPath)) };
}

/**
 * The cluster directory's parent: root may do anything, postgres may enter, nobody else
 * may even list it. The owner file names the data directory the cluster belongs to.
 */
async function prepareRelocatedDir(dir: string, dataDir: string, ids: UserIds): Promise<void> {
  await makeDirectories(relocatedClustersRoot, true);
  await mkdir(dir, { recursive: true });
  await chown(dir, 0, ids.gid);
  await chmod(dir, 0o750);
  await writeFile(path.join(dir, ownerFileName), `${dataDir}\n`, { mode: 0o644 });
  if (!canReach(dir, ids)) {
    throw new Error(`embedded PostgreSQL runs as the postgres user, which cannot enter ${dir}: allow o+x on its parents`);
  }
}

/**
 * The data directory's link points at another data directory's cluster: this one was
 * moved or copied. Moved (its old path no longer links there): the cluster follows it,
 * renamed to this path's place. Copied (the original still uses it): two engines must
 * not share a cluster, so this one starts its own and the original keeps its data.
 */
async function takeOverPrevious(previous: string, clusterDir: string, dataDir: string, logger: SinkLogger): Promise<void> {
  const previousDir = path.dirname(previous);
  const owner = (await readFile(path.join(previousDir, ownerFileName), 'utf8').catch(() => '')).trim();
  const ownerLink = owner === '' ? null : await readlink(path.join(owner, 'postgres')).catch(() => null);
  const stillUsed = ownerLink !== null && path.resolve(owner, ownerLink) === previous;
  if (stillUsed || !existsSync(previous) || existsSync(path.dirname(clusterDir))) {
    logger.warn(
      { dataDir, previousClusterDir: previous, clusterDir },
      'the data directory linked to a cluster it does not own (a copy?): starting a new cluster',
    );
    return;
  }
  const pid = readPostmasterPid(previous);
  if (pid !== null && isAlive(pid)) {
    throw new Error(
      `${dataDir} was moved while its embedded PostgreSQL (pid ${pid}, data in ${previous}) still runs: ` +
        `stop it (kill -INT ${pid}) and start again`,
    );
  }
  await rename(previousDir, path.dirname(clusterDir));
  logger.info({ dataDir, from: previous, to: clusterDir }, 'the embedded PostgreSQL cluster follows its moved data directory');
}
