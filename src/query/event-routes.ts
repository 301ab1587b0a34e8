/**
 * The stored events:
 *
 *   GET /v1/events               keyset pages of JSON (./event-cursor.ts), or with
 *                                `Accept: application/x-ndjson` every matching row as an
 *                                NDJSON stream (./event-export.ts)
 *   GET /v1/events/:event_id     one event, or 404
 *
 * Both need the `read` scope (src/auth/route-access.ts). POST /v1/events/bulk is another
 * method, so GET /v1/events/bulk asks for an event named "bulk" (404 unless one exists).
 */
import { FloodgateError } from '../errors';
import { eventJsonSql, eventParameterNames, encodeEventCursor, nextKeyOf, pageStatement, parseEventQuery, type EventQuery, type PageRow } from './event-cursor';
import { acceptsNdjson, StreamedResponse, streamEvents } from './event-export';
import { badParameter, QueryParameters } from './query-parameters';
import { jsonRoute, parameterCountOf, readCallOf, replyReadError, type ReadCall, type ReadRoute, type ReadRouteDependencies } from './read-route';

const pageLimit = { min: 1, max: 1000, fallback: 100 };
/** A page's window: a month, so one keyset page never walks more than a month of partitions. */
const pageWindowDaysMax = 31;
/** An export's window: a year of day partitions; a longer history exports year by year. */
const exportWindowDaysMax = 366;
const eventIdCharsMax = 128;
const listPattern = '/v1/events';
const onePattern = '/v1/events/:event_id';

export function eventRoutes(deps: ReadRouteDependencies): ReadRoute[] {
  return [listRoute(deps), oneEventRoute(deps)];
}

function listRoute(deps: ReadRouteDependencies): ReadRoute {
  const pages = jsonRoute(deps, listPattern, (call) => answerPage(deps, call));
  // An export holds a connection for its whole length: half the pool at most, so pages
  // and the analytics routes always find one.
  const exportsMax = Math.max(1, Math.floor(deps.config.readConnectionsMax / 2));
  let exportsRunning = 0;
  return {
    pattern: listPattern,
    handler: (res, req) => {
      if (!acceptsNdjson(req.getHeader('accept'))) {
        pages.handler(res, req);
        return;
      }
      const stream = new StreamedResponse(res);
      const call = readCallOf(req, parameterCountOf(listPattern));
      let query: EventQuery;
      try {
        query = exportQuery(call);
        if (exportsRunning >= exportsMax) throw new FloodgateError('ERR_QUERY_UNAVAILABLE', `${exportsMax} exports are running, the most this node allows at once; retry`);
      } catch (error) {
        replyReadError(res, call.requestId, error, deps.log, listPattern);
        return;
      }
      exportsRunning++;
      void streamEvents({ db: deps.db, log: deps.log, stream, res, requestId: call.requestId, query, pattern: listPattern }).finally(() => exportsRunning--);
    },
  };
}

function exportQuery(call: ReadCall): EventQuery {
  const params = QueryParameters.parse(call.query, eventParameterNames);
  if (params.has('limit')) throw badParameter('limit', 'limit applies to JSON pages; an export (Accept: application/x-ndjson) streams every matching row');
  return parseEventQuery(params, { nowUs: Date.now() * 1000, windowDaysMax: exportWindowDaysMax });
}

/**
 * One page as JSON text: the rows arrive as JSON made by PostgreSQL and are joined, not
 * parsed and serialised again (jsonRoute sends a string as it is).
 */
async function answerPage(deps: ReadRouteDependencies, call: ReadCall): Promise<string> {
  const params = QueryParameters.parse(call.query, eventParameterNames);
  const limit = params.integer('limit', pageLimit);
  const query = parseEventQuery(params, { nowUs: Date.now() * 1000, windowDaysMax: pageWindowDaysMax });
  const statement = pageStatement(query, limit, ',');
  const [row] = await deps.db.rows<PageRow>(statement.text, statement.values);
  const nextKey = row === undefined ? null : nextKeyOf(row, limit);
  const nextCursor = nextKey === null ? 'null' : JSON.stringify(encodeEventCursor(query, nextKey));
  return `{"data":[${row?.body ?? ''}],"next_cursor":${nextCursor}}`;
}

/**
 * One event by id. The primary key is (event_id, occurred_at), so an id sent twice with
 * two timestamps is stored twice (docs/decisions/0011-dedupe-layers-and-primary-key.md);
 * the first received is answered, and GET /v1/events lists both.
 */
function oneEventRoute(deps: ReadRouteDependencies): ReadRoute {
  return jsonRoute(deps, onePattern, async (call) => {
    QueryParameters.parse(call.query, []);
    const eventId = call.pathParameters[0] ?? '';
    if (eventId.length === 0 || eventId.length > eventIdCharsMax) throw badParameter('event_id', `event_id must be 1 to ${eventIdCharsMax} characters`);
    const rows = await deps.db.rows<{ line: string }>(
      `SELECT ${eventJsonSql} AS line FROM events WHERE event_id = $1 ORDER BY received_at, occurred_at LIMIT 1`,
      [eventId],
    );
    const line = rows[0]?.line;
    if (line === undefined) throw badParameter('event_id', `no stored event has event_id ${JSON.stringify(eventId.slice(0, 64))}`, 'ERR_QUERY_NOT_FOUND');
    return line;
  });
}
