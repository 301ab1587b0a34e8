/**
 * Signed webhooks end to end: a real engine, real sockets, real PostgreSQL. Sources are
 * added with the CLI's own function; each scheme's delivery must land as one row with the
 * mapped fields, dedupe on retry, and a bad signature must store nothing.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import Stripe from 'stripe';
import { Webhook } from 'standardwebhooks';
import { runWebhookSources } from '../../src/webhooks/cli-sources';
import { post, startTestEngine, type TestEngine } from '../support/engine';

let engine: TestEngine;
const standardSecret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const json = { 'content-type': 'application/json' };

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runWebhookSources(argv, { DATABASE_URL: engine.databaseUrl }, { out: (text) => (out += text), err: (text) => (err += text) });
  return { code, out, err };
}

async function rowOf(eventId: string): Promise<Record<string, unknown> | undefined> {
  return (await engine.query('SELECT event_id, event_type, source, occurred_at, attributes FROM events WHERE event_id = $1', [eventId]))[0];
}

before(async () => {
  engine = await startTestEngine({ webhookSecret: 'day15-secret' });
  assert.equal((await cli('add', 'std', '--scheme', 'standard', '--secret', 'whsec_b2xkIHNlY3JldA==', '--secret', standardSecret)).code, 0);
  assert.equal((await cli('add', 'pay', '--scheme', 'stripe', '--secret', 'whsec_stripe')).code, 0);
  assert.equal((await cli('add', 'gh', '--scheme', 'github', '--secret', 'gh-secret')).code, 0);
  assert.equal((await cli('add', 'plain', '--scheme', 'hmac-sha256', '--secret', 'p', '--header', 'X-Signature')).code, 0);
  // The engine's cache reloads every 2 s.
  await new Promise((resolve) => setTimeout(resolve, 2500));
});
after(async () => engine.close());

test('the CLI lists sources without their secrets and refuses bad input', async () => {
  const listed = await cli('list', '--json');
  assert.equal(listed.code, 0);
  assert.doesNotMatch(listed.out, /whsec_|gh-secret/);
  assert.deepEqual(JSON.parse(listed.out.split('\n')[3] as string), { name: 'std', scheme: 'standard', secrets: 2, header: 'webhook-signature' });
  assert.equal((await cli('add', 'x', '--scheme', 'standard', '--secret', 'not-whsec')).code, 2);
  assert.equal((await cli('add', 'x', '--scheme', 'nope', '--secret', 's')).code, 2);
  assert.equal((await cli('remove', 'absent')).code, 1);
});

test('standard: 200 and the row; the retry is a duplicate; a bad signature is 401 and stores nothing', async () => {
  const body = JSON.stringify({ type: 'user.created', timestamp: new Date().toISOString(), data: { id: 7 } });
  const timestamp = new Date();
  const headers = { ...json, 'webhook-id': 'msg_e2e_1', 'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)), 'webhook-signature': new Webhook(standardSecret).sign('msg_e2e_1', timestamp, body) };
  const first = await post(`${engine.baseUrl}/v1/webhooks/std`, body, headers);
  assert.equal(first.status, 200, first.text);
  assert.equal(first.json.accepted, 1);
  const row = await rowOf('msg_e2e_1');
  assert.equal(row?.event_type, 'user.created');
  assert.equal(row?.source, 'std');
  assert.deepEqual(row?.attributes, JSON.parse(body));
  const again = await post(`${engine.baseUrl}/v1/webhooks/std`, body, headers);
  assert.equal(again.status, 200);
  assert.equal(again.json.duplicates, 1);
  const bad = await post(`${engine.baseUrl}/v1/webhooks/std`, body, { ...headers, 'webhook-id': 'msg_e2e_2' });
  assert.equal(bad.status, 401);
  assert.equal(bad.json.error.code, 'ERR_WEBHOOK_SIGNATURE');
  assert.equal(await rowOf('msg_e2e_2'), undefined);
});

test('stripe: id, type and created are mapped; a stale t is ERR_WEBHOOK_TIMESTAMP', async () => {
  const created = Math.floor(Date.now() / 1000) - 3600;
  const body = JSON.stringify({ id: 'evt_e2e_1', type: 'invoice.paid', created, data: {} });
  const header = (timestamp: number): string => new Stripe('sk_test_unused').webhooks.generateTestHeaderString({ payload: body, secret: 'whsec_stripe', timestamp });
  const ok = await post(`${engine.baseUrl}/v1/webhooks/pay`, body, { ...json, 'stripe-signature': header(Math.floor(Date.now() / 1000)) });
  assert.equal(ok.status, 200, ok.text);
  const row = await rowOf('evt_e2e_1');
  assert.equal(row?.event_type, 'invoice.paid');
  assert.equal((row?.occurred_at as Date).getTime(), created * 1000);
  const stale = await post(`${engine.baseUrl}/v1/webhooks/pay`, body, { ...json, 'stripe-signature': header(Math.floor(Date.now() / 1000) - 600) });
  assert.equal(stale.status, 401);
  assert.equal(stale.json.error.code, 'ERR_WEBHOOK_TIMESTAMP');
});

test('github: delivery id and event.action are mapped', async () => {
  const body = JSON.stringify({ action: 'opened', issue: { number: 1 } });
  const { sign } = await import('@octokit/webhooks-methods');
  const headers = { ...json, 'x-hub-signature-256': await sign('gh-secret', body), 'x-github-delivery': 'gh-e2e-1', 'x-github-event': 'issues' };
  const ok = await post(`${engine.baseUrl}/v1/webhooks/gh`, body, headers);
  assert.equal(ok.status, 200, ok.text);
  assert.equal((await rowOf('gh-e2e-1'))?.event_type, 'issues.opened');
});

test('hmac-sha256 in a named header; unknown source 404; the rejection counter counts', async () => {
  const body = JSON.stringify({ event_id: 'plain-e2e-1', event_type: 'order.paid', amount: 3 });
  const signature = createHmac('sha256', 'p').update(body).digest('hex');
  const ok = await post(`${engine.baseUrl}/v1/webhooks/plain`, body, { ...json, 'x-signature': signature });
  assert.equal(ok.status, 200, ok.text);
  assert.equal((await rowOf('plain-e2e-1'))?.event_type, 'order.paid');
  const unknown = await post(`${engine.baseUrl}/v1/webhooks/nobody`, body, { ...json, 'x-signature': signature });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json.error.code, 'ERR_WEBHOOK_SOURCE_UNKNOWN');
  const before = await (await fetch(`${engine.baseUrl}/metrics`)).text();
  assert.match(before, /floodgate_webhook_rejected_total\{source="plain",reason="signature"\} 0/);
  assert.equal((await post(`${engine.baseUrl}/v1/webhooks/plain`, body, { ...json, 'x-signature': '0'.repeat(64) })).status, 401);
  const afterText = await (await fetch(`${engine.baseUrl}/metrics`)).text();
  assert.match(afterText, /floodgate_webhook_rejected_total\{source="plain",reason="signature"\} 1/);
});

test('Day-15 route with FLOODGATE_WEBHOOK_SECRET: signed 202, unsigned 401 and nothing stored', async () => {
  const body = JSON.stringify({ event_id: 'day15-e2e-1', event_type: 'ping', timestamp: Date.now() });
  const signature = createHmac('sha256', 'day15-secret').update(body).digest('hex');
  const unsigned = await post(`${engine.baseUrl}/webhook/events`, body, json);
  assert.equal(unsigned.status, 401);
  assert.equal(unsigned.json.error.code, 'ERR_WEBHOOK_SIGNATURE');
  assert.equal(await rowOf('day15-e2e-1'), undefined);
  const signed = await post(`${engine.baseUrl}/webhook/events`, body, { ...json, 'x-webhook-signature': signature });
  assert.equal(signed.status, 202, signed.text);
  assert.ok(await rowOf('day15-e2e-1'));
});
