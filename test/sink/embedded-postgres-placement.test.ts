/** Where the cluster goes, decided without a database or root: placeCluster is pure. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ClusterPlacementInput,
  placeCluster,
  relocatedClusterDir,
  relocatedClustersRoot,
} from '../../src/sink/embedded-postgres-placement';

const checkout = '/root/floodgate/.floodgate';
const derived = relocatedClusterDir(checkout);

function input(overrides: Partial<ClusterPlacementInput> = {}): ClusterPlacementInput {
  return { dataDir: checkout, runAsRoot: true, postgresCanReach: () => false, entry: { kind: 'missing' }, ...overrides };
}

test('not root: the cluster stays in the data directory and reachability is never asked', () => {
  const neverAsked = (): boolean => assert.fail('a non-root run must not probe the postgres user');
  for (const entry of [{ kind: 'missing' }, { kind: 'other' }, { kind: 'link', target: derived }] as const) {
    assert.deepEqual(placeCluster(input({ runAsRoot: false, postgresCanReach: neverAsked, entry })), {
      kind: 'data-dir',
      clusterDir: `${checkout}/postgres`,
    });
  }
});

test('root, and the postgres user can reach the data directory: the cluster stays there', () => {
  const asked: string[] = [];
  const placement = placeCluster(input({ postgresCanReach: (dir) => (asked.push(dir), true), entry: { kind: 'other' } }));
  assert.deepEqual(placement, { kind: 'data-dir', clusterDir: `${checkout}/postgres` });
  assert.deepEqual(asked, [checkout]);
});

test('root, unreachable: the cluster goes to /var/lib/floodgate/<16 hex digits>/postgres, linked from the data dir', () => {
  assert.match(derived, /^\/var\/lib\/floodgate\/[0-9a-f]{16}\/postgres$/);
  assert.deepEqual(placeCluster(input()), {
    kind: 'relocated',
    clusterDir: derived,
    linkPath: `${checkout}/postgres`,
    previousClusterDir: null,
  });
  assert.equal(relocatedClustersRoot, '/var/lib/floodgate');
});

test('the derived place is stable for one data directory and different for another', () => {
  assert.equal(relocatedClusterDir(checkout), derived);
  const others = ['/root/floodgate-2/.floodgate', '/root/floodgate/.floodgate/x', '/root/floodgate/.floodgat'];
  const places = new Set([derived, ...others.map((dataDir) => relocatedClusterDir(dataDir))]);
  assert.equal(places.size, 4);
  assert.equal(relocatedClusterDir(checkout, '/srv/pg'), derived.replace('/var/lib/floodgate', '/srv/pg'));
});

test('a link already pointing at the derived place is kept as it is', () => {
  const placement = placeCluster(input({ entry: { kind: 'link', target: derived } }));
  assert.deepEqual(placement, { kind: 'relocated', clusterDir: derived, linkPath: `${checkout}/postgres`, previousClusterDir: null });
});

test('a link to another relocated cluster (a moved or copied data dir) is reported as the previous cluster', () => {
  const elsewhere = relocatedClusterDir('/root/old-place/.floodgate');
  const placement = placeCluster(input({ entry: { kind: 'link', target: elsewhere } }));
  assert.deepEqual(placement, { kind: 'relocated', clusterDir: derived, linkPath: `${checkout}/postgres`, previousClusterDir: elsewhere });
});

test('an existing directory, or a link of the user elsewhere, is refused with the commands that fix it', () => {
  const entries = [
    { kind: 'other' },
    { kind: 'link', target: '/srv/my-cluster' },
    { kind: 'link', target: '/var/lib/floodgate' },
    { kind: 'link', target: '/var/lib/floodgate-other/x/postgres' },
  ] as const;
  for (const entry of entries) {
    assert.throws(
      () => placeCluster(input({ entry })),
      (error: Error) => {
        assert.match(error.message, /postgres user, which cannot reach \/root\/floodgate\/\.floodgate, and .*postgres already exists/);
        assert.ok(error.message.includes(`mv ${checkout}/postgres ${derived} && ln -s ${derived} ${checkout}/postgres`));
        return true;
      },
      JSON.stringify(entry),
    );
  }
});

test('a data directory that is not resolved is a programmer error', () => {
  for (const dataDir of ['.floodgate', 'root/floodgate', '/root/floodgate/../x', '/root/floodgate/']) {
    assert.throws(() => placeCluster(input({ dataDir })), /dataDir must be resolved/, dataDir);
  }
});
