/**
 * `floodgate subscriptions`: delivery subscriptions from a terminal, against the database
 * like `floodgate keys` (DATABASE_URL, or the embedded PostgreSQL under FLOODGATE_DATA_DIR;
 * settings flags such as --database-url apply). The rules are the routes' own
 * (parseSubscriptionBody in ./subscription-store.ts), problems named by flag; every change
 * goes through the same store, so running engines fan out against it from their next batch.
 *
 * Secrets: create, show and rotate-secret print the current one (as the admin routes do);
 * list never does. Each change writes an audit line to stderr.
 *
 * Exit codes: 0 done, 1 the database could not be used or no such subscription, 2 bad usage
 * (a refused destination included).
 */
import os from 'node:os';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import pino from 'pino';
import { auditLog, type Actor } from '../auth/audit';
import { openDatabase, runSubcommand, stdio, UsageError, type Output } from '../cli-command';
import type { Config } from '../config/config';
import { loadConfig, settingFlagOptions } from '../config/load-config';
import { migrateDatabase } from '../sink/migrations';
import {
  generateSecret, isSubscriptionId, listLimitMax, parseSubscriptionBody, refusedDestination, secretProblem,
  subscriptionItemOf, SubscriptionStore, type FieldProblem, type Subscription, type SubscriptionFields,
} from './subscription-store';

export const subscriptionsUsage = `Usage:
  floodgate subscriptions create --url URL [--event-type T …] [--source S …] [--description TEXT]
      [--secret whsec_…] [--rate-limit-per-s N] [--max-in-flight N] [--retry-schedule-s 5,300,…]
      [--retry-max-age-s N] [--disabled] [--json]
      Creates a subscription and prints its id and signing secret (generated unless given).
      --event-type: an exact type, prefix.* or *; repeat for several (default: every type).
      --source: an exact source; repeat for several (default: every source).
      --retry-schedule-s: seconds after each failed attempt ("" for no retries).
  floodgate subscriptions list [--json]
      Live subscriptions by id, without secrets. --json: one object per line.
  floodgate subscriptions show ID [--json]
      One subscription, with its current secret.
  floodgate subscriptions update ID [--url …] [--event-type …] [--source …] [--description …]
      [--rate-limit-per-s …] [--max-in-flight …] [--retry-schedule-s …] [--retry-max-age-s …]
      [--enable | --disable] [--clear FIELD[,FIELD…]] [--json]
      Changes only what is given. --clear takes event_types, sources, description,
      rate_limit_per_s, max_in_flight (back to 16), retry_schedule_s, retry_max_age_s.
  floodgate subscriptions delete ID
      Deletes it; its pending deliveries are discarded.
  floodgate subscriptions rotate-secret ID [--secret whsec_…] [--json]
      Signs with a new secret; the previous one keeps signing for FLOODGATE_DELIVERY_SECRET_GRACE_MS.
  Settings flags (--database-url URL, --data-dir DIR, --delivery-allow-private-networks …) apply.
`;

const ownOptions = {
  url: { type: 'string' },
  'event-type': { type: 'string', multiple: true },
  source: { type: 'string', multiple: true },
  description: { type: 'string' },
  secret: { type: 'string' },
  'rate-limit-per-s': { type: 'string' },
  'max-in-flight': { type: 'string' },
  'retry-schedule-s': { type: 'string' },
  'retry-max-age-s': { type: 'string' },
  disabled: { type: 'boolean' },
  enable: { type: 'boolean' },
  disable: { type: 'boolean' },
  clear: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

type OwnValues = { -readonly [name in keyof typeof ownOptions]?: (typeof ownOptions)[name] extends { multiple: true } ? string[] : (typeof ownOptions)[name] extends { type: 'boolean' } ? boolean : string };

/** The flags each action takes (besides the settings flags). */
const actionFlags: Readonly<Record<string, readonly (keyof typeof ownOptions)[]>> = {
  create: ['url', 'event-type', 'source', 'description', 'secret', 'rate-limit-per-s', 'max-in-flight', 'retry-schedule-s', 'retry-max-age-s', 'disabled', 'json'],
  list: ['json'],
  show: ['json'],
  update: ['url', 'event-type', 'source', 'description', 'rate-limit-per-s', 'max-in-flight', 'retry-schedule-s', 'retry-max-age-s', 'enable', 'disable', 'clear', 'json'],
  delete: [],
  'rotate-secret': ['secret', 'json'],
};

/** The flag that sets each body field, for messages. */
const flagOfField: Readonly<Record<string, string>> = {
  url: '--url', event_types: '--event-type', sources: '--source', description: '--description', secret: '--secret',
  rate_limit_per_s: '--rate-limit-per-s', max_in_flight: '--max-in-flight', retry_schedule_s: '--retry-schedule-s',
  retry_max_age_s: '--retry-max-age-s', enabled: '--enable/--disable',
};
const clearable: readonly string[] = ['event_types', 'sources', 'description', 'rate_limit_per_s', 'max_in_flight', 'retry_schedule_s', 'retry_max_age_s'];

interface Invocation {
  readonly values: OwnValues;
  readonly positionals: string[];
  readonly config: Config;
}

export function runSubscriptions(argv: readonly string[], env: NodeJS.ProcessEnv, io: Output = stdio): Promise<number> {
  type Work = (store: SubscriptionStore, call: Invocation) => Promise<number>;
  const action = (name: string, work: Work) => async (rest: readonly string[]): Promise<number> => {
    const { values, positionals, settingArgs } = parse(name, rest);
    const config = loadConfig({ env, argv: settingArgs });
    const database = await openDatabase(config, env);
    try {
      // The table may not exist yet on a database no engine has started against.
      await migrateDatabase(database.connectionString, silentLogger);
      const store = SubscriptionStore.open(database.connectionString);
      try {
        return await work(store, { values, positionals, config });
      } finally {
        await store.close();
      }
    } finally {
      await database.close();
    }
  };
  const actions = {
    create: action('create', (store, call) => create(store, call, io)),
    list: action('list', (store, call) => list(store, call, io)),
    show: action('show', (store, call) => show(store, call, io)),
    update: action('update', (store, call) => update(store, call, io)),
    delete: action('delete', (store, call) => remove(store, call, io)),
    'rotate-secret': action('rotate-secret', (store, call) => rotate(store, call, io)),
  };
  return runSubcommand({ name: 'subscriptions', usage: subscriptionsUsage, actions }, argv, io);
}

const silentLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** This action's flags, its positionals, and the settings flags rebuilt for loadConfig. */
function parse(action: string, argv: readonly string[]): { values: OwnValues; positionals: string[]; settingArgs: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...settingFlagOptions, ...ownOptions }, strict: true, allowPositionals: true, tokens: true });
  } catch (error) {
    // parseArgs names the flag; a secret given as a value is never part of its message.
    throw new UsageError(error instanceof Error ? error.message.split('\n')[0] ?? 'bad arguments' : 'bad arguments');
  }
  const allowed = actionFlags[action] ?? [];
  const settingArgs: string[] = [];
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    if (!Object.hasOwn(ownOptions, token.name)) settingArgs.push(token.value === undefined ? `--${token.name}` : `--${token.name}=${token.value}`);
    else if (!allowed.includes(token.name as keyof typeof ownOptions)) throw new UsageError(`subscriptions ${action} does not take --${token.name}`);
  }
  return { values: parsed.values as OwnValues, positionals: parsed.positionals, settingArgs };
}

/** "12" → 12; anything else stays text, for the field rules to refuse by name. */
function numberOf(text: string): number | string {
  return /^-?[0-9]{1,16}$/.test(text.trim()) ? Number(text) : text;
}

/** The request body these flags describe, in the routes' JSON shape. */
function bodyOf(values: OwnValues): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (values.url !== undefined) body.url = values.url;
  if (values['event-type'] !== undefined) body.event_types = values['event-type'];
  if (values.source !== undefined) body.sources = values.source;
  if (values.description !== undefined) body.description = values.description;
  if (values.secret !== undefined) body.secret = values.secret;
  if (values['rate-limit-per-s'] !== undefined) body.rate_limit_per_s = numberOf(values['rate-limit-per-s']);
  if (values['max-in-flight'] !== undefined) body.max_in_flight = numberOf(values['max-in-flight']);
  const schedule = values['retry-schedule-s'];
  if (schedule !== undefined) body.retry_schedule_s = schedule.trim() === '' ? [] : schedule.split(',').map(numberOf);
  if (values['retry-max-age-s'] !== undefined) body.retry_max_age_s = numberOf(values['retry-max-age-s']);
  if (values.disabled === true || values.disable === true) body.enabled = false;
  if (values.enable === true) body.enabled = true;
  return body;
}

function usageOf(problem: FieldProblem): UsageError {
  const flag = problem.field === null ? null : flagOfField[problem.field] ?? null;
  return new UsageError(flag === null ? problem.message : `${flag}: ${problem.message}`);
}

async function checkedFields(body: Record<string, unknown>, mode: 'create' | 'update', config: Config): Promise<{ fields: SubscriptionFields; secret: string | null }> {
  const parsed = parseSubscriptionBody(body, mode, config.deliveryAllowPrivateNetworks);
  if (!parsed.ok) throw usageOf(parsed.problem);
  if (parsed.fields.url !== undefined) {
    const refused = await refusedDestination(parsed.fields.url, config.deliveryAllowPrivateNetworks);
    if (refused !== null) throw usageOf(refused);
  }
  return parsed;
}

function onlyId(call: Invocation, action: string): string {
  const [id, ...stray] = call.positionals;
  if (id === undefined) throw new UsageError(`subscriptions ${action} needs the subscription id (floodgate subscriptions list shows it)`);
  if (stray.length > 0) throw new UsageError(`unexpected argument "${(stray[0] as string).slice(0, 64)}" for subscriptions ${action}`);
  if (!isSubscriptionId(id)) throw new UsageError(`"${id.slice(0, 32)}" is not a subscription id (a positive integer)`);
  return id;
}

function noPositionals(call: Invocation, action: string): void {
  const stray = call.positionals[0];
  if (stray !== undefined) throw new UsageError(`unexpected argument "${stray.slice(0, 64)}" for subscriptions ${action}`);
}

/** The audit trail of CLI changes goes to stderr, so stdout stays the answer. */
function audit(action: string, details: Record<string, unknown>): void {
  const log = pino({ base: { service: 'floodgate-subscriptions' } }, pino.destination({ dest: 2, sync: true }));
  const actor: Actor = { keyId: null, keyName: null, address: `cli:${os.userInfo().username}@${os.hostname()}` };
  auditLog(log, action, actor, details);
}

function notFound(id: string, io: Output): number {
  io.err(`floodgate subscriptions: no subscription has id ${id}\n`);
  return 1;
}

async function create(store: SubscriptionStore, call: Invocation, io: Output): Promise<number> {
  noPositionals(call, 'create');
  if (call.values.url === undefined) throw new UsageError('--url is required');
  const { fields, secret } = await checkedFields(bodyOf(call.values), 'create', call.config);
  const created = await store.create({ ...fields, url: fields.url as string }, secret ?? generateSecret());
  audit('subscription.created', { target_subscription_id: created.id, origin: new URL(created.url).origin, enabled: created.enabled });
  if (call.values.json === true) io.out(`${JSON.stringify(subscriptionItemOf(created, 'full'))}\n`);
  else io.out(`created subscription ${created.id} → ${created.url}${created.enabled ? '' : ' (disabled)'}\nsecret: ${created.secrets[0]}\n`);
  return 0;
}

async function list(store: SubscriptionStore, call: Invocation, io: Output): Promise<number> {
  noPositionals(call, 'list');
  const subscriptions: Subscription[] = [];
  for (let after: string | null = null, more = true; more; ) {
    const page = await store.list(after, listLimitMax);
    subscriptions.push(...page.subscriptions);
    more = page.more;
    after = page.subscriptions[page.subscriptions.length - 1]?.id ?? null;
  }
  if (call.values.json === true) for (const subscription of subscriptions) io.out(`${JSON.stringify(subscriptionItemOf(subscription))}\n`);
  else io.out(subscriptions.length === 0 ? 'no subscriptions\n' : renderTable(subscriptions));
  return 0;
}

async function show(store: SubscriptionStore, call: Invocation, io: Output): Promise<number> {
  const id = onlyId(call, 'show');
  const subscription = await store.get(id);
  if (subscription === null) return notFound(id, io);
  const item = subscriptionItemOf(subscription, 'full');
  if (call.values.json === true) io.out(`${JSON.stringify(item)}\n`);
  else io.out(Object.entries(item).map(([name, value]) => `${name}: ${typeof value === 'string' ? printable(value) : JSON.stringify(value)}\n`).join(''));
  return 0;
}

async function update(store: SubscriptionStore, call: Invocation, io: Output): Promise<number> {
  const id = onlyId(call, 'update');
  if (call.values.enable === true && call.values.disable === true) throw new UsageError('give --enable or --disable, not both');
  const body = bodyOf(call.values);
  for (const name of (call.values.clear ?? '').split(',').map((part) => part.trim()).filter((part) => part !== '')) {
    if (!clearable.includes(name)) throw new UsageError(`--clear: "${name.slice(0, 32)}" cannot be cleared; one of ${clearable.join(', ')}`);
    if (Object.hasOwn(body, name)) throw new UsageError(`--clear ${name} and ${flagOfField[name]} contradict each other`);
    body[name] = null;
  }
  if (Object.keys(body).length === 0) throw new UsageError('update needs at least one change (a field flag, --enable, --disable or --clear)');
  const { fields } = await checkedFields(body, 'update', call.config);
  const updated = await store.update(id, fields);
  if (updated === null) return notFound(id, io);
  audit('subscription.updated', { target_subscription_id: updated.id, fields: Object.keys(fields), enabled: updated.enabled });
  if (call.values.json === true) io.out(`${JSON.stringify(subscriptionItemOf(updated, 'full'))}\n`);
  else io.out(`updated subscription ${updated.id} (${Object.keys(fields).join(', ')})\n`);
  return 0;
}

async function remove(store: SubscriptionStore, call: Invocation, io: Output): Promise<number> {
  const id = onlyId(call, 'delete');
  const removed = await store.remove(id);
  if (removed === null) return notFound(id, io);
  audit('subscription.deleted', { target_subscription_id: removed.id, discarded_deliveries: removed.discarded });
  io.out(`deleted subscription ${removed.id}; ${removed.discarded} pending deliver${removed.discarded === 1 ? 'y' : 'ies'} discarded\n`);
  return 0;
}

async function rotate(store: SubscriptionStore, call: Invocation, io: Output): Promise<number> {
  const id = onlyId(call, 'rotate-secret');
  const given = call.values.secret;
  if (given !== undefined) {
    const problem = secretProblem(given);
    if (problem !== null) throw new UsageError(`--secret: ${problem}`);
  }
  const rotated = await store.rotateSecret(id, given ?? generateSecret(), call.config.deliverySecretGraceMs);
  if (rotated === null) return notFound(id, io);
  audit('subscription.secret_rotated', { target_subscription_id: rotated.id, secrets: rotated.secrets.length });
  if (call.values.json === true) io.out(`${JSON.stringify(subscriptionItemOf(rotated, 'full'))}\n`);
  else {
    const until = rotated.secretExpiresAt[0];
    io.out(`rotated the secret of subscription ${rotated.id}${until === undefined ? '' : `; the previous one signs until ${until.toISOString()}`}\nsecret: ${rotated.secrets[0]}\n`);
  }
  return 0;
}

/** Stored text may hold control characters; a terminal must not interpret them. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]/g, '?');
}

const tableColumns = ['id', 'enabled', 'url', 'event_types', 'sources', 'max_in_flight', 'rate_limit_per_s'] as const;

function renderTable(subscriptions: readonly Subscription[]): string {
  const rows = subscriptions.map((subscription) => [
    subscription.id,
    subscription.enabled ? 'yes' : 'no',
    printable(subscription.url),
    printable(subscription.eventTypes?.join(',') ?? '*'),
    printable(subscription.sources?.join(',') ?? '*'),
    String(subscription.maxInFlight),
    subscription.rateLimitPerS === null ? '-' : String(subscription.rateLimitPerS),
  ]);
  const widths = tableColumns.map((name, column) => Math.max(name.length, ...rows.map((row) => (row[column] as string).length)));
  const line = (cells: readonly string[]) => `${cells.map((cell, column) => cell.padEnd(widths[column] as number)).join('  ').trimEnd()}\n`;
  return [line(tableColumns), ...rows.map(line)].join('');
}
