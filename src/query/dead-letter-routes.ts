/**
 * The dead-letter API: list the events PostgreSQL refused, and replay them.
 *
 *   GET  /v1/dead-letters?limit=&after=&reason_code=&replayed=    newest first, keyset cursor
 *   POST /v1/dead-letters/replay  {"ids": [...]} | {"all": true, "reason_code"?, "after"?, "limit"?}
 *
 * Replay feeds each stored event back through the IngestPipeline as a durable request of
 * its own, so it is validated and deduplicated exactly like a client's event, and its
 * outcome is known per dead letter:
 *
 *   dead letters ─▶ payload → wire event ─▶ pipeline (validate → rings → actors → commit)
 *        │ (replayConcurrencyMax requests in flight; group commit batches them)
 *        ▼
 *   committed / duplicate → replayed_at = now(), attempts + 1
 *   rejected (validation) → attempts + 1, the row stays
 *   dead-lettered again   → the sink's new row is folded into the old one (attempts + 1)
 *   failed (database unavailable, timeout) → row untouched; replaying again is safe
 *
 * `all` works through unreplayed rows oldest first, at most `limit` (≤ replayBatchMax) per
 * call, and answers a `next_cursor` to continue after the last row it looked at, so rows
 * that fail again are not retried forever in a loop.
 */
import type { ErrorCode } from '../errors';
import type { Logger } from '../log';
import {
  decodeCursor,
  isReasonCode,
  listLimitDefault,
  listLimitMax,
  parseId,
  payloadJson,
  replayBatchMax,
  replayItemOf,
  type DeadLetterRecord,
  type DeadLetterStore,
} from './dead-letters';
import { bodyFormatOf } from '../decode/body-format';
import type { Problem } from './query-parameters';
import { replyProblem } from './read-route';
import { declaredLengthOf, notDecimalLength, readBody } from '../ingress/body-reader';
import { reply } from '../ingress/http-reply';
import { requestIdOf } from '../ingress/request-id';
import type { IngestPipeline } from '../ingress/ingest-pipeline';
import type { UwsApp, UwsHttpRequest, UwsHttpResponse } from '../ingress/uws';

export interface DeadLetterRouteDependencies {
  readonly store: DeadLetterStore;
  readonly pipeline: IngestPipeline;
  readonly log: Logger;
  readonly isDraining: () => boolean;
  readonly bodyTimeoutMs: number;
}

/** 5000 ids of 19 digits with quotes and commas is about 110 KB; anything larger is not a replay request. */
export const replayBodyBytesMax = 1024 * 1024;
/**
 * Replayed events in flight at once. The bound keeps a replay from filling the rings ahead
 * of live traffic. Not tuned: 16, 128 and 512 all replayed 5,000 events in 0.7–3.2 s on the
 * shared 2-core machine, within its noise.
 */
export const replayConcurrencyMax = 128;
/** A full ring is retried this many times, replayRetryDelayMs apart, before the event counts as failed. */
const overloadRetriesMax = 50;
const replayRetryDelayMs = 20;

export function routeDeadLetters(app: UwsApp, deps: DeadLetterRouteDependencies): void {
  app.get('/v1/dead-letters', (res, req) => handleList(deps, res, req));
  app.post('/v1/dead-letters/replay', (res, req) => handleReplay(deps, res, req));
}




// Listing ---------------------------------------------------------------------------------

export interface ListQuery {
  readonly limit: number;
  readonly beforeId: string | null;
  readonly reasonCode: string | null;
  readonly replayed: boolean | null;
}

const listParameters = new Set(['limit', 'after', 'reason_code', 'replayed']);

/** Parses the query string of GET /v1/dead-letters; every problem names its parameter. */
export function parseListQuery(queryString: string): { ok: true; query: ListQuery } | { ok: false; problem: Problem } {
  const params = new URLSearchParams(queryString);
  const bad = (parameter: string, message: string, code: ErrorCode = 'ERR_DEAD_LETTER_BAD_PARAMETER') => ({ ok: false as const, problem: { code, parameter, message } });
  for (const name of new Set(params.keys())) {
    if (!listParameters.has(name)) return bad(name, `unknown query parameter "${name.slice(0, 64)}"; known: limit, after, reason_code, replayed`);
    if (params.getAll(name).length > 1) return bad(name, `${name} is given more than once`);
  }
  const limitText = params.get('limit');
  const limit = limitText === null ? listLimitDefault : /^\d{1,4}$/.test(limitText) ? Number(limitText) : Number.NaN;
  if (!(limit >= 1 && limit <= listLimitMax)) return bad('limit', `limit must be an integer from 1 to ${listLimitMax} (rows); got "${(limitText ?? '').slice(0, 32)}"`);
  const after = params.get('after');
  const beforeId = after === null ? null : decodeCursor('list', after);
  if (after !== null && beforeId === null) return bad('after', 'after must be a next_cursor returned by GET /v1/dead-letters', 'ERR_DEAD_LETTER_BAD_CURSOR');
  const reasonCode = params.get('reason_code');
  if (reasonCode !== null && !isReasonCode(reasonCode)) return bad('reason_code', 'reason_code must be a SQLSTATE: five digits or upper-case letters, e.g. 22P05');
  const replayedText = params.get('replayed');
  if (replayedText !== null && replayedText !== 'true' && replayedText !== 'false') return bad('replayed', 'replayed must be true or false');
  return { ok: true, query: { limit, beforeId, reasonCode, replayed: replayedText === null ? null : replayedText === 'true' } };
}

function handleList(deps: DeadLetterRouteDependencies, res: UwsHttpResponse, req: UwsHttpRequest): void {
  const call = { aborted: false };
  res.onAborted(() => {
    call.aborted = true;
  });
  const requestId = requestIdOf(req);
  const parsed = parseListQuery(req.getQuery() ?? '');
  if (!parsed.ok) {
    replyProblem(res, requestId, parsed.problem);
    return;
  }
  deps.store.list(parsed.query).then(
    (page) => {
      if (call.aborted) return;
      reply(res, 200, requestId, { request_id: requestId, order: 'newest_first', items: page.records.map(itemOf), next_cursor: page.nextCursor });
    },
    (error: unknown) => {
      deps.log.error({ err: error, requestId }, 'listing dead letters failed');
      if (!call.aborted) replyProblem(res, requestId, unavailable('the dead_letters table could not be read; retry'));
    },
  );
}

function unavailable(message: string): Problem {
  return { code: 'ERR_DEAD_LETTER_UNAVAILABLE', parameter: null, message };
}

/** One dead letter as the API shows it. */
export function itemOf(record: DeadLetterRecord): Record<string, unknown> {
  const item: Record<string, unknown> = {
    id: idForJson(record.id),
    failed_at: record.failedAt.toISOString(),
    reason_code: record.reasonCode,
    reason: record.reason,
    event_id: record.eventId,
    attempts: record.attempts,
    replayed_at: record.replayedAt === null ? null : record.replayedAt.toISOString(),
  };
  const json = payloadJson(record.payload);
  if (json === undefined) item.payload_base64 = record.payload.toString('base64');
  else item.payload = json;
  return item;
}

/** Ids are JSON numbers: a bigserial would need 2^53 rows to outgrow them, but just in case, text then. */
function idForJson(id: string): number | string {
  const value = Number(id);
  return Number.isSafeInteger(value) ? value : id;
}

// Replay: the request ----------------------------------------------------------------------

export type ReplayRequest =
  | { readonly kind: 'ids'; readonly ids: readonly string[] }
  | { readonly kind: 'all'; readonly reasonCode: string | null; readonly afterId: string | null; readonly limit: number };

const replayFields = new Set(['ids', 'all', 'reason_code', 'after', 'limit']);

/** Parses the replay body; every problem names its field. Repeated ids count once. */
export function parseReplayBody(body: unknown): { ok: true; request: ReplayRequest } | { ok: false; problem: Problem } {
  const bad = (parameter: string | null, message: string, code: ErrorCode = 'ERR_DEAD_LETTER_BAD_PARAMETER') => ({ ok: false as const, problem: { code, parameter, message } });
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return bad(null, 'the body must be a JSON object: {"ids": [...]} or {"all": true}');
  const fields = body as Record<string, unknown>;
  for (const name of Object.keys(fields)) {
    if (!replayFields.has(name)) return bad(name.slice(0, 64), `unknown field "${name.slice(0, 64)}"; known: ids, all, reason_code, after, limit`);
  }
  if ((fields.ids === undefined) === (fields.all === undefined)) return bad('ids', 'give exactly one of "ids" (a list of dead-letter ids) or "all": true');
  if (fields.ids !== undefined) {
    for (const name of ['reason_code', 'after', 'limit']) if (fields[name] !== undefined) return bad(name, `${name} only applies with "all": true`);
    return parseIds(fields.ids, bad);
  }
  if (fields.all !== true) return bad('all', 'all must be true');
  const reasonCode = fields.reason_code ?? null;
  if (reasonCode !== null && (typeof reasonCode !== 'string' || !isReasonCode(reasonCode))) return bad('reason_code', 'reason_code must be a SQLSTATE: five digits or upper-case letters, e.g. 22P05');
  const after = fields.after ?? null;
  const afterId = typeof after === 'string' ? decodeCursor('replay', after) : null;
  if (after !== null && afterId === null) return bad('after', 'after must be a next_cursor returned by POST /v1/dead-letters/replay', 'ERR_DEAD_LETTER_BAD_CURSOR');
  const limit = fields.limit ?? replayBatchMax;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > replayBatchMax) return bad('limit', `limit must be an integer from 1 to ${replayBatchMax} (dead letters)`);
  return { ok: true, request: { kind: 'all', reasonCode: reasonCode as string | null, afterId, limit } };
}

function parseIds(value: unknown, bad: (parameter: string, message: string, code?: ErrorCode) => { ok: false; problem: Problem }) {
  if (!Array.isArray(value) || value.length === 0) return bad('ids', 'ids must be a non-empty array of dead-letter ids');
  if (value.length > replayBatchMax) return bad('ids', `ids holds ${value.length} entries; one call replays at most ${replayBatchMax}`, 'ERR_DEAD_LETTER_TOO_MANY_IDS');
  const ids = new Set<string>();
  for (const [index, entry] of value.entries()) {
    const id = parseId(entry);
    if (id === null) return bad(`ids[${index}]`, `ids[${index}] is not a dead-letter id (a positive integer, as a number or decimal text)`);
    ids.add(id);
  }
  return { ok: true as const, request: { kind: 'ids' as const, ids: [...ids] } };
}

function handleReplay(deps: DeadLetterRouteDependencies, res: UwsHttpResponse, req: UwsHttpRequest): void {
  const call = { aborted: false, cancelRead: (): void => undefined };
  res.onAborted(() => {
    call.aborted = true;
    call.cancelRead();
  });
  const requestId = requestIdOf(req);
  const refuse = (problem: Problem, close = false): void => {
    if (!call.aborted) replyProblem(res, requestId, problem, close);
  };
  const contentLength = declaredLengthOf(req);
  const early = checkReplayHeaders(deps, req.getHeader('content-type'), req.getHeader('content-encoding'), contentLength);
  if (early !== null) return refuse(early, true);
  call.cancelRead = readBody(res, {
    contentLength,
    bodyBytesMax: replayBodyBytesMax,
    bodyTimeoutMs: deps.bodyTimeoutMs,
    onError: (error) => refuse({ code: error.code, parameter: null, message: error.message }, true),
    onBody: (bytes) => {
      let body: unknown;
      try {
        body = JSON.parse(bytes.toString('utf8'));
      } catch {
        return refuse({ code: 'ERR_DEAD_LETTER_BAD_PARAMETER', parameter: null, message: 'the body is not valid JSON' });
      }
      const parsed = parseReplayBody(body);
      if (!parsed.ok) return refuse(parsed.problem);
      replayDeadLetters(deps, parsed.request, requestId).then(
        (report) => {
          deps.log.info({ requestId, deadLetters: report.results.length, folded: report.folded }, 'dead letters replayed');
          if (!call.aborted) reply(res, 200, requestId, replayBody(requestId, report, parsed.request));
        },
        (error: unknown) => {
          deps.log.error({ err: error, requestId }, 'dead-letter replay failed');
          refuse(unavailable('the dead_letters table could not be read or updated; replaying again is safe (events already stored count as duplicates)'));
        },
      );
    },
  });
}

function checkReplayHeaders(deps: DeadLetterRouteDependencies, contentType: string, contentEncoding: string, contentLength: number | null): Problem | null {
  if (deps.isDraining()) return { code: 'ERR_INGEST_DRAINING', parameter: null, message: 'Floodgate is shutting down; replay on another node or later' };
  if (bodyFormatOf(contentType) !== 'json') return { code: 'ERR_INGEST_UNSUPPORTED_MEDIA_TYPE', parameter: null, message: 'the replay body must be application/json' };
  if (contentEncoding !== '' && contentEncoding.toLowerCase() !== 'identity') return { code: 'ERR_INGEST_UNSUPPORTED_ENCODING', parameter: null, message: 'the replay body must not be compressed' };
  if (contentLength === -1) return { ...notDecimalLength, parameter: null };
  if (contentLength !== null && contentLength > replayBodyBytesMax) {
    return { code: 'ERR_INGEST_BODY_TOO_LARGE', parameter: null, message: `the replay body may hold at most ${replayBodyBytesMax} bytes` };
  }
  return null;
}

// Replay: the work -------------------------------------------------------------------------

export type ReplayOutcome = 'committed' | 'duplicate' | 'rejected' | 'dead_lettered' | 'failed' | 'not_found' | 'already_replayed';

export interface ReplayResult {
  readonly id: string;
  readonly outcome: ReplayOutcome;
  readonly eventId: string | null;
  readonly error?: { readonly code: ErrorCode; readonly field: string | null; readonly message: string };
}

export interface ReplayReport {
  readonly results: readonly ReplayResult[];
  /** Dead letters found by the new rows the sink wrote and folded back into their old rows. */
  readonly folded: number;
  /** `all` only: where the next call continues, or null when nothing is left. */
  readonly nextCursor: string | null;
}

/** Runs one replay call end to end; throws only when the dead_letters table cannot be used. */
export async function replayDeadLetters(deps: Pick<DeadLetterRouteDependencies, 'store' | 'pipeline'>, request: ReplayRequest, requestId: string): Promise<ReplayReport> {
  const { store } = deps;
  // Rows the sink writes for events refused again get ids above this one.
  const watermarkId = await store.highestId();
  const { records, notFound, nextCursor } = await recordsFor(store, request);
  const results = await runBounded(records.map((record) => () => replayOne(deps.pipeline, record, requestId)), replayConcurrencyMax);
  const idsWith = (outcome: ReplayOutcome) => results.filter((result) => result.outcome === outcome).map((result) => result.id);
  await store.markReplayed([...idsWith('committed'), ...idsWith('duplicate')]);
  await store.countAttempt(idsWith('rejected'));
  const failedAgain = new Set(idsWith('dead_lettered'));
  const folded = await store.foldFailedAgain(records.filter((record) => failedAgain.has(record.id)), watermarkId);
  const missing = notFound.map((id): ReplayResult => ({ id, outcome: 'not_found', eventId: null }));
  return { results: [...results, ...missing], folded, nextCursor };
}

async function recordsFor(store: DeadLetterStore, request: ReplayRequest): Promise<{ records: readonly DeadLetterRecord[]; notFound: string[]; nextCursor: string | null }> {
  if (request.kind === 'all') {
    const page = await store.fetchReplayPage(request.afterId, request.reasonCode, request.limit);
    return { records: page.records, notFound: [], nextCursor: page.nextCursor };
  }
  const records = await store.fetchByIds(request.ids);
  const found = new Set(records.map((record) => record.id));
  return { records, notFound: request.ids.filter((id) => !found.has(id)), nextCursor: null };
}

/** Runs the tasks with at most `concurrency` pending at once; results keep the tasks' order. */
async function runBounded<T>(tasks: ReadonlyArray<() => Promise<T>>, concurrency: number): Promise<T[]> {
  const results = new Array<T>(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await (tasks[index] as () => Promise<T>)();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker));
  return results;
}

async function replayOne(pipeline: IngestPipeline, record: DeadLetterRecord, requestId: string): Promise<ReplayResult> {
  const base = { id: record.id, eventId: record.eventId };
  if (record.replayedAt !== null) return { ...base, outcome: 'already_replayed' };
  const replay = replayItemOf(record.payload);
  if (!replay.ok) return { ...base, outcome: 'rejected', error: replay.error };
  for (let attempt = 0; ; attempt++) {
    const outcome = await pipeline.submitAsync({
      requestId: `${requestId}:${record.id}`,
      items: [replay.item],
      lineErrors: [],
      idempotencyKey: null,
      ackMode: 'durable',
      startedAtMs: performance.now(),
    });
    if (!outcome.ok) {
      if (outcome.code === 'ERR_INGEST_OVERLOADED' && attempt < overloadRetriesMax) {
        await new Promise((resolve) => setTimeout(resolve, replayRetryDelayMs));
        continue;
      }
      return { ...base, outcome: 'failed', error: { code: outcome.code, field: null, message: outcome.message } };
    }
    const { result } = outcome;
    if (result.accepted === 1) return { ...base, outcome: 'committed' };
    if (result.duplicates === 1) return { ...base, outcome: 'duplicate' };
    const error = result.errors[0];
    if (error === undefined) return { ...base, outcome: 'failed', error: { code: 'ERR_INTERNAL', field: null, message: 'the replay ended without an outcome' } };
    const detail = { code: error.code, field: error.field, message: error.message };
    if (error.code === 'ERR_EVENT_DEAD_LETTERED') return { ...base, outcome: 'dead_lettered', error: detail };
    if (error.code === 'ERR_EVENT_WRITE_FAILED') return { ...base, outcome: 'failed', error: detail };
    return { ...base, outcome: 'rejected', error: detail };
  }
}

/** The answer body: counts per outcome, then one entry per dead letter. */
export function replayBody(requestId: string, report: ReplayReport, request: ReplayRequest): Record<string, unknown> {
  const count = (outcome: ReplayOutcome) => report.results.filter((result) => result.outcome === outcome).length;
  const counts = {
    committed: count('committed'),
    duplicates: count('duplicate'),
    rejected: count('rejected'),
    dead_lettered: count('dead_lettered'),
    failed: count('failed'),
    not_found: count('not_found'),
    already_replayed: count('already_replayed'),
  };
  const replayed = counts.committed + counts.duplicates + counts.rejected + counts.dead_lettered + counts.failed;
  const results = report.results.map((result) => ({
    id: idForJson(result.id),
    outcome: result.outcome,
    event_id: result.eventId,
    ...(result.error === undefined ? {} : { error: result.error }),
  }));
  const paging = request.kind === 'all' ? { more: report.nextCursor !== null, next_cursor: report.nextCursor } : {};
  return { request_id: requestId, replayed, ...counts, ...paging, results };
}
