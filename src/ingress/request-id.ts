/**
 * The one rule for client-given request ids (X-Request-ID, Idempotency-Key, a bulk body's
 * `request_id`): 1–200 printable ASCII characters. Ids derived from them stay short, and
 * nothing a client sends can smuggle spaces, control bytes or CR/LF into an answer.
 */
import { randomUUID } from 'node:crypto';
import type { UwsHttpRequest } from './uws';

export const requestIdCharsMax = 200;
const printableAscii = /^[\x21-\x7e]+$/;

export function isValidRequestId(value: string): boolean {
  return value.length <= requestIdCharsMax && printableAscii.test(value);
}

/**
 * The request id to echo: the client's own when it follows the rule, a new UUID otherwise.
 * uWS hands header values over byte for byte, so echoing a refused X-Request-ID put the
 * client's spaces, tabs and DEL bytes into our answer, and a 60,000-character id came
 * back whole in the 400 that refused it (found by test/fuzz).
 */
export function echoableRequestId(requestId: string): string {
  return isValidRequestId(requestId) ? requestId : randomUUID();
}

/** The id for an answer on routes that do not ingest (health, metrics, errors). */
export function requestIdOf(req: UwsHttpRequest): string {
  return echoableRequestId(req.getHeader('x-request-id'));
}
