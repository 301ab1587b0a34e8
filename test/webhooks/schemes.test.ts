/**
 * The verification schemes alone (no database, no sockets): each one against signatures
 * made by the provider's own library, and against every way a delivery can be wrong.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import Stripe from 'stripe';
import { Webhook } from 'standardwebhooks';
import { schemes, type SchemeName } from '../../src/webhooks/schemes';
import type { SignedRequest, Verdict } from '../../src/webhooks/signature';

const nowMs = 1_700_000_000_000;
const nowS = nowMs / 1000;
const body = Buffer.from('{"id":"evt_1","type":"invoice.paid","created":1699999000,"data":{"n":1}}');
const standardSecret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const otherStandardSecret = 'whsec_dGhlIG90aGVyIHNlY3JldCBpcyBoZXJl';
const stripeHeader = new Stripe('sk_test_unused').webhooks.generateTestHeaderString;

function request(headers: Record<string, string>, secrets: readonly string[], scheme: SchemeName, overrides: Partial<SignedRequest> = {}): SignedRequest {
  const lower = new Map(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
  return { body, header: (name) => lower.get(name) ?? '', secrets, signatureHeader: schemes[scheme].defaultSignatureHeader, nowMs, ...overrides };
}

function verify(scheme: SchemeName, signed: SignedRequest): Verdict {
  return schemes[scheme].verify(signed);
}

function assertRefused(verdict: Verdict, reason: 'signature' | 'timestamp'): void {
  assert.equal(verdict.ok, false);
  if (!verdict.ok) assert.equal(verdict.reason, reason);
}

// standard ----------------------------------------------------------------------------------

function standardHeaders(secret: string, timestampS = nowS, id = 'msg_1', signedBody = body): Record<string, string> {
  const signature = new Webhook(secret).sign(id, new Date(timestampS * 1000), signedBody.toString());
  return { 'webhook-id': id, 'webhook-timestamp': String(timestampS), 'webhook-signature': signature };
}

test('standard: a signature made by the standardwebhooks library verifies', () => {
  assert.deepEqual(verify('standard', request(standardHeaders(standardSecret), [standardSecret], 'standard')), { ok: true });
});

test('standard: wrong secret, tampered body, tampered id are refused as signature', () => {
  assertRefused(verify('standard', request(standardHeaders(otherStandardSecret), [standardSecret], 'standard')), 'signature');
  const tampered = Buffer.from(body.toString().replace('"n":1', '"n":2'));
  assertRefused(verify('standard', request(standardHeaders(standardSecret), [standardSecret], 'standard', { body: tampered })), 'signature');
  const headers = { ...standardHeaders(standardSecret), 'webhook-id': 'msg_2' };
  assertRefused(verify('standard', request(headers, [standardSecret], 'standard')), 'signature');
});

test('standard: stale and future timestamps beyond five minutes are refused as timestamp; within, accepted', () => {
  for (const skewS of [-301, 301, -3600]) {
    assertRefused(verify('standard', request(standardHeaders(standardSecret, nowS + skewS), [standardSecret], 'standard')), 'timestamp');
  }
  for (const skewS of [-299, 299]) {
    assert.equal(verify('standard', request(standardHeaders(standardSecret, nowS + skewS), [standardSecret], 'standard')).ok, true);
  }
});

test('standard: a rotated secret (the second one) verifies; several signatures in the header', () => {
  assert.equal(verify('standard', request(standardHeaders(standardSecret), [otherStandardSecret, standardSecret], 'standard')).ok, true);
  const headers = standardHeaders(standardSecret);
  headers['webhook-signature'] = `v1,${'A'.repeat(43)}= v2,xyz ${headers['webhook-signature']}`;
  assert.equal(verify('standard', request(headers, [standardSecret], 'standard')).ok, true);
});

test('standard: missing or malformed headers are refused as signature', () => {
  const good = standardHeaders(standardSecret);
  const cases: Array<Record<string, string>> = [
    {},
    { ...good, 'webhook-id': '' },
    { ...good, 'webhook-timestamp': '' },
    { ...good, 'webhook-timestamp': '1.7e9' },
    { ...good, 'webhook-signature': '' },
    { ...good, 'webhook-signature': 'v1,not-base64' },
    { ...good, 'webhook-signature': (good['webhook-signature'] as string).replace('v1,', 'v2,') },
    { ...good, 'webhook-signature': Array.from({ length: 17 }, () => good['webhook-signature']).join(' ') },
  ];
  for (const headers of cases) assertRefused(verify('standard', request(headers, [standardSecret], 'standard')), 'signature');
});

test('standard: secrets must be whsec_<base64>', () => {
  assert.equal(schemes.standard.secretProblem(standardSecret), null);
  assert.notEqual(schemes.standard.secretProblem('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'), null);
  assert.notEqual(schemes.standard.secretProblem('whsec_!!'), null);
});

test('standard: maps webhook-id, payload type, and the payload timestamp before the attempt time', () => {
  const headers = standardHeaders(standardSecret);
  const signed = request(headers, [standardSecret], 'standard');
  assert.deepEqual(schemes.standard.map({ type: 'user.created' }, signed), { eventId: 'msg_1', eventType: 'user.created', timestamp: nowMs });
  const withTime = schemes.standard.map({ type: 'x', timestamp: '2023-11-14T22:00:00Z' }, signed);
  assert.equal(withTime.timestamp, '2023-11-14T22:00:00Z');
  assert.equal(schemes.standard.map([1, 2], signed).eventType, 'webhook');
});

// stripe ------------------------------------------------------------------------------------

const stripeSecret = 'whsec_stripe_test_secret';

function stripeHeaders(secret: string, timestampS = nowS, signedBody = body): Record<string, string> {
  return { 'stripe-signature': stripeHeader({ payload: signedBody.toString(), secret, timestamp: timestampS }) };
}

test('stripe: a header made by stripe.webhooks.generateTestHeaderString verifies', () => {
  assert.deepEqual(verify('stripe', request(stripeHeaders(stripeSecret), [stripeSecret], 'stripe')), { ok: true });
});

test('stripe: wrong secret and tampered body are refused as signature', () => {
  assertRefused(verify('stripe', request(stripeHeaders('whsec_other'), [stripeSecret], 'stripe')), 'signature');
  const tampered = Buffer.from(body.toString().replace('evt_1', 'evt_2'));
  assertRefused(verify('stripe', request(stripeHeaders(stripeSecret), [stripeSecret], 'stripe', { body: tampered })), 'signature');
});

test('stripe: stale and future t are refused as timestamp', () => {
  assertRefused(verify('stripe', request(stripeHeaders(stripeSecret, nowS - 301), [stripeSecret], 'stripe')), 'timestamp');
  assertRefused(verify('stripe', request(stripeHeaders(stripeSecret, nowS + 301), [stripeSecret], 'stripe')), 'timestamp');
});

test('stripe: the second secret verifies; a second v1 in the header is tried too', () => {
  assert.equal(verify('stripe', request(stripeHeaders(stripeSecret), ['whsec_old', stripeSecret], 'stripe')).ok, true);
  const header = stripeHeaders(stripeSecret)['stripe-signature'] as string;
  const withExtra = header.replace(',v1=', `,v1=${'0'.repeat(64)},v0=abc,v1=`);
  assert.equal(verify('stripe', request({ 'stripe-signature': withExtra }, [stripeSecret], 'stripe')).ok, true);
});

test('stripe: missing or malformed headers are refused as signature', () => {
  for (const value of ['', 't=1700000000', 'v1=' + '0'.repeat(64), 't=abc,v1=' + '0'.repeat(64), 't=1700000000,v1=xyz', 'garbage']) {
    assertRefused(verify('stripe', request({ 'stripe-signature': value }, [stripeSecret], 'stripe')), 'signature');
  }
});

test('stripe: maps payload id, type and created', () => {
  const signed = request(stripeHeaders(stripeSecret), [stripeSecret], 'stripe');
  assert.deepEqual(schemes.stripe.map(JSON.parse(body.toString()), signed), { eventId: 'evt_1', eventType: 'invoice.paid', timestamp: 1_699_999_000_000 });
  const bare = schemes.stripe.map({}, signed);
  assert.match(bare.eventId, /^wh_[A-Za-z0-9_-]{22}$/);
  assert.equal(bare.timestamp, nowMs);
});

// github ------------------------------------------------------------------------------------

const githubSecret = 'It\'s a Secret to Everybody';

async function githubHeaders(secret: string, signedBody = body): Promise<Record<string, string>> {
  // The library is an ES module only; this project compiles to CommonJS.
  const { sign } = await import('@octokit/webhooks-methods');
  return { 'x-hub-signature-256': await sign(secret, signedBody.toString()), 'x-github-delivery': 'd-1', 'x-github-event': 'issues' };
}

test('github: a signature made by @octokit/webhooks-methods verifies; GitHub\'s documented vector too', async () => {
  assert.deepEqual(verify('github', request(await githubHeaders(githubSecret), [githubSecret], 'github')), { ok: true });
  // From GitHub's "Validating webhook deliveries" page.
  const documented = { 'x-hub-signature-256': 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17' };
  assert.equal(verify('github', request(documented, [githubSecret], 'github', { body: Buffer.from('Hello, World!') })).ok, true);
});

test('github: wrong secret, tampered body and malformed headers are refused as signature', async () => {
  assertRefused(verify('github', request(await githubHeaders('other'), [githubSecret], 'github')), 'signature');
  const tampered = Buffer.from(`${body.toString()} `);
  assertRefused(verify('github', request(await githubHeaders(githubSecret), [githubSecret], 'github', { body: tampered })), 'signature');
  const good = (await githubHeaders(githubSecret))['x-hub-signature-256'] as string;
  for (const value of ['', good.slice(7), `sha1=${good.slice(7)}`, `${good}00`, 'sha256=']) {
    assertRefused(verify('github', request({ 'x-hub-signature-256': value }, [githubSecret], 'github')), 'signature');
  }
});

test('github: the second secret verifies', async () => {
  assert.equal(verify('github', request(await githubHeaders(githubSecret), ['old', githubSecret], 'github')).ok, true);
});

test('github: maps X-GitHub-Delivery, X-GitHub-Event plus .action, and the receipt time', async () => {
  const signed = request(await githubHeaders(githubSecret), [githubSecret], 'github');
  assert.deepEqual(schemes.github.map({ action: 'opened' }, signed), { eventId: 'd-1', eventType: 'issues.opened', timestamp: nowMs });
  assert.equal(schemes.github.map({ zen: 'x' }, signed).eventType, 'issues');
});

// hmac-sha256 -------------------------------------------------------------------------------

function hmacHex(secret: string, signedBody = body): string {
  return createHmac('sha256', secret).update(signedBody).digest('hex');
}

test('hmac-sha256: the hex HMAC of the body verifies, also with sha256= and in a named header', () => {
  assert.equal(verify('hmac-sha256', request({ 'x-webhook-signature': hmacHex('s3') }, ['s3'], 'hmac-sha256')).ok, true);
  assert.equal(verify('hmac-sha256', request({ 'x-webhook-signature': `sha256=${hmacHex('s3')}` }, ['s3'], 'hmac-sha256')).ok, true);
  const named = request({ 'x-signature': hmacHex('s3') }, ['s3'], 'hmac-sha256', { signatureHeader: 'x-signature' });
  assert.equal(verify('hmac-sha256', named).ok, true);
  // A hand-computed vector (RFC 4231 test case 2: key "Jefe").
  const rfc = request({ 'x-webhook-signature': '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843' }, ['Jefe'], 'hmac-sha256', { body: Buffer.from('what do ya want for nothing?') });
  assert.equal(verify('hmac-sha256', rfc).ok, true);
});

test('hmac-sha256: wrong secret, tampered body, malformed header; the second secret verifies', () => {
  assertRefused(verify('hmac-sha256', request({ 'x-webhook-signature': hmacHex('other') }, ['s3'], 'hmac-sha256')), 'signature');
  const tampered = Buffer.from(body.toString().toUpperCase());
  assertRefused(verify('hmac-sha256', request({ 'x-webhook-signature': hmacHex('s3') }, ['s3'], 'hmac-sha256', { body: tampered })), 'signature');
  for (const value of ['', 'zz', hmacHex('s3').slice(2), `${hmacHex('s3')} `]) {
    assertRefused(verify('hmac-sha256', request({ 'x-webhook-signature': value }, ['s3'], 'hmac-sha256')), 'signature');
  }
  assert.equal(verify('hmac-sha256', request({ 'x-webhook-signature': hmacHex('s3') }, ['s2', 's3'], 'hmac-sha256')).ok, true);
});

test('hmac-sha256: maps event_id or id, event_type or type, else a body hash and "webhook"', () => {
  const signed = request({}, ['s3'], 'hmac-sha256');
  assert.deepEqual(schemes['hmac-sha256'].map({ event_id: 'e1', event_type: 't1', id: 'x', type: 'y' }, signed), { eventId: 'e1', eventType: 't1', timestamp: nowMs });
  assert.deepEqual(schemes['hmac-sha256'].map({ id: 42, type: 'y', timestamp: 1_699_000_000_000 }, signed), { eventId: '42', eventType: 'y', timestamp: 1_699_000_000_000 });
  const bare = schemes['hmac-sha256'].map({ timestamp: 'yesterday' }, signed);
  assert.equal(bare.eventType, 'webhook');
  assert.equal(bare.timestamp, nowMs);
  assert.equal(bare.eventId, schemes['hmac-sha256'].map(null, signed).eventId, 'the same body gives the same id');
});
