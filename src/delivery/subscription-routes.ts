/**
 * Subscription management over HTTP (admin scope; the guard checks it before these run),
 * the same operations as `floodgate subscriptions` (./cli-subscriptions.ts):
 *
 *   POST   /v1/subscriptions                    {"url", "event_types"?, …} → 201 (with the secret)
 *   GET    /v1/subscriptions?after=&limit=      → 200 {subscriptions: [...], next_after} (no secrets)
 *   GET    /v1/subscriptions/:id                → 200 (with the current secret)
 *   PATCH  /v1/subscriptions/:id                only the given fields; null clears → 200
 *   DELETE /v1/subscriptions/:id                → 200 {id, outcome: "deleted", deleted_at, discarded_deliveries}
 *   POST   /v1/subscriptions/:id/rotate-secret  {"secret"?} → 200 (with the new secret)
 *
 * A body problem is answered with `error.field`, a path or query problem with
 * `error.parameter`, so a client learns what to fix. The URL passes the SSRF guard twice
 * here: its literal form, then every address its host resolves to (before the write, so
 * no lock waits on DNS).
 */
import { errorCatalogue, type ErrorCode } from '../errors';
import type { Logger } from '../log';
import { auditLog, type Actor } from '../auth/audit';
import type { GuardedHandler } from '../auth/guard';
import { startAdminCall, type AdminCall } from '../ingress/admin-call';
import { reply } from '../ingress/http-reply';
import type { UwsHttpRequest, UwsHttpResponse } from '../ingress/uws';
import {
  generateSecret, isSubscriptionId, listLimitDefault, listLimitMax, parseSubscriptionBody, refusedDestination,
  secretProblem, subscriptionItemOf, type SubscriptionStore,
} from './subscription-store';

export interface SubscriptionRouteDependencies {
  readonly store: SubscriptionStore;
  readonly log: Logger;
  readonly bodyTimeoutMs: number;
  /** FLOODGATE_DELIVERY_ALLOW_PRIVATE_NETWORKS: lifts the SSRF guard (tests, internal receivers). */
  readonly allowPrivateNetworks: boolean;
  /** FLOODGATE_DELIVERY_SECRET_GRACE_MS: how long a rotated-out secret keeps signing. */
  readonly secretGraceMs: number;
}

/** A full subscription (100 patterns of 128 characters, escaped) fits well within this. */
export const subscriptionBodyBytesMax = 64 * 1024;

export interface SubscriptionRoutes {
  readonly create: GuardedHandler;
  readonly list: GuardedHandler;
  readonly get: GuardedHandler;
  readonly update: GuardedHandler;
  readonly remove: GuardedHandler;
  readonly rotateSecret: GuardedHandler;
}

const unknownCaller: Actor = Object.freeze({ keyId: null, keyName: null, address: '' });

export function subscriptionRoutes(deps: SubscriptionRouteDependencies): SubscriptionRoutes {
  return {
    create: (res, req, caller = unknownCaller) => handleCreate(deps, res, req, caller),
    list: (res, req) => handleList(deps, res, req),
    get: (res, req) => handleGet(deps, res, req),
    update: (res, req, caller = unknownCaller) => handleUpdate(deps, res, req, caller),
    remove: (res, req, caller = unknownCaller) => handleRemove(deps, res, req, caller),
    rotateSecret: (res, req, caller = unknownCaller) => handleRotate(deps, res, req, caller),
  };
}

interface Problem {
  readonly code: ErrorCode;
  readonly message: string;
  /** A body field (null: the body as a whole). */
  readonly field?: string | null;
  /** A path or query parameter. */
  readonly parameter?: string;
}

function refuse(res: UwsHttpResponse, call: AdminCall, problem: Problem): void {
  if (call.aborted()) return;
  const { code, message, ...where } = problem;
  reply(res, errorCatalogue[code].status, call.requestId, { request_id: call.requestId, error: { code, ...where, message } });
}

function unavailable(deps: SubscriptionRouteDependencies, call: AdminCall) {
  return (error: unknown): void => {
    deps.log.error({ err: error, requestId: call.requestId }, 'subscriptions could not be read or updated');
    call.fail('ERR_DELIVERY_UNAVAILABLE', 'the subscriptions table could not be read or updated; retry');
  };
}

/** The path's id, or a refusal naming it; read while `req` is still valid. */
function idOf(req: UwsHttpRequest): { ok: true; id: string } | { ok: false; problem: Problem } {
  const id = req.getParameter(0) ?? '';
  if (isSubscriptionId(id)) return { ok: true, id };
  return { ok: false, problem: { code: 'ERR_SUBSCRIPTION_BAD_REQUEST', parameter: 'id', message: 'the subscription id must be a positive decimal integer' } };
}

function notFound(id: string): Problem {
  return { code: 'ERR_SUBSCRIPTION_NOT_FOUND', parameter: 'id', message: `no subscription has id ${id}` };
}

/** The body as JSON, or a refusal; an empty body reads as `{}` where that is allowed. */
function jsonOf(text: string, emptyAllowed: boolean): { ok: true; body: unknown } | { ok: false; problem: Problem } {
  if (emptyAllowed && text.trim() === '') return { ok: true, body: {} };
  try {
    return { ok: true, body: JSON.parse(text) };
  } catch {
    return { ok: false, problem: { code: 'ERR_SUBSCRIPTION_BAD_REQUEST', field: null, message: 'the body is not valid JSON' } };
  }
}

/** Only the scheme, host and port go into audit lines: a URL's path or query may carry a token. */
function originOf(url: string): string {
  return new URL(url).origin;
}

function handleCreate(deps: SubscriptionRouteDependencies, res: UwsHttpResponse, req: UwsHttpRequest, caller: Actor): void {
  const call = startAdminCall(res, req);
  call.readBody({ bytesMax: subscriptionBodyBytesMax, timeoutMs: deps.bodyTimeoutMs }, (text) => {
    const json = jsonOf(text, false);
    if (!json.ok) return refuse(res, call, json.problem);
    const parsed = parseSubscriptionBody(json.body, 'create', deps.allowPrivateNetworks);
    if (!parsed.ok) return refuse(res, call, parsed.problem);
    const url = parsed.fields.url as string;
    refusedDestination(url, deps.allowPrivateNetworks).then(async (refused) => {
      if (refused !== null) return refuse(res, call, refused);
      const created = await deps.store.create({ ...parsed.fields, url }, parsed.secret ?? generateSecret());
      auditLog(deps.log, 'subscription.created', caller, { target_subscription_id: created.id, origin: originOf(created.url), enabled: created.enabled });
      if (!call.aborted()) reply(res, 201, call.requestId, subscriptionItemOf(created, 'full'));
    }).catch(unavailable(deps, call));
  });
}

const listParameters: readonly string[] = ['after', 'limit'];

function handleList(deps: SubscriptionRouteDependencies, res: UwsHttpResponse, req: UwsHttpRequest): void {
  const call = startAdminCall(res, req);
  const query = parseListQuery(req.getQuery() ?? '');
  if (!query.ok) return refuse(res, call, query.problem);
  deps.store.list(query.after, query.limit).then(({ subscriptions, more }) => {
    const next = more ? subscriptions[subscriptions.length - 1]?.id ?? null : null;
    if (!call.aborted()) reply(res, 200, call.requestId, { subscriptions: subscriptions.map((subscription) => subscriptionItemOf(subscription)), next_after: next });
  }, unavailable(deps, call));
}

/** `after` (an id: the page starts past it) and `limit`; unknown or repeated names are refused. */
export function parseListQuery(queryString: string): { ok: true; after: string | null; limit: number } | { ok: false; problem: Problem } {
  const bad = (parameter: string, message: string) => ({ ok: false as const, problem: { code: 'ERR_SUBSCRIPTION_BAD_REQUEST' as const, parameter, message } });
  const values = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(queryString)) {
    if (!listParameters.includes(name)) return bad(name.slice(0, 64), `unknown query parameter "${name.slice(0, 64)}"; known: ${listParameters.join(', ')}`);
    if (values.has(name)) return bad(name, `${name} is given more than once`);
    values.set(name, value);
  }
  const after = values.get('after') ?? null;
  if (after !== null && !isSubscriptionId(after)) return bad('after', 'after must be a subscription id (a positive decimal integer)');
  const limitText = values.get('limit');
  const limit = limitText === undefined ? listLimitDefault : /^[0-9]{1,5}$/.test(limitText) ? Number(limitText) : Number.NaN;
  if (!(limit >= 1 && limit <= listLimitMax)) return bad('limit', `limit must be an integer from 1 to ${listLimitMax}`);
  return { ok: true, after, limit };
}

function handleGet(deps: SubscriptionRouteDependencies, res: UwsHttpResponse, req: UwsHttpRequest): void {
  const call = startAdminCall(res, req);
  const id = idOf(req);
  if (!id.ok) return refuse(res, call, id.problem);
  deps.store.get(id.id).then((subscription) => {
    if (subscription === null) return refuse(res, call, notFound(id.id));
    if (!call.aborted()) reply(res, 200, call.requestId, subscriptionItemOf(subscription, 'full'));
  }, unavailable(deps, call));
}

function handleUpdate(deps: SubscriptionRouteDependencies, res: UwsHttpResponse, req: UwsHttpRequest, caller: Actor): void {
  const call = startAdminCall(res, req);
  // Read now (req is valid only during this call), refused after the body, so the connection stays usable.
  const id = idOf(req);
  call.readBody({ bytesMax: subscriptionBodyBytesMax, timeoutMs: deps.bodyTimeoutMs }, (text) => {
    if (!id.ok) return refuse(res, call, id.problem);
    const json = jsonOf(text, false);
    if (!json.ok) return refuse(res, call, json.problem);
    const parsed = parseSubscriptionBody(json.body, 'update', deps.allowPrivateNetworks);
    if (!parsed.ok) return refuse(res, call, parsed.problem);
    const { fields } = parsed;
    const names = Object.keys(fields);
    const checkUrl = fields.url === undefined ? Promise.resolve(null) : refusedDestination(fields.url, deps.allowPrivateNetworks);
    checkUrl.then(async (refused) => {
      if (refused !== null) return refuse(res, call, refused);
      // Nothing to change: answer the subscription as it is, without taking the fan-out lock.
      const updated = names.length === 0 ? await deps.store.get(id.id) : await deps.store.update(id.id, fields);
      if (updated === null) return refuse(res, call, notFound(id.id));
      if (names.length > 0) auditLog(deps.log, 'subscription.updated', caller, { target_subscription_id: updated.id, fields: names, enabled: updated.enabled });
      if (!call.aborted()) reply(res, 200, call.requestId, subscriptionItemOf(updated, 'full'));
    }).catch(unavailable(deps, call));
  });
}

function handleRemove(deps: SubscriptionRouteDependencies, res: UwsHttpResponse, req: UwsHttpRequest, caller: Actor): void {
  const call = startAdminCall(res, req);
  const id = idOf(req);
  if (!id.ok) return refuse(res, call, id.problem);
  deps.store.remove(id.id).then((removed) => {
    if (removed === null) return refuse(res, call, notFound(id.id));
    auditLog(deps.log, 'subscription.deleted', caller, { target_subscription_id: removed.id, discarded_deliveries: removed.discarded });
    const body = { id: removed.id, outcome: 'deleted', deleted_at: removed.deletedAt.toISOString(), discarded_deliveries: removed.discarded };
    if (!call.aborted()) reply(res, 200, call.requestId, body);
  }, unavailable(deps, call));
}

function handleRotate(deps: SubscriptionRouteDependencies, res: UwsHttpResponse, req: UwsHttpRequest, caller: Actor): void {
  const call = startAdminCall(res, req);
  // Read now (req is valid only during this call), refused after the body, so the connection stays usable.
  const id = idOf(req);
  call.readBody({ bytesMax: subscriptionBodyBytesMax, timeoutMs: deps.bodyTimeoutMs }, (text) => {
    if (!id.ok) return refuse(res, call, id.problem);
    const json = jsonOf(text, true);
    if (!json.ok) return refuse(res, call, json.problem);
    const secret = parseRotateBody(json.body);
    if (!secret.ok) return refuse(res, call, secret.problem);
    deps.store.rotateSecret(id.id, secret.secret ?? generateSecret(), deps.secretGraceMs).then((rotated) => {
      if (rotated === null) return refuse(res, call, notFound(id.id));
      auditLog(deps.log, 'subscription.secret_rotated', caller, { target_subscription_id: rotated.id, secrets: rotated.secrets.length });
      if (!call.aborted()) reply(res, 200, call.requestId, subscriptionItemOf(rotated, 'full'));
    }, unavailable(deps, call));
  });
}

/** `{}` or `{"secret": "whsec_…"}` (null: generate one). */
function parseRotateBody(body: unknown): { ok: true; secret: string | null } | { ok: false; problem: Problem } {
  const bad = (field: string | null, message: string) => ({ ok: false as const, problem: { code: 'ERR_SUBSCRIPTION_BAD_REQUEST' as const, field, message } });
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return bad(null, 'the body must be a JSON object {"secret"?}, or empty');
  const unknown = Object.keys(body).find((name) => name !== 'secret');
  if (unknown !== undefined) return bad(unknown.slice(0, 64), `unknown field "${unknown.slice(0, 64)}"; known: secret`);
  const secret = (body as { secret?: unknown }).secret;
  if (secret === undefined || secret === null) return { ok: true, secret: null };
  const problem = secretProblem(secret);
  return problem === null ? { ok: true, secret: secret as string } : bad('secret', problem);
}
