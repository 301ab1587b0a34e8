/**
 * Every route of the read API, as src/ingress/server.ts registers them:
 *
 *   /v1/analytics/*             EventFlux's routes and Floodgate's counts (./analytics-routes.ts)
 *   GET /v1/events, /v1/events/:event_id   keyset pages, NDJSON export, one event (./event-routes.ts)
 *
 * Reads use their own connections (./read-database.ts), never the actors'.
 */
import { analyticsRoutes } from './analytics-routes';
import { eventRoutes } from './event-routes';
import type { ReadRoute, ReadRouteDependencies } from './read-route';

export function readRoutes(deps: ReadRouteDependencies): ReadRoute[] {
  return [...analyticsRoutes(deps), ...eventRoutes(deps)];
}
