/**
 * How a read route answers: the request's parts are copied out of uWS synchronously (a
 * uWS request is only valid inside its handler's tick), the work runs async, and the
 * outcome becomes JSON or a `{request_id, error: {code, parameter, message}}` answer.
 *
 *   ParameterError            → 400 with error.parameter
 *   FloodgateError            → its catalogue status (503s with Retry-After)
 *   anything else             → 500 ERR_INTERNAL, logged
 */
import { FloodgateError, statusOf } from '../errors';
import type { Logger } from '../log';
import { reply } from '../ingress/http-reply';
import { requestIdOf } from '../ingress/request-id';
import type { UwsHttpRequest, UwsHttpResponse } from '../ingress/uws';
import type { Config } from '../config/config';
import { ParameterError, type Problem } from './query-parameters';
import type { ReadDatabase } from './read-database';

/** A GET route of the read API; src/ingress/server.ts registers it through the guard. */
export interface ReadRoute {
  /** The uWS pattern, e.g. `/v1/events/:event_id`; src/auth/route-access.ts needs a row for `GET <pattern>`. */
  readonly pattern: string;
  readonly handler: (res: UwsHttpResponse, req: UwsHttpRequest) => void;
}

export interface ReadRouteDependencies {
  readonly db: ReadDatabase;
  readonly log: Logger;
  readonly config: Config;
}

/** What a handler may read of the request once its tick is over. */
export interface ReadCall {
  readonly requestId: string;
  /** The raw query string, without `?`. */
  readonly query: string;
  /** The pattern's `:name` segments in order, URL-decoded. */
  readonly pathParameters: readonly string[];
  readonly accept: string;
}

/**
 * Copies what a read needs out of the uWS request; call it before returning from the handler.
 * `parameterCount` is the pattern's number of `:name` segments: uWS answers '' (not
 * undefined) past the last one, so reading until undefined never ends.
 */
export function readCallOf(req: UwsHttpRequest, parameterCount: number): ReadCall {
  const pathParameters: string[] = [];
  for (let index = 0; index < parameterCount; index++) pathParameters.push(safeDecode(req.getParameter(index) ?? ''));
  return { requestId: requestIdOf(req), query: req.getQuery() ?? '', pathParameters, accept: req.getHeader('accept') };
}

/** How many `:name` segments a uWS pattern has. */
export function parameterCountOf(pattern: string): number {
  return pattern.split('/').filter((segment) => segment.startsWith(':')).length;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** A route whose answer is one JSON document (status 200 unless the work throws). */
export function jsonRoute(deps: Pick<ReadRouteDependencies, 'log'>, pattern: string, answer: (call: ReadCall) => Promise<unknown>): ReadRoute {
  const parameterCount = parameterCountOf(pattern);
  return {
    pattern,
    handler: (res, req) => {
      let aborted = false;
      res.onAborted(() => (aborted = true));
      const call = readCallOf(req, parameterCount);
      let work: Promise<unknown>;
      try {
        work = answer(call);
      } catch (error) {
        work = Promise.reject(error);
      }
      work.then(
        (body) => {
          if (!aborted) reply(res, 200, call.requestId, body);
        },
        (error: unknown) => {
          if (!aborted) replyReadError(res, call.requestId, error, deps.log, pattern);
        },
      );
    },
  };
}

/** Answers a failed read; returns the status written. */
export function replyReadError(res: UwsHttpResponse, requestId: string, error: unknown, log: Logger, pattern: string): number {
  const problem = problemOf(error);
  if (problem.code === 'ERR_INTERNAL') log.error({ err: error, requestId, route: pattern }, 'read failed');
  else if (problem.code === 'ERR_QUERY_UNAVAILABLE' || problem.code === 'ERR_QUERY_TIMEOUT') log.warn({ err: (error as Error).cause ?? error, requestId, route: pattern }, problem.message);
  return replyProblem(res, requestId, problem);
}

/** `{request_id, error: {code, parameter, message}}` with the code's status; a 503 says when to retry. */
export function replyProblem(res: UwsHttpResponse, requestId: string, problem: Problem, close = false): number {
  const status = statusOf(problem.code);
  return reply(res, status, requestId, { request_id: requestId, error: problem }, { close, ...(status === 503 ? { retryAfterS: 1 } : {}) });
}

export function problemOf(error: unknown): Problem {
  if (error instanceof ParameterError) return error.problem;
  if (error instanceof FloodgateError) return { code: error.code, parameter: null, message: error.message };
  return { code: 'ERR_INTERNAL', parameter: null, message: 'the read failed unexpectedly (details in the log)' };
}
