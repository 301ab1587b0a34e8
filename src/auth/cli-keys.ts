/**
 * `floodgate keys`: API keys from a terminal, against the database like `dlq list`
 * (DATABASE_URL, or the embedded PostgreSQL under FLOODGATE_DATA_DIR).
 *
 *   floodgate keys create --name NAME --scopes ingest[,read,admin] [--events-per-s N [--burst-events N]] [--json]
 *   floodgate keys list [--json]
 *   floodgate keys revoke ID
 *
 * The key is printed once, by create; list never prints keys or hashes. Running engines
 * pick a change up within their key cache's refresh interval (src/auth/key-cache.ts).
 * Each change writes an audit line to stderr. Exit codes: 0 done, 1 the database could
 * not be used or no such key, 2 bad usage.
 */
import os from 'node:os';
import pino from 'pino';
import { parseKeyLimit } from '../limits/key-limit';
import { auditLog, type Actor } from './audit';
import { generateKey, hashKey, keyNameProblem, parseScopes } from './key-format';
import { isKeyId } from './key-routes';
import { keyItemOf, KeyStore, type KeyRecord } from './key-store';
import { openDatabase, runSubcommand, stdio, takeFlags, UsageError, type Output } from '../cli-command';
import { loadConfig } from '../config/load-config';

export const keysUsage = `Usage:
  floodgate keys create --name NAME --scopes ingest[,read,admin] [--events-per-s N [--burst-events N]] [--json]
      Creates a key and prints it once (with --json: one object with id and key).
      --events-per-s limits the key's ingest (429 beyond it); the burst defaults to N.
  floodgate keys list [--json]
      Every key with its scopes and times; never the key itself. --json: one object per line.
  floodgate keys revoke ID
      Revokes a key; running engines refuse it within a few seconds.
  Settings flags (--database-url URL, --data-dir DIR …) choose the database.
`;

export function runKeys(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output = stdio): Promise<number> {
  const actions = {
    create: (rest: readonly string[]) => create(rest, env, io),
    list: (rest: readonly string[]) => list(rest, env, io),
    revoke: (rest: readonly string[]) => revoke(rest, env, io),
  };
  const missingTableHint = 'the database has no api_keys table yet: run `floodgate migrate` or start the engine once';
  return runSubcommand({ name: 'keys', usage: keysUsage, actions, missingTableHint }, argv, io);
}

/** Settings flags pass through to the loader; anything else left over is a mistake. */
function settingsArgs(rest: readonly string[], action: string): string[] {
  const stray = rest.find((arg) => !arg.startsWith('--') && !rest[rest.indexOf(arg) - 1]?.startsWith('--'));
  if (stray !== undefined) throw new UsageError(`unexpected argument "${stray.slice(0, 64)}" for keys ${action}`);
  return [...rest];
}

async function withStore<T>(rest: readonly string[], env: NodeJS.ProcessEnv, work: (store: KeyStore) => Promise<T>): Promise<T> {
  const config = loadConfig({ env, argv: rest });
  const database = await openDatabase(config, env);
  const store = KeyStore.open(database.connectionString);
  try {
    return await work(store);
  } finally {
    await store.close();
    await database.close();
  }
}

/** The audit trail of CLI changes goes to stderr, so stdout stays the answer. */
function auditor(): { log: pino.Logger; actor: Actor } {
  const log = pino({ base: { service: 'floodgate-keys' } }, pino.destination({ dest: 2, sync: true }));
  return { log, actor: { keyId: null, keyName: null, address: `cli:${os.userInfo().username}@${os.hostname()}` } };
}

async function create(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output): Promise<number> {
  const { flags, rest } = takeFlags(argv, ['name', 'scopes', 'events-per-s', 'burst-events'], ['json']);
  const name = flags.get('--name');
  if (name === undefined) throw new UsageError('--name is required');
  const nameProblem = keyNameProblem(name);
  if (nameProblem !== null) throw new UsageError(`--name: ${nameProblem}`);
  const scopesText = flags.get('--scopes');
  if (scopesText === undefined) throw new UsageError('--scopes is required (e.g. --scopes ingest or --scopes ingest,read)');
  const scopes = parseScopes(scopesText);
  if (!scopes.ok) throw new UsageError(`--scopes: ${scopes.message}`);
  const limit = parseKeyLimit(flags.get('--events-per-s'), flags.get('--burst-events'), ['--events-per-s', '--burst-events'], 'flags');
  if (!limit.ok) throw new UsageError(limit.message);
  const settings = settingsArgs(rest, 'create');
  const key = generateKey();
  const record = await withStore(settings, env, (store) => store.create(name, scopes.scopes, hashKey(key), limit.limit));
  const { log, actor } = auditor();
  auditLog(log, 'key.create', actor, { target_key_id: record.id, target_key_name: record.name, scopes: record.scopes, events_per_s: record.eventsPerS, burst_events: record.burstEvents });
  if (flags.has('--json')) io.out(`${JSON.stringify({ ...keyItemOf(record), key })}\n`);
  else io.out(`created key ${record.id} (${record.name}; scopes ${record.scopes.join(',')})\n${key}\nThis is the only time the key is shown: store it now.\n`);
  return 0;
}

async function list(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output): Promise<number> {
  const { flags, rest } = takeFlags(argv, [], ['json']);
  const records = await withStore(settingsArgs(rest, 'list'), env, (store) => store.list());
  if (flags.has('--json')) for (const record of records) io.out(`${JSON.stringify(keyItemOf(record))}\n`);
  else io.out(records.length === 0 ? 'no API keys\n' : renderTable(records));
  return 0;
}

async function revoke(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output): Promise<number> {
  const [id, ...rest] = argv;
  if (id === undefined || id.startsWith('--')) throw new UsageError('keys revoke needs the key id (floodgate keys list shows it)');
  if (!isKeyId(id)) throw new UsageError(`"${id.slice(0, 32)}" is not a key id (a positive integer)`);
  const record = await withStore(settingsArgs(rest, 'revoke'), env, (store) => store.revoke(id));
  if (record === null) {
    io.err(`floodgate keys: no API key has id ${id}\n`);
    return 1;
  }
  const { log, actor } = auditor();
  auditLog(log, 'key.revoke', actor, { target_key_id: record.id, target_key_name: record.name });
  io.out(`revoked key ${record.id} (${record.name}) at ${record.revokedAt?.toISOString()}\n`);
  return 0;
}

const tableColumns = ['id', 'name', 'scopes', 'events_per_s', 'burst_events', 'created_at', 'last_used_at', 'revoked_at'] as const;

function renderTable(records: readonly KeyRecord[]): string {
  const rows = records.map((record) => [
    record.id,
    record.name.replace(/[\u0000-\u001f\u007f]/g, '?'),
    record.scopes.join(','),
    record.eventsPerS === null ? '-' : String(record.eventsPerS),
    record.burstEvents === null ? '-' : String(record.burstEvents),
    record.createdAt.toISOString(),
    record.lastUsedAt?.toISOString() ?? '-',
    record.revokedAt?.toISOString() ?? '-',
  ]);
  const widths = tableColumns.map((name, column) => Math.max(name.length, ...rows.map((row) => (row[column] as string).length)));
  const line = (cells: readonly string[]) => `${cells.map((cell, column) => cell.padEnd(widths[column] as number)).join('  ').trimEnd()}\n`;
  return [line(tableColumns), ...rows.map(line)].join('');
}
