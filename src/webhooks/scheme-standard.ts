/**
 * Standard Webhooks (standardwebhooks.com), as sent by Svix and others:
 *
 *   webhook-id: msg_…            the delivery id, the same on every retry
 *   webhook-timestamp: 1700000000 unix seconds of this attempt
 *   webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body"> [v1,… …]
 *
 * Secrets are `whsec_<base64>`; the HMAC key is the decoded part. The header may list
 * several signatures (the sender's own rotation) and other versions, which are skipped.
 */
import { bodyHashId, fieldOf, text, usableTimestamp } from './delivery-fields';
import { base64Digest, hmacSha256, parseUnixSeconds, refused, sameBytes, staleness, verified, type Scheme } from './signature';

const secretPattern = /^whsec_[A-Za-z0-9+/]+={0,2}$/;
/** Signatures considered per request: a header is short; a flood of entries is refused. */
const signaturesMax = 16;

export const standardScheme: Scheme = {
  headerNames: ['webhook-id', 'webhook-timestamp'],
  defaultSignatureHeader: 'webhook-signature',
  secretProblem: (secret) => (secretPattern.test(secret) ? null : 'a standard secret looks like whsec_<base64>'),
  verify(request) {
    const id = request.header('webhook-id');
    const timestampText = request.header('webhook-timestamp');
    const timestampS = parseUnixSeconds(timestampText);
    if (id === '' || timestampS === null) return refused('signature', 'webhook-id and webhook-timestamp (unix seconds) are required');
    const entries = request.header(request.signatureHeader).split(' ').filter((entry) => entry !== '');
    if (entries.length > signaturesMax) return refused('signature', `webhook-signature lists more than ${signaturesMax} signatures`);
    const given = entries.flatMap((entry) => (entry.startsWith('v1,') ? [base64Digest(entry.slice(3))] : [])).filter((digest) => digest !== null);
    if (given.length === 0) return refused('signature', 'webhook-signature holds no v1,<base64> signature');
    const matches = request.secrets.some((secret) => {
      const expected = hmacSha256(Buffer.from(secret.slice('whsec_'.length), 'base64'), `${id}.${timestampText}.`, request.body);
      return given.some((digest) => sameBytes(digest, expected));
    });
    if (!matches) return refused('signature', 'no webhook-signature matches any of the source\'s secrets');
    return staleness(timestampS, request.nowMs) ?? verified;
  },
  map(payload, request) {
    // The payload's own `timestamp` (the spec's "when the event happened") is preferred:
    // webhook-timestamp is the attempt's time and changes on every retry, and occurred_at
    // is part of the events table's key, so a retry would not dedupe in PostgreSQL.
    const attemptMs = (parseUnixSeconds(request.header('webhook-timestamp')) ?? 0) * 1000;
    return {
      eventId: text(request.header('webhook-id')) ?? bodyHashId(request.body),
      eventType: text(fieldOf(payload, 'type')) ?? 'webhook',
      timestamp: usableTimestamp(fieldOf(payload, 'timestamp')) ?? attemptMs,
    };
  },
};
