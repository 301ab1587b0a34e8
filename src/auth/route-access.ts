/**
 * Who may call each route: the one table the guard (./guard.ts) reads. Every route
 * src/ingress/server.ts registers goes through the guard, and the guard refuses to
 * register a route that has no row here, so a new route cannot be born unguarded: the
 * engine does not start, and every end-to-end test fails, until its access is decided.
 *
 *   open       anyone (liveness/readiness probes, the dashboard's static page, 404/405,
 *              CORS preflights, whose handler answers the preflight and nothing else)
 *   scope      an API key holding that scope; in `auto` posture while no key exists,
 *              ingest is open and read/admin answer loopback clients only
 *   metrics    open, unless FLOODGATE_METRICS_TOKEN is set: then Bearer that token
 *   signature  the handler authenticates the request itself (signed webhooks)
 *
 * `audit` names the admin action that writes an audit line when the guard lets it through.
 */
import type { Scope } from './key-format';

export type RouteAccess =
  | { readonly kind: 'open' }
  | { readonly kind: 'scope'; readonly scope: Scope; readonly audit?: string }
  | { readonly kind: 'metrics' }
  | { readonly kind: 'signature' };

const open: RouteAccess = { kind: 'open' };
const ingest: RouteAccess = { kind: 'scope', scope: 'ingest' };
const read: RouteAccess = { kind: 'scope', scope: 'read' };
const admin: RouteAccess = { kind: 'scope', scope: 'admin' };

/** Keyed by `METHOD pattern`, the pattern as registered with uWS (`ANY` for app.any). */
export const routeAccess: Readonly<Record<string, RouteAccess>> = Object.freeze({
  'POST /v1/events': ingest,
  'POST /v1/events/bulk': ingest,
  // The Segment-spec Tracking API (src/segment): SDKs send their write key as Basic user name.
  'POST /v1/batch': ingest,
  'POST /v1/track': ingest,
  'POST /v1/identify': ingest,
  'POST /v1/page': ingest,
  'POST /v1/screen': ingest,
  'POST /v1/group': ingest,
  'POST /v1/alias': ingest,
  // The WebSocket stream (src/stream): checked on the upgrade request, before any frame.
  'GET /v1/events/stream': ingest,
  'POST /webhook/events': ingest,
  'POST /webhook/batch': ingest,
  'GET /healthz': open,
  'GET /readyz': open,
  // Day-15 health shows queue depths and ring use: operational detail, so it needs `read`.
  // Load balancers probe /healthz and /readyz, which stay open.
  'GET /health': read,
  'GET /metrics': { kind: 'metrics' },
  'GET /v1/stats': read,
  // The read API's analytics (src/query/analytics-routes.ts).
  'GET /v1/analytics/events/daily': read,
  'GET /v1/analytics/events/summary': read,
  'GET /v1/analytics/event-types': read,
  'GET /v1/analytics/events/raw': read,
  'GET /v1/analytics/counts': read,
  // The dashboard page holds no data; it asks for a read key when /v1/stats answers 401.
  'GET /': open,
  // Stored events (src/query/event-routes.ts): pages, the NDJSON export, one event by id.
  'GET /v1/events': read,
  'GET /v1/events/:event_id': read,
  'GET /v1/dead-letters': admin,
  'POST /v1/dead-letters/replay': { kind: 'scope', scope: 'admin', audit: 'dead_letters.replay' },
  'POST /v1/keys': admin,
  'GET /v1/keys': admin,
  'DELETE /v1/keys/:id': admin,
  // The guard's audit line records each attempt; the handler adds one naming the change it made.
  'POST /v1/webhook-sources': { kind: 'scope', scope: 'admin', audit: 'webhook_source.put' },
  'GET /v1/webhook-sources': admin,
  'DELETE /v1/webhook-sources/:name': { kind: 'scope', scope: 'admin', audit: 'webhook_source.remove' },
  // Delivery to subscribers (src/delivery): subscriptions, their deliveries, replay and health.
  'POST /v1/subscriptions': { kind: 'scope', scope: 'admin', audit: 'subscription.create' },
  'GET /v1/subscriptions': admin,
  'GET /v1/subscriptions/:id': admin,
  'PATCH /v1/subscriptions/:id': { kind: 'scope', scope: 'admin', audit: 'subscription.update' },
  'DELETE /v1/subscriptions/:id': { kind: 'scope', scope: 'admin', audit: 'subscription.delete' },
  'POST /v1/subscriptions/:id/rotate-secret': { kind: 'scope', scope: 'admin', audit: 'subscription.rotate_secret' },
  'POST /v1/subscriptions/:id/replay': { kind: 'scope', scope: 'admin', audit: 'subscription.replay' },
  'GET /v1/subscriptions/:id/replays/:replay_id': admin,
  'GET /v1/subscriptions/:id/health': admin,
  'GET /v1/deliveries': admin,
  'GET /v1/deliveries/:id': admin,
  // Signed inbound webhooks are authenticated by the provider's signature over the body.
  'POST /v1/webhooks/:name': { kind: 'signature' },
  // CORS preflights (registered only when FLOODGATE_CORS_ORIGINS is set; src/ingress/cors.ts).
  'OPTIONS /v1/events': open,
  'OPTIONS /v1/events/bulk': open,
  'OPTIONS /webhook/events': open,
  'OPTIONS /webhook/batch': open,
  'OPTIONS /v1/batch': open,
  'OPTIONS /v1/track': open,
  'OPTIONS /v1/identify': open,
  'OPTIONS /v1/page': open,
  'OPTIONS /v1/screen': open,
  'OPTIONS /v1/group': open,
  'OPTIONS /v1/alias': open,
  'OPTIONS /v1/stats': open,
  'OPTIONS /health': open,
  'OPTIONS /v1/events/:event_id': open,
  'OPTIONS /v1/analytics/events/daily': open,
  'OPTIONS /v1/analytics/events/summary': open,
  'OPTIONS /v1/analytics/event-types': open,
  'OPTIONS /v1/analytics/events/raw': open,
  'OPTIONS /v1/analytics/counts': open,
  'ANY /*': open,
});

export function accessOf(method: string, pattern: string): RouteAccess | undefined {
  return routeAccess[`${method} ${pattern}`];
}
