/**
 * Which events a subscription receives: the one definition, used by the sink's fan-out (in
 * JavaScript, per batch) and mirrored in SQL by `floodgate deliveries verify`
 * (matchSql below), so the two cannot disagree.
 *
 * event_types patterns: `*` matches every type; `prefix.*` matches every type that starts
 * with `prefix.` (any depth: `invoice.*` matches `invoice.paid` and `invoice.line.added`);
 * anything else matches that exact type. sources are exact names. null = everything.
 */
import type { SubscriptionRow } from './delivery-schema';

export function eventTypeMatches(patterns: readonly string[] | null, eventType: string): boolean {
  if (patterns === null) return true;
  for (const pattern of patterns) {
    if (pattern === '*' || pattern === eventType) return true;
    if (pattern.endsWith('.*') && eventType.startsWith(pattern.slice(0, -1))) return true;
  }
  return false;
}

export function subscriptionMatches(subscription: SubscriptionRow, eventType: string, source: string): boolean {
  if (!subscription.enabled) return false;
  if (subscription.sources !== null && !subscription.sources.includes(source)) return false;
  return eventTypeMatches(subscription.eventTypes, eventType);
}

/**
 * The same rule as a SQL condition over subscription `s` and event `e` (enabled state
 * aside: verify checks enabled windows through covered_from / covered_until).
 */
export const matchSql =
  '(s.sources IS NULL OR e.source = ANY (s.sources)) AND (s.event_types IS NULL OR EXISTS (' +
  "SELECT 1 FROM unnest(s.event_types) AS p(pattern) WHERE p.pattern = '*' OR p.pattern = e.event_type " +
  "OR (right(p.pattern, 2) = '.*' AND starts_with(e.event_type, left(p.pattern, -1)))))";
