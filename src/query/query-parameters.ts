/**
 * Query-string parameters of the read API. Every problem becomes a ParameterError naming
 * the parameter, so a client learns which one to fix: unknown names and repeats are
 * refused too, because a misspelt filter silently ignored would answer the wrong question.
 */
import type { ErrorCode } from '../errors';
import { parseIsoTimestamp } from '../validate/timestamp';

/** A client mistake, with the parameter it concerns (null: the request as a whole). */
export interface Problem {
  readonly code: ErrorCode;
  readonly parameter: string | null;
  readonly message: string;
}

export class ParameterError extends Error {
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(problem.message);
    this.problem = problem;
    this.name = 'ParameterError';
  }
}

export function badParameter(parameter: string | null, message: string, code: ErrorCode = 'ERR_QUERY_BAD_PARAMETER'): ParameterError {
  return new ParameterError({ code, parameter, message });
}

/** Echoed values are cut: a pasted blob must not come back whole in the error. */
const shownCharsMax = 64;
const microsPerMs = 1000;
const dayPattern = /^(\d{4})-(\d{2})-(\d{2})$/;

function shown(value: string): string {
  return value.length > shownCharsMax ? `${value.slice(0, shownCharsMax)}…` : value;
}

export class QueryParameters {
  readonly #values: ReadonlyMap<string, string>;

  private constructor(values: ReadonlyMap<string, string>) {
    this.#values = values;
  }

  /** Throws a ParameterError for a name not in `known` or a name given twice. */
  static parse(queryString: string, known: readonly string[]): QueryParameters {
    const params = new URLSearchParams(queryString);
    const values = new Map<string, string>();
    for (const [name, value] of params) {
      if (!known.includes(name)) throw badParameter(shown(name), `unknown query parameter "${shown(name)}"; known: ${known.join(', ')}`);
      if (values.has(name)) throw badParameter(name, `${name} is given more than once`);
      values.set(name, value);
    }
    return new QueryParameters(values);
  }

  has(name: string): boolean {
    return this.#values.has(name);
  }

  /** Text as given (an empty value counts as absent), at most charsMax characters. */
  text(name: string, charsMax = 256): string | null {
    const value = this.#values.get(name);
    if (value === undefined || value === '') return null;
    if (value.length > charsMax) throw badParameter(name, `${name} is longer than ${charsMax} characters`);
    if (value.includes('\u0000')) throw badParameter(name, `${name} contains a NUL character`);
    return value;
  }

  integer(name: string, range: { readonly min: number; readonly max: number; readonly fallback: number }): number {
    const value = this.text(name, 16);
    if (value === null) return range.fallback;
    const number = /^\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!(number >= range.min && number <= range.max)) throw badParameter(name, `${name} must be an integer from ${range.min} to ${range.max}; got "${shown(value)}"`);
    return number;
  }

  /** One of `values`; the fallback when absent. */
  choice<T extends string>(name: string, values: readonly T[], fallback: T): T {
    const value = this.text(name, 64);
    if (value === null) return fallback;
    if (!(values as readonly string[]).includes(value)) throw badParameter(name, `${name} must be one of ${values.join(', ')}; got "${shown(value)}"`);
    return value as T;
  }

  /** A comma-separated list of distinct entries from `values` (e.g. group_by=event_type,source). */
  list<T extends string>(name: string, values: readonly T[]): T[] {
    const value = this.text(name, 256);
    if (value === null) return [];
    const entries = value.split(',').map((entry) => entry.trim());
    for (const entry of entries) {
      if (!(values as readonly string[]).includes(entry)) throw badParameter(name, `${name} takes a comma-separated list of ${values.join(', ')}; got "${shown(entry)}"`);
    }
    if (new Set(entries).size !== entries.length) throw badParameter(name, `${name} names an entry twice`);
    return entries as T[];
  }

  /**
   * An instant as integer microseconds since the epoch. Accepted: ISO-8601 with an offset
   * (`2026-12-07T10:00:00Z`, `…+01:00`, up to microseconds), or a UTC day `2026-12-07`
   * (its midnight). With `naiveIsUtc`, a date-time without an offset is read as UTC (the
   * EventFlux routes, whose clients send that); otherwise it is refused rather than guessed.
   */
  instantUs(name: string, options: { readonly naiveIsUtc?: boolean } = {}): number | null {
    const value = this.text(name, 64);
    if (value === null) return null;
    const day = dayOf(value);
    if (day !== null) return day * microsPerMs;
    const parsed = parseIsoTimestamp(value) ?? (options.naiveIsUtc ? parseIsoTimestamp(`${value}Z`) : null);
    if (parsed === null) {
      const expected = options.naiveIsUtc ? 'an ISO-8601 date-time (UTC unless it has an offset)' : 'an ISO-8601 date-time with an offset (e.g. 2026-12-07T10:00:00Z)';
      throw badParameter(name, `${name} must be ${expected} or a UTC day (YYYY-MM-DD); got "${shown(value)}"`);
    }
    return parsed;
  }

  /** A calendar day `YYYY-MM-DD`, returned as its UTC midnight in epoch milliseconds. */
  dayMs(name: string): number | null {
    const value = this.text(name, 16);
    if (value === null) return null;
    const day = dayOf(value);
    if (day === null) throw badParameter(name, `${name} must be a day YYYY-MM-DD; got "${shown(value)}"`);
    return day;
  }
}

/** Epoch ms of the UTC midnight of `YYYY-MM-DD`, or null when the text is not a real day. */
function dayOf(text: string): number | null {
  const match = dayPattern.exec(text);
  if (match === null) return null;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const ms = Date.UTC(year, month - 1, day);
  const date = new Date(ms);
  // Date.UTC rolls 2026-02-30 over into March; a day that does not exist is refused.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return null;
  return ms;
}

/** ISO-8601 UTC text with microseconds, e.g. 2026-12-07T10:00:00.123456Z, for an instant in µs. */
export function isoOfMicros(us: number): string {
  const ms = Math.floor(us / microsPerMs);
  const micros = us - ms * microsPerMs;
  const text = new Date(ms).toISOString();
  return `${text.slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}
