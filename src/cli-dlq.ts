/**
 * `floodgate dlq`: the dead-letter queue from a terminal.
 *
 *   floodgate dlq list [--limit N] [--after CURSOR] [--reason-code X] [--replayed true|false] [--json]
 *       reads dead_letters directly (DATABASE_URL, or the embedded PostgreSQL under
 *       FLOODGATE_DATA_DIR), newest first; other settings flags (--database-url …) apply
 *   floodgate dlq replay (--ids 1,2,3 | --all [--reason-code X]) [--url URL] [--json]
 *       asks the running engine to replay (POST /v1/dead-letters/replay): replay needs the
 *       engine's validation, dedupe and actors. --all follows next_cursor page by page.
 *
 * Exit codes: 0 done (whatever the outcomes: they are printed), 1 the database or engine
 * could not be used, 2 bad usage.
 */
import { openDatabase, runSubcommand, stdio, takeFlags, UsageError, type Output } from './cli-command';
import { loadConfig } from './config/load-config';
import { DeadLetterStore, decodeCursor, isReasonCode, listLimitMax, parseId, replayBatchMax } from './query/dead-letters';
import { itemOf } from './query/dead-letter-routes';

export const dlqUsage = `Usage:
  floodgate dlq list [--limit N] [--after CURSOR] [--reason-code SQLSTATE] [--replayed true|false] [--json]
                     [--database-url URL | --data-dir DIR …]
      Dead letters, newest first (N: 1..${listLimitMax}, default 100). --json prints one JSON object per line.
  floodgate dlq replay (--ids 1,2,3 | --all [--reason-code SQLSTATE]) [--url http://127.0.0.1:8080] [--json]
      Replays through the running engine (validation and dedupe again) and prints the counts.
      --url defaults to http://127.0.0.1:$PORT (8080).
`;

/** A replay page of 5000 events waits for its commits; past this the engine is presumed stuck. */
const replayCallTimeoutMs = 10 * 60_000;
/** Longest reason and event id shown in the table; --json shows everything. */
const reasonCharsShown = 60;
const eventIdCharsShown = 32;

export function runDlq(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output = stdio): Promise<number> {
  return runSubcommand(
    { name: 'dlq', usage: dlqUsage, actions: { list: (rest) => list(rest, env, io), replay: (rest) => replay(rest, env, io) } },
    argv,
    io,
  );
}

// list --------------------------------------------------------------------------------------

async function list(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output): Promise<number> {
  const { flags, rest } = takeFlags(argv, ['limit', 'after', 'reason-code', 'replayed'], ['json']);
  const limitText = flags.get('--limit') ?? '100';
  const limit = /^\d{1,4}$/.test(limitText) ? Number(limitText) : Number.NaN;
  if (!(limit >= 1 && limit <= listLimitMax)) throw new UsageError(`--limit must be an integer from 1 to ${listLimitMax}`);
  const after = flags.get('--after') ?? null;
  const beforeId = after === null ? null : decodeCursor('list', after);
  if (after !== null && beforeId === null) throw new UsageError('--after must be a cursor printed by an earlier `floodgate dlq list`');
  const reasonCode = flags.get('--reason-code') ?? null;
  if (reasonCode !== null && !isReasonCode(reasonCode)) throw new UsageError('--reason-code must be a SQLSTATE such as 22P05');
  const replayedText = flags.get('--replayed') ?? null;
  if (replayedText !== null && replayedText !== 'true' && replayedText !== 'false') throw new UsageError('--replayed must be true or false');

  const config = loadConfig({ env, argv: rest });
  const database = await openDatabase(config, env);
  const store = DeadLetterStore.open(database.connectionString);
  try {
    const page = await store.list({ limit, beforeId, reasonCode, replayed: replayedText === null ? null : replayedText === 'true' }).catch((error: unknown) => {
      if ((error as { code?: unknown }).code === '42P01') throw new Error('the database has no dead_letters table yet: run `floodgate migrate` or start the engine once');
      throw error;
    });
    if (flags.has('--json')) {
      for (const record of page.records) io.out(`${JSON.stringify(itemOf(record))}\n`);
      if (page.nextCursor !== null) io.err(`more: floodgate dlq list --after ${page.nextCursor}\n`);
    } else {
      io.out(page.records.length === 0 ? 'no dead letters\n' : renderTable(page.records.map(itemOf)));
      if (page.nextCursor !== null) io.out(`more: floodgate dlq list --after ${page.nextCursor}\n`);
    }
    return 0;
  } finally {
    await store.close();
    await database.close();
  }
}

const tableColumns = ['id', 'failed_at', 'code', 'attempts', 'replayed_at', 'event_id', 'reason'] as const;

function renderTable(items: ReadonlyArray<Record<string, unknown>>): string {
  const rows = items.map((item) => [
    String(item.id),
    String(item.failed_at),
    String(item.reason_code),
    String(item.attempts),
    item.replayed_at === null ? '-' : String(item.replayed_at),
    item.event_id === null ? '-' : shown(String(item.event_id), eventIdCharsShown),
    shown(String(item.reason), reasonCharsShown),
  ]);
  const widths = tableColumns.map((name, column) => Math.max(name.length, ...rows.map((row) => (row[column] as string).length)));
  const line = (cells: readonly string[]) => `${cells.map((cell, column) => cell.padEnd(widths[column] as number)).join('  ').trimEnd()}\n`;
  return [line(tableColumns), ...rows.map(line)].join('');
}

/** One line, control characters made visible, cut to `max` characters. */
function shown(text: string, max: number): string {
  const flat = text.replace(/[\u0000-\u001f\u007f]/g, '?');
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

// replay ------------------------------------------------------------------------------------

interface ReplayAnswer {
  readonly [count: string]: unknown;
  readonly results: ReadonlyArray<{ id: unknown; outcome: string; event_id: unknown; error?: { code: string; field: string | null; message: string } }>;
  readonly next_cursor?: string | null;
}

const countNames = ['replayed', 'committed', 'duplicates', 'rejected', 'dead_lettered', 'failed', 'not_found', 'already_replayed'] as const;

async function replay(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output): Promise<number> {
  const { flags, rest } = takeFlags(argv, ['ids', 'reason-code', 'url'], ['all', 'json']);
  if (rest.length > 0) throw new UsageError(`unknown argument "${rest[0]}" for dlq replay`);
  const idsText = flags.get('--ids');
  if ((idsText === undefined) === !flags.has('--all')) throw new UsageError('give exactly one of --ids 1,2,3 or --all');
  const reasonCode = flags.get('--reason-code') ?? null;
  if (reasonCode !== null && (idsText !== undefined || !isReasonCode(reasonCode))) throw new UsageError('--reason-code goes with --all and must be a SQLSTATE such as 22P05');
  const ids = idsText === undefined ? null : parseIdList(idsText);
  const base = (flags.get('--url') ?? `http://127.0.0.1:${env.PORT !== undefined && env.PORT !== '' ? env.PORT : '8080'}`).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+$/.test(base)) throw new UsageError('--url must look like http://host:port');

  const totals = new Map<string, number>(countNames.map((name) => [name, 0]));
  let after: string | null = null;
  for (;;) {
    const body = ids !== null ? { ids } : { all: true, ...(reasonCode === null ? {} : { reason_code: reasonCode }), ...(after === null ? {} : { after }) };
    const answer = await postReplay(base, body);
    if (flags.has('--json')) io.out(`${JSON.stringify(answer)}\n`);
    for (const name of countNames) totals.set(name, (totals.get(name) ?? 0) + (typeof answer[name] === 'number' ? (answer[name] as number) : 0));
    if (!flags.has('--json')) for (const result of answer.results) if (!['committed', 'duplicate'].includes(result.outcome)) io.out(describeResult(result));
    after = answer.next_cursor ?? null;
    if (ids !== null || after === null) break;
  }
  if (!flags.has('--json')) io.out(`${countNames.map((name) => `${name} ${totals.get(name)}`).join(', ')}\n`);
  return 0;
}

function parseIdList(text: string): string[] {
  const parts = text.split(',').map((part) => part.trim()).filter((part) => part !== '');
  if (parts.length === 0) throw new UsageError('--ids needs at least one id');
  if (parts.length > replayBatchMax) throw new UsageError(`--ids holds ${parts.length} ids; one call replays at most ${replayBatchMax} (use --all)`);
  return parts.map((part) => {
    const id = parseId(part);
    if (id === null) throw new UsageError(`--ids: "${part.slice(0, 32)}" is not a dead-letter id`);
    return id;
  });
}

function describeResult(result: ReplayAnswer['results'][number]): string {
  const event = result.event_id === null ? '' : ` (${shown(String(result.event_id), eventIdCharsShown)})`;
  const error = result.error === undefined ? '' : `: ${result.error.code}${result.error.field === null ? '' : ` ${result.error.field}`} ${result.error.message}`;
  return `  id ${String(result.id)}${event} ${result.outcome}${shown(error, 200)}\n`;
}

async function postReplay(base: string, body: unknown): Promise<ReplayAnswer> {
  const url = `${base}/v1/dead-letters/replay`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(replayCallTimeoutMs),
    });
  } catch (error) {
    const cause = (error as { cause?: { code?: unknown } }).cause;
    const reason = typeof cause?.code === 'string' ? cause.code : error instanceof Error ? error.message : String(error);
    throw new Error(`cannot reach the engine at ${base} (${reason}): replay needs a running engine (floodgate serve); pass --url if it listens elsewhere`);
  }
  const text = await response.text();
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new Error(`${url} answered ${response.status} with a body that is not JSON: ${shown(text, 200)}`);
  }
  if (response.status !== 200) {
    const error = (answer as { error?: { code?: unknown; message?: unknown } }).error;
    throw new Error(`the engine refused the replay: ${response.status} ${String(error?.code)}: ${String(error?.message)}`);
  }
  return answer as ReplayAnswer;
}
