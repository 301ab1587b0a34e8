/**
 * The HTTP front end: uWebSockets.js routes on the main thread.
 *
 *   POST /v1/events          one event          ┐
 *   POST /v1/events/bulk     many events        ├─ src/ingress/ingest-handler.ts
 *   POST /webhook/events     Day-15 single      │
 *   POST /webhook/batch      Day-15 batch       │
 *   POST /v1/batch, /v1/track, /v1/identify, …   │ Segment-spec calls (src/segment)
 *                                               ┘
 *   GET  /healthz  /readyz  /health             liveness, readiness, Day-15 health
 *   GET  /metrics  /v1/stats  /                 Prometheus, stats JSON, live dashboard (src/metrics)
 *   GET  /v1/dead-letters, POST …/replay         src/query/dead-letter-routes.ts
 *   POST /v1/webhooks/{name}                      signed webhooks (src/webhooks/webhook-handler.ts)
 *   POST/GET /v1/keys, DELETE /v1/keys/:id       src/auth/key-routes.ts
 *   POST/GET /v1/webhook-sources, DELETE …/:name  src/webhooks/source-routes.ts
 *   /v1/subscriptions[/:id[/rotate-secret]]      src/delivery/subscription-routes.ts
 *   GET  /v1/analytics/*, /v1/events…             the read API (src/query/read-routes.ts)
 *   GET  /v1/deliveries…, POST …/replay, GET …/health   inspection, replay, health (src/delivery/delivery-routes.ts)
 *   GET  /v1/events/stream                        WebSocket batches with acks (src/stream/stream-route.ts)
 *
 * Every route is registered through the guard (src/auth/guard.ts), which checks the
 * route's access (src/auth/route-access.ts) on the headers before the handler runs and
 * refuses to register a route that has no access rule.
 *
 * Stopping happens in two steps, as uWS allows: `stopListening` closes the listen socket
 * (new connections are refused, keep-alive ones stay so pending answers can be sent),
 * then `close` shuts every connection once the drain is over.
 */
import type { Actor } from '../auth/audit';
import type { RouteGuard } from '../auth/guard';
import type { KeyRoutes } from '../auth/key-routes';
import type { SourceRoutes } from '../webhooks/source-routes';
import type { SubscriptionRoutes } from '../delivery/subscription-routes';
import { FloodgateError } from '../errors';
import type { DeadLetterStore } from '../query/dead-letters';
import type { ReadRoute } from '../query/read-route';
import type { DeliveryRoute } from '../delivery/delivery-routes';
import { streamPath, type StreamRoute } from '../stream/stream-route';
import { Cors } from './cors';
import { routeDeadLetters } from '../query/dead-letter-routes';
import { reply, replyError } from './http-reply';
import { requestIdOf } from './request-id';
import { handleIngest, type IngestDependencies, type IngestRoute } from './ingest-handler';
import { segmentCalls } from '../segment/segment-mapping';
import type { UwsApp, UwsHttpRequest, UwsHttpResponse, UwsListenSocket, UwsModule } from './uws';

type Handler = (res: UwsHttpResponse, req: UwsHttpRequest) => void;

export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: Record<string, { ok: boolean; detail: string }>;
}

export interface ServerDependencies extends IngestDependencies {
  readonly uws: UwsModule;
  readonly readiness: () => ReadinessReport;
  readonly healthDetails: () => Record<string, unknown>;
  /** GET /v1/dead-letters and POST /v1/dead-letters/replay; absent means those routes answer 404. */
  readonly deadLetters?: { readonly store: DeadLetterStore };
  /** GET /metrics, /v1/stats and / (the dashboard); absent means those routes answer 404. */
  readonly observability?: ObservabilityEndpoints;
  /** POST /v1/webhooks/{name} (src/webhooks); absent means that route answers 404. */
  readonly signedWebhooks?: (res: UwsHttpResponse, req: UwsHttpRequest) => void;
  /** Wraps every handler: authentication and scopes (src/auth). */
  readonly guard: RouteGuard;
  /** POST/GET /v1/keys and DELETE /v1/keys/:id; absent means those routes answer 404. */
  readonly keyRoutes?: KeyRoutes;
  /** POST/GET /v1/webhook-sources and DELETE /v1/webhook-sources/:name; absent means 404. */
  readonly webhookSourceRoutes?: SourceRoutes;
  /** POST/GET /v1/subscriptions, GET/PATCH/DELETE …/:id, POST …/:id/rotate-secret; absent means 404. */
  readonly subscriptionRoutes?: SubscriptionRoutes;
  /** The read API's GET routes (src/query); absent means they answer 404. */
  readonly readRoutes?: readonly ReadRoute[];
  /** Delivery inspection, replay and health (src/delivery/delivery-routes.ts); absent means 404. */
  readonly deliveryRoutes?: readonly DeliveryRoute[];
  /** GET /v1/events/stream (WebSocket); absent means that route answers 404. */
  readonly streams?: StreamRoute;
}

export interface ObservabilityEndpoints {
  /** The Prometheus text exposition (collectors are async in prom-client). */
  metrics(): Promise<string>;
  readonly metricsContentType: string;
  stats(): unknown;
  readonly dashboardHtml: string;
  /** Content-Security-Policy and the other headers the page is served with. */
  readonly dashboardHeaders: Readonly<Record<string, string>>;
}

export interface HttpServer {
  readonly port: number;
  stopListening(): void;
  close(): void;
}

export function startServer(deps: ServerDependencies, host: string, port: number): Promise<HttpServer> {
  const uwsApp = deps.uws.App();
  // Every registered path is recorded, so "wrong method" (405) and "no such route" (404)
  // are told apart from the routes themselves rather than from a list kept beside them.
  const paths = new Set<string>();
  const cors = new Cors(deps.config.corsOrigins);
  const app = recordingPaths(uwsApp, paths, deps.guard, cors);
  routeIngest(app, deps, '/v1/events', 'v1-single');
  routeIngest(app, deps, '/v1/events/bulk', 'v1-bulk');
  routeIngest(app, deps, '/webhook/events', 'webhook-event');
  routeIngest(app, deps, '/webhook/batch', 'webhook-batch');
  // The Segment-spec Tracking API (src/segment): the same path, other body shapes and answers.
  routeIngest(app, deps, '/v1/batch', 'segment-batch');
  for (const call of segmentCalls) routeIngest(app, deps, `/v1/${call}`, `segment-${call}`);
  if (deps.deadLetters !== undefined) {
    const { pipeline, log, isDraining, config } = deps;
    routeDeadLetters(app, { store: deps.deadLetters.store, pipeline, log, isDraining, bodyTimeoutMs: config.bodyTimeoutMs });
  }
  // Authenticated by the provider's signature over the body, not by an API key: its row in
  // src/auth/route-access.ts has kind 'signature'.
  if (deps.signedWebhooks !== undefined) app.post('/v1/webhooks/:name', deps.signedWebhooks);
  if (deps.observability !== undefined) routeObservability(app, deps, deps.observability);
  if (deps.keyRoutes !== undefined) {
    app.post('/v1/keys', deps.keyRoutes.create);
    app.get('/v1/keys', deps.keyRoutes.list);
    app.del('/v1/keys/:id', deps.keyRoutes.revoke);
  }
  if (deps.webhookSourceRoutes !== undefined) {
    app.post('/v1/webhook-sources', deps.webhookSourceRoutes.put);
    app.get('/v1/webhook-sources', deps.webhookSourceRoutes.list);
    app.del('/v1/webhook-sources/:name', deps.webhookSourceRoutes.remove);
  }
  if (deps.subscriptionRoutes !== undefined) {
    const routes = deps.subscriptionRoutes;
    app.post('/v1/subscriptions', routes.create);
    app.get('/v1/subscriptions', routes.list);
    app.get('/v1/subscriptions/:id', routes.get);
    app.patch('/v1/subscriptions/:id', routes.update);
    app.del('/v1/subscriptions/:id', routes.remove);
    app.post('/v1/subscriptions/:id/rotate-secret', routes.rotateSecret);
  }
  for (const route of deps.readRoutes ?? []) app.get(route.pattern, route.handler);
  // Delivery inspection, replay and health.
  for (const route of deps.deliveryRoutes ?? []) {
    if (route.method === 'GET') app.get(route.pattern, route.handler);
    else app.post(route.pattern, route.handler);
  }
  if (deps.streams !== undefined) {
    // The upgrade goes through the guard like any route: a refused one is answered 401/403 and never upgraded.
    paths.add(streamPath);
    const behavior = deps.streams.behavior();
    uwsApp.ws(streamPath, { ...behavior, upgrade: deps.guard.wrap('GET', streamPath, behavior.upgrade) });
  }
  app.get('/healthz', (res, req) => reply(res, 200, requestIdOf(req), { status: 'ok' }));
  app.get('/readyz', (res, req) => {
    const report = deps.readiness();
    reply(res, report.ready ? 200 : 503, requestIdOf(req), { status: report.ready ? 'ready' : 'not_ready', checks: report.checks }, report.ready ? {} : { retryAfterS: 1 });
  });
  app.get('/health', (res, req) => {
    const report = deps.readiness();
    reply(res, report.ready ? 200 : 503, requestIdOf(req), { status: report.ready ? 'healthy' : 'unhealthy', ...deps.healthDetails() });
  });
  if (cors.enabled) routePreflights(app, cors, (deps.readRoutes ?? []).map((route) => route.pattern).filter((pattern) => pattern !== '/v1/events'));
  app.any('/*', (res, req) => {
    const known = paths.has(req.getUrl());
    const requestId = requestIdOf(req);
    if (known) replyError(res, requestId, 'ERR_METHOD_NOT_ALLOWED', `${req.getMethod().toUpperCase()} is not allowed on ${req.getUrl()}`, { close: true });
    else replyError(res, requestId, 'ERR_NOT_FOUND', `no route ${req.getMethod().toUpperCase()} ${req.getUrl()}`, { close: true });
  });
  return listen(deps.uws, uwsApp, host, port);
}

/**
 * Registers every route through the guard and, when CORS is on, behind `cors.mark`, which
 * reads the Origin before the guard runs so that refusals (401/403) carry CORS headers too
 * and a page can read them.
 */
function recordingPaths(app: UwsApp, paths: Set<string>, guard: RouteGuard, cors: Cors): UwsApp {
  const wrap = (method: string, pattern: string, handler: Handler): Handler => {
    const guarded = guard.wrap(method, pattern, handler);
    if (!cors.enabled) return guarded;
    return (res, req) => {
      cors.mark(res, req);
      guarded(res, req);
    };
  };
  // A registration records its path (for 404 against 405) and goes through the wrap.
  const register = (method: string, add: (pattern: string, handler: Handler) => unknown) => (pattern: string, handler: Handler): UwsApp => {
    paths.add(pattern);
    add(pattern, wrap(method, pattern, handler));
    return recording;
  };
  const recording: UwsApp = {
    get: register('GET', (pattern, handler) => app.get(pattern, handler)),
    post: register('POST', (pattern, handler) => app.post(pattern, handler)),
    del: register('DELETE', (pattern, handler) => app.del(pattern, handler)),
    patch: register('PATCH', (pattern, handler) => app.patch(pattern, handler)),
    options: register('OPTIONS', (pattern, handler) => app.options(pattern, handler)),
    any: (pattern, handler) => {
      app.any(pattern, wrap('ANY', pattern, handler));
      return recording;
    },
    listen: (listenHost, listenPort, callback) => {
      app.listen(listenHost, listenPort, callback);
      return recording;
    },
    close: () => app.close(),
  };
  return recording;
}

/** Browsers preflight the ingest and read routes a page may call (GET and POST on /v1/events); admin routes get none. */
function routePreflights(app: UwsApp, cors: Cors, readPatterns: readonly string[]): void {
  app.options('/v1/events', cors.preflight('GET, POST'));
  for (const pattern of ['/v1/events/bulk', '/webhook/events', '/webhook/batch', '/v1/batch', ...segmentCalls.map((call) => `/v1/${call}`)]) app.options(pattern, cors.preflight('POST'));
  for (const pattern of ['/v1/stats', '/health', ...readPatterns]) app.options(pattern, cors.preflight('GET'));
}

function routeIngest(app: UwsApp, deps: IngestDependencies, pattern: string, route: IngestRoute): void {
  app.post(pattern, (res: UwsHttpResponse, req: UwsHttpRequest, caller?: Actor) => handleIngest(deps, route, res, req, caller));
}

function routeObservability(app: UwsApp, deps: ServerDependencies, endpoints: ObservabilityEndpoints): void {
  app.get('/metrics', (res, req) => {
    const requestId = requestIdOf(req);
    // The answer comes in a later tick: uWS requires onAborted before the handler returns.
    let aborted = false;
    res.onAborted(() => (aborted = true));
    endpoints.metrics().then(
      (text) => {
        if (!aborted) reply(res, 200, requestId, text, { contentType: endpoints.metricsContentType });
      },
      (error: unknown) => {
        deps.log.error({ err: error, requestId }, 'metrics collection failed');
        if (!aborted) replyError(res, requestId, 'ERR_INTERNAL', 'metrics collection failed (details in the log)');
      },
    );
  });
  app.get('/v1/stats', (res, req) => reply(res, 200, requestIdOf(req), endpoints.stats()));
  app.get('/', (res, req) => reply(res, 200, requestIdOf(req), endpoints.dashboardHtml, { contentType: 'text/html; charset=utf-8', headers: endpoints.dashboardHeaders }));
}


function listen(uws: UwsModule, app: UwsApp, host: string, port: number): Promise<HttpServer> {
  return new Promise((resolve, reject) => {
    app.listen(host, port, (socket: UwsListenSocket | false) => {
      if (socket === false) {
        reject(new FloodgateError('ERR_INTERNAL', `could not listen on ${host}:${port} (port in use or not permitted)`));
        return;
      }
      let listening: UwsListenSocket | null = socket;
      resolve({
        port: uws.us_socket_local_port(socket),
        stopListening: () => {
          if (listening !== null) uws.us_listen_socket_close(listening);
          listening = null;
        },
        close: () => {
          if (listening !== null) uws.us_listen_socket_close(listening);
          listening = null;
          app.close();
        },
      });
    });
  });
}
