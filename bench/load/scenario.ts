/**
 * Load scenarios are data (bench/scenarios.json), checked here field by field: an
 * unknown or misspelt field is an error, not silently ignored, so a scenario file says
 * exactly what was run.
 *
 * Two load models:
 * - closed: `concurrency` virtual users, each with its own keep-alive connection, send a
 *   request, wait for the answer, optionally sleep `thinkTimeMs`, repeat. The offered
 *   load adapts to the server's speed (what k6 and wrk do).
 * - open: requests are scheduled at `ratePerS` whatever the server does, and latency is
 *   measured from the scheduled send time, so a slow server shows up as latency rather
 *   than as a politely reduced load (no coordinated omission).
 * A scenario is a list of phases; a phase change is how a spike is described. A phase
 * marked `"warmup": true` runs and is checked like any other, but the run's headline
 * numbers (events/s, latency) leave it out: a cold engine's first second (JIT, first
 * connections) says nothing about its steady state, for Floodgate or the baseline.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../common/results';

export type Target = 'floodgate' | 'baseline';
export type Route = '/v1/events/bulk' | '/v1/events' | '/webhook/events' | '/webhook/batch' | '/v1/events/stream' | '/v1/batch';
/** The Segment-spec batch route: bodies as Segment-spec SDKs build them (src/segment). */
export const segmentBatchRoute = '/v1/batch';
/** The WebSocket route: batches are frames on long-lived connections that carry many at once. */
export const streamRoute = '/v1/events/stream';
export type Format = 'json' | 'msgpack' | 'ndjson';
export type LoadModel = 'closed' | 'open';

export interface Phase {
  readonly label: string;
  readonly durationS: number;
  /** closed model: virtual users (connections) during this phase. */
  readonly concurrency: number | null;
  /** open model: requests per second offered during this phase. */
  readonly ratePerS: number | null;
  /** Left out of the run's headline events/s and latency (still sent and checked). */
  readonly warmup: boolean;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly target: Target;
  readonly route: Route;
  readonly format: Format;
  readonly eventsPerRequest: number;
  readonly model: LoadModel;
  readonly phases: readonly Phase[];
  /** closed model: pause of each virtual user between receiving an answer and sending again. */
  readonly thinkTimeMs: number;
  /** Client processes the load is spread over. */
  readonly clients: number;
  /**
   * Connections each client process may open: open model (HTTP: one request at a time on
   * each); the stream route in both models, its virtual users or requests dealt over them.
   */
  readonly connectionsPerClientMax: number;
  /** A request unanswered this long is abandoned (its connection closed) and counted as a timeout. */
  readonly requestTimeoutMs: number;
  /** Extra environment for an engine the runner starts (FLOODGATE_* settings only). */
  readonly engineEnv: Readonly<Record<string, string>>;
}

/** Every named scenario, one JSON array (a scenario of one's own can still be a file of its own). */
export const scenariosFile = path.join(repoRoot, 'bench', 'scenarios.json');

const routes: readonly Route[] = ['/v1/events/bulk', '/v1/events', '/webhook/events', '/webhook/batch', streamRoute, segmentBatchRoute];
const singleEventRoutes: readonly Route[] = ['/v1/events', '/webhook/events'];
const topLevelFields = [
  'name', 'description', 'target', 'route', 'format', 'eventsPerRequest', 'model', 'phases',
  'thinkTimeMs', 'clients', 'connectionsPerClientMax', 'requestTimeoutMs', 'engineEnv',
] as const;
const phaseFields = ['label', 'durationS', 'concurrency', 'ratePerS', 'warmup'] as const;

export class ScenarioError extends Error {
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super(`invalid scenario ${source}:\n  - ${problems.join('\n  - ')}`);
    this.problems = problems;
  }
}

type Raw = Record<string, unknown>;

function isObject(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads a number field within [min, max] (integer if asked), or its default when absent. */
function numberField(raw: Raw, key: string, spec: { min: number; max: number; integer: boolean; fallback?: number }, problems: string[], where = ''): number {
  const value = raw[key];
  if (value === undefined && spec.fallback !== undefined) return spec.fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < spec.min || value > spec.max || (spec.integer && !Number.isInteger(value))) {
    problems.push(`${where}${key} must be ${spec.integer ? 'an integer' : 'a number'} in ${spec.min}..${spec.max}; got ${JSON.stringify(value)}`);
    return spec.fallback ?? spec.min;
  }
  return value;
}

function enumField<T extends string>(raw: Raw, key: string, values: readonly T[], fallback: T | undefined, problems: string[]): T {
  const value = raw[key];
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'string' || !values.includes(value as T)) {
    problems.push(`${key} must be one of ${values.join(', ')}; got ${JSON.stringify(value)}`);
    return fallback ?? (values[0] as T);
  }
  return value as T;
}

function unknownKeys(raw: Raw, known: readonly string[], where: string, problems: string[]): void {
  for (const key of Object.keys(raw)) if (!known.includes(key)) problems.push(`${where}unknown field "${key}" (known: ${known.join(', ')})`);
}

function parsePhases(value: unknown, model: LoadModel, problems: string[]): Phase[] {
  if (!Array.isArray(value) || value.length === 0) {
    problems.push('phases must be a non-empty array');
    return [];
  }
  return value.map((item: unknown, index) => {
    const where = `phases[${index}].`;
    if (!isObject(item)) {
      problems.push(`phases[${index}] must be an object`);
      return { label: '', durationS: 1, concurrency: null, ratePerS: null, warmup: false };
    }
    unknownKeys(item, phaseFields, where, problems);
    const label = item.label === undefined ? `phase ${index + 1}` : item.label;
    if (typeof label !== 'string') problems.push(`${where}label must be a string`);
    const durationS = numberField(item, 'durationS', { min: 0.5, max: 3600, integer: false }, problems, where);
    const wanted = model === 'closed' ? 'concurrency' : 'ratePerS';
    const unwanted = model === 'closed' ? 'ratePerS' : 'concurrency';
    if (item[unwanted] !== undefined) problems.push(`${where}${unwanted} does not apply to the ${model} model (use ${wanted})`);
    const amount =
      model === 'closed'
        ? numberField(item, 'concurrency', { min: 1, max: 4000, integer: true }, problems, where)
        : numberField(item, 'ratePerS', { min: 0.1, max: 500_000, integer: false }, problems, where);
    const warmup = item.warmup ?? false;
    if (typeof warmup !== 'boolean') problems.push(`${where}warmup must be true or false`);
    return {
      label: String(label),
      durationS,
      concurrency: model === 'closed' ? amount : null,
      ratePerS: model === 'open' ? amount : null,
      warmup: warmup === true,
    };
  });
}

function parseEngineEnv(value: unknown, problems: string[]): Record<string, string> {
  if (value === undefined) return {};
  if (!isObject(value)) {
    problems.push('engineEnv must be an object of FLOODGATE_* settings');
    return {};
  }
  const env: Record<string, string> = {};
  for (const [key, setting] of Object.entries(value)) {
    // DATABASE_URL and PORT belong to the runner: it points the engine at a scratch database and a free port.
    if (!/^FLOODGATE_[A-Z0-9_]+$/.test(key)) problems.push(`engineEnv.${key}: only FLOODGATE_* settings may be set here`);
    else if (typeof setting !== 'string') problems.push(`engineEnv.${key} must be a string`);
    else env[key] = setting;
  }
  return env;
}

/** Validates a parsed scenario; `source` names it in error messages. Throws ScenarioError. */
export function parseScenario(raw: unknown, source: string): Scenario {
  if (!isObject(raw)) throw new ScenarioError(source, ['a scenario must be a JSON object']);
  const problems: string[] = [];
  unknownKeys(raw, topLevelFields, '', problems);
  if (typeof raw.name !== 'string' || !/^[a-z0-9][a-z0-9-]{0,63}$/.test(raw.name)) problems.push('name must be kebab-case ([a-z0-9-], at most 64 characters)');
  if (raw.description !== undefined && typeof raw.description !== 'string') problems.push('description must be a string');
  const target = enumField<Target>(raw, 'target', ['floodgate', 'baseline'], 'floodgate', problems);
  const route = enumField<Route>(raw, 'route', routes, '/v1/events/bulk', problems);
  const format = enumField<Format>(raw, 'format', ['json', 'msgpack', 'ndjson'], 'json', problems);
  const model = enumField<LoadModel>(raw, 'model', ['closed', 'open'], undefined, problems);
  const eventsPerRequest = numberField(raw, 'eventsPerRequest', { min: 1, max: 5000, integer: true, fallback: 100 }, problems);
  if (singleEventRoutes.includes(route) && eventsPerRequest !== 1) problems.push(`eventsPerRequest must be 1 for ${route} (one event per request)`);
  if (singleEventRoutes.includes(route) && format === 'ndjson') problems.push(`format ndjson is only for bulk routes, not ${route}`);
  if (target === 'baseline' && format !== 'json') problems.push('the baseline service takes JSON only (format must be json)');
  if (target === 'baseline' && (route === '/webhook/batch' || route === streamRoute || route === segmentBatchRoute)) problems.push(`the baseline service has no ${route} route`);
  if (route === segmentBatchRoute && format !== 'json') problems.push(`${route} takes JSON only (format must be json)`);
  const phases = parsePhases(raw.phases, model, problems);
  const thinkTimeMs = numberField(raw, 'thinkTimeMs', { min: 0, max: 60_000, integer: false, fallback: 0 }, problems);
  if (model === 'open' && thinkTimeMs !== 0) problems.push('thinkTimeMs applies to the closed model only');
  const scenario: Scenario = {
    name: String(raw.name),
    description: typeof raw.description === 'string' ? raw.description : '',
    target,
    route,
    format,
    eventsPerRequest,
    model,
    phases,
    thinkTimeMs,
    clients: numberField(raw, 'clients', { min: 1, max: 16, integer: true, fallback: 2 }, problems),
    connectionsPerClientMax: numberField(raw, 'connectionsPerClientMax', { min: 1, max: 4000, integer: true, fallback: 64 }, problems),
    requestTimeoutMs: numberField(raw, 'requestTimeoutMs', { min: 100, max: 600_000, integer: true, fallback: 30_000 }, problems),
    engineEnv: parseEngineEnv(raw.engineEnv, problems),
  };
  if (problems.length > 0) throw new ScenarioError(source, problems);
  return Object.freeze(scenario);
}

/** Total planned duration in seconds. */
export function scenarioDurationS(scenario: Scenario): number {
  return scenario.phases.reduce((sum, phase) => sum + phase.durationS, 0);
}

/** A scenario by name (from bench/scenarios.json) or by path to a .json file holding one. */
export function loadScenario(nameOrPath: string): Scenario {
  if (!nameOrPath.endsWith('.json')) {
    const raw = namedScenarios().find((entry) => (entry as { name?: unknown }).name === nameOrPath);
    if (raw === undefined) throw new ScenarioError(scenariosFile, [`no scenario named "${nameOrPath}"; known: ${listScenarioNames().join(', ')}`]);
    return parseScenario(raw, `${scenariosFile} (${nameOrPath})`);
  }
  const file = path.resolve(nameOrPath);
  return parseScenario(readJson(file), file);
}

export function listScenarioNames(): string[] {
  return namedScenarios().map((entry) => String((entry as { name?: unknown }).name)).sort();
}

function namedScenarios(): unknown[] {
  const raw = readJson(scenariosFile);
  if (!Array.isArray(raw)) throw new ScenarioError(scenariosFile, ['must hold a JSON array of scenarios']);
  return raw;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ScenarioError(file, [`cannot read it as JSON: ${(error as Error).message}`]);
  }
}

/**
 * A copy with run-time changes: another target (--target), durations scaled
 * (--duration-scale; warm-up phases keep theirs), other client count, and `ratePerS`
 * replacing the rate of every open-model phase (--rate: "half of Floodgate's maximum"
 * depends on the machine, so it is given per run).
 */
export function adjustScenario(
  scenario: Scenario,
  changes: { target?: Target; durationScale?: number; clients?: number; ratePerS?: number },
): Scenario {
  const scale = changes.durationScale ?? 1;
  const raw = {
    ...scenario,
    target: changes.target ?? scenario.target,
    clients: changes.clients ?? scenario.clients,
    phases: scenario.phases.map((phase) => ({
      label: phase.label,
      durationS: phase.warmup ? phase.durationS : Math.max(0.5, Math.round(phase.durationS * scale * 10) / 10),
      ...(phase.concurrency !== null ? { concurrency: phase.concurrency } : {}),
      ...(phase.ratePerS !== null ? { ratePerS: changes.ratePerS ?? phase.ratePerS } : {}),
      ...(phase.warmup ? { warmup: true } : {}),
    })),
  };
  return parseScenario(raw, `${scenario.name} (adjusted)`);
}
