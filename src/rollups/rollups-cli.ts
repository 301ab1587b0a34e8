/**
 * `floodgate rollups`: checking and repairing the rollup tables from a terminal.
 *
 *   floodgate rollups verify [--from ISO] [--to ISO]
 *       compares every minute, hour and day bucket of the range with count(*) of its
 *       events and prints each difference; exit 1 when there is any
 *   floodgate rollups rebuild --from ISO --to ISO
 *       recomputes the range's rollups from events in one transaction (ingest into the
 *       rollup tables waits for it: src/rollups/rollup-check.ts)
 *
 * Ranges are widened to whole UTC days, then start no earlier than the first day retention
 * keeps of both the events and the rollups (src/rollups/rollup-check.ts); the output says
 * when that cut the range. Exit codes: 0 done (verify: no difference), 1 a difference, or
 * the database could not be used, 2 bad usage.
 */
import pg from 'pg';
import { openDatabase, runSubcommand, stdio, takeFlags, UsageError, type Output } from '../cli-command';
import { loadConfig } from '../config/load-config';
import { dayRangeOf, rebuildRollups, verifyRollups, type ClippedRange, type DayRange, type RollupDifference } from './rollup-check';

export const rollupsUsage = `Usage:
  floodgate rollups verify [--from ISO-8601] [--to ISO-8601] [--database-url URL | --data-dir DIR …]
      Compares every minute, hour and day bucket with count(*) of the stored events; prints
      each difference and exits 1 when there is any. Open ends cover everything stored.
  floodgate rollups rebuild --from ISO-8601 --to ISO-8601
      Recomputes the range's rollups from the events in one transaction. Ingest waits for it.
  Ranges are widened to whole UTC days, and start no earlier than what retention
  (FLOODGATE_RETENTION_DAYS, FLOODGATE_ROLLUP_RETENTION_DAYS) keeps of both tables.
`;

export function runRollups(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output = stdio): Promise<number> {
  return runSubcommand(
    {
      name: 'rollups',
      usage: rollupsUsage,
      actions: { verify: (rest) => verify(rest, env, io), rebuild: (rest) => rebuild(rest, env, io) },
      missingTableHint: 'the database has no rollup tables yet: run `floodgate migrate` or start the engine once',
    },
    argv,
    io,
  );
}

async function verify(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output): Promise<number> {
  const { flags, rest } = takeFlags(argv, ['from', 'to'], []);
  const range = rangeOf(flags, false);
  const result = await withClient(rest, env, (client) => verifyRollups(client, range));
  for (const difference of result.differences) io.out(`${describe(difference)}\n`);
  if (result.differenceCount > result.differences.length) {
    io.out(`… and ${result.differenceCount - result.differences.length} more\n`);
  }
  io.out(clipNote(range, result));
  io.out(`${result.differenceCount} difference(s) in ${rangeText(result)}\n`);
  return result.differenceCount === 0 ? 0 : 1;
}

async function rebuild(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output): Promise<number> {
  const { flags, rest } = takeFlags(argv, ['from', 'to'], []);
  const range = rangeOf(flags, true);
  const result = await withClient(rest, env, (client) => rebuildRollups(client, range));
  io.out(clipNote(range, result));
  io.out(`rebuilt ${rangeText(result)}: ${result.minuteRows} minute row(s), ${result.hourRows} hour row(s), ${result.dayRows} day row(s)\n`);
  return 0;
}

/** Says, when it did, how retention cut the range asked for; '' otherwise. */
function clipNote(asked: DayRange, result: ClippedRange): string {
  if (!result.clipped) return '';
  const { events, rollups } = result.keptFrom;
  const kept = [events === null ? '' : `events from ${events}`, rollups === null ? '' : `rollups from ${rollups}`].filter((text) => text !== '');
  const cut = result.empty ? `nothing of [${asked.from}, ${asked.to}) is kept` : `the range starts at ${result.range.from} instead of ${asked.from}`;
  return `retention keeps ${kept.join(' and ')}: ${cut}\n`;
}

function rangeText(result: ClippedRange): string {
  return result.empty ? '(nothing kept)' : `[${result.range.from}, ${result.range.to})`;
}

function rangeOf(flags: ReadonlyMap<string, string>, required: boolean): DayRange {
  const from = instantOf(flags, '--from', required);
  const to = instantOf(flags, '--to', required);
  if (from !== null && to !== null && from.getTime() >= to.getTime()) throw new UsageError('--from must be before --to');
  return dayRangeOf(from, to);
}

/** Date.parse alone would read a bare date-time in local time: an offset or Z is required. */
const instantPattern = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2}))?$/;

function instantOf(flags: ReadonlyMap<string, string>, name: string, required: boolean): Date | null {
  const text = flags.get(name);
  if (text === undefined) {
    if (required) throw new UsageError(`${name} is required`);
    return null;
  }
  const milliseconds = instantPattern.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(milliseconds)) throw new UsageError(`${name} must be an ISO-8601 date or date-time with Z or an offset, e.g. 2026-12-07T00:00Z`);
  return new Date(milliseconds);
}

async function withClient<T>(argv: readonly string[], env: NodeJS.ProcessEnv, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const config = loadConfig({ env, argv });
  const database = await openDatabase(config, env);
  const client = new pg.Client({ connectionString: database.connectionString, application_name: 'floodgate-rollups' });
  try {
    await client.connect();
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
    await database.close();
  }
}

function describe(difference: RollupDifference): string {
  const { table, bucket, eventType, source, events, rollup } = difference;
  return `${table} ${bucket} event_type=${JSON.stringify(eventType)} source=${JSON.stringify(source)} events=${events} rollup=${rollup}`;
}
