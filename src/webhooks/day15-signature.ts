/**
 * The Day-15 routes' signature check (POST /webhook/events and /webhook/batch), on when
 * FLOODGATE_WEBHOOK_SECRET is set: X-Webhook-Signature must hold the hex HMAC-SHA256 of
 * the raw body as sent (before any gunzip), as that receiver's hardening guide describes.
 * The v1 routes are not affected.
 */
import type { ErrorInfo } from '../errors';
import type { IngestRoute } from '../ingress/ingest-handler';
import { verifyBodyHmac } from './scheme-hmac';

export function day15SignatureCheck(secret: string): (route: IngestRoute, body: Buffer, signature: string) => ErrorInfo | null {
  const secrets = [secret];
  return (route, body, signature) => {
    if (route !== 'webhook-event' && route !== 'webhook-batch') return null;
    const verdict = verifyBodyHmac({ body, secrets }, signature, 'X-Webhook-Signature');
    return verdict.ok ? null : { code: 'ERR_WEBHOOK_SIGNATURE', message: verdict.message };
  };
}
