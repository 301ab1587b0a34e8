/**
 * CORS for browser clients (FLOODGATE_CORS_ORIGINS): which origins may call the ingest
 * and read routes from a web page, answered in two places:
 *
 *   OPTIONS preflight ─▶ answerPreflight: 204 + Allow-Origin/-Methods/-Headers/-Max-Age
 *   any other request ─▶ the server's route wrapper calls `mark` (reads Origin once)
 *                        ─▶ reply (./http-reply.ts) writes Allow-Origin + Expose-Headers
 *
 * A preflight carries no credentials, so its routes are `open` in src/auth/route-access.ts
 * and their handler only ever answers the preflight: it never reaches a guarded handler.
 * A disallowed origin gets no CORS header at all, and the browser then withholds the
 * answer from the page. With the setting empty nothing here runs: no OPTIONS route is
 * registered (OPTIONS stays 405) and no handler is wrapped, so the hot path pays nothing.
 * Header values are built once, here; per request only the Origin text is looked up.
 */
import { requestIdOf, echoableRequestId } from './request-id';
import type { UwsHttpRequest, UwsHttpResponse } from './uws';

/** Headers a browser page may send; Authorization and X-API-Key carry the key. */
export const corsAllowHeaders = 'content-type, content-encoding, authorization, x-api-key, idempotency-key, x-request-id';
/** Answer headers a page may read besides the CORS-safelisted ones (rate-limit headers included). */
export const corsExposeHeaders = 'x-request-id, retry-after, ratelimit, ratelimit-policy';
/** How long a browser may reuse a preflight: ten minutes, so a narrowed list takes hold soon. */
export const corsMaxAgeS = 600;
const maxAgeText = String(corsMaxAgeS);

export class Cors {
  /** False when FLOODGATE_CORS_ORIGINS is empty: the server then neither wraps nor registers anything. */
  readonly enabled: boolean;
  readonly #any: boolean;
  readonly #origins: ReadonlySet<string>;

  /** `setting` as load-config leaves it: '', '*', or lower-case origins joined by commas. */
  constructor(setting: string) {
    this.enabled = setting !== '';
    this.#any = setting === '*';
    this.#origins = new Set(this.#any || !this.enabled ? [] : setting.split(','));
  }

  /** The Access-Control-Allow-Origin value for a request's Origin header, or undefined. */
  allowOriginFor(origin: string): string | undefined {
    if (origin === '') return undefined;
    if (this.#any) return '*';
    // Browsers send scheme and host in lower case; an exact match is the whole rule.
    return this.#origins.has(origin) ? origin : undefined;
  }

  /** Remembers on the response what reply() writes; called before the route's guard and handler. */
  mark(res: UwsHttpResponse, req: UwsHttpRequest): void {
    const allowOrigin = this.allowOriginFor(req.getHeader('origin'));
    if (allowOrigin !== undefined) res.corsAllowOrigin = allowOrigin;
  }

  /** The handler for `OPTIONS pattern`, precomputed for the methods that route takes. */
  preflight(methods: string): (res: UwsHttpResponse, req: UwsHttpRequest) => void {
    const allowMethods = `${methods}, OPTIONS`;
    return (res, req) => {
      const requestId = echoableRequestId(requestIdOf(req));
      const allowOrigin = req.getHeader('access-control-request-method') === '' ? undefined : this.allowOriginFor(req.getHeader('origin'));
      res.cork(() => {
        res.writeStatus('204 No Content');
        res.writeHeader('x-request-id', requestId);
        res.writeHeader('allow', allowMethods);
        if (allowOrigin !== undefined) {
          writeAllowOrigin(res, allowOrigin);
          res.writeHeader('access-control-allow-methods', allowMethods);
          res.writeHeader('access-control-allow-headers', corsAllowHeaders);
          res.writeHeader('access-control-max-age', maxAgeText);
        }
        res.end();
      });
    };
  }
}

/** Called by reply() for a marked response: the headers an actual (non-preflight) answer needs. */
export function writeCorsHeaders(res: UwsHttpResponse, allowOrigin: string): void {
  writeAllowOrigin(res, allowOrigin);
  res.writeHeader('access-control-expose-headers', corsExposeHeaders);
}

function writeAllowOrigin(res: UwsHttpResponse, allowOrigin: string): void {
  res.writeHeader('access-control-allow-origin', allowOrigin);
  // An answer naming one origin differs by Origin, which caches must know; '*' does not.
  if (allowOrigin !== '*') res.writeHeader('vary', 'origin');
}
