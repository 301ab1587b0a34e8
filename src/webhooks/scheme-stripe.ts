/**
 * Stripe: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, where each v1 is the
 * hex HMAC-SHA256 of "<t>.<body>" keyed with the endpoint secret as given (whsec_…, not
 * decoded). Other schemes in the header (v0, test-mode extras) are skipped.
 */
import { bodyHashId, fieldOf, idText, text, unixSecondsMs } from './delivery-fields';
import { hexDigest, hmacSha256, parseUnixSeconds, refused, sameBytes, staleness, verified, type Scheme } from './signature';

/** Elements considered per header (t plus signatures): a flood of entries is refused. */
const elementsMax = 16;

export const stripeScheme: Scheme = {
  headerNames: [],
  defaultSignatureHeader: 'stripe-signature',
  secretProblem: (secret) => (secret.length > 0 ? null : 'the secret is empty'),
  verify(request) {
    const elements = request.header(request.signatureHeader).split(',');
    if (elements.length > elementsMax) return refused('signature', `Stripe-Signature holds more than ${elementsMax} elements`);
    let timestampText: string | null = null;
    const given: Buffer[] = [];
    for (const element of elements) {
      const equals = element.indexOf('=');
      const key = element.slice(0, equals).trim();
      const value = element.slice(equals + 1).trim();
      if (key === 't') timestampText = value;
      else if (key === 'v1') {
        const digest = hexDigest(value);
        if (digest !== null) given.push(digest);
      }
    }
    const timestampS = timestampText === null ? null : parseUnixSeconds(timestampText);
    if (timestampS === null || given.length === 0) return refused('signature', 'Stripe-Signature needs t=<unix seconds> and at least one v1=<hex>');
    const matches = request.secrets.some((secret) => {
      const expected = hmacSha256(secret, `${timestampText}.`, request.body);
      return given.some((digest) => sameBytes(digest, expected));
    });
    if (!matches) return refused('signature', 'no v1 signature matches any of the source\'s secrets');
    return staleness(timestampS, request.nowMs) ?? verified;
  },
  map(payload, request) {
    // `created` is when Stripe made the event, the same on every retry, unlike `t`.
    return {
      eventId: idText(fieldOf(payload, 'id')) ?? bodyHashId(request.body),
      eventType: text(fieldOf(payload, 'type')) ?? 'webhook',
      timestamp: unixSecondsMs(fieldOf(payload, 'created')) ?? request.nowMs,
    };
  },
};
