/**
 * The values each labelled floodgate_* series can take, derived from the lists that decide
 * them (the error catalogue, the ingest routes, the statuses the server answers with),
 * never written out a second time. Every combination is exported at 0 from start-up: a
 * series that only appears on its first increment is invisible to rate() and to alerts
 * until then. No label of ours is open-ended; `actor` (0 … actorCount-1) comes from the
 * config and `quantile` from reportedQuantiles.
 */
import { errorCatalogue, type ErrorCode } from '../errors';
import { answerStatuses } from '../ingress/http-reply';
import { ingestRoutes, type IngestRoute } from '../ingress/ingest-handler';
import { limitKinds, type LimitKind } from '../limits/rate-limiter';

/** `code` of floodgate_events_rejected_total: every catalogue code. */
export const rejectionCodes = Object.keys(errorCatalogue) as readonly ErrorCode[];
/** `route` of floodgate_requests_total. */
export const requestRoutes: readonly IngestRoute[] = ingestRoutes;
/** `status` of floodgate_requests_total. */
export const requestStatuses: readonly number[] = answerStatuses;
/** `limit` of floodgate_rate_limited_requests_total and _events_total (src/limits/rate-limiter.ts counts from these). */
export const rateLimitKinds: readonly LimitKind[] = limitKinds;
