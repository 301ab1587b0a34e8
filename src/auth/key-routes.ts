/**
 * Key management over HTTP (admin scope; the guard checks it before these run):
 *
 *   POST   /v1/keys        {"name": "…", "scopes": ["ingest"], "events_per_s"?: N, "burst_events"?: N}
 *                           → 201 {id, key, name, scopes, events_per_s, burst_events, …}
 *   GET    /v1/keys        → 200 {keys: [...]}   (never a key or a hash)
 *   DELETE /v1/keys/:id    → 200 {id, …, revoked_at}
 *
 * The key is shown once, in the 201 answer. After a change the local key cache is
 * refreshed before the answer, so this node applies it at once; the others within a
 * refresh interval.
 */
import type { Logger } from '../log';
import { startAdminCall, type AdminCall } from '../ingress/admin-call';
import { reply } from '../ingress/http-reply';
import type { UwsHttpRequest, UwsHttpResponse } from '../ingress/uws';
import { parseKeyLimit } from '../limits/key-limit';
import { auditLog, type Actor } from './audit';
import type { GuardedHandler } from './guard';
import type { KeyCache } from './key-cache';
import { generateKey, hashKey, keyNameProblem, parseScopes } from './key-format';
import { keyItemOf, type KeyStore } from './key-store';

export interface KeyRouteDependencies {
  readonly store: KeyStore;
  readonly cache: KeyCache;
  readonly log: Logger;
  readonly bodyTimeoutMs: number;
}

/** `{name, scopes}` is a few hundred bytes; anything larger is not a key request. */
export const keyBodyBytesMax = 16 * 1024;

export interface KeyRoutes {
  readonly create: GuardedHandler;
  readonly list: GuardedHandler;
  readonly revoke: GuardedHandler;
}

export function keyRoutes(deps: KeyRouteDependencies): KeyRoutes {
  return {
    create: (res, req, caller = unknownCaller) => handleCreate(deps, res, req, caller),
    list: (res, req) => handleList(deps, res, req),
    revoke: (res, req, caller = unknownCaller) => handleRevoke(deps, res, req, caller),
  };
}

const createFields: readonly string[] = ['name', 'scopes', 'events_per_s', 'burst_events'];

const unknownCaller: Actor = Object.freeze({ keyId: null, keyName: null, address: '' });

function unavailable(deps: KeyRouteDependencies, call: AdminCall) {
  return (error: unknown): void => {
    deps.log.error({ err: error, requestId: call.requestId }, 'api_keys could not be read or updated');
    call.fail('ERR_KEY_UNAVAILABLE', 'the api_keys table could not be read or updated; retry');
  };
}

function handleCreate(deps: KeyRouteDependencies, res: UwsHttpResponse, req: UwsHttpRequest, caller: Actor): void {
  const call = startAdminCall(res, req);
  const { requestId, fail } = call;
  call.readBody({ bytesMax: keyBodyBytesMax, timeoutMs: deps.bodyTimeoutMs }, (text) => {
    let body: { name?: unknown; scopes?: unknown; events_per_s?: unknown; burst_events?: unknown };
    try {
      body = JSON.parse(text);
    } catch {
      return fail('ERR_KEY_BAD_REQUEST', 'the body is not valid JSON');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return fail('ERR_KEY_BAD_REQUEST', 'the body must be an object {"name": …, "scopes": [...]}');
    const unknown = Object.keys(body).find((field) => !createFields.includes(field));
    if (unknown !== undefined) return fail('ERR_KEY_BAD_REQUEST', `unknown field "${unknown.slice(0, 32)}"; known: ${createFields.join(', ')}`);
    const nameProblem = keyNameProblem(body.name);
    if (nameProblem !== null) return fail('ERR_KEY_BAD_REQUEST', nameProblem);
    const scopes = Array.isArray(body.scopes) ? parseScopes(body.scopes) : { ok: false as const, message: 'scopes must be an array such as ["ingest"]' };
    if (!scopes.ok) return fail('ERR_KEY_BAD_REQUEST', scopes.message);
    const limit = parseKeyLimit(body.events_per_s, body.burst_events, ['events_per_s', 'burst_events'], 'json');
    if (!limit.ok) return fail('ERR_KEY_BAD_REQUEST', limit.message);
    const key = generateKey();
    deps.store
      .create(body.name as string, scopes.scopes, hashKey(key), limit.limit)
      .then(async (record) => {
        const limits = { events_per_s: record.eventsPerS, burst_events: record.burstEvents };
        auditLog(deps.log, 'key.create', caller, { target_key_id: record.id, target_key_name: record.name, scopes: record.scopes, ...limits });
        await deps.cache.refresh();
        if (!call.aborted()) reply(res, 201, requestId, { ...keyItemOf(record), key });
      })
      .catch(unavailable(deps, call));
  });
}

function handleList(deps: KeyRouteDependencies, res: UwsHttpResponse, req: UwsHttpRequest): void {
  const call = startAdminCall(res, req);
  deps.store.list().then((records) => {
    if (!call.aborted()) reply(res, 200, call.requestId, { keys: records.map(keyItemOf) });
  }, unavailable(deps, call));
}

function handleRevoke(deps: KeyRouteDependencies, res: UwsHttpResponse, req: UwsHttpRequest, caller: Actor): void {
  const call = startAdminCall(res, req);
  const { requestId, fail } = call;
  const id = req.getParameter(0) ?? '';
  if (!isKeyId(id)) return fail('ERR_KEY_BAD_REQUEST', 'the key id must be a positive decimal integer');
  deps.store
    .revoke(id)
    .then(async (record) => {
      if (record === null) return fail('ERR_KEY_NOT_FOUND', `no API key has id ${id}`);
      auditLog(deps.log, 'key.revoke', caller, { target_key_id: record.id, target_key_name: record.name });
      await deps.cache.refresh();
      if (!call.aborted()) reply(res, 200, requestId, keyItemOf(record));
    })
    .catch(unavailable(deps, call));
}

/** Ids are bigint identities: 1 to 19 digits, no leading zero, within int8. */
export function isKeyId(text: string): boolean {
  return /^[1-9][0-9]{0,18}$/.test(text) && BigInt(text) <= 9_223_372_036_854_775_807n;
}
