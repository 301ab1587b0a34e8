/**
 * GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` with the hook's
 * secret; `X-GitHub-Delivery` (a GUID, kept on redelivery) and `X-GitHub-Event` name the
 * delivery. GitHub signs no timestamp, so there is nothing to check for staleness.
 */
import { bodyHashId, fieldOf, text } from './delivery-fields';
import { hexDigest, hmacSha256, refused, sameBytes, verified, type Scheme } from './signature';

export const githubScheme: Scheme = {
  headerNames: ['x-github-delivery', 'x-github-event'],
  defaultSignatureHeader: 'x-hub-signature-256',
  secretProblem: (secret) => (secret.length > 0 ? null : 'the secret is empty'),
  verify(request) {
    const header = request.header(request.signatureHeader);
    const given = header.startsWith('sha256=') ? hexDigest(header.slice('sha256='.length)) : null;
    if (given === null) return refused('signature', 'X-Hub-Signature-256 must be sha256=<64 hex digits>');
    const matches = request.secrets.some((secret) => sameBytes(given, hmacSha256(secret, request.body)));
    return matches ? verified : refused('signature', 'X-Hub-Signature-256 matches none of the source\'s secrets');
  },
  map(payload, request) {
    const event = text(request.header('x-github-event')) ?? 'webhook';
    const action = text(fieldOf(payload, 'action'));
    return {
      eventId: text(request.header('x-github-delivery')) ?? bodyHashId(request.body),
      eventType: action === null ? event : `${event}.${action}`,
      timestamp: request.nowMs,
    };
  },
};
