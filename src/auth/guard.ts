/**
 * The guard every route goes through: src/ingress/server.ts wraps each handler it
 * registers with `wrap`, which looks the route up in ./route-access.ts and, for a guarded
 * route, checks the request's headers before the handler runs, so a refused request never
 * has a byte of its body read (a body still arriving is drained, then the connection
 * closed: src/ingress/body-drain.ts).
 *
 *   request ─▶ route's access ─┬─ open ───────────────────────────────────▶ handler
 *                              ├─ metrics: no token set, or Bearer token ─▶ handler
 *                              └─ scope: credential ─▶ key cache ─▶ scope ─▶ handler(…, caller)
 *                                            └─ none: auto posture, no key yet: ingest open,
 *                                                     read/admin for loopback clients only
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AuthMode } from '../config/config';
import type { ErrorCode } from '../errors';
import type { Logger } from '../log';
import { drainBodyThenAnswer } from '../ingress/body-drain';
import { declaredLengthOf } from '../ingress/body-reader';
import { replyError } from '../ingress/http-reply';
import { requestIdOf } from '../ingress/request-id';
import type { UwsHttpRequest, UwsHttpResponse } from '../ingress/uws';
import { auditLog, type Actor } from './audit';
import { bearerTokenOf, readCredential, type Credential, type CredentialHeaders } from './credentials';
import type { ActiveKey } from './key-cache';
import { isLoopbackAddress } from './loopback';
import { accessOf, type RouteAccess } from './route-access';

export type AuthErrorCode = Extract<ErrorCode, 'ERR_AUTH_REQUIRED' | 'ERR_AUTH_INVALID' | 'ERR_AUTH_SCOPE'>;

export type Decision =
  | { readonly ok: true; readonly key: ActiveKey | null }
  | { readonly ok: false; readonly code: AuthErrorCode; readonly message: string };

export interface GuardState {
  readonly mode: AuthMode;
  readonly keysExist: boolean;
  lookup(key: string): ActiveKey | undefined;
}

/** The decision for a scoped route, from the credential alone (plus, lazily, the peer). */
export function decideScope(scope: string, credential: Credential, state: GuardState, isLoopback: () => boolean): Decision {
  if (credential.kind === 'invalid') return { ok: false, code: 'ERR_AUTH_INVALID', message: credential.message };
  if (credential.kind === 'key') {
    const key = state.lookup(credential.key);
    if (key === undefined) return { ok: false, code: 'ERR_AUTH_INVALID', message: 'the API key is unknown or revoked' };
    if (!key.scopes.has(scope as never)) return { ok: false, code: 'ERR_AUTH_SCOPE', message: `the API key lacks the ${scope} scope this route needs` };
    return { ok: true, key };
  }
  if (state.mode === 'required' || state.keysExist) return { ok: false, code: 'ERR_AUTH_REQUIRED', message: `this route needs an API key with the ${scope} scope` };
  // auto posture while no key exists: ingest stays open, read and admin stay on this machine.
  if (scope === 'ingest' || isLoopback()) return { ok: true, key: null };
  return { ok: false, code: 'ERR_AUTH_REQUIRED', message: `no API key exists yet: ${scope} routes answer loopback clients only until one is created` };
}

/** Constant-time comparison of the presented metrics token with the configured one. */
export function metricsTokenMatches(presented: string | null, token: string): boolean {
  if (presented === null) return false;
  // Hashing first gives equal lengths, which timingSafeEqual needs, and hides the length.
  return timingSafeEqual(createHash('sha256').update(presented).digest(), createHash('sha256').update(token).digest());
}

/** uWS route handlers take (res, req); a WebSocket upgrade handler also a socket context, passed through. */
type Handler = (res: UwsHttpResponse, req: UwsHttpRequest, context?: unknown) => void;
/**
 * What a guarded handler learns: the key that called (null when the route was open to
 * it) and its address. Optional in the type only so that the handler fits uWS's own
 * signature; the guard always passes it to scoped routes.
 */
export type GuardedHandler = (res: UwsHttpResponse, req: UwsHttpRequest, caller?: Actor, context?: unknown) => void;

export interface RouteGuardOptions {
  readonly mode: AuthMode;
  readonly metricsToken: string | null;
  /** Read on every guarded request: one object made at start-up, its fields live. */
  readonly state: GuardState;
  readonly log: Logger;
}

const wwwAuthenticate = 'Bearer realm="floodgate", Basic realm="floodgate"';

export class RouteGuard {
  readonly #options: RouteGuardOptions;

  constructor(options: RouteGuardOptions) {
    this.#options = options;
  }

  /** The handler to register for this route; throws for a route without a row in route-access.ts. */
  wrap(method: string, pattern: string, handler: GuardedHandler): Handler {
    const access = accessOf(method, pattern);
    if (access === undefined) throw new Error(`route ${method} ${pattern} has no access rule: add it to src/auth/route-access.ts`);
    if (access.kind === 'open' || access.kind === 'signature') return handler as Handler;
    return (res, req, context) => this.#guarded(access, res, req, handler, context);
  }

  #guarded(access: Exclude<RouteAccess, { kind: 'open' | 'signature' }>, res: UwsHttpResponse, req: UwsHttpRequest, handler: GuardedHandler, context: unknown): void {
    const headers = credentialHeadersOf(req);
    let address: string | null = null;
    const addressOf = (): string => (address ??= addressText(res));
    let decision: Decision;
    if (access.kind === 'metrics') {
      const token = this.#options.metricsToken;
      decision = token === null || metricsTokenMatches(bearerTokenOf(headers), token)
        ? { ok: true, key: null }
        : { ok: false, code: headers.authorization.length + headers.apiKey.length === 0 ? 'ERR_AUTH_REQUIRED' : 'ERR_AUTH_INVALID', message: 'GET /metrics needs Authorization: Bearer <FLOODGATE_METRICS_TOKEN>' };
    } else {
      decision = decideScope(access.scope, readCredential(headers), this.#options.state, () => isLoopbackAddress(addressOf()));
    }
    if (!decision.ok) {
      refuse(res, req, decision);
      return;
    }
    // The address costs a copy out of uWS: taken for admin calls (audit lines) only, not for ingest.
    const isAdmin = access.kind === 'scope' && access.scope === 'admin';
    const key = decision.key;
    // The key's rate limit rides along for the ingest handler (src/limits): built per key-cache refresh, not here.
    const caller: Actor = { keyId: key?.id ?? null, keyName: key?.name ?? null, address: isAdmin ? addressOf() : '', rateLimit: key?.rateLimit ?? null };
    if (access.kind === 'scope' && access.audit !== undefined) auditLog(this.#options.log, access.audit, caller);
    handler(res, req, caller, context);
  }
}

/**
 * Every Authorization and X-API-Key value, as often as each was sent (uWS getHeader sees
 * only the first). A WebSocket upgrade may carry the key as a `floodgate.key.<key>` entry
 * of Sec-WebSocket-Protocol instead, the one header a browser's WebSocket can set; it
 * counts as an X-API-Key (src/stream/stream-route.ts never echoes that entry back).
 */
function credentialHeadersOf(req: UwsHttpRequest): CredentialHeaders {
  const authorization: string[] = [];
  const apiKey: string[] = [];
  req.forEach((name, value) => {
    if (name === 'authorization') authorization.push(value);
    else if (name === 'x-api-key') apiKey.push(value);
    else if (name === 'sec-websocket-protocol') apiKey.push(...subprotocolKeysOf(value));
  });
  return { authorization, apiKey };
}

export const subprotocolKeyPrefix = 'floodgate.key.';

function subprotocolKeysOf(value: string): string[] {
  return value.split(',').map((entry) => entry.trim()).filter((entry) => entry.startsWith(subprotocolKeyPrefix)).map((entry) => entry.slice(subprotocolKeyPrefix.length));
}

function addressText(res: UwsHttpResponse): string {
  return Buffer.from(res.getRemoteAddressAsText()).toString('latin1');
}

/**
 * Answers 401/403 on the headers alone. A body on its way is drained first (bounded), so
 * that the client reads the answer instead of a reset, and the connection is then closed.
 */
function refuse(res: UwsHttpResponse, req: UwsHttpRequest, decision: Extract<Decision, { ok: false }>): void {
  const requestId = requestIdOf(req);
  const declared = declaredLengthOf(req);
  const hasBody = req.getHeader('transfer-encoding') !== '' || (declared !== null && declared !== 0);
  const headers: Record<string, string> = decision.code === 'ERR_AUTH_SCOPE' ? {} : { 'www-authenticate': wwwAuthenticate };
  let aborted = false;
  let cancel: () => void = () => undefined;
  res.onAborted(() => {
    aborted = true;
    cancel();
  });
  const answer = (): void => {
    if (!aborted) replyError(res, requestId, decision.code, decision.message, { headers, close: hasBody });
  };
  if (!hasBody) {
    answer();
    return;
  }
  cancel = drainBodyThenAnswer(res, declared === -1 ? null : declared, answer);
}
