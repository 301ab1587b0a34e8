/**
 * The analytics routes, all GET and all read from the rollup tables except the raw one:
 *
 *   /v1/analytics/events/daily, /events/summary, /event-types, /events/raw
 *                              EventFlux's routes, unchanged for its clients (./eventflux-routes.ts)
 *   /v1/analytics/counts       Floodgate's zero-filled counts per minute, hour or day (./counts-route.ts)
 *
 * Each answer is one statement on the read pool (./read-database.ts), bounded by a window,
 * a page size and the statement timeout.
 */
import { countsRoute } from './counts-route';
import { eventFluxRoutes } from './eventflux-routes';
import type { ReadRoute, ReadRouteDependencies } from './read-route';

export function analyticsRoutes(deps: ReadRouteDependencies): ReadRoute[] {
  return [...eventFluxRoutes(deps), countsRoute(deps)];
}
