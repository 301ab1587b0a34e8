/**
 * What every verification scheme shares: the inputs, the verdict, HMAC-SHA256 and the
 * constant-time comparison. Schemes are pure functions of the raw body bytes, the
 * request's headers, the source's secrets and the clock, so each is unit-tested alone.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Why a request was refused; also the `reason` label of floodgate_webhook_rejected_total. */
export type RejectionReason = 'signature' | 'timestamp';
export const rejectionReasons: readonly RejectionReason[] = ['signature', 'timestamp'];

export interface SignedRequest {
  /** The body exactly as received: signatures are over these bytes, never a re-encoding. */
  readonly body: Buffer;
  /** Header values by lower-case name; a header that was not sent reads as ''. */
  readonly header: (name: string) => string;
  /** Every secret the source accepts, newest last: any one of them verifying is enough (rotation). */
  readonly secrets: readonly string[];
  /** The source's signature header, for the schemes that let it be chosen (lower case). */
  readonly signatureHeader: string;
  readonly nowMs: number;
}

export type Verdict = { readonly ok: true } | { readonly ok: false; readonly reason: RejectionReason; readonly message: string };

export const verified: Verdict = { ok: true };

export function refused(reason: RejectionReason, message: string): Verdict {
  return { ok: false, reason, message };
}

/** Timestamped schemes accept a signature this far from the receiver's clock, either way. */
export const timestampToleranceMs = 5 * 60 * 1000;

/** Checks a unix-seconds timestamp against the tolerance; null when it is within. */
export function staleness(timestampS: number, nowMs: number): Verdict | null {
  const skewMs = timestampS * 1000 - nowMs;
  if (skewMs < -timestampToleranceMs) return refused('timestamp', `the signature's timestamp is ${Math.round(-skewMs / 1000)} s old; the tolerance is ${timestampToleranceMs / 1000} s`);
  if (skewMs > timestampToleranceMs) return refused('timestamp', `the signature's timestamp is ${Math.round(skewMs / 1000)} s in the future; the tolerance is ${timestampToleranceMs / 1000} s`);
  return null;
}

/** Unix seconds as sent: decimal digits only (no sign, exponent or fraction), else null. */
export function parseUnixSeconds(text: string): number | null {
  return /^[0-9]{1,12}$/.test(text) ? Number(text) : null;
}

export function hmacSha256(key: string | Buffer, ...parts: ReadonlyArray<string | Buffer>): Buffer {
  const hmac = createHmac('sha256', key);
  for (const part of parts) hmac.update(part);
  return hmac.digest();
}

/**
 * Whether `given` equals `expected`, in time that does not depend on where they differ.
 * timingSafeEqual needs equal lengths; a length mismatch only reveals the length, which
 * is public (every HMAC-SHA256 is 32 bytes).
 */
export function sameBytes(given: Buffer, expected: Buffer): boolean {
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Lower-case hex of exactly 32 bytes, decoded; null when the text is anything else. */
export function hexDigest(text: string): Buffer | null {
  return /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : null;
}

/** Standard base64 of exactly 32 bytes, decoded; null when the text is anything else. */
export function base64Digest(text: string): Buffer | null {
  return /^[A-Za-z0-9+/]{43}=$/.test(text) ? Buffer.from(text, 'base64') : null;
}

/** The event fields a scheme takes from a verified delivery; the route adds source and attributes. */
export interface MappedFields {
  readonly eventId: string;
  readonly eventType: string;
  /** Epoch milliseconds, or the provider's ISO-8601 text as sent. */
  readonly timestamp: number | string;
}

export interface Scheme {
  /** Lower-case names of the headers the scheme reads, besides the source's signature header. */
  readonly headerNames: readonly string[];
  /** The header that carries the signature when the source names none. */
  readonly defaultSignatureHeader: string;
  /** Why a secret cannot be used with this scheme, or null when it can. */
  secretProblem(secret: string): string | null;
  verify(request: SignedRequest): Verdict;
  /** Called only after verify: the payload is the parsed body (any JSON value). */
  map(payload: unknown, request: SignedRequest): MappedFields;
}
