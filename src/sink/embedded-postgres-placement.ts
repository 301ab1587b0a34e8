import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';

/**
 * Where the embedded PostgreSQL keeps its cluster: a pure decision, so that every case is
 * tested without a database or root.
 *
 * PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user,
 * which must reach the cluster directory. The default data directory sits in the checkout,
 * and a checkout under /root (mode 0700) is out of that user's reach. Changing /root's
 * mode behind the user's back is not ours to do, so in that case the cluster moves to
 * a directory under `relocatedClustersRoot`, named by a hash of the data directory's real
 * path (each checkout keeps its own cluster), and `<dataDir>/postgres` becomes a symbolic
 * link to it. Everything that reads `<dataDir>/postgres` (the test runner, the dlq command)
 * keeps working through that link.
 *
 *   <dataDir>/postgres ──symlink──▶ /var/lib/floodgate/<hash>/postgres   (0700 postgres)
 *                                   /var/lib/floodgate/<hash>/data-dir   (owner's path)
 *                                   /var/lib/floodgate/<hash>/           (0750 root:postgres)
 */

/** Survives reboots (unlike /tmp) and is where a Linux service keeps its state. */
export const relocatedClustersRoot = '/var/lib/floodgate';
/** 16 hex digits (64 bits): a collision between two checkouts of one machine is not a concern. */
const hashHexDigits = 16;

/** What `<dataDir>/postgres` is now, as lstat and readlink see it. */
export type ClusterEntry =
  | { readonly kind: 'missing' }
  | { readonly kind: 'link'; readonly target: string }
  /** A directory, a file, or anything else that is not a symbolic link. */
  | { readonly kind: 'other' };

export interface ClusterPlacementInput {
  /** Absolute and free of symbolic links (realpath), so one directory has one hash. */
  readonly dataDir: string;
  readonly runAsRoot: boolean;
  /** Whether the `postgres` user can enter this directory (every parent included). */
  readonly postgresCanReach: (dir: string) => boolean;
  readonly entry: ClusterEntry;
  readonly relocationRoot?: string;
}

export type ClusterPlacement =
  /** `<dataDir>/postgres`, as before relocation existed. */
  | { readonly kind: 'data-dir'; readonly clusterDir: string }
  | {
      readonly kind: 'relocated';
      readonly clusterDir: string;
      /** `<dataDir>/postgres`, to become a link to clusterDir. */
      readonly linkPath: string;
      /**
       * A relocated cluster the link pointed at instead: this data directory was moved or
       * copied from another path. null when the link is missing or already right.
       */
      readonly previousClusterDir: string | null;
    };

export function placeCluster(input: ClusterPlacementInput): ClusterPlacement {
  const { dataDir, entry } = input;
  assert.ok(path.isAbsolute(dataDir) && path.resolve(dataDir) === dataDir, `dataDir must be resolved: ${dataDir}`);
  const inDataDir = path.join(dataDir, 'postgres');
  // Not root: the server runs as this user, which owns what it created. Root with a
  // reachable data directory: nothing to work around.
  if (!input.runAsRoot || input.postgresCanReach(dataDir)) return { kind: 'data-dir', clusterDir: inDataDir };

  const root = input.relocationRoot ?? relocatedClustersRoot;
  const clusterDir = relocatedClusterDir(dataDir, root);
  if (entry.kind === 'missing') return { kind: 'relocated', clusterDir, linkPath: inDataDir, previousClusterDir: null };
  if (entry.kind === 'link' && isInside(entry.target, root)) {
    const previousClusterDir = entry.target === clusterDir ? null : entry.target;
    return { kind: 'relocated', clusterDir, linkPath: inDataDir, previousClusterDir };
  }
  // A directory of the user's, or a link of theirs elsewhere: it may hold a cluster, so it
  // is neither replaced nor ignored.
  throw new Error(
    `embedded PostgreSQL runs as the postgres user, which cannot reach ${dataDir}, and ${inDataDir} ` +
      `already exists, so it cannot become a link to ${clusterDir}: move it there (mv ${inDataDir} ` +
      `${clusterDir} && ln -s ${clusterDir} ${inDataDir}), choose another FLOODGATE_DATA_DIR, or allow o+x ` +
      `on its parents`,
  );
}

/** `<root>/<hash of the data directory>/postgres`. */
export function relocatedClusterDir(dataDir: string, root: string = relocatedClustersRoot): string {
  const hash = createHash('sha256').update(dataDir).digest('hex').slice(0, hashHexDigits);
  return path.join(root, hash, 'postgres');
}

function isInside(target: string, root: string): boolean {
  const relative = path.relative(root, target);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}
