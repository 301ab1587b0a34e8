/**
 * Builds the engine's `Config` from environment variables and CLI flags.
 *
 * The `settings` table (./settings.ts) is the single source of every setting's names, kind, default,
 * range, unit and meaning: the parser, the error messages and docs/configuration.md's
 * table (`renderConfigTable`) are all derived from it, so they cannot drift apart.
 *
 * Precedence, lowest first: the table's default, the environment variable, the CLI flag.
 * Every problem is collected before anything is thrown, so an operator fixes a broken
 * deployment in one round instead of one setting per restart.
 */
import * as path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FloodgateError } from '../errors';
import type { Config } from './config';
import { parseSetting } from './parse-setting';
import { dayMs, expectationOf, formatBytes, formatDuration, KiB, settings, settingsByKey, shownValueCharsMax, type Setting } from './settings';

// The settings table and its documentation helpers live in ./settings; callers keep importing them from here.
export { expectationOf, formatBytes, formatDuration, renderConfigTable, settings } from './settings';
export type { BooleanSetting, EnumSetting, NumberSetting, Setting, SettingKind, SettingSpec, StringSetting, UrlSetting } from './settings';

const settingByEnv = new Map(settings.map((setting) => [setting.env, setting]));
const settingByFlag = new Map(settings.map((setting) => [setting.flag, setting]));

/** The settings' flags as node:util parseArgs options: booleans are switches, the others take a value. */
export const settingFlagOptions: NonNullable<ParseArgsConfig['options']> = Object.freeze(Object.fromEntries(
  settings.map((setting) => [setting.flag.slice('--'.length), { type: setting.kind === 'boolean' ? 'boolean' : 'string' } as const]),
));

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
 * Reads `--name=value`, `--name value` and, for booleans only, a bare `--name` (true), with
 * node:util's parseArgs in its lenient mode, so that every problem is collected instead of
 * the first one thrown. Two lenient readings are refused rather than followed: a setting
 * that takes the next argument as its value although it is another flag
 * (`--port --ack=async`), and `--`, after which parseArgs reads no more flags. Both are
 * reported and reading resumes at the argument after them. A boolean never takes the next
 * argument as its value, so `--allow-uws-fallback false` is reported (the stray `false`)
 * rather than silently read as true.
 */
function readFlags(argv: readonly string[], problems: string[]): Map<string, string> {
  const values = new Map<string, string>();
  let from = 0;
  while (from < argv.length) from = readFlagsFrom(argv, from, values, problems);
  return values;
}

/** Reads the flags from argv[from] on; returns where reading resumes (argv.length when done). */
function readFlagsFrom(argv: readonly string[], from: number, values: Map<string, string>, problems: string[]): number {
  const { tokens } = parseArgs({ args: argv.slice(from), options: settingFlagOptions, strict: false, allowPositionals: true, tokens: true });
  // A group of single-dash letters (`-abc`) is one token per letter, all with one index.
  let lastUnexpected = -1;
  for (let at = 0; at < tokens.length; at += 1) {
    const token = tokens[at] as (typeof tokens)[number];
    const index = from + token.index;
    const isLongOption = token.kind === 'option' && token.rawName.startsWith('--');
    if (!isLongOption) {
      if (index !== lastUnexpected) problems.push(`unexpected argument ${JSON.stringify(argv[index])}: settings are given as --name=value or --name value`);
      lastUnexpected = index;
      if (token.kind === 'option-terminator') return index + 1;
      continue;
    }
    const name = token.rawName;
    const setting = settingByFlag.get(name);
    if (setting === undefined) {
      problems.push(`unknown flag ${name}${suggestionFor(name, [...settingByFlag.keys()])}`);
      // Skip the unknown flag's probable value so it is not reported a second time.
      const next = tokens[at + 1];
      if (token.value === undefined && next?.kind === 'positional' && next.index === token.index + 1) at += 1;
      continue;
    }
    if (setting.kind !== 'boolean' && (token.value === undefined || (!token.inlineValue && token.value.startsWith('--')))) {
      problems.push(`${label(setting)}: the flag needs a value (${name}=value or ${name} value)`);
      if (token.value !== undefined) return index + 1;
      continue;
    }
    if (values.has(name)) {
      problems.push(`${label(setting)}: the flag is given more than once`);
      continue;
    }
    values.set(name, token.value ?? 'true');
  }
  return argv.length;
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

function label(setting: Setting): string {
  return `${setting.env} (${setting.flag})`;
}

/** Quotes the bad value, hides URL passwords and cuts very long input. */
function showValue(setting: Setting, text: string): string {
  // A secret, even a mistyped one, is never echoed: messages reach logs and terminals.
  if (setting.kind === 'secret') return `(a secret of ${text.length} characters, not shown)`;
  let shown = setting.kind === 'url' ? text.replace(/(\/\/[^/@:]*:)[^@]*@/, '$1***@') : text;
  if (shown.length > shownValueCharsMax) shown = `${shown.slice(0, shownValueCharsMax)}…`;
  return JSON.stringify(shown);
}

interface CrossFieldRule {
  /** Settings the rule reads; it is skipped when one of them is already reported invalid. */
  readonly keys: readonly (keyof Config)[];
  /** One sentence for the settings table in docs/configuration.md. */
  readonly summary: string;
  /** A problem sentence, or null when the combination is fine. */
  check(config: Config): string | null;
}

function labelOf(key: keyof Config): string {
  const spec = settingsByKey[key];
  return `${spec.env} (${spec.flag})`;
}

/**
 * A retention shorter than the accepted timestamp window would drop (or delete) days that
 * still accept events: a late event would bring back a day holding only itself.
 */
function retentionWindowProblem(config: Config, key: 'retentionDays' | 'rollupRetentionDays', consequence: string): string | null {
  const days = config[key];
  if (days === null || days * dayMs >= config.timestampPastMs) return null;
  const daysNeeded = Math.ceil(config.timestampPastMs / dayMs);
  return `${labelOf(key)} = ${days} days is shorter than ${labelOf('timestampPastMs')} = ` +
    `${formatDuration(config.timestampPastMs)} (${config.timestampPastMs} ms): events that old are still accepted, so ${consequence}; ` +
    `keep at least ${daysNeeded} days, or accept a shorter past`;
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
    keys: ['openIngestBurstEvents', 'openIngestEventsPerS'],
    summary: 'openIngestBurstEvents needs openIngestEventsPerS: a burst without a rate limits nothing.',
    check(config: Config): string | null {
      if (config.openIngestBurstEvents === 0 || config.openIngestEventsPerS > 0) return null;
      return `${labelOf('openIngestBurstEvents')} = ${config.openIngestBurstEvents} is set but ${labelOf('openIngestEventsPerS')} ` +
        'is 0 (off): set the rate too, or leave the burst unset';
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
  {
    keys: ['deliveryLeaseMs', 'deliveryConnectTimeoutMs', 'deliveryTimeoutMs'],
    summary: 'deliveryLeaseMs > deliveryConnectTimeoutMs + 2 × deliveryTimeoutMs, so a lease never ends while its request may still be running.',
    check(config: Config): string | null {
      const longest = config.deliveryConnectTimeoutMs + 2 * config.deliveryTimeoutMs;
      if (config.deliveryLeaseMs > longest) return null;
      return `${labelOf('deliveryLeaseMs')} = ${config.deliveryLeaseMs} ms must exceed ${labelOf('deliveryConnectTimeoutMs')} + ` +
        `2 × ${labelOf('deliveryTimeoutMs')} = ${longest} ms: a lease that ends while its request may still be running lets ` +
        'another sender claim the delivery and send it a second time';
    },
  },
  {
    keys: ['retentionDays', 'timestampPastMs'],
    summary: 'retentionDays × 1 day ≥ timestampPastMs, so no accepted event can fall in a day partition that retention drops.',
    check: (config: Config): string | null => retentionWindowProblem(config, 'retentionDays',
      'a late event could land in a day partition that retention drops (created again holding that event alone, then dropped again)'),
  },
  {
    keys: ['rollupRetentionDays', 'timestampPastMs'],
    summary: 'rollupRetentionDays × 1 day ≥ timestampPastMs, so no accepted event is counted in a bucket that retention empties.',
    check: (config: Config): string | null => retentionWindowProblem(config, 'rollupRetentionDays',
      'a late event could be counted in a rollup day that retention already emptied, which would then show that event alone'),
  },
]);
