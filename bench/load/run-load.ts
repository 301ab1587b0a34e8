/**
 * `npm run bench:load -- <scenario>… [options]`: runs load scenarios and writes, for each,
 * bench/results/<scenario>-<date>.json (the record), .md (summary) and .svg (timeline).
 *
 *   <scenario>                a name in bench/scenarios.json, a path to a .json file of one, or "all"
 *   --target floodgate|baseline   run against this target instead of the scenario's own
 *   --compare                 run each scenario against Floodgate, then against the baseline
 *   --duration-scale X        multiply every phase's duration (0.2 for a quick look)
 *   --clients N               client processes (overrides the scenario)
 *   --rate R                  requests/s of every open-model phase (overrides the scenario)
 *   --url URL --database-url URL   use an engine that is already running (no RSS/CPU split)
 *   --api-key-scopes S[,S]    Floodgate runs send an API key with these scopes on every request (./api-key.ts)
 *   --list                    list the scenarios
 *
 * Without --url the runner creates a scratch database on DATABASE_URL's server (default:
 * the local PostgreSQL), starts `node dist/src/cli.js serve` (or the baseline) on a free
 * port, and drops the database afterwards. The exit code is 1 when any run's check failed.
 */
import { exitWithUsage, parseToolArgs, positiveNumber } from '../common/cli-args';
import { fileStamp, writeResultFiles } from '../common/results';
import type { Scope } from '../../src/auth/key-format';
import { parseApiKeyScopes } from './api-key';
import { renderLoadMarkdown, renderLoadSvg } from './load-report';
import { runScenario, type LoadResult } from './load-run';
import { adjustScenario, listScenarioNames, loadScenario, type Scenario, type Target } from './scenario';

interface CliOptions {
  names: string[];
  target?: Target;
  compare: boolean;
  durationScale?: number;
  clients?: number;
  ratePerS?: number;
  url?: string;
  databaseUrl?: string;
  apiKeyScopes?: Scope[];
  list: boolean;
}

const usage = 'usage: npm run bench:load -- <scenario>… [--compare | --target floodgate|baseline] [--duration-scale X] [--clients N] [--rate R] [--url URL --database-url URL] [--api-key-scopes ingest[,read]] [--list]';

function parseCli(argv: readonly string[]): CliOptions {
  const { values, positionals } = parseToolArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      target: { type: 'string' },
      compare: { type: 'boolean' },
      'duration-scale': { type: 'string' },
      clients: { type: 'string' },
      rate: { type: 'string' },
      url: { type: 'string' },
      'database-url': { type: 'string' },
      'api-key-scopes': { type: 'string' },
      list: { type: 'boolean' },
    },
  }, usage);
  const target = values.target;
  const scopesText = values['api-key-scopes'];
  const scopes = scopesText === undefined ? undefined : parseApiKeyScopes(scopesText);
  if (scopes !== undefined && !scopes.ok) exitWithUsage(scopes.message, usage);
  if (target !== undefined && target !== 'floodgate' && target !== 'baseline') exitWithUsage('--target must be floodgate or baseline', usage);
  return {
    names: positionals,
    target,
    compare: values.compare ?? false,
    durationScale: positiveNumber(values['duration-scale'], '--duration-scale', usage),
    clients: positiveNumber(values.clients, '--clients', usage),
    ratePerS: positiveNumber(values.rate, '--rate', usage),
    url: values.url,
    databaseUrl: values['database-url'],
    ...(scopes?.ok === true ? { apiKeyScopes: scopes.scopes } : {}),
    list: values.list ?? false,
  };
}

interface PlannedRun {
  readonly scenario: Scenario;
  /** The scenario file's own target: a run against the other one gets it in its file name. */
  readonly ownTarget: Target;
}

function plannedRuns(options: CliOptions): PlannedRun[] {
  const names = options.names.includes('all') ? listScenarioNames() : options.names;
  const runs: PlannedRun[] = [];
  for (const name of names) {
    const scenario = loadScenario(name);
    const targets: Target[] = options.compare ? ['floodgate', 'baseline'] : [options.target ?? scenario.target];
    for (const target of targets) {
      if (target === 'baseline' && scenario.format !== 'json') {
        process.stderr.write(`skipping ${scenario.name} against the baseline: it takes JSON only\n`);
        continue;
      }
      const adjusted = adjustScenario(scenario, { target, durationScale: options.durationScale, clients: options.clients, ratePerS: options.ratePerS });
      runs.push({ scenario: adjusted, ownTarget: scenario.target });
    }
  }
  return runs;
}

function write(result: LoadResult, ownTarget: Target): string[] {
  const targetPart = result.scenario.target === ownTarget ? '' : `-${result.scenario.target}`;
  const stem = `${result.scenario.name}${targetPart}-${fileStamp(new Date(result.run.startedAt))}`;
  return writeResultFiles(stem, {
    json: JSON.stringify(result, null, 2),
    md: renderLoadMarkdown(result),
    svg: renderLoadSvg(result),
  });
}

async function main(): Promise<number> {
  const options = parseCli(process.argv.slice(2));
  if (options.list || options.names.length === 0) {
    process.stdout.write(`scenarios (bench/scenarios.json):\n${listScenarioNames().map((name) => `  ${name}`).join('\n')}\n${usage}\n`);
    return options.list ? 0 : 2;
  }
  let failed = false;
  for (const { scenario, ownTarget } of plannedRuns(options)) {
    process.stderr.write(`\n=== ${scenario.name} → ${scenario.target} (${scenario.description})\n`);
    const result = await runScenario(scenario, {
      url: options.url,
      databaseUrl: options.databaseUrl,
      // With --compare the key goes to the Floodgate leg only: the baseline has no keys.
      ...(options.apiKeyScopes === undefined || scenario.target !== 'floodgate' ? {} : { apiKeyScopes: options.apiKeyScopes }),
      progress: (line) => process.stderr.write(`${line}\n`),
    });
    // Not reloaded by name: a scenario given as a path lives outside bench/scenarios.json.
    const files = write(result, ownTarget);
    const check = result.verification;
    process.stdout.write(
      `${scenario.name} → ${scenario.target}: ${result.totals.eventsPerS.toLocaleString('en-US')} events/s, p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms; ` +
        `acknowledged ${result.totals.eventsAcknowledged}, stored ${check.distinctIds}, duplicates ${check.duplicatesStored}: ${check.ok ? 'ok' : 'CHECK FAILED'}\n  ${files.join('\n  ')}\n`,
    );
    failed ||= !check.ok;
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
