/**
 * What every JSON admin route (keys, webhook sources) does around its own logic: remember
 * whether the client went away (uWS forbids touching an aborted response), answer errors
 * with the request's id, and read a small body under a byte and time limit.
 */
import type { ErrorCode } from '../errors';
import { declaredLengthOf, notDecimalLength, readBody } from './body-reader';
import { replyError } from './http-reply';
import { requestIdOf } from './request-id';
import type { UwsHttpRequest, UwsHttpResponse } from './uws';

export interface AdminCall {
  readonly requestId: string;
  /** Whether the client went away: then nothing may be written. */
  aborted(): boolean;
  /** Answers an error unless the client went away; `close` for a request whose body was not read. */
  fail(code: ErrorCode, message: string, close?: boolean): void;
  /** Reads the whole body (at most `bytesMax`) and hands it over as text; errors are answered. */
  readBody(limits: { readonly bytesMax: number; readonly timeoutMs: number }, onBody: (text: string) => void): void;
}

/** Starts a call while `req` may still be read (its request id and Content-Length are taken now). */
export function startAdminCall(res: UwsHttpResponse, req: UwsHttpRequest): AdminCall {
  let aborted = false;
  let cancelRead = (): void => undefined;
  res.onAborted(() => {
    aborted = true;
    cancelRead();
  });
  const requestId = requestIdOf(req);
  const contentLength = declaredLengthOf(req);
  const fail = (code: ErrorCode, message: string, close = false): void => {
    if (!aborted) replyError(res, requestId, code, message, { close });
  };
  return {
    requestId,
    aborted: () => aborted,
    fail,
    readBody: (limits, onBody) => {
      if (contentLength === -1) return fail(notDecimalLength.code, notDecimalLength.message, true);
      cancelRead = readBody(res, {
        contentLength,
        bodyBytesMax: limits.bytesMax,
        bodyTimeoutMs: limits.timeoutMs,
        onError: (error) => fail(error.code, error.message, true),
        onBody: (bytes) => onBody(bytes.toString('utf8')),
      });
    },
  };
}
