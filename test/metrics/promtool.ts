/**
 * Runs `promtool check metrics` (Debian package `prometheus`) on an exposition. Without the
 * binary the check is skipped with a reason, unless FLOODGATE_TEST_REQUIRE_PROMTOOL=1 (CI
 * installs it), in which case its absence fails the test.
 */
import { spawnSync } from 'node:child_process';

export type PromtoolResult = { readonly skipped: string } | { readonly skipped: null; readonly status: number | null; readonly output: string };

export function promtoolCheck(exposition: string): PromtoolResult {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8', timeout: 30_000 });
  if (run.error !== undefined && (run.error as NodeJS.ErrnoException).code === 'ENOENT') {
    if (process.env.FLOODGATE_TEST_REQUIRE_PROMTOOL === '1') throw new Error('FLOODGATE_TEST_REQUIRE_PROMTOOL=1 but promtool is not installed (apt-get install prometheus)');
    return { skipped: 'promtool is not installed (Debian package "prometheus")' };
  }
  if (run.error !== undefined) throw run.error;
  return { skipped: null, status: run.status, output: `${run.stdout}${run.stderr}` };
}
