/**
 * Plain HMAC-SHA256, the Day-15 receiver's style: the hex HMAC of the raw body, keyed with
 * the secret as given, in one header (X-Webhook-Signature unless the source names
 * another). An optional `sha256=` prefix is accepted, as several senders add it. There is
 * no timestamp, so a captured request can be replayed: dedupe by event id is what makes
 * that harmless.
 */
import { bodyHashId, fieldOf, idText, text, usableTimestamp } from './delivery-fields';
import { hexDigest, hmacSha256, refused, sameBytes, verified, type Scheme, type SignedRequest } from './signature';

export const defaultHmacHeader = 'x-webhook-signature';

/** Verifies `header` against the secrets; shared with the Day-15 routes' check. */
export function verifyBodyHmac(request: Pick<SignedRequest, 'body' | 'secrets'>, header: string, headerName: string): ReturnType<Scheme['verify']> {
  const given = hexDigest(header.startsWith('sha256=') ? header.slice('sha256='.length) : header);
  if (given === null) return refused('signature', `${headerName} must hold the hex HMAC-SHA256 of the body (64 hex digits)`);
  const matches = request.secrets.some((secret) => sameBytes(given, hmacSha256(secret, request.body)));
  return matches ? verified : refused('signature', `${headerName} does not match the HMAC-SHA256 of the body`);
}

export const hmacScheme: Scheme = {
  headerNames: [],
  defaultSignatureHeader: defaultHmacHeader,
  secretProblem: (secret) => (secret.length > 0 ? null : 'the secret is empty'),
  verify: (request) => verifyBodyHmac(request, request.header(request.signatureHeader), request.signatureHeader),
  map(payload, request) {
    return {
      eventId: idText(fieldOf(payload, 'event_id')) ?? idText(fieldOf(payload, 'id')) ?? bodyHashId(request.body),
      eventType: text(fieldOf(payload, 'event_type')) ?? text(fieldOf(payload, 'type')) ?? 'webhook',
      timestamp: usableTimestamp(fieldOf(payload, 'timestamp')) ?? request.nowMs,
    };
  },
};
