/**
 * Subscriptions in PostgreSQL (table `subscriptions`, migration v12 in src/sink/migrations.ts):
 * the rules a subscription must meet, the store the admin routes and the CLI write through,
 * and the JSON view both answer with. The sink's fan-out and the delivery actors read
 * subscriptions with loadSubscriptions() (./delivery-schema.ts), not through this store.
 *
 * Every write runs inside changeSubscriptions(): the exclusive fan-out lock and an epoch
 * bump, so each ingest batch is fanned out against exactly the subscriptions that exist
 * when it commits. The same transaction keeps the coverage window that
 * `floodgate deliveries verify` checks: [covered_from, covered_until) is when the
 * subscription's current filter was enabled, written with clock_timestamp() after the lock.
 *
 * Deletion is soft (deleted_at), so delivery and attempt rows keep a subscription to point
 * at; a deleted subscription is "not found" everywhere, and its pending deliveries become
 * `discarded`.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { ErrorCode } from '../errors';
import { openStorePool } from '../sink/database';
import { changeSubscriptions } from './delivery-schema';
import { checkDestinationAddresses, checkDestinationUrl } from './destination-guard';

/** A client mistake, naming the body field it concerns (null: the body as a whole). */
export interface FieldProblem {
  readonly code: Extract<ErrorCode, 'ERR_SUBSCRIPTION_BAD_REQUEST' | 'ERR_SUBSCRIPTION_DESTINATION_REFUSED'>;
  readonly field: string | null;
  readonly message: string;
}

/** The writable fields, named as in JSON and as the table's columns; null clears an optional one. */
export interface SubscriptionFields {
  url?: string;
  event_types?: string[] | null;
  sources?: string[] | null;
  description?: string | null;
  rate_limit_per_s?: number | null;
  max_in_flight?: number;
  retry_schedule_s?: number[] | null;
  retry_max_age_s?: number | null;
  enabled?: boolean;
}

type Field = keyof SubscriptionFields;

export const urlCharsMax = 2048;
export const patternsMax = 100;
export const eventTypeCharsMax = 128;
export const sourceCharsMax = 64;
export const descriptionCharsMax = 1000;
export const rateLimitPerSMax = 100_000;
export const maxInFlightDefault = 16;
export const maxInFlightMax = 1000;
export const retryScheduleEntriesMax = 50;
/** One retry delay at most a week; the age bound (retry_max_age_s) ends a schedule sooner anyway. */
export const retryDelaySMax = 7 * 86_400;
export const retryMaxAgeSMax = 30 * 86_400;
/** Secrets a subscription signs with at once: the current one and those still in their grace period. */
export const secretsMax = 10;
export const secretBytesMin = 24;
export const secretBytesMax = 64;
/** Generated secrets: 32 random bytes, within Standard Webhooks' 24–64. */
const generatedSecretBytes = 32;
export const listLimitDefault = 100;
export const listLimitMax = 1000;

const ok = <T>(value: T) => ({ ok: true as const, value });
const bad = (field: string | null, message: string, code: FieldProblem['code'] = 'ERR_SUBSCRIPTION_BAD_REQUEST') => ({ ok: false as const, problem: { code, field, message } });
type Checked<T> = ReturnType<typeof ok<T>> | ReturnType<typeof bad>;

function integerIn(field: string, value: unknown, min: number, max: number): Checked<number> {
  if (typeof value !== 'number' || !Number.isInteger(value)) return bad(field, `${field} must be an integer from ${min} to ${max}`);
  return value >= min && value <= max ? ok(value) : bad(field, `${field} must be from ${min} to ${max}, not ${value}`);
}

/** PostgreSQL text cannot hold NUL; a string with one would fail the write as a 503 instead of a 400. */
function textProblem(field: string, value: unknown, charsMin: number, charsMax: number): string | null {
  if (typeof value !== 'string') return `${field} must be a string`;
  if (value.length < charsMin || value.length > charsMax) return `${field} must be ${charsMin} to ${charsMax} characters long`;
  return value.includes('\u0000') ? `${field} must not contain NUL characters` : null;
}

function listOf(field: string, value: unknown, each: (item: unknown, name: string) => string | null): Checked<string[]> {
  if (!Array.isArray(value) || value.length === 0 || value.length > patternsMax) return bad(field, `${field} must be an array of 1 to ${patternsMax} strings, or null for all`);
  for (const [index, item] of value.entries()) {
    const problem = each(item, `${field}[${index}]`);
    if (problem !== null) return bad(field, problem);
  }
  return ok(value as string[]);
}

/** An exact type, `prefix.*` (every type under prefix.), or `*`; a star anywhere else matches nothing, so it is refused. */
function eventTypeProblem(item: unknown, name: string): string | null {
  const problem = textProblem(name, item, 1, eventTypeCharsMax);
  if (problem !== null) return problem;
  const pattern = item as string;
  const stem = pattern.endsWith('.*') ? pattern.slice(0, -2) : pattern;
  if (pattern === '*' || (!stem.includes('*') && stem !== '')) return null;
  return `${name} must be an exact event type, "prefix.*" or "*" ("*" only alone or after the last ".")`;
}

/** Checks `whsec_<base64>` decoding to 24–64 bytes; never echoes the secret. */
export function secretProblem(value: unknown): string | null {
  if (typeof value !== 'string') return 'secret must be a string';
  const match = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(value);
  const encoded = match?.[1];
  if (encoded === undefined) return 'secret must be "whsec_" followed by base64';
  const key = Buffer.from(encoded, 'base64');
  // Buffer decoding is lenient: re-encoding tells whether every character was meaningful.
  if (key.toString('base64').replace(/=+$/, '') !== encoded.replace(/=+$/, '')) return 'secret must be "whsec_" followed by valid base64';
  if (key.length < secretBytesMin || key.length > secretBytesMax) return `secret must decode to ${secretBytesMin} to ${secretBytesMax} bytes, not ${key.length}`;
  return null;
}

export function generateSecret(): string {
  return `whsec_${randomBytes(generatedSecretBytes).toString('base64')}`;
}

/**
 * The URL's shape and, for an IP literal, its range (src/delivery/destination-guard.ts). The
 * URL is stored as the WHATWG parser writes it back (lower-case host, a path of at least "/"),
 * so one endpoint has one spelling. Names are resolved later, by refusedDestination.
 */
function checkUrl(value: unknown, allowPrivate: boolean): Checked<string> {
  const problem = textProblem('url', value, 1, urlCharsMax);
  if (problem !== null) return bad('url', problem);
  if (!URL.canParse(value as string)) return bad('url', 'url is not an absolute URL');
  const check = checkDestinationUrl(value as string, allowPrivate);
  if (!check.ok) return bad('url', check.message, 'ERR_SUBSCRIPTION_DESTINATION_REFUSED');
  return check.url.href.length > urlCharsMax ? bad('url', `url must be at most ${urlCharsMax} characters once normalised`) : ok(check.url.href);
}

const fieldRules: Readonly<Record<Field, (value: unknown, allowPrivate: boolean) => Checked<unknown>>> = {
  url: checkUrl,
  event_types: (value) => (value === null ? ok(null) : listOf('event_types', value, eventTypeProblem)),
  sources: (value) => (value === null ? ok(null) : listOf('sources', value, (item, name) => textProblem(name, item, 1, sourceCharsMax))),
  description: (value) => {
    const problem = value === null ? null : textProblem('description', value, 0, descriptionCharsMax);
    return problem === null ? ok(value) : bad('description', problem);
  },
  rate_limit_per_s: (value) => (value === null ? ok(null) : integerIn('rate_limit_per_s', value, 1, rateLimitPerSMax)),
  // Not optional in the table: null puts the default back.
  max_in_flight: (value) => (value === null ? ok(maxInFlightDefault) : integerIn('max_in_flight', value, 1, maxInFlightMax)),
  retry_schedule_s: (value) => {
    if (value === null) return ok(null);
    if (!Array.isArray(value) || value.length > retryScheduleEntriesMax) return bad('retry_schedule_s', `retry_schedule_s must be an array of at most ${retryScheduleEntriesMax} delays in seconds ([] for no retries), or null for the default`);
    for (const [index, delay] of value.entries()) {
      const checked = integerIn(`retry_schedule_s[${index}]`, delay, 0, retryDelaySMax);
      if (!checked.ok) return bad('retry_schedule_s', checked.problem.message);
    }
    return ok(value);
  },
  retry_max_age_s: (value) => (value === null ? ok(null) : integerIn('retry_max_age_s', value, 1, retryMaxAgeSMax)),
  enabled: (value) => (typeof value === 'boolean' ? ok(value) : bad('enabled', 'enabled must be true or false')),
};

const writableFields = Object.keys(fieldRules) as Field[];
const createFields: readonly string[] = [...writableFields, 'secret'];

export type ParsedFields = { ok: true; fields: SubscriptionFields; secret: string | null } | { ok: false; problem: FieldProblem };

/**
 * A create or update body, checked field by field (the first problem is answered). Create
 * needs `url` and may carry `secret`; an update changes only the fields it names, and
 * secrets change through rotate-secret only.
 */
export function parseSubscriptionBody(body: unknown, mode: 'create' | 'update', allowPrivate: boolean): ParsedFields {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return bad(null, `the body must be a JSON object {"url", "event_types"?, …}`);
  const known = mode === 'create' ? createFields : writableFields;
  const given = body as Record<string, unknown>;
  for (const name of Object.keys(given)) {
    if (name === 'secret' && mode === 'update') return bad('secret', 'secret cannot be changed here: POST /v1/subscriptions/{id}/rotate-secret');
    if (!known.includes(name)) return bad(name.slice(0, 64), `unknown field "${name.slice(0, 64)}"; known: ${known.join(', ')}`);
  }
  if (mode === 'create' && given.url === undefined) return bad('url', 'url is required');
  const fields: Record<string, unknown> = {};
  for (const name of writableFields) {
    if (!Object.hasOwn(given, name)) continue;
    if (name === 'url' && given.url === null) return bad('url', 'url must be a string');
    const checked = fieldRules[name](given[name], allowPrivate);
    if (!checked.ok) return checked;
    fields[name] = checked.value;
  }
  let secret: string | null = null;
  if (given.secret !== undefined && given.secret !== null) {
    const problem = secretProblem(given.secret);
    if (problem !== null) return bad('secret', problem);
    secret = given.secret as string;
  }
  return { ok: true, fields: fields as SubscriptionFields, secret };
}

/** The DNS half of the SSRF guard: every address the URL's host resolves to must be public (unless allowed). */
export async function refusedDestination(url: string, allowPrivate: boolean): Promise<FieldProblem | null> {
  const reason = await checkDestinationAddresses(new URL(url), allowPrivate);
  return reason === null ? null : { code: 'ERR_SUBSCRIPTION_DESTINATION_REFUSED', field: 'url', message: reason };
}

/** A subscription as the routes and the CLI show it. */
export interface Subscription {
  readonly id: string;
  readonly url: string;
  readonly eventTypes: readonly string[] | null;
  readonly sources: readonly string[] | null;
  readonly description: string | null;
  /** secrets[0] signs; secrets[i] (i ≥ 1) signs too until secretExpiresAt[i - 1]. */
  readonly secrets: readonly string[];
  readonly secretExpiresAt: readonly Date[];
  readonly rateLimitPerS: number | null;
  readonly maxInFlight: number;
  readonly retryScheduleS: readonly number[] | null;
  readonly retryMaxAgeS: number | null;
  readonly enabled: boolean;
  readonly disabledReason: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/**
 * The JSON of a subscription. `list` (GET /v1/subscriptions, the dashboard) carries no
 * secret; `full` (create, GET/PATCH one, rotate: admin scope) adds the current secret and
 * when each previous secret stops signing, never the previous secrets themselves.
 */
export function subscriptionItemOf(subscription: Subscription, view: 'list' | 'full' = 'list'): Record<string, unknown> {
  const item: Record<string, unknown> = {
    id: subscription.id,
    url: subscription.url,
    event_types: subscription.eventTypes,
    sources: subscription.sources,
    description: subscription.description,
    enabled: subscription.enabled,
    disabled_reason: subscription.disabledReason,
    rate_limit_per_s: subscription.rateLimitPerS,
    max_in_flight: subscription.maxInFlight,
    retry_schedule_s: subscription.retryScheduleS,
    retry_max_age_s: subscription.retryMaxAgeS,
    created_at: subscription.createdAt.toISOString(),
    updated_at: subscription.updatedAt.toISOString(),
  };
  if (view === 'list') return item;
  return { ...item, secret: subscription.secrets[0], previous_secrets_expire_at: subscription.secretExpiresAt.map((at) => at.toISOString()) };
}

const columns =
  'id::text AS id, url, event_types, sources, description, secrets, secret_expires_at, rate_limit_per_s, max_in_flight, ' +
  'retry_schedule_s, retry_max_age_s, enabled, disabled_reason, created_at, updated_at';

interface Row {
  id: string;
  url: string;
  event_types: string[] | null;
  sources: string[] | null;
  description: string | null;
  secrets: string[];
  secret_expires_at: Date[];
  rate_limit_per_s: number | null;
  max_in_flight: number;
  retry_schedule_s: number[] | null;
  retry_max_age_s: number | null;
  enabled: boolean;
  disabled_reason: string | null;
  created_at: Date;
  updated_at: Date;
}

function subscriptionOfRow(row: Row): Subscription {
  return {
    id: row.id, url: row.url, eventTypes: row.event_types, sources: row.sources, description: row.description,
    secrets: row.secrets, secretExpiresAt: row.secret_expires_at, rateLimitPerS: row.rate_limit_per_s,
    maxInFlight: row.max_in_flight, retryScheduleS: row.retry_schedule_s, retryMaxAgeS: row.retry_max_age_s,
    enabled: row.enabled, disabledReason: row.disabled_reason, createdAt: row.created_at, updatedAt: row.updated_at,
  };
}

/** Ids are bigint identities: 1 to 19 digits, no leading zero, within int8. */
export function isSubscriptionId(text: string): boolean {
  return /^[1-9][0-9]{0,18}$/.test(text) && BigInt(text) <= 9_223_372_036_854_775_807n;
}

/** Thrown inside a change to roll it back (no epoch bump) when the id names no live subscription. */
class NotFound extends Error {}

const adminDisabledReason = 'disabled by an administrator';

export class SubscriptionStore {
  readonly #pool: pg.Pool;

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Two connections: a slow change (waiting for the fan-out lock) does not hold up reads. */
  static open(connectionString: string): SubscriptionStore {
    return new SubscriptionStore(openStorePool({ connectionString, max: 2, idleTimeoutMillis: 10_000, connectionTimeoutMillis: 5_000, application_name: 'floodgate-subscriptions' }));
  }

  async create(fields: SubscriptionFields & { url: string }, secret: string): Promise<Subscription> {
    const names = [...(Object.keys(fields) as Field[]), 'secrets'];
    const values = [...names.map((_, index) => `$${index + 1}`)];
    // covered_from takes its default, clock_timestamp(), which runs after the lock was
    // taken; a subscription created disabled covers nothing until it is enabled.
    if (fields.enabled === false) {
      names.push('covered_until');
      values.push('clock_timestamp()');
    }
    const sql = `INSERT INTO subscriptions (${names.join(', ')}) VALUES (${values.join(', ')}) RETURNING ${columns}`;
    const parameters = [...(Object.keys(fields) as Field[]).map((name) => fields[name]), [secret]];
    const created = await this.#change(async (client) => (await client.query<Row>(sql, parameters)).rows[0]);
    return subscriptionOfRow(created as Row);
  }

  async get(id: string): Promise<Subscription | null> {
    const result = await this.#pool.query<Row>(`SELECT ${columns} FROM subscriptions WHERE id = $1 AND deleted_at IS NULL`, [id]);
    const row = result.rows[0];
    return row === undefined ? null : subscriptionOfRow(row);
  }

  /** Live subscriptions by id, after `afterId` (a keyset page); `more` when another page follows. */
  async list(afterId: string | null, limit: number): Promise<{ subscriptions: Subscription[]; more: boolean }> {
    const result = await this.#pool.query<Row>(
      `SELECT ${columns} FROM subscriptions WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2`,
      [afterId ?? '0', limit + 1],
    );
    return { subscriptions: result.rows.slice(0, limit).map(subscriptionOfRow), more: result.rows.length > limit };
  }

  /**
   * Changes only the given fields; null if no live subscription has this id. When the
   * filter (event_types, sources) or `enabled` really changes, the coverage window
   * restarts (enabled) or ends (disabled).
   */
  async update(id: string, fields: SubscriptionFields): Promise<Subscription | null> {
    return this.#changeOne(async (client) => {
      type Current = { event_types: string[] | null; sources: string[] | null; enabled: boolean };
      const current = (await client.query<Current>('SELECT event_types, sources, enabled FROM subscriptions WHERE id = $1 AND deleted_at IS NULL FOR UPDATE', [id])).rows[0];
      if (current === undefined) throw new NotFound();
      const names = Object.keys(fields) as Field[];
      const sets = names.map((name, index) => `${name} = $${index + 2}`);
      const enabled = fields.enabled ?? current.enabled;
      const enabledChanged = enabled !== current.enabled;
      const filterChanged = ('event_types' in fields && !sameList(fields.event_types, current.event_types)) || ('sources' in fields && !sameList(fields.sources, current.sources));
      if (enabled && (enabledChanged || filterChanged)) sets.push('covered_from = clock_timestamp()', 'covered_until = NULL');
      if (!enabled && enabledChanged) sets.push('covered_until = clock_timestamp()');
      if (enabledChanged) sets.push(enabled ? 'disabled_reason = NULL' : `disabled_reason = '${adminDisabledReason}'`);
      const sql = `UPDATE subscriptions SET ${[...sets, 'updated_at = now()'].join(', ')} WHERE id = $1 RETURNING ${columns}`;
      return (await client.query<Row>(sql, [id, ...names.map((name) => fields[name])])).rows[0] as Row;
    });
  }

  /**
   * Soft-deletes: the subscription stops matching (its coverage ends now, unless a disable
   * ended it earlier), its pending deliveries are discarded and its running replays
   * cancelled. A sender holding one of those deliveries loses its lease, so an attempt in
   * flight may still reach the receiver but its outcome is not recorded.
   */
  async remove(id: string): Promise<{ id: string; deletedAt: Date; discarded: number } | null> {
    return this.#change(async (client) => {
      const deleted = await client.query<{ id: string; deleted_at: Date }>(
        `UPDATE subscriptions SET deleted_at = now(), updated_at = now(), covered_until = coalesce(covered_until, clock_timestamp())
          WHERE id = $1 AND deleted_at IS NULL RETURNING id::text AS id, deleted_at`,
        [id],
      );
      const row = deleted.rows[0];
      if (row === undefined) throw new NotFound();
      const discarded = await client.query(
        `UPDATE deliveries SET status = 'discarded', last_error = 'subscription deleted', lease_token = NULL
          WHERE subscription_id = $1 AND status = 'pending'`,
        [id],
      );
      await client.query(`UPDATE delivery_replays SET state = 'cancelled', finished_at = now() WHERE subscription_id = $1 AND state = 'running'`, [id]);
      return { id: row.id, deletedAt: row.deleted_at, discarded: discarded.rowCount ?? 0 };
    }).catch(nullWhenNotFound);
  }

  /**
   * Puts `secret` first; the previous current secret keeps signing until now + graceMs.
   * Secrets whose grace has passed are dropped, and at most secretsMax are kept (the
   * oldest go first).
   */
  async rotateSecret(id: string, secret: string, graceMs: number): Promise<Subscription | null> {
    return this.#changeOne(async (client) => {
      type Current = { secrets: string[]; expires_ms: string[]; now_ms: string };
      const current = (await client.query<Current>(
        `SELECT secrets, (SELECT coalesce(array_agg((extract(epoch FROM t) * 1000)::bigint ORDER BY o), '{}') FROM unnest(secret_expires_at) WITH ORDINALITY AS x(t, o)) AS expires_ms,
                (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms
           FROM subscriptions WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`,
        [id],
      )).rows[0];
      if (current === undefined) throw new NotFound();
      const nowMs = Number(current.now_ms);
      const previous = current.secrets.map((text, index) => ({ text, expiresMs: index === 0 ? nowMs + graceMs : Number(current.expires_ms[index - 1]) }));
      const kept = previous.filter((entry) => entry.expiresMs > nowMs && entry.text !== secret).slice(0, secretsMax - 1);
      const result = await client.query<Row>(
        `UPDATE subscriptions SET secrets = $2, secret_expires_at = $3::timestamptz[], updated_at = now() WHERE id = $1 RETURNING ${columns}`,
        [id, [secret, ...kept.map((entry) => entry.text)], kept.map((entry) => new Date(entry.expiresMs).toISOString())],
      );
      return result.rows[0] as Row;
    });
  }

  close(): Promise<void> {
    return this.#pool.end();
  }

  async #changeOne(work: (client: pg.PoolClient) => Promise<Row>): Promise<Subscription | null> {
    const row = await this.#change(work).catch(nullWhenNotFound);
    return row === null ? null : subscriptionOfRow(row);
  }

  async #change<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    let broken: Error | undefined;
    try {
      return await changeSubscriptions(client, () => work(client));
    } catch (error) {
      // A connection that failed mid-transaction is not given back to the pool.
      if (!(error instanceof NotFound) && error instanceof Error) broken = error;
      throw error;
    } finally {
      client.release(broken);
    }
  }
}

/**
 * Disables a subscription from outside the admin surface (a receiver answering 410 Gone):
 * its coverage ends now and the reason is shown; false when it was not live and enabled.
 * A delivery actor calls this with its own connection.
 */
export async function disableSubscription(client: pg.ClientBase, id: number | string, reason: string): Promise<boolean> {
  return changeSubscriptions(client, async () => {
    const result = await client.query(
      `UPDATE subscriptions SET enabled = false, disabled_reason = $2, covered_until = clock_timestamp(), updated_at = now()
        WHERE id = $1 AND deleted_at IS NULL AND enabled`,
      [String(id), reason.slice(0, descriptionCharsMax)],
    );
    return (result.rowCount ?? 0) > 0;
  });
}

function nullWhenNotFound(error: unknown): null {
  if (error instanceof NotFound) return null;
  throw error;
}

function sameList(a: readonly string[] | null | undefined, b: readonly string[] | null): boolean {
  if (a === undefined || a === null || b === null) return (a ?? null) === b;
  return a.length === b.length && a.every((item, index) => item === b[index]);
}
