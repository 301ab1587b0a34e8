/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), for tests: it
 * throws on anything the format does not allow, and returns the metric families so tests
 * can look values up. `promtool check metrics` runs beside it where installed; this reader
 * makes the check independent of that binary.
 *
 * Rules enforced: HELP and TYPE at most once per family and before its samples; a family's
 * samples contiguous; metric and label names well-formed; label values quoted, escaping only
 * backslash, double quote and newline; no duplicate label names or duplicate series; values are floats,
 * NaN or ±Inf; summary samples are name{quantile} / name_sum / name_count, histogram samples
 * name_bucket{le} / name_sum / name_count; counters are never negative; the text ends with
 * a newline.
 */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  type: string;
  help: string | null;
  readonly samples: Sample[];
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const types = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parseExposition(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const families = new Map<string, Family>();
  const seriesSeen = new Set<string>();
  let current: Family | null = null;
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, index) => {
    const where = `line ${index + 1}: ${JSON.stringify(line)}`;
    if (line === '') return;
    if (line.startsWith('#')) {
      current = readComment(line, families, current, where);
      return;
    }
    const sample = readSample(line, where);
    const family = familyOf(sample.name, families);
    if (family === undefined) throw new Error(`${where}: sample without a TYPE line`);
    if (family !== current) throw new Error(`${where}: samples of ${family.name} are not contiguous`);
    checkSampleShape(family, sample, where);
    const key = `${sample.name}{${Object.entries(sample.labels).sort().map(([k, v]) => `${k}=${v}`).join(',')}}`;
    if (seriesSeen.has(key)) throw new Error(`${where}: duplicate series ${key}`);
    seriesSeen.add(key);
    family.samples.push(sample);
  });
  return families;
}

function readComment(line: string, families: Map<string, Family>, current: Family | null, where: string): Family | null {
  const match = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
  if (match === null) return current;
  const [, keyword, name = '', rest = ''] = match;
  if (!metricName.test(name)) throw new Error(`${where}: bad metric name`);
  let family = families.get(name);
  if (family === undefined) {
    family = { name, type: 'untyped', help: null, samples: [] };
    families.set(name, family);
  } else if (family !== current) {
    throw new Error(`${where}: ${name} described again after other families`);
  }
  if (keyword === 'TYPE') {
    if (!types.has(rest)) throw new Error(`${where}: unknown type ${rest}`);
    if (family.samples.length > 0) throw new Error(`${where}: TYPE after samples`);
    if (family.type !== 'untyped') throw new Error(`${where}: second TYPE line`);
    family.type = rest;
  } else {
    if (family.help !== null) throw new Error(`${where}: second HELP line`);
    if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`${where}: bad escape in HELP`);
    family.help = rest;
  }
  return family;
}

function readSample(line: string, where: string): Sample {
  const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)( -?\d+)?$/.exec(line);
  if (match === null) throw new Error(`${where}: not a sample line`);
  const [, name = '', labelText, valueText = ''] = match;
  return { name, labels: labelText === undefined ? {} : readLabels(labelText.slice(1, -1), where), value: readValue(valueText, where) };
}

function readLabels(text: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest !== '') {
    const match = /^([^=]+)="((?:[^"\\]|\\.)*)"(,?)/.exec(rest);
    if (match === null) throw new Error(`${where}: malformed labels`);
    const [whole, name = '', raw = '', comma] = match;
    if (!labelName.test(name) || name.startsWith('__')) throw new Error(`${where}: bad label name ${name}`);
    if (Object.hasOwn(labels, name)) throw new Error(`${where}: duplicate label ${name}`);
    if (/\\[^\\"n]/.test(raw)) throw new Error(`${where}: bad escape in label ${name}`);
    labels[name] = raw.replace(/\\(.)/g, (_, char: string) => (char === 'n' ? '\n' : char));
    rest = rest.slice(whole.length);
    if (comma === '' && rest !== '') throw new Error(`${where}: labels must be separated by commas`);
  }
  return labels;
}

function readValue(text: string, where: string): number {
  if (text === 'NaN') return Number.NaN;
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: bad value ${text}`);
  return Number(text);
}

/** The family a sample belongs to: its own name, or the name without _sum/_count/_bucket. */
function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const own = families.get(name);
  if (own !== undefined) return own;
  const base = /^(.*)_(sum|count|bucket)$/.exec(name)?.[1];
  const family = base === undefined ? undefined : families.get(base);
  return family !== undefined && (family.type === 'summary' || family.type === 'histogram') ? family : undefined;
}

function checkSampleShape(family: Family, sample: Sample, where: string): void {
  const suffix = sample.name.slice(family.name.length);
  if (family.type === 'summary') {
    if (suffix === '' && sample.labels.quantile === undefined) throw new Error(`${where}: summary sample without quantile`);
    if (suffix === '' && !(Number(sample.labels.quantile) >= 0 && Number(sample.labels.quantile) <= 1)) throw new Error(`${where}: quantile out of range`);
    if (suffix !== '' && sample.labels.quantile !== undefined) throw new Error(`${where}: quantile label on ${suffix}`);
  } else if (family.type === 'histogram') {
    if (suffix === '' ) throw new Error(`${where}: histogram sample without _bucket/_sum/_count`);
    if (suffix === '_bucket' && sample.labels.le === undefined) throw new Error(`${where}: bucket without le`);
  } else if (suffix !== '') {
    throw new Error(`${where}: ${family.type} sample named ${sample.name}`);
  }
  if (family.type === 'counter' && !(sample.value >= 0)) throw new Error(`${where}: counter below zero`);
}

/** The value of one series, or undefined when it is absent. */
export function valueOf(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const family of families.values()) {
    for (const sample of family.samples) {
      if (sample.name !== name) continue;
      const keys = Object.keys(labels);
      if (keys.length === Object.keys(sample.labels).length && keys.every((key) => sample.labels[key] === labels[key])) return sample.value;
    }
  }
  return undefined;
}

/** Sum of every series of `name` (all label values). */
export function sumOf(families: Map<string, Family>, name: string): number {
  let total = 0;
  for (const family of families.values()) for (const sample of family.samples) if (sample.name === name) total += sample.value;
  return total;
}
