/**
 * Inspection, replay and health of deliveries (admin scope; src/auth/route-access.ts):
 *
 *   GET  /v1/deliveries                          newest first by id, keyset cursor bound to
 *                                                the filters and window (created_at)
 *   GET  /v1/deliveries/:id                      one delivery with its attempt log
 *   POST /v1/subscriptions/:id/replay            {from, to, status?, dry_run?} → 200 {count}
 *                                                or 202 a durable job (./replay-runner.ts)
 *   GET  /v1/subscriptions/:id/replays/:replay_id  the job's progress
 *   GET  /v1/subscriptions/:id/health            success rates, latencies, last error, backlog,
 *                                                and this node's live breaker state
 *
 * Reads go through the read API's own pool (src/query/read-database.ts), read-only and
 * under its statement timeout, so an inspection never takes a connection a sender needs;
 * only creating a replay writes, through the runner's pool. Parameters are parsed with
 * the read API's helpers and every 400 names its parameter or field.
 */
import { createHash } from 'node:crypto';
import { FloodgateError, type ErrorCode } from '../errors';
import { startAdminCall } from '../ingress/admin-call';
import { reply } from '../ingress/http-reply';
import type { UwsHttpRequest, UwsHttpResponse } from '../ingress/uws';
import type { Logger } from '../log';
import { badParameter, isoOfMicros, ParameterError, QueryParameters } from '../query/query-parameters';
import { equalityFilterSql, type ReadDatabase } from '../query/read-database';
import { jsonRoute, problemOf, readCallOf, replyProblem, type ReadCall } from '../query/read-route';
import { deliveryStatuses, liveLane, type DeliveryStatus } from './delivery-schema';
import { replayableStatuses, replayJobColumns, replayStatusesDefault, replayWindowSql, type ReplayableStatus, type ReplayJob, type ReplayRunner } from './replay-runner';

/** This node's view of a subscription's sending (the delivery pool's); null when it has none. */
export type LiveState = (subscriptionId: number) => { breaker: 'closed' | 'open' | 'half-open'; inFlight: number; pausedUntilMs: number | null } | null;

export interface DeliveryRouteDependencies {
  readonly db: ReadDatabase;
  readonly replays: Pick<ReplayRunner, 'create'>;
  readonly log: Logger;
  readonly bodyTimeoutMs: number;
  readonly liveState: LiveState;
}

/** A route for src/ingress/server.ts to register through the guard. */
export interface DeliveryRoute {
  readonly method: 'GET' | 'POST';
  readonly pattern: string;
  readonly handler: (res: UwsHttpResponse, req: UwsHttpRequest) => void;
}

const pageLimit = { min: 1, max: 1000, fallback: 100 };
const microsPerDay = 86_400_000_000;
/** A page's or a replay's window: a month, as for GET /v1/events. */
const windowDaysMax = 31;
const instantUsMax = Date.UTC(2200, 0, 1) * 1000;
const idMax = 9_223_372_036_854_775_807n;
/** The newest attempts shown with one delivery; replays can make the log longer. */
const attemptLogRowsMax = 200;
/** commit → delivered percentiles use at most this many of the last hour's deliveries. */
const latencySampleRowsMax = 10_000;
/** A replay body is four short fields. */
const replayBodyBytesMax = 4096;
const cursorCharsMax = 512;
const cursorVersion = 'd1';
const listParameterNames = ['subscription_id', 'status', 'from', 'to', 'cursor', 'limit'] as const;
const replayFields = ['from', 'to', 'status', 'dry_run'];

export function deliveryRoutes(deps: DeliveryRouteDependencies): DeliveryRoute[] {
  return [
    getRoute(deps, '/v1/deliveries', (call) => answerList(deps, call)),
    getRoute(deps, '/v1/deliveries/:id', (call) => answerOne(deps, call)),
    replayRoute(deps),
    getRoute(deps, '/v1/subscriptions/:id/replays/:replay_id', (call) => answerReplayProgress(deps, call)),
    getRoute(deps, '/v1/subscriptions/:id/health', (call) => answerHealth(deps, call)),
  ];
}

function getRoute(deps: DeliveryRouteDependencies, pattern: string, answer: (call: ReadCall) => Promise<unknown>): DeliveryRoute {
  const route = jsonRoute(deps, pattern, (call) => answer(call).catch((error: unknown) => Promise.reject(deliveryError(error, deps.log, call.requestId, pattern))));
  return { method: 'GET', pattern, handler: route.handler };
}

/**
 * The read helpers speak the read API's codes; these routes answer with delivery codes.
 * A database that cannot be reached is ERR_DELIVERY_UNAVAILABLE (503, Retry-After).
 */
function deliveryError(error: unknown, log: Logger, requestId: string, pattern: string): unknown {
  if (error instanceof ParameterError) {
    const renamed: Partial<Record<ErrorCode, ErrorCode>> = { ERR_QUERY_BAD_PARAMETER: 'ERR_DELIVERY_BAD_PARAMETER', ERR_QUERY_BAD_CURSOR: 'ERR_DELIVERY_BAD_CURSOR' };
    const code = renamed[error.problem.code];
    return code === undefined ? error : new ParameterError({ ...error.problem, code });
  }
  const fromDatabase = error instanceof FloodgateError ? error.code === 'ERR_QUERY_UNAVAILABLE' || error.code === 'ERR_QUERY_TIMEOUT' : typeof (error as { code?: unknown } | null)?.code === 'string';
  if (!fromDatabase) return error;
  log.warn({ err: (error as Error).cause ?? error, requestId, route: pattern }, 'delivery tables could not be read or updated');
  const message = error instanceof FloodgateError && error.code === 'ERR_QUERY_TIMEOUT' ? `${error.message}` : 'the subscription and delivery tables could not be read or updated; retry';
  return new FloodgateError('ERR_DELIVERY_UNAVAILABLE', message, { cause: error });
}

// Parameters --------------------------------------------------------------------------------

/** A bigint id from a path or query parameter, as decimal text. */
function idOf(text: string | null | undefined, parameter: string, code: ErrorCode = 'ERR_DELIVERY_BAD_PARAMETER'): string {
  if (text === undefined || text === null || !/^[1-9]\d{0,18}$/.test(text) || BigInt(text) > idMax) {
    throw badParameter(parameter, `${parameter} must be a positive integer id; got "${String(text ?? '').slice(0, 32)}"`, code);
  }
  return text;
}

function subscriptionIdOf(call: ReadCall): string {
  return idOf(call.pathParameters[0], 'id', 'ERR_SUBSCRIPTION_BAD_REQUEST');
}

function instantOf(params: QueryParameters, name: 'from' | 'to'): number | null {
  const us = params.instantUs(name);
  if (us !== null && !(us >= 0 && us < instantUsMax)) throw badParameter(name, `${name} must lie between 1970-01-01 and 2200-01-01`);
  return us;
}

/** [fromUs, toUs) with to later than from and at most windowDaysMax wide. */
function checkedWindow(fromUs: number, toUs: number, blamed: 'from' | 'to'): void {
  if (fromUs >= toUs) throw badParameter(blamed, `to (${isoOfMicros(toUs)}) must be later than from (${isoOfMicros(fromUs)})`);
  if (toUs - fromUs > windowDaysMax * microsPerDay) throw badParameter('from', `the window from ${isoOfMicros(fromUs)} to ${isoOfMicros(toUs)} is wider than ${windowDaysMax} days; narrow it`);
}

// GET /v1/deliveries ------------------------------------------------------------------------

interface ListQuery {
  readonly fromUs: number;
  readonly toUs: number;
  readonly subscriptionId: string | null;
  readonly status: DeliveryStatus | null;
  /** Only ids below this one (the cursor's last row); null starts at the newest. */
  readonly beforeId: string | null;
}

function parseListQuery(params: QueryParameters, nowUs: number): ListQuery {
  const subscriptionText = params.text('subscription_id', 32);
  const subscriptionId = subscriptionText === null ? null : idOf(subscriptionText, 'subscription_id');
  const status = params.text('status', 64) === null ? null : params.choice<DeliveryStatus>('status', deliveryStatuses, 'pending');
  const fromGiven = instantOf(params, 'from');
  const toGiven = instantOf(params, 'to');
  const cursorText = params.text('cursor', cursorCharsMax);
  if (cursorText === null) {
    const toUs = toGiven ?? nowUs;
    const fromUs = fromGiven ?? toUs - microsPerDay;
    checkedWindow(fromUs, toUs, toGiven !== null ? 'to' : 'from');
    return { fromUs, toUs, subscriptionId, status, beforeId: null };
  }
  const cursor = decodeCursor(cursorText);
  if (cursor === null) throw badCursor('the cursor is malformed; send next_cursor exactly as a previous answer gave it');
  if ((fromGiven !== null && fromGiven !== cursor.fromUs) || (toGiven !== null && toGiven !== cursor.toUs)) {
    throw badCursor(`the cursor was made for the window ${isoOfMicros(cursor.fromUs)} to ${isoOfMicros(cursor.toUs)}; leave from and to out or send those`);
  }
  const query: ListQuery = { fromUs: cursor.fromUs, toUs: cursor.toUs, subscriptionId, status, beforeId: cursor.lastId };
  if (cursor.check !== checkOf(query, cursor.lastId)) throw badCursor('the cursor was made for other filters, or was altered; send it as given, with subscription_id and status as on the first page');
  return query;
}

function badCursor(message: string): ParameterError {
  return badParameter('cursor', message, 'ERR_DELIVERY_BAD_CURSOR');
}

/**
 * base64url of `d1|from µs|to µs|last id|check`: the window is fixed by the first page (a
 * defaulted "last 24 h" does not slide while a client pages), and `check` hashes it with
 * the filters, so a cursor sent with other filters is refused. A checksum, not a
 * signature: a cursor grants nothing the caller could not ask for directly.
 */
function encodeCursor(query: ListQuery, lastId: string): string {
  return Buffer.from([cursorVersion, query.fromUs, query.toUs, lastId, checkOf(query, lastId)].join('|'), 'utf8').toString('base64url');
}

const cursorPattern = /^d1\|(\d{1,16})\|(\d{1,16})\|([1-9]\d{0,18})\|([\w-]{22})$/;

function decodeCursor(text: string): { fromUs: number; toUs: number; lastId: string; check: string } | null {
  if (!/^[\w-]+$/.test(text)) return null;
  const match = cursorPattern.exec(Buffer.from(text, 'base64url').toString('utf8'));
  if (match === null) return null;
  const [fromUs, toUs] = [Number(match[1]), Number(match[2])];
  if (!(fromUs < toUs && toUs <= instantUsMax && toUs - fromUs <= windowDaysMax * microsPerDay)) return null;
  return { fromUs, toUs, lastId: match[3] as string, check: match[4] as string };
}

function checkOf(query: ListQuery, lastId: string): string {
  const text = JSON.stringify([cursorVersion, query.fromUs, query.toUs, query.subscriptionId, query.status, lastId]);
  return createHash('sha256').update(text, 'utf8').digest().toString('base64url', 0, 16);
}

const isoSql = (column: string): string => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** A delivery as the API shows it; ids are decimal strings (bigint). */
const deliveryItemSql =
  `d.id::text AS id, d.subscription_id::text AS subscription_id, d.event_id, e.event_type, ${isoSql('d.occurred_at')} AS occurred_at, ` +
  `${isoSql('d.created_at')} AS created_at, d.status, CASE WHEN d.lane = ${liveLane} THEN 'live' ELSE 'replay' END AS lane, d.attempts, ` +
  `CASE WHEN d.status = 'pending' THEN ${isoSql('d.next_attempt_at')} END AS next_attempt_at, ${isoSql('d.last_attempt_at')} AS last_attempt_at, ` +
  `d.last_status_code, d.last_error, ${isoSql('d.delivered_at')} AS delivered_at, d.replay_id::text AS replay_id ` +
  'FROM deliveries d LEFT JOIN events e ON e.event_id = d.event_id AND e.occurred_at = d.occurred_at';

interface DeliveryItem {
  readonly id: string;
  readonly created_at: string;
}

async function answerList(deps: DeliveryRouteDependencies, call: ReadCall): Promise<unknown> {
  const params = QueryParameters.parse(call.query, listParameterNames);
  const limit = params.integer('limit', pageLimit);
  const query = parseListQuery(params, Date.now() * 1000);
  const values: unknown[] = [isoOfMicros(query.fromUs), isoOfMicros(query.toUs)];
  let where = `d.created_at >= $1::timestamptz AND d.created_at < $2::timestamptz${equalityFilterSql(values, { 'd.subscription_id': query.subscriptionId, 'd.status': query.status })}`;
  if (query.beforeId !== null) where += ` AND d.id < $${values.push(query.beforeId)}`;
  const rows = await deps.db.rows<DeliveryItem>(`SELECT ${deliveryItemSql} WHERE ${where} ORDER BY d.id DESC LIMIT $${values.push(limit + 1)}`, values);
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  const nextCursor = rows.length > limit && last !== undefined ? encodeCursor(query, last.id) : null;
  return { data: page, next_cursor: nextCursor };
}

// GET /v1/deliveries/:id --------------------------------------------------------------------

async function answerOne(deps: DeliveryRouteDependencies, call: ReadCall): Promise<unknown> {
  QueryParameters.parse(call.query, []);
  const id = idOf(call.pathParameters[0], 'id');
  const [delivery] = await deps.db.rows<DeliveryItem>(`SELECT ${deliveryItemSql} WHERE d.id = $1`, [id]);
  if (delivery === undefined) throw badParameter('id', `no delivery has id ${id}`, 'ERR_DELIVERY_NOT_FOUND');
  // Attempts come after the delivery was made; the bound (with an hour for clocks that
  // differ between nodes) lets PostgreSQL skip older day partitions of the log.
  const attempts = await deps.db.rows(
    `SELECT attempt, ${isoSql('attempted_at')} AS attempted_at, duration_ms, outcome, status_code, error_class, error, response_body
       FROM delivery_attempts WHERE delivery_id = $1 AND attempted_at >= $2::timestamptz - interval '1 hour'
      ORDER BY attempted_at DESC, attempt DESC LIMIT ${attemptLogRowsMax}`,
    [id, delivery.created_at],
  );
  return { ...delivery, attempt_log: attempts.reverse() };
}

// POST /v1/subscriptions/:id/replay ---------------------------------------------------------

const replayPattern = '/v1/subscriptions/:id/replay';

function replayRoute(deps: DeliveryRouteDependencies): DeliveryRoute {
  return {
    method: 'POST',
    pattern: replayPattern,
    handler: (res, req) => {
      const read = readCallOf(req, 1);
      const call = startAdminCall(res, req);
      call.readBody({ bytesMax: replayBodyBytesMax, timeoutMs: deps.bodyTimeoutMs }, (text) => {
        answerReplay(deps, read, text).then(
          (answer) => {
            if (!call.aborted()) reply(res, answer.status, call.requestId, answer.body);
          },
          (error: unknown) => {
            if (!call.aborted()) replyProblem(res, call.requestId, problemOf(deliveryError(error, deps.log, call.requestId, replayPattern)));
          },
        );
      });
    },
  };
}

interface ReplayBody {
  readonly fromIso: string;
  readonly toIso: string;
  readonly statuses: readonly ReplayableStatus[];
  readonly dryRun: boolean;
}

/** The body's fields; every problem names its field. */
export function parseReplayBody(text: string): ReplayBody {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw badParameter(null, 'the body is not valid JSON', 'ERR_DELIVERY_BAD_PARAMETER');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badParameter(null, 'the body must be an object {"from", "to", "status"?, "dry_run"?}', 'ERR_DELIVERY_BAD_PARAMETER');
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).find((field) => !replayFields.includes(field));
  if (unknown !== undefined) throw badParameter(unknown.slice(0, 64), `unknown field "${unknown.slice(0, 64)}"; known: ${replayFields.join(', ')}`, 'ERR_DELIVERY_BAD_PARAMETER');
  // from and to follow the query parameters' rule exactly (ISO-8601 with an offset, or a UTC day).
  const instants: Record<string, string> = {};
  for (const name of ['from', 'to'] as const) {
    const value = fields[name];
    if (typeof value !== 'string' || value === '') throw badParameter(name, `${name} is required: an ISO-8601 date-time with an offset or a UTC day (YYYY-MM-DD)`, 'ERR_DELIVERY_BAD_PARAMETER');
    instants[name] = value;
  }
  const params = QueryParameters.parse(new URLSearchParams(instants).toString(), ['from', 'to']);
  const fromUs = instantOf(params, 'from') as number;
  const toUs = instantOf(params, 'to') as number;
  checkedWindow(fromUs, toUs, 'to');
  if (fields.dry_run !== undefined && typeof fields.dry_run !== 'boolean') throw badParameter('dry_run', 'dry_run must be true or false', 'ERR_DELIVERY_BAD_PARAMETER');
  return { fromIso: isoOfMicros(fromUs), toIso: isoOfMicros(toUs), statuses: statusesOf(fields.status), dryRun: fields.dry_run === true };
}

function statusesOf(value: unknown): readonly ReplayableStatus[] {
  if (value === undefined || value === null) return replayStatusesDefault;
  const list = typeof value === 'string' ? [value] : value;
  const expected = `status must be one of ${replayableStatuses.join(', ')} or a non-empty array of them`;
  if (!Array.isArray(list) || list.length === 0 || list.length > replayableStatuses.length * 2) throw badParameter('status', expected, 'ERR_DELIVERY_BAD_PARAMETER');
  for (const entry of list) {
    if (entry === 'pending') throw badParameter('status', 'pending deliveries are due already and cannot be replayed; ' + expected, 'ERR_DELIVERY_BAD_PARAMETER');
    if (!(replayableStatuses as readonly unknown[]).includes(entry)) throw badParameter('status', `${expected}; got ${JSON.stringify(entry).slice(0, 64)}`, 'ERR_DELIVERY_BAD_PARAMETER');
  }
  return [...new Set(list as ReplayableStatus[])];
}

async function answerReplay(deps: DeliveryRouteDependencies, call: ReadCall, text: string): Promise<{ status: number; body: unknown }> {
  const subscriptionId = subscriptionIdOf(call);
  QueryParameters.parse(call.query, []);
  const request = parseReplayBody(text);
  const notFound = (): ParameterError => badParameter('id', `no subscription has id ${subscriptionId}`, 'ERR_SUBSCRIPTION_NOT_FOUND');
  const values = [subscriptionId, request.fromIso, request.toIso, request.statuses];
  if (request.dryRun) {
    const [row] = await deps.db.rows<{ found: boolean; count: number; to: string }>(
      `SELECT EXISTS (SELECT 1 FROM subscriptions WHERE id = $1 AND deleted_at IS NULL) AS found,
              (SELECT count(*) FROM deliveries WHERE ${replayWindowSql.matches})::float8 AS count,
              ${isoSql(replayWindowSql.to)} AS "to"`,
      values,
    );
    if (row === undefined || !row.found) throw notFound();
    return { status: 200, body: { dry_run: true, subscription_id: subscriptionId, from: request.fromIso, to: row.to, statuses: request.statuses, count: row.count } };
  }
  const job = await deps.replays.create({ subscriptionId, fromIso: request.fromIso, toIso: request.toIso, statuses: request.statuses });
  if (job === null) throw notFound();
  return { status: 202, body: job };
}

async function answerReplayProgress(deps: DeliveryRouteDependencies, call: ReadCall): Promise<ReplayJob> {
  QueryParameters.parse(call.query, []);
  const subscriptionId = subscriptionIdOf(call);
  const replayId = idOf(call.pathParameters[1], 'replay_id');
  const [job] = await deps.db.rows<ReplayJob>(`SELECT ${replayJobColumns} FROM delivery_replays WHERE id = $1 AND subscription_id = $2`, [replayId, subscriptionId]);
  if (job === undefined) throw badParameter('replay_id', `subscription ${subscriptionId} has no replay ${replayId}`, 'ERR_DELIVERY_NOT_FOUND');
  return job;
}

// GET /v1/subscriptions/:id/health ----------------------------------------------------------

interface HealthRow {
  subscription_id: string;
  enabled: boolean;
  attempts_5m: number;
  succeeded_5m: number;
  attempts_1h: number;
  succeeded_1h: number;
  attempt_p50: number | null;
  attempt_p95: number | null;
  delivered_p50: number | null;
  delivered_p95: number | null;
  error_at: string | null;
  error_class: string | null;
  error_status_code: number | null;
  error: string | null;
  backlog: number;
  oldest_pending_age_s: number | null;
  next_retry_at: string | null;
}

/** An attempt succeeded when the endpoint answered 2xx (the outcome rules' "delivered"). */
const succeededSql = 'status_code BETWEEN 200 AND 299';

/**
 * One statement, so every number comes from one snapshot. Rates and attempt durations
 * cover the last hour of the attempt log; commit → delivered covers live deliveries (not
 * replays, whose creation is long past) delivered in the last hour, at most the latest
 * latencySampleRowsMax; the last error is looked for in the last day; the backlog's age
 * counts from when each row last became due (created, or requeued by a replay).
 */
const healthSql = `
SELECT s.id::text AS subscription_id, s.enabled, a.*, c.*, l.*, b.*
  FROM subscriptions s
 CROSS JOIN LATERAL (
   SELECT count(*) FILTER (WHERE attempted_at >= now() - interval '5 minutes')::int AS attempts_5m,
          count(*) FILTER (WHERE attempted_at >= now() - interval '5 minutes' AND ${succeededSql})::int AS succeeded_5m,
          count(*)::int AS attempts_1h, count(*) FILTER (WHERE ${succeededSql})::int AS succeeded_1h,
          percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) AS attempt_p50,
          percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) AS attempt_p95
     FROM delivery_attempts WHERE subscription_id = s.id AND attempted_at >= now() - interval '1 hour') a
 CROSS JOIN LATERAL (
   SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY ms) AS delivered_p50, percentile_disc(0.95) WITHIN GROUP (ORDER BY ms) AS delivered_p95
     FROM (SELECT round(extract(epoch FROM d.delivered_at - d.created_at) * 1000)::float8 AS ms
             FROM deliveries d
            WHERE d.id IN (SELECT delivery_id FROM delivery_attempts
                            WHERE subscription_id = s.id AND attempted_at >= now() - interval '1 hour' AND ${succeededSql}
                            ORDER BY attempted_at DESC LIMIT ${latencySampleRowsMax})
              AND d.status = 'delivered' AND d.replay_id IS NULL AND d.delivered_at >= now() - interval '1 hour') x) c
  LEFT JOIN LATERAL (
   SELECT ${isoSql('attempted_at')} AS error_at, error_class, status_code AS error_status_code, error
     FROM delivery_attempts
    WHERE subscription_id = s.id AND attempted_at >= now() - interval '1 day' AND NOT coalesce(${succeededSql}, false)
    ORDER BY attempted_at DESC LIMIT 1) l ON true
 CROSS JOIN LATERAL (
   SELECT count(*)::float8 AS backlog,
          round(extract(epoch FROM now() - min(schedule_started_at))::numeric, 3)::float8 AS oldest_pending_age_s,
          ${isoSql('min(next_attempt_at) FILTER (WHERE attempts > 0 AND lease_token IS NULL)')} AS next_retry_at
     FROM deliveries WHERE subscription_id = s.id AND status = 'pending') b
 WHERE s.id = $1 AND s.deleted_at IS NULL`;

async function answerHealth(deps: DeliveryRouteDependencies, call: ReadCall): Promise<unknown> {
  QueryParameters.parse(call.query, []);
  const subscriptionId = subscriptionIdOf(call);
  const [row] = await deps.db.rows<HealthRow>(healthSql, [subscriptionId]);
  if (row === undefined) throw badParameter('id', `no subscription has id ${subscriptionId}`, 'ERR_SUBSCRIPTION_NOT_FOUND');
  const live = deps.liveState(Number(subscriptionId));
  const rate = (succeeded: number, attempts: number): number | null => (attempts === 0 ? null : succeeded / attempts);
  return {
    subscription_id: row.subscription_id,
    enabled: row.enabled,
    success_rate_5m: rate(row.succeeded_5m, row.attempts_5m),
    success_rate_1h: rate(row.succeeded_1h, row.attempts_1h),
    attempts_5m: row.attempts_5m,
    attempts_1h: row.attempts_1h,
    attempt_ms: { p50: row.attempt_p50, p95: row.attempt_p95 },
    commit_to_delivered_ms: { p50: row.delivered_p50, p95: row.delivered_p95 },
    last_error: row.error_at === null ? null : { at: row.error_at, class: row.error_class, status_code: row.error_status_code, error: row.error },
    breaker: live?.breaker ?? null,
    in_flight: live?.inFlight ?? null,
    paused_until: live?.pausedUntilMs == null ? null : new Date(live.pausedUntilMs).toISOString(),
    backlog: row.backlog,
    oldest_pending_age_s: row.oldest_pending_age_s,
    next_retry_at: row.next_retry_at,
  };
}
