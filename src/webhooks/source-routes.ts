/**
 * Webhook-source management over HTTP (admin scope; the guard checks it before these run),
 * the same operations as `floodgate webhook-sources` (./cli-sources.ts):
 *
 *   POST   /v1/webhook-sources         {"name", "scheme", "secrets": [...], "header"?}
 *                                      → 201 added, or 200 replaced (same name: how secrets rotate)
 *   GET    /v1/webhook-sources         → 200 {sources: [{name, scheme, secrets: <count>, header}]}
 *   DELETE /v1/webhook-sources/:name   → 200 {name, outcome: "removed"}, 404 when absent
 *
 * Secrets go in and never come out: answers, error messages and audit lines carry their
 * count only (sourceProblems names a bad secret by its position). After a change this
 * node's source cache reloads before the answer, so the source verifies at once here; the
 * other nodes follow within the cache's refresh interval.
 */
import type { Logger } from '../log';
import { auditLog, type Actor } from '../auth/audit';
import type { GuardedHandler } from '../auth/guard';
import { startAdminCall, type AdminCall } from '../ingress/admin-call';
import { reply } from '../ingress/http-reply';
import type { UwsHttpRequest, UwsHttpResponse } from '../ingress/uws';
import type { SchemeName } from './schemes';
import type { WebhookSourceCache } from './source-cache';
import { sourceNamePattern, sourceProblems, type WebhookSource, type WebhookSourceStore } from './source-store';

export interface SourceRouteDependencies {
  readonly store: WebhookSourceStore;
  readonly cache: WebhookSourceCache;
  readonly log: Logger;
  readonly bodyTimeoutMs: number;
}

/** Eight secrets of at most 1024 characters each, JSON-escaped, fit well within this. */
export const sourceBodyBytesMax = 64 * 1024;

export interface SourceRoutes {
  readonly put: GuardedHandler;
  readonly list: GuardedHandler;
  readonly remove: GuardedHandler;
}

const unknownCaller: Actor = Object.freeze({ keyId: null, keyName: null, address: '' });
const knownFields = new Set(['name', 'scheme', 'secrets', 'header']);

export function sourceRoutes(deps: SourceRouteDependencies): SourceRoutes {
  return {
    put: (res, req, caller = unknownCaller) => handlePut(deps, res, req, caller),
    list: (res, req) => handleList(deps, res, req),
    remove: (res, req, caller = unknownCaller) => handleRemove(deps, res, req, caller),
  };
}

/** What answers show of a source: never its secrets, only how many there are. */
export function sourceItemOf(source: Pick<WebhookSource, 'name' | 'scheme' | 'secrets' | 'signatureHeader'>) {
  return { name: source.name, scheme: source.scheme, secrets: source.secrets.length, header: source.signatureHeader };
}

type Parsed = { ok: true; name: string; scheme: SchemeName; secrets: string[]; header: string | null } | { ok: false; message: string };

/** The body's fields, checked with the CLI's own rules (sourceProblems). */
export function parseSourceBody(text: string): Parsed {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return { ok: false, message: 'the body is not valid JSON' };
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { ok: false, message: 'the body must be an object {"name", "scheme", "secrets": [...], "header"?}' };
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).find((field) => !knownFields.has(field));
  if (unknown !== undefined) return { ok: false, message: `unknown field "${unknown.slice(0, 32)}"; known: name, scheme, secrets, header` };
  if (typeof fields.name !== 'string') return { ok: false, message: 'name must be a string' };
  if (typeof fields.scheme !== 'string') return { ok: false, message: 'scheme must be a string' };
  if (!Array.isArray(fields.secrets) || !fields.secrets.every((secret) => typeof secret === 'string')) return { ok: false, message: 'secrets must be an array of strings' };
  if (fields.header !== undefined && fields.header !== null && typeof fields.header !== 'string') return { ok: false, message: 'header must be a string' };
  const header = typeof fields.header === 'string' ? fields.header : null;
  const secrets = fields.secrets as string[];
  const problems = sourceProblems(fields.name, fields.scheme, secrets, header);
  if (problems.length > 0) return { ok: false, message: problems.join('; ') };
  return { ok: true, name: fields.name, scheme: fields.scheme as SchemeName, secrets, header };
}

function unavailable(deps: SourceRouteDependencies, call: AdminCall) {
  return (error: unknown): void => {
    deps.log.error({ err: error, requestId: call.requestId }, 'webhook_sources could not be read or updated');
    call.fail('ERR_WEBHOOK_SOURCE_UNAVAILABLE', 'the webhook_sources table could not be read or updated; retry');
  };
}

function handlePut(deps: SourceRouteDependencies, res: UwsHttpResponse, req: UwsHttpRequest, caller: Actor): void {
  const call = startAdminCall(res, req);
  const { requestId, fail } = call;
  call.readBody({ bytesMax: sourceBodyBytesMax, timeoutMs: deps.bodyTimeoutMs }, (text) => {
    const parsed = parseSourceBody(text);
    if (!parsed.ok) return fail('ERR_WEBHOOK_SOURCE_BAD_REQUEST', parsed.message);
    const source = { name: parsed.name, scheme: parsed.scheme, secrets: parsed.secrets, signatureHeader: parsed.header };
    deps.store
      .put(source)
      .then(async (added) => {
        const outcome = added ? 'added' : 'replaced';
        auditLog(deps.log, `webhook_source.${outcome}`, caller, { target_source: source.name, scheme: source.scheme, secrets: source.secrets.length });
        await deps.cache.refresh();
        const item = sourceItemOf(deps.cache.get(source.name) ?? { ...source, signatureHeader: source.signatureHeader ?? '' });
        if (!call.aborted()) reply(res, added ? 201 : 200, requestId, { ...item, outcome, path: `/v1/webhooks/${source.name}` });
      })
      .catch(unavailable(deps, call));
  });
}

function handleList(deps: SourceRouteDependencies, res: UwsHttpResponse, req: UwsHttpRequest): void {
  const call = startAdminCall(res, req);
  deps.store.list().then((sources) => {
    if (!call.aborted()) reply(res, 200, call.requestId, { sources: sources.map(sourceItemOf) });
  }, unavailable(deps, call));
}

function handleRemove(deps: SourceRouteDependencies, res: UwsHttpResponse, req: UwsHttpRequest, caller: Actor): void {
  const call = startAdminCall(res, req);
  const { requestId, fail } = call;
  const name = req.getParameter(0) ?? '';
  // Names are plain ASCII, so a percent-encoded or otherwise odd segment cannot name one.
  if (!sourceNamePattern.test(name)) return fail('ERR_WEBHOOK_SOURCE_BAD_REQUEST', 'the name must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit');
  deps.store
    .remove(name)
    .then(async (removed) => {
      if (!removed) return fail('ERR_WEBHOOK_SOURCE_UNKNOWN', `no webhook source named "${name}"`);
      auditLog(deps.log, 'webhook_source.removed', caller, { target_source: name });
      await deps.cache.refresh();
      if (!call.aborted()) reply(res, 200, requestId, { name, outcome: 'removed' });
    })
    .catch(unavailable(deps, call));
}
