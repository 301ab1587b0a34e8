/**
 * Builds the engine's `Config` from environment variables and CLI flags.
 *
 * The `settings` table below is the single source of every setting's names, kind, default,
 * range, unit and meaning: the parser, the error messages and the README's configuration
 * table (`renderConfigTable`) are all derived from it, so they cannot drift apart.
 *
 * Precedence, lowest first: the table's default, the environment variable, the CLI flag.
 * Every problem is collected before anything is thrown, so an operator fixes a broken
 * deployment in one round instead of one setting per restart.
 */
import * as path from 'node:path';
import { FloodgateError } from '../errors';
import type { Config } from './config';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const secondMs = 1000;
const minuteMs = 60 * secondMs;
const hourMs = 60 * minuteMs;
const dayMs = 24 * hourMs;
/** Ten years of 365 days: the outer bound of the accepted timestamp window. */
const tenYearsMs = 3650 * dayMs;
/** Bad values are echoed in messages; a pasted blob must not flood the log. */
const shownValueCharsMax = 120;

export type SettingKind = 'integer' | 'bytes' | 'duration' | 'enum' | 'string' | 'url' | 'boolean';

interface SettingText {
  /** Environment variable, e.g. `FLOODGATE_BATCH_ROWS_MAX`. */
  readonly env: string;
  /** CLI flag, e.g. `--batch-rows-max`. */
  readonly flag: string;
  /** Unit of the value (plural noun), shown in messages and in the README. */
  readonly unit: string;
  /** One line for the README. */
  readonly description: string;
}

/** integer: plain count; bytes: accepts KiB/MiB/GiB suffixes; duration: accepts ms/s/m/h/d. */
export interface NumberSetting extends SettingText {
  readonly kind: 'integer' | 'bytes' | 'duration';
  readonly default: number;
  readonly min: number;
  readonly max: number;
  readonly multipleOf?: number;
}

export interface EnumSetting extends SettingText {
  readonly kind: 'enum';
  readonly default: string;
  readonly values: readonly string[];
}

/** host: a hostname or IP literal; path: any path, resolved against the working directory. */
export interface StringSetting extends SettingText {
  readonly kind: 'string';
  readonly default: string;
  readonly format: 'host' | 'path';
}

/** Unset (null) unless given; the protocols listed are the only ones accepted. */
export interface UrlSetting extends SettingText {
  readonly kind: 'url';
  readonly default: null;
  readonly protocols: readonly string[];
}

export interface BooleanSetting extends SettingText {
  readonly kind: 'boolean';
  readonly default: boolean;
}

export type SettingSpec = NumberSetting | EnumSetting | StringSetting | UrlSetting | BooleanSetting;
export type Setting = SettingSpec & { readonly key: keyof Config };

/*
 * Keyed by Config property so that the compiler rejects a Config key without a setting,
 * a setting without a Config key, and a default of the wrong type. Order here is the
 * order of the README table.
 */
const settingsByKey = {
  port: {
    env: 'PORT', flag: '--port', kind: 'integer', default: 8080, min: 0, max: 65535, unit: 'port',
    description: 'HTTP port to listen on; 0 asks the OS for any free port (tests).',
  },
  host: {
    env: 'FLOODGATE_HOST', flag: '--host', kind: 'string', format: 'host', default: '0.0.0.0', unit: 'address',
    description: 'Interface to listen on.',
  },
  databaseUrl: {
    env: 'DATABASE_URL', flag: '--database-url', kind: 'url', default: null, protocols: ['postgres:', 'postgresql:'],
    unit: 'URL', description: 'PostgreSQL connection string; unset starts the embedded PostgreSQL.',
  },
  redisUrl: {
    env: 'REDIS_URL', flag: '--redis-url', kind: 'url', default: null, protocols: ['redis:', 'rediss:'],
    unit: 'URL', description: 'Redis connection string; unset turns the cross-node dedupe layer off.',
  },
  redisDedupeTtlMs: {
    env: 'FLOODGATE_REDIS_DEDUPE_TTL_MS', flag: '--redis-dedupe-ttl-ms', kind: 'duration', default: 10 * 60 * secondMs, min: secondMs,
    max: 24 * 60 * 60 * secondMs, unit: 'ms', description: 'How long Redis remembers a committed event id (keep it minutes: ~140 bytes per id).',
  },
  ackMode: {
    env: 'FLOODGATE_ACK', flag: '--ack', kind: 'enum', default: 'durable', values: ['durable', 'async'], unit: 'mode',
    description: 'durable answers after commit; async answers 202 once queued in memory (lost on a crash).',
  },
  dataDir: {
    env: 'FLOODGATE_DATA_DIR', flag: '--data-dir', kind: 'string', format: 'path', default: '.floodgate', unit: 'path',
    description: 'Local state such as the embedded PostgreSQL data; relative paths start at the working directory.',
  },
  embeddedPgPort: {
    env: 'FLOODGATE_EMBEDDED_PG_PORT', flag: '--embedded-pg-port', kind: 'integer', default: 54329,
    // The embedded server runs as an unprivileged user, which cannot bind ports below 1024.
    min: 1024, max: 65535, unit: 'port',
    description: 'Port of the embedded PostgreSQL (only used without DATABASE_URL).',
  },
  actorCount: {
    env: 'FLOODGATE_ACTORS', flag: '--actors', kind: 'integer', default: 2, min: 1, max: 32, unit: 'threads',
    description: 'Actor worker threads, each with its own ring and database connection.',
  },
  ringBytes: {
    // Multiple of 8 so that 64-bit header fields and record starts stay aligned.
    env: 'FLOODGATE_RING_BYTES', flag: '--ring-bytes', kind: 'bytes', default: 16 * MiB, min: 64 * KiB, max: GiB,
    multipleOf: 8, unit: 'bytes', description: 'Shared memory per actor ring; a full ring answers 503.',
  },
  batchRowsMax: {
    env: 'FLOODGATE_BATCH_ROWS_MAX', flag: '--batch-rows-max', kind: 'integer', default: 5000, min: 1, max: 100_000,
    unit: 'rows', description: 'An actor writes its batch once it holds this many rows…',
  },
  batchWaitMs: {
    env: 'FLOODGATE_BATCH_WAIT_MS', flag: '--batch-wait-ms', kind: 'duration', default: 5, min: 0, max: 10 * secondMs,
    unit: 'ms', description: '…or once its oldest unwritten event has waited this long.',
  },
  dedupeWindowEntriesMax: {
    env: 'FLOODGATE_DEDUPE_WINDOW_ENTRIES_MAX', flag: '--dedupe-window-entries-max', kind: 'integer', default: 250_000,
    min: 0, max: 10_000_000, unit: 'entries',
    description: 'Committed event ids each actor remembers for in-memory dedupe (0 turns the window off).',
  },
  retryAttemptsMax: {
    env: 'FLOODGATE_RETRY_ATTEMPTS_MAX', flag: '--retry-attempts-max', kind: 'integer', default: 5, min: 0, max: 100,
    unit: 'attempts', description: 'Retries of a batch after transient database errors before its events fail.',
  },
  bodyBytesMax: {
    env: 'FLOODGATE_BODY_BYTES_MAX', flag: '--body-bytes-max', kind: 'bytes', default: 10 * MiB, min: KiB,
    max: 256 * MiB, unit: 'bytes', description: 'Largest request body as sent (before gzip decoding); larger is 413.',
  },
  bodyDecodedBytesMax: {
    env: 'FLOODGATE_BODY_DECODED_BYTES_MAX', flag: '--body-decoded-bytes-max', kind: 'bytes', default: 32 * MiB,
    min: KiB, max: GiB, unit: 'bytes', description: 'Largest request body after gzip decoding; larger is 413.',
  },
  eventsPerRequestMax: {
    env: 'FLOODGATE_EVENTS_PER_REQUEST_MAX', flag: '--events-per-request-max', kind: 'integer', default: 5000,
    min: 1, max: 100_000, unit: 'events', description: 'Most events in one request; more is 413.',
  },
  eventBytesMax: {
    env: 'FLOODGATE_EVENT_BYTES_MAX', flag: '--event-bytes-max', kind: 'bytes', default: 64 * KiB, min: 256,
    max: 16 * MiB, unit: 'bytes', description: 'Largest single encoded event; larger is a per-event error.',
  },
  attributesBytesMax: {
    env: 'FLOODGATE_ATTRIBUTES_BYTES_MAX', flag: '--attributes-bytes-max', kind: 'bytes', default: 32 * KiB, min: 2,
    max: 16 * MiB, unit: 'bytes', description: 'Largest encoded attributes object of one event (at most eventBytesMax).',
  },
  attributesDepthMax: {
    env: 'FLOODGATE_ATTRIBUTES_DEPTH_MAX', flag: '--attributes-depth-max', kind: 'integer', default: 32, min: 1,
    max: 256, unit: 'levels', description: 'Deepest nesting allowed inside attributes.',
  },
  timestampPastMs: {
    env: 'FLOODGATE_TIMESTAMP_PAST_MS', flag: '--timestamp-past-ms', kind: 'duration', default: 30 * dayMs, min: 0,
    max: tenYearsMs, unit: 'ms', description: 'Oldest accepted event timestamp, counted back from receipt.',
  },
  timestampFutureMs: {
    env: 'FLOODGATE_TIMESTAMP_FUTURE_MS', flag: '--timestamp-future-ms', kind: 'duration', default: hourMs, min: 0,
    max: tenYearsMs, unit: 'ms', description: 'Furthest-ahead accepted event timestamp, counted from receipt.',
  },
  bodyTimeoutMs: {
    env: 'FLOODGATE_BODY_TIMEOUT_MS', flag: '--body-timeout-ms', kind: 'duration', default: 10 * secondMs, min: 100,
    max: 600 * secondMs, unit: 'ms', description: 'Time a client gets to send its whole body; slower is 408.',
  },
  ackTimeoutMs: {
    env: 'FLOODGATE_ACK_TIMEOUT_MS', flag: '--ack-timeout-ms', kind: 'duration', default: 30 * secondMs, min: 100,
    max: 600 * secondMs, unit: 'ms', description: 'Durable mode: longest a request waits for its commit before a 503.',
  },
  drainTimeoutMs: {
    env: 'FLOODGATE_DRAIN_TIMEOUT_MS', flag: '--drain-timeout-ms', kind: 'duration', default: 30 * secondMs, min: 0,
    max: 600 * secondMs, unit: 'ms', description: 'On SIGTERM: longest wait for the rings to drain before exiting anyway.',
  },
  logLevel: {
    env: 'FLOODGATE_LOG_LEVEL', flag: '--log-level', kind: 'enum', default: 'info',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], unit: 'level', description: 'Log level.',
  },
  allowUwsFallback: {
    env: 'FLOODGATE_ALLOW_UWS_FALLBACK', flag: '--allow-uws-fallback', kind: 'boolean', default: false, unit: 'flag',
    description: 'Start even if uWebSockets.js fell back to its slow pure-JS imitation.',
  },
} as const satisfies { readonly [K in keyof Config]: SettingSpec & { readonly default: Config[K] } };

/** Every setting, in README order. Frozen: it is shared, never edited at run time. */
export const settings: readonly Setting[] = Object.freeze(
  Object.entries(settingsByKey).map(([key, spec]) => Object.freeze({ key: key as keyof Config, ...spec })),
);

const settingByEnv = new Map(settings.map((setting) => [setting.env, setting]));
const settingByFlag = new Map(settings.map((setting) => [setting.flag, setting]));

/** Thrown by `loadConfig`; `problems` lists every bad setting, one sentence each. */
export class ConfigError extends FloodgateError {
  readonly problems: string[];
  constructor(problems: readonly string[]) {
    const noun = problems.length === 1 ? 'problem' : 'problems';
    super('ERR_CONFIG_INVALID', `invalid configuration (${problems.length} ${noun}):\n- ${problems.join('\n- ')}`);
    this.name = 'ConfigError';
    this.problems = Object.freeze([...problems]) as string[];
  }
}

export interface LoadConfigInput {
  readonly env: NodeJS.ProcessEnv | Record<string, string | undefined>;
  /** Arguments after the subcommand, e.g. `['--port', '9000', '--ack=async']`. */
  readonly argv: readonly string[];
}

type ConfigValue = Config[keyof Config];
type Parsed = { readonly ok: true; readonly value: ConfigValue } | { readonly ok: false };

/**
 * Builds the configuration; throws `ConfigError` listing every problem found: malformed or
 * out-of-range values, unknown flags, unknown FLOODGATE_* variables, positional arguments
 * and inconsistent combinations. The result is frozen.
 */
export function loadConfig(input: LoadConfigInput): Config {
  const problems: string[] = [];
  const flags = readFlags(input.argv, problems);
  problems.push(...unknownEnvProblems(input.env));

  const values: Partial<Record<keyof Config, ConfigValue>> = {};
  const invalid = new Set<keyof Config>();
  for (const setting of settings) {
    // An empty environment variable counts as unset: compose files and shells often
    // export `NAME=` to mean "not configured". An explicit empty flag is still checked.
    const envText = input.env[setting.env];
    const text = flags.get(setting.flag) ?? (envText === '' ? undefined : envText);
    if (text === undefined) {
      values[setting.key] = defaultValueOf(setting);
      continue;
    }
    const parsed = parseSetting(setting, text.trim());
    if (parsed.ok) {
      values[setting.key] = parsed.value;
    } else {
      invalid.add(setting.key);
      problems.push(`${label(setting)} = ${showValue(setting, text)}: expected ${expectationOf(setting)}`);
    }
  }

  const config = values as Config;
  for (const rule of crossFieldRules) {
    // A rule over a setting that is already reported would only repeat the same problem.
    if (rule.keys.some((key) => invalid.has(key))) continue;
    const problem = rule.check(config);
    if (problem !== null) problems.push(problem);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(config);
}

/** Every setting at its default (dataDir resolved against the working directory). */
export function defaultConfig(): Config {
  const values: Partial<Record<keyof Config, ConfigValue>> = {};
  for (const setting of settings) values[setting.key] = defaultValueOf(setting);
  return Object.freeze(values as Config);
}

function defaultValueOf(setting: Setting): ConfigValue {
  if (setting.kind === 'string' && setting.format === 'path') return path.resolve(process.cwd(), setting.default);
  return setting.default;
}

/**
 * Reads `--name=value`, `--name value` and, for booleans only, a bare `--name` (true).
 * A boolean never takes the next argument as its value, so `--allow-uws-fallback false`
 * is reported (the stray `false`) rather than silently read as true.
 */
function readFlags(argv: readonly string[], problems: string[]): Map<string, string> {
  const values = new Map<string, string>();
  for (let index = 0; index < argv.length; index += 1) {
    const token = argv[index] ?? '';
    if (!token.startsWith('--') || token === '--') {
      problems.push(`unexpected argument ${JSON.stringify(token)}: settings are given as --name=value or --name value`);
      continue;
    }
    const equalsAt = token.indexOf('=');
    const name = equalsAt < 0 ? token : token.slice(0, equalsAt);
    const next = argv[index + 1];
    const nextIsValue = next !== undefined && !next.startsWith('--');
    const setting = settingByFlag.get(name);
    if (setting === undefined) {
      problems.push(`unknown flag ${name}${suggestionFor(name, [...settingByFlag.keys()])}`);
      // Skip the unknown flag's probable value so it is not reported a second time.
      if (equalsAt < 0 && nextIsValue) index += 1;
      continue;
    }
    let value: string;
    if (equalsAt >= 0) {
      value = token.slice(equalsAt + 1);
    } else if (setting.kind === 'boolean') {
      value = 'true';
    } else if (nextIsValue) {
      value = next;
      index += 1;
    } else {
      problems.push(`${label(setting)}: the flag needs a value (${name}=value or ${name} value)`);
      continue;
    }
    if (values.has(name)) {
      problems.push(`${label(setting)}: the flag is given more than once`);
      continue;
    }
    values.set(name, value);
  }
  return values;
}

/** Typos must not pass silently: a FLOODGATE_* variable we do not know is an error. */
function unknownEnvProblems(env: LoadConfigInput['env']): string[] {
  const problems: string[] = [];
  const known = [...settingByEnv.keys()].filter((name) => name.startsWith('FLOODGATE_'));
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('FLOODGATE_') || settingByEnv.has(name)) continue;
    // An empty variable has no effect either way, so there is nothing to lose silently.
    if (value === undefined || value === '') continue;
    // PORT, DATABASE_URL and REDIS_URL carry no prefix by convention; FLOODGATE_PORT is a common slip.
    const unprefixed = name.slice('FLOODGATE_'.length);
    const suggestion = settingByEnv.has(unprefixed) ? ` (did you mean ${unprefixed}?)` : suggestionFor(name, known);
    problems.push(`${name}: unknown setting${suggestion}`);
  }
  return problems;
}

function suggestionFor(name: string, candidates: readonly string[]): string {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const closeEnough = best !== null && bestDistance <= Math.max(2, Math.floor(name.length / 5));
  return closeEnough ? ` (did you mean ${best}?)` : '';
}

/** Levenshtein distance; names are short, so the quadratic table is cheap. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function parseSetting(setting: Setting, text: string): Parsed {
  switch (setting.kind) {
    case 'integer':
      return inRange(setting, parseDecimal(text));
    case 'bytes':
      return inRange(setting, parseWithSuffix(text, byteSuffixes));
    case 'duration':
      return inRange(setting, parseWithSuffix(text, durationSuffixes));
    case 'enum':
      return setting.values.includes(text) ? { ok: true, value: text as ConfigValue } : { ok: false };
    case 'boolean':
      return parseBoolean(text);
    case 'url':
      return parseUrl(setting, text);
    case 'string':
      return parseString(setting, text);
  }
}

/**
 * Decimal integers only: `1e3`, `0x10`, `+5`, `1.0`, `-0` and leading zeros are refused
 * because `Number()` would accept them and a typo could then pass as a valid number.
 * Negative values parse (and then fail the range check with a clearer message).
 */
function parseDecimal(text: string): number | null {
  if (!/^(?:0|-?[1-9][0-9]*)$/.test(text)) return null;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : null;
}

/** Binary units only: `MB` is refused rather than guessed as 10^6 or 2^20. */
const byteSuffixes: ReadonlyMap<string, number> = new Map([['', 1], ['B', 1], ['KiB', KiB], ['MiB', MiB], ['GiB', GiB]]);
const durationSuffixes: ReadonlyMap<string, number> = new Map([
  ['', 1], ['ms', 1], ['s', secondMs], ['m', minuteMs], ['h', hourMs], ['d', dayMs],
]);

function parseWithSuffix(text: string, suffixes: ReadonlyMap<string, number>): number | null {
  const match = /^(0|[1-9][0-9]*) ?([A-Za-z]*)$/.exec(text);
  if (match === null) return null;
  const multiplier = suffixes.get(match[2] ?? '');
  if (multiplier === undefined) return null;
  const value = Number(match[1]) * multiplier;
  return Number.isSafeInteger(value) ? value : null;
}

function inRange(setting: NumberSetting, value: number | null): Parsed {
  if (value === null || value < setting.min || value > setting.max) return { ok: false };
  if (setting.multipleOf !== undefined && value % setting.multipleOf !== 0) return { ok: false };
  return { ok: true, value };
}

function parseBoolean(text: string): Parsed {
  const lower = text.toLowerCase();
  if (lower === 'true' || lower === '1' || lower === 'yes') return { ok: true, value: true };
  if (lower === 'false' || lower === '0' || lower === 'no') return { ok: true, value: false };
  return { ok: false };
}

/** The text is kept as given (not `URL.href`): drivers read query options the URL class may reorder. */
function parseUrl(setting: UrlSetting, text: string): Parsed {
  if (!URL.canParse(text)) return { ok: false };
  return setting.protocols.includes(new URL(text).protocol) ? { ok: true, value: text } : { ok: false };
}

function parseString(setting: StringSetting, text: string): Parsed {
  if (setting.format === 'host') {
    // Letters, digits, dots, hyphens, colons (IPv6) and underscores; no brackets or ports.
    return /^[A-Za-z0-9._:-]{1,253}$/.test(text) ? { ok: true, value: text } : { ok: false };
  }
  // A NUL byte cannot be part of a path the operating system accepts.
  if (text === '' || text.includes('\0')) return { ok: false };
  return { ok: true, value: path.resolve(process.cwd(), text) };
}

function label(setting: Setting): string {
  return `${setting.env} (${setting.flag})`;
}

/** Quotes the bad value, hides URL passwords and cuts very long input. */
function showValue(setting: Setting, text: string): string {
  let shown = setting.kind === 'url' ? text.replace(/(\/\/[^/@:]*:)[^@]*@/, '$1***@') : text;
  if (shown.length > shownValueCharsMax) shown = `${shown.slice(0, shownValueCharsMax)}…`;
  return JSON.stringify(shown);
}

/** What a valid value looks like, with the unit and the allowed range. */
export function expectationOf(setting: Setting): string {
  switch (setting.kind) {
    case 'integer':
      return `a decimal integer between ${setting.min} and ${setting.max} (${setting.unit})`;
    case 'bytes': {
      const multiple = setting.multipleOf === undefined ? '' : `, a multiple of ${setting.multipleOf} bytes`;
      return `a size in bytes (e.g. 65536, 64KiB, 16MiB) between ${formatBytes(setting.min)} and ` +
        `${formatBytes(setting.max)} (${setting.min}..${setting.max} bytes)${multiple}`;
    }
    case 'duration': {
      // Long limits are unreadable in milliseconds alone, so those also get days or hours.
      const readable = setting.max >= hourMs ? ` (${formatDuration(setting.min)} to ${formatDuration(setting.max)})` : '';
      return `a duration in milliseconds (e.g. 5, 250ms, 2s) between ${setting.min} and ${setting.max} ms${readable}`;
    }
    case 'enum':
      return `one of ${setting.values.join(', ')}`;
    case 'boolean':
      return 'a boolean: true/false, 1/0 or yes/no';
    case 'url':
      return `a URL starting with ${setting.protocols.map((protocol) => `${protocol}//`).join(' or ')}`;
    case 'string':
      return setting.format === 'host'
        ? 'a hostname or IP address (letters, digits, ".", "-", "_", ":"; no port)'
        : 'a directory path without NUL characters';
  }
}

export function formatBytes(bytes: number): string {
  for (const [unit, size] of [['GiB', GiB], ['MiB', MiB], ['KiB', KiB]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} bytes`;
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', dayMs], ['h', hourMs], ['m', minuteMs], ['s', secondMs]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size} ${unit}`;
  }
  return `${ms} ms`;
}

interface CrossFieldRule {
  /** Settings the rule reads; it is skipped when one of them is already reported invalid. */
  readonly keys: readonly (keyof Config)[];
  /** One sentence for the README. */
  readonly summary: string;
  /** A problem sentence, or null when the combination is fine. */
  check(config: Config): string | null;
}

function labelOf(key: keyof Config): string {
  const spec = settingsByKey[key];
  return `${spec.env} (${spec.flag})`;
}

/** Combinations each setting's own range cannot catch. */
export const crossFieldRules: readonly CrossFieldRule[] = Object.freeze([
  {
    keys: ['ringBytes', 'eventBytesMax'],
    summary: 'ringBytes ≥ 4 × eventBytesMax + 64 KiB, so a maximal event always fits in a ring.',
    check(config: Config): string | null {
      const needed = 4 * config.eventBytesMax + 64 * KiB;
      if (config.ringBytes >= needed) return null;
      return `${labelOf('ringBytes')} = ${formatBytes(config.ringBytes)} is too small for ` +
        `${labelOf('eventBytesMax')} = ${formatBytes(config.eventBytesMax)}: a ring needs at least ` +
        `4 × eventBytesMax + 64 KiB = ${formatBytes(needed)} (${needed} bytes), because an actor keeps its records in the ring until they ` +
        'commit and a record cannot be split at the ring\'s end, so with less room one large event could stall ' +
        'that actor\'s ring (every request to it answered 503) or never fit at all';
    },
  },
  {
    keys: ['bodyDecodedBytesMax', 'bodyBytesMax'],
    summary: 'bodyDecodedBytesMax ≥ bodyBytesMax, since an uncompressed body is checked against both.',
    check(config: Config): string | null {
      if (config.bodyDecodedBytesMax >= config.bodyBytesMax) return null;
      return `${labelOf('bodyDecodedBytesMax')} = ${formatBytes(config.bodyDecodedBytesMax)} is smaller than ` +
        `${labelOf('bodyBytesMax')} = ${formatBytes(config.bodyBytesMax)}: an uncompressed body counts against ` +
        'both limits, so the smaller one would silently become the real body limit';
    },
  },
  {
    keys: ['attributesBytesMax', 'eventBytesMax'],
    summary: 'attributesBytesMax ≤ eventBytesMax, since attributes are part of the event.',
    check(config: Config): string | null {
      if (config.attributesBytesMax <= config.eventBytesMax) return null;
      return `${labelOf('attributesBytesMax')} = ${formatBytes(config.attributesBytesMax)} exceeds ` +
        `${labelOf('eventBytesMax')} = ${formatBytes(config.eventBytesMax)}: attributes are part of the event, ` +
        'so that attributes limit could never be reached';
    },
  },
  {
    keys: ['ackTimeoutMs', 'batchWaitMs'],
    summary: 'ackTimeoutMs > batchWaitMs, or a lone durable request times out before its batch is even written.',
    check(config: Config): string | null {
      if (config.ackTimeoutMs > config.batchWaitMs) return null;
      return `${labelOf('ackTimeoutMs')} = ${config.ackTimeoutMs} ms must be greater than ` +
        `${labelOf('batchWaitMs')} = ${config.batchWaitMs} ms: an event may wait batchWaitMs before its batch ` +
        'is written, so durable requests would time out (503) before their commit';
    },
  },
  {
    keys: ['embeddedPgPort', 'port', 'databaseUrl'],
    summary: 'Without DATABASE_URL, the embedded PostgreSQL port must differ from PORT.',
    check(config: Config): string | null {
      if (config.databaseUrl !== null || config.port !== config.embeddedPgPort) return null;
      return `${labelOf('embeddedPgPort')} = ${config.embeddedPgPort} equals ${labelOf('port')}: without ` +
        'DATABASE_URL the embedded PostgreSQL and the HTTP server would both need that port';
    },
  },
]);

/** The README's configuration table, generated from `settings`. */
export function renderConfigTable(): string {
  const lines = ['| Setting env | CLI flag | default | range/unit | meaning |', '| --- | --- | --- | --- | --- |'];
  for (const setting of settings) {
    const cells = [`\`${setting.env}\``, `\`${setting.flag}\``, defaultText(setting), rangeText(setting), setting.description];
    lines.push(`| ${cells.map((cell) => cell.replaceAll('|', '\\|')).join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}

function defaultText(setting: Setting): string {
  switch (setting.kind) {
    case 'bytes':
      return formatBytes(setting.default);
    case 'duration':
      return formatDuration(setting.default);
    case 'url':
      return 'unset';
    default:
      return String(setting.default);
  }
}

function rangeText(setting: Setting): string {
  switch (setting.kind) {
    case 'integer':
      return `${setting.min}..${setting.max} ${setting.unit}`;
    case 'bytes': {
      const multiple = setting.multipleOf === undefined ? '' : `, multiple of ${setting.multipleOf}`;
      return `${formatBytes(setting.min)}..${formatBytes(setting.max)}${multiple} (bytes; KiB/MiB/GiB suffixes)`;
    }
    case 'duration':
      return `${formatDuration(setting.min)}..${formatDuration(setting.max)} (ms; ms/s/m/h/d suffixes)`;
    case 'enum':
      return setting.values.join(' | ');
    case 'boolean':
      return 'true/false, 1/0, yes/no';
    case 'url':
      return setting.protocols.map((protocol) => `${protocol}//`).join(' or ');
    case 'string':
      return setting.format === 'host' ? 'hostname or IP address' : 'directory path';
  }
}
