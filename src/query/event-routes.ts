/**
 * The stored events: keyset pages, NDJSON export and one event by id.
 */
import type { ReadRoute, ReadRouteDependencies } from './read-route';

export function eventRoutes(_deps: ReadRouteDependencies): ReadRoute[] {
  return [];
}
