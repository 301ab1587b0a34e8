/**
 * The unit tier: `npm run test:unit` runs only the test files listed here, for the
 * edit-compile loop. A unit test needs no PostgreSQL, Redis, Chromium, promtool or C
 * compiler, and the whole tier finishes in well under a minute on a 2-core machine.
 * `npm test` still runs every file, listed or not.
 *
 * The list names folders and files (paths under test/, as in the source tree). A new file
 * in a listed folder is a unit test until it proves otherwise, and then it fails loudly:
 * the runner gives the unit tier no DATABASE_URL or REDIS_URL (and clears any PG*
 * variable), and the helpers that reach a service call `refuseInUnitTier`, which throws
 * with the way out (move the file, or list files instead of its folder). A file in a
 * folder that is not listed only runs in the whole suite, which is the safe direction to
 * forget. A listed path that matches no test file stops the run, so the list cannot rot.
 */

export const unitTestPaths: readonly string[] = Object.freeze([
  'test/actors',
  'test/auth/credentials.test.ts',
  'test/bench/api-key.test.ts',
  'test/bench/bodies.test.ts',
  'test/bench/micro.test.ts',
  'test/bench/scenario.test.ts',
  'test/bench/svg-chart.test.ts',
  'test/config',
  'test/decode',
  'test/docker',
  'test/docs',
  'test/ingress/body-reader.test.ts',
  'test/ingress/gunzip-bounded.test.ts',
  'test/ingress/http-reply.test.ts',
  'test/ingress/pending-requests.test.ts',
  'test/limits/client-address.test.ts',
  'test/limits/key-limit.test.ts',
  'test/limits/token-bucket.test.ts',
  'test/metrics/answer-log.test.ts',
  'test/metrics/sliding-histogram.test.ts',
  'test/query/query-parameters.test.ts',
  'test/ring',
  'test/sink/database.test.ts',
  'test/sink/dead-letters.test.ts',
  'test/sink/embedded-postgres-placement.test.ts',
  'test/sink/postmaster-pid.test.ts',
  'test/sink/retry-policy.test.ts',
  'test/validate',
  'test/webhooks/schemes.test.ts',
]);

/** Set by the runner in the test processes of the unit tier. */
export const testTierVariable = 'FLOODGATE_TEST_TIER';

/** Throws when a test of the unit tier asks for `service`; the runner provides none there. */
export function refuseInUnitTier(service: string): void {
  if (process.env[testTierVariable] !== 'unit') return;
  throw new Error(
    `this test needs ${service}, which the unit tier (npm run test:unit) does not provide: ` +
      'take its file out of unitTestPaths in test/support/test-tiers.ts (list the folder\'s other files instead)',
  );
}
